package clickhouse

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/clickhouse/chtest"
	"github.com/flowscan/flowscan/internal/flow"
)

// TestNativeMatchesRowBinary: every row of a Native block decodes to
// what the RowBinary encoding of the same flow decodes to, for full and
// partly filled builders.
func TestNativeMatchesRowBinary(t *testing.T) {
	recs := testFlows(7, 1000, time.Now())
	for _, tc := range []struct {
		name          string
		capacity, add int
	}{
		{"full", 1000, 1000},
		{"partial", 1000, 337},
		{"one row", 4096, 1},
		{"varint of 3 bytes", 1 << 20, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var nb nativeBuilder
			nb.reset(make([]byte, nativeSize(tc.capacity)), tc.capacity)
			for i := range tc.add {
				nb.add(&recs[i], 42)
			}
			block := nb.seal()
			if len(block) != nativeBlockSize(tc.add) {
				t.Errorf("block of %d bytes, nativeBlockSize says %d", len(block), nativeBlockSize(tc.add))
			}
			rows, cols, err := parseNative(block)
			if err != nil || rows != tc.add {
				t.Fatalf("parseNative: %d rows, %v; want %d", rows, err, tc.add)
			}
			for i := range rows {
				var got, want flow.Record
				if id := nativeRow(&cols, i, &got); id != 42 {
					t.Fatalf("row %d: batch id %d", i, id)
				}
				DecodeRow(AppendRow(nil, &recs[i], 42), &want)
				if got != want {
					t.Fatalf("row %d: %+v, want %+v", i, got, want)
				}
			}
		})
	}
}

// TestNativeIsTheServersFormat: the server takes our Native block, and
// selecting the rows back in Native gives the same bytes.
func TestNativeIsTheServersFormat(t *testing.T) {
	srv := chtest.Start(t)
	c, _ := NewClient(srv.URL("fsn"))
	initSchema(t, c)
	ctx := context.Background()
	if err := c.Exec(ctx, "CREATE TABLE fsn.mem AS fsn.flows ENGINE = Memory"); err != nil {
		t.Fatal(err)
	}
	recs := testFlows(8, 3000, time.Now())
	// IPv6 and zero addresses, extreme values.
	recs[0].Exporter, recs[0].NextHop = recs[1].SrcAddr, recs[2].SrcAddr
	recs[1].Bytes, recs[1].Packets, recs[1].SrcMAC = 1<<64-1, 1<<63, [6]byte{1, 2, 3, 4, 5, 6}
	b := testBatch(77, recs, false, false)
	if err := c.Insert(ctx, "fsn.mem", RawColumnList(), "Native", b.data); err != nil {
		t.Fatal(err)
	}
	back, err := c.Query(ctx, "SELECT "+RawColumnList()+" FROM fsn.mem FORMAT Native")
	if err != nil {
		t.Fatal(err)
	}
	// 18.16 names the type of a DateTime('UTC') column "DateTime" in
	// its Native output (and takes either name as input).
	back = bytes.ReplaceAll(back, []byte("\x08DateTime"), []byte("\x0fDateTime('UTC')"))
	if !bytes.Equal(back, b.data) {
		t.Fatalf("the server's Native block (%d bytes) differs from ours (%d bytes)", len(back), len(b.data))
	}
}

// TestSpoolWrittenBeforeNative: a spool file written by flowscan before
// the Native format (RowBinary, testdata/spool-rowbinary, made by commit
// 577a8a1) is sent after an upgrade, once, with every row intact.
func TestSpoolWrittenBeforeNative(t *testing.T) {
	srv := chtest.Start(t)
	c, _ := NewClient(srv.URL("fsold"))
	initSchema(t, c)
	spool := t.TempDir()
	const name = "00000000000000000003.batch"
	old, err := os.ReadFile(filepath.Join("testdata", "spool-rowbinary", name))
	if err != nil {
		t.Fatal(err)
	}
	if string(old[:8]) != spoolMagicRowBinary {
		t.Fatalf("testdata file starts with %q, not the RowBinary spool magic", old[:8])
	}
	if err := os.WriteFile(filepath.Join(spool, name), old, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := NewSink(SinkConfig{Shards: []*Client{c}, Schema: &Schema{Database: "fsold"}, SpoolDir: spool,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// New flows behind it go as Native.
	recent := testFlows(22, 700, time.Now())
	s.Flows(recent)
	s.Close(30 * time.Second)
	recs := testFlows(21, 500, time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	want := sum(append(append([]flow.Record{}, recs...), recent...))
	for _, table := range TableNames() {
		if got := tableTotals(t, c, table); got != want {
			t.Errorf("%s: %+v, want %+v", table, got, want)
		}
	}
	if st := s.Stats(); st.Batches != 2 || st.Rows != want.flows || st.Errors != 0 {
		t.Errorf("stats %+v: want the old batch and the new one sent", st)
	}
	if left, _ := filepath.Glob(filepath.Join(spool, "*"+spoolSuffix)); len(left) != 0 {
		t.Errorf("spool still holds %v", left)
	}
	// Every row as it was.
	var got []flow.Record
	err = c.QueryStream(context.Background(), "SELECT "+RawColumnList()+" FROM fsold.flows WHERE batch_id % 1099511627776 = 3 FORMAT RowBinary", func(r *bufio.Reader) error {
		row := make([]byte, RowSize)
		for {
			if _, err := io.ReadFull(r, row); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
			var f flow.Record
			DecodeRow(row, &f)
			got = append(got, f)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("%d rows of the old batch, want %d", len(got), len(recs))
	}
	wantRows := map[flow.Record]int{}
	for i := range recs {
		var r flow.Record
		DecodeRow(AppendRow(nil, &recs[i], 0), &r)
		wantRows[r]++
	}
	for _, r := range got {
		if wantRows[r] == 0 {
			t.Fatalf("row %+v was not in the old batch", r)
		}
		wantRows[r]--
	}
}
