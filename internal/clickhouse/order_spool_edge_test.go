package clickhouse

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/flowscan/flowscan/internal/clickhouse/chtest"
	"github.com/flowscan/flowscan/internal/flow"
)

// TestOrderInLastHourOfDateTime: flows whose time_end lies in the
// last (partial) hour a DateTime can hold (from 2106-02-07 06:00 UTC;
// unixSeconds also saturates any later End to 4294967295, and an IPFIX
// flowEndSeconds of 0xffffffff decodes to it) from two exporters out of
// order. sortBlock computes that hour's end as t-t%3600+3599, which
// overflows uint32, so the bucket index leaves o.count: the sender
// goroutine panics (and a spooled batch panics again after every
// restart). The batch must come out as a permutation in key order.
func TestOrderInLastHourOfDateTime(t *testing.T) {
	for _, end := range []uint32{math.MaxUint32, math.MaxUint32 - 1000} {
		t.Run(fmt.Sprint(end), func(t *testing.T) {
			recs := make([]flow.Record, 4)
			for i := range recs {
				recs[i] = flow.Record{
					Exporter: netip.AddrFrom4([4]byte{192, 0, 2, byte(2 - i%2)}), // .2, .1, .2, .1
					SrcAddr:  netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}),
					End:      int64(end)*1000 + 999, Start: int64(end) * 1000,
					Bytes: uint64(100 + i), Packets: 1,
				}
			}
			b := testBatch(7, recs, false, false)
			var o rawOrder
			var panicked any
			func() {
				defer func() { panicked = recover() }()
				o.order(b, len(recs))
			}()
			if panicked != nil {
				t.Fatalf("ordering a batch in the last hour of DateTime panicked: %v", panicked)
			}
			rows, cols, err := parseNative(b.data)
			if err != nil || rows != len(recs) {
				t.Fatalf("ordered block: %d rows, %v", rows, err)
			}
			seen := map[uint64]bool{}
			for i := range rows {
				var r flow.Record
				if id := nativeRow(&cols, i, &r); id != 7 {
					t.Errorf("row %d: batch id %d", i, id)
				}
				seen[r.Bytes] = true
				if i > 0 && compareKeys(keyOf(&cols, i-1), keyOf(&cols, i)) > 0 {
					t.Errorf("rows %d and %d out of order", i-1, i)
				}
			}
			if len(seen) != len(recs) {
				t.Errorf("ordered block holds %d distinct rows, want %d", len(seen), len(recs))
			}
		})
	}
}

// TestNativeSpoolFileOfZstdEra: from 0cd53d8 to 12e3768 the sink
// wrote Native batches as FSCHSPL2 files compressed with zstd (encode
// ended with s.enc.EncodeAll(b.data, buf)); 470d310 kept the magic and
// switched to S2, so such a file now fails to decode and next() removes
// it as damaged: its flows never reach ClickHouse. It must load.
func TestNativeSpoolFileOfZstdEra(t *testing.T) {
	dir := t.TempDir()
	sp, err := openSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	recs := testFlows(41, 500, time.Now())
	b := testBatch(uint64(sp.collectorID)<<seqBits|9, recs, false, true)
	// The spool file as 12e3768 wrote it.
	buf := make([]byte, spoolHeader)
	copy(buf, spoolMagic)
	le := binary.LittleEndian
	le.PutUint64(buf[8:], b.id)
	le.PutUint32(buf[16:], uint32(b.rows))
	le.PutUint32(buf[20:], 1)
	le.PutUint32(buf[24:], b.minT)
	le.PutUint32(buf[28:], b.maxT)
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	buf = enc.EncodeAll(b.data, buf)
	if err := os.WriteFile(sp.path(b.seq()), buf, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := sp.load(b.seq())
	if errors.Is(err, errSpoolDamaged) {
		t.Fatalf("a Native spool file written before S2 is taken for damaged (the sink deletes it, %d flows lost): %v", len(recs), err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if string(got.data) != string(b.data) || got.rows != b.rows || got.id != b.id || !got.attempted {
		t.Errorf("loaded batch differs from the one spooled")
	}
}

// TestSinkWaitsForRestInsert: the INSERT of a partly inserted batch's
// missing days (query id ...-rest) outlived its client and still runs on
// the server (a slow view here) when the batch is tried again. Every
// table must end up with the batch exactly once.
func TestSinkWaitsForRestInsert(t *testing.T) {
	srv := chtest.Start(t)
	c, _ := NewClient(srv.URL("fs"))
	initSchema(t, c)
	ctx := context.Background()
	spool := t.TempDir()
	sp, err := openSpool(spool)
	if err != nil {
		t.Fatal(err)
	}
	midnight := time.Now().UTC().Truncate(24 * time.Hour)
	yesterday := testFlows(21, 300, midnight.Add(-time.Second))
	today := testFlows(22, 200, midnight.Add(90*time.Minute))
	all := append(append([]flow.Record{}, yesterday...), today...)
	b := testBatch(uint64(sp.collectorID)<<seqBits|50, all, false, true)
	// The first attempt stored yesterday's part ...
	first := testBatch(b.id, yesterday, false, true)
	if err := c.InsertWithID(ctx, "fs.flows", RawColumnList(), first.format(), first.data, b.queryID()); err != nil {
		t.Fatal(err)
	}
	// ... and the INSERT of the rest is still running: a view that
	// takes 3 s a block, added now.
	addSlowView(t, c)
	rest := testBatch(b.id, today, false, true)
	restDone := make(chan error, 1)
	go func() {
		restDone <- c.InsertWithID(ctx, "fs.flows", RawColumnList(), rest.format(), rest.data, restQueryID(b.queryID()))
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rows, err := c.QueryRows(ctx, "SELECT count() FROM system.processes WHERE query_id = '"+restQueryID(b.queryID())+"'")
		if err == nil && len(rows) == 1 && rows[0][0] == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the -rest INSERT never showed in system.processes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := sp.put(b); err != nil {
		t.Fatal(err)
	}
	s, err := NewSink(SinkConfig{Shards: []*Client{c}, Schema: &Schema{Database: "fs"}, SpoolDir: spool,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	if err != nil {
		t.Fatal(err)
	}
	s.Close(60 * time.Second)
	if err := <-restDone; err != nil {
		t.Fatal(err)
	}
	for _, table := range TableNames() {
		if got, want := tableTotals(t, c, table), sum(all); got != want {
			t.Errorf("%s: %+v, want %+v", table, got, want)
		}
	}
}
