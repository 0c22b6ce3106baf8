package clickhouse

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/clickhouse/chtest"
	"github.com/flowscan/flowscan/internal/flow"
)

// testFlows makes n varied records ending within the last hour before now.
func testFlows(seed uint64, n int, now time.Time) []flow.Record {
	r := rand.New(rand.NewPCG(seed, 1))
	recs := make([]flow.Record, n)
	exporters := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}
	for i := range recs {
		end := now.Add(-time.Duration(r.IntN(3600)) * time.Second).UnixMilli()
		src := netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256))})
		if r.IntN(10) == 0 {
			src = netip.MustParseAddr(fmt.Sprintf("2001:db8:%x::%x", r.IntN(16), r.IntN(65536)))
		}
		recs[i] = flow.Record{
			Exporter: exporters[r.IntN(2)], SrcAddr: src,
			DstAddr: netip.AddrFrom4([4]byte{192, 168, byte(r.IntN(4)), byte(r.IntN(256))}),
			Start:   end - int64(r.IntN(60000)), End: end,
			Bytes: uint64(40 + r.IntN(1_000_000)), Packets: uint64(1 + r.IntN(1000)),
			SrcPort: uint16(r.IntN(65536)), DstPort: []uint16{80, 443, 53, 22}[r.IntN(4)],
			Proto: []uint8{6, 17}[r.IntN(2)], InIf: uint32(r.IntN(4)), OutIf: uint32(r.IntN(4)),
			SrcAS: uint32(r.IntN(5)), DstAS: uint32(64500 + r.IntN(5)), SamplingRate: 1,
		}
	}
	return recs
}

type totals struct{ flows, packets, bytes uint64 }

func sum(recs []flow.Record) totals {
	var t totals
	for i := range recs {
		t.flows++
		t.packets += recs[i].Packets
		t.bytes += recs[i].Bytes
	}
	return t
}

func tableTotals(t *testing.T, c *Client, table string) totals {
	t.Helper()
	flows := "count()"
	if table != "flows" {
		flows = "sum(flows)"
	}
	rows, err := c.QueryRows(context.Background(), fmt.Sprintf("SELECT %s, sum(packets), sum(bytes) FROM %s.%s", flows, c.Database, table))
	if err != nil {
		t.Fatal(err)
	}
	var tt totals
	fmt.Sscan(rows[0][0], &tt.flows)
	fmt.Sscan(rows[0][1], &tt.packets)
	fmt.Sscan(rows[0][2], &tt.bytes)
	return tt
}

func newTestSink(t *testing.T, c *Client, spool string, batchRows int) *Sink {
	return newTestSinkSenders(t, c, spool, batchRows, 1)
}

func newTestSinkSenders(t *testing.T, c *Client, spool string, batchRows, senders int) *Sink {
	t.Helper()
	s, err := NewSink(SinkConfig{Shards: []*Client{c}, Schema: &Schema{Database: c.Database}, SpoolDir: spool,
		BatchRows: batchRows, FlushInterval: 200 * time.Millisecond, SendersPerShard: senders,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func initSchema(t *testing.T, c *Client) {
	t.Helper()
	if _, err := (&Schema{Database: c.Database}).Migrate(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

func TestSinkTotalsInEveryTable(t *testing.T) {
	srv := chtest.Start(t)
	for _, senders := range []int{1, 3} {
		t.Run(fmt.Sprintf("senders=%d", senders), func(t *testing.T) {
			testSinkTotals(t, srv, senders)
		})
	}
}

func testSinkTotals(t *testing.T, srv *chtest.Server, senders int) {
	c, err := NewClient(srv.URL(fmt.Sprintf("fs%d", senders)))
	if err != nil {
		t.Fatal(err)
	}
	initSchema(t, c)
	s := newTestSinkSenders(t, c, t.TempDir(), 5000, senders)
	recs := testFlows(1, 23456, time.Now())
	for i := 0; i < len(recs); i += 1000 {
		s.Flows(recs[i:min(i+1000, len(recs))])
	}
	if err := s.Close(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	want := sum(recs)
	for _, table := range TableNames() {
		if got := tableTotals(t, c, table); got != want {
			t.Errorf("%s: totals %+v, want %+v", table, got, want)
		}
	}
	st := s.Stats()
	if st.Rows != want.flows || st.Batches != 5 || st.Errors != 0 {
		t.Errorf("stats %+v: want %d rows in 5 batches, no errors", st, want.flows)
	}
}

func TestSinkRowsReadBack(t *testing.T) {
	srv := chtest.Start(t)
	c, _ := NewClient(srv.URL("fs"))
	initSchema(t, c)
	s := newTestSink(t, c, t.TempDir(), 1000)
	recs := testFlows(2, 300, time.Now())
	s.Flows(recs)
	s.Close(30 * time.Second)
	var got []flow.Record
	err := c.QueryStream(context.Background(), "SELECT "+RawColumnList()+" FROM fs.flows FORMAT RowBinary", func(r *bufio.Reader) error {
		buf := make([]byte, RowSize)
		for {
			if _, err := io.ReadFull(r, buf); err != nil {
				return nil
			}
			var rec flow.Record
			if _, err := DecodeRow(buf, &rec); err != nil {
				return err
			}
			got = append(got, rec)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("read back %d rows, want %d", len(got), len(recs))
	}
	want := map[[2]netip.Addr]totals{}
	for _, r := range recs {
		k := [2]netip.Addr{r.SrcAddr, r.DstAddr}
		w := want[k]
		w.bytes += r.Bytes
		w.flows++
		want[k] = w
	}
	for _, r := range got {
		k := [2]netip.Addr{r.SrcAddr, r.DstAddr}
		w := want[k]
		w.bytes -= r.Bytes
		w.flows--
		want[k] = w
	}
	for k, w := range want {
		if w != (totals{}) {
			t.Errorf("pair %v: difference %+v after reading back", k, w)
		}
	}
}

// TestSinkExactlyOnceAcrossOutage stops the server (SIGKILL) during
// collection, keeps sending flows, closes the sink while the server is
// still down, and starts a new sink after the server is back: every flow
// must arrive exactly once.
func TestSinkExactlyOnceAcrossOutage(t *testing.T) {
	srv := chtest.Start(t)
	c, _ := NewClient(srv.URL("fs"))
	initSchema(t, c)
	spool := t.TempDir()
	s := newTestSink(t, c, spool, 2000)
	recs := testFlows(3, 40000, time.Now())
	feed := func(part []flow.Record) {
		for i := 0; i < len(part); i += 500 {
			s.Flows(part[i:min(i+500, len(part))])
			time.Sleep(2 * time.Millisecond)
		}
	}
	feed(recs[:10000])
	srv.Stop()
	feed(recs[10000:25000])
	// The server is down: close; unsent batches go to the spool.
	s.Close(time.Second)
	ents, _ := filepath.Glob(filepath.Join(spool, "*"+spoolSuffix))
	if len(ents) == 0 {
		t.Fatal("nothing spooled while the server was down")
	}
	srv.Restart()
	s = newTestSink(t, c, spool, 2000)
	feed(recs[25000:])
	if err := s.Close(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.SpoolBatches != 0 {
		t.Errorf("spool not empty after the server came back: %+v", st)
	}
	want := sum(recs)
	for _, table := range TableNames() {
		if got := tableTotals(t, c, table); got != want {
			t.Errorf("%s: totals %+v, want %+v (lost or doubled flows)", table, got, want)
		}
	}
	// Batch ids are unique: no id appears in more rows than a batch holds.
	rows, err := c.QueryRows(context.Background(), "SELECT max(n) FROM (SELECT batch_id, count() AS n FROM fs.flows GROUP BY batch_id)")
	if err != nil {
		t.Fatal(err)
	}
	var most int
	fmt.Sscan(rows[0][0], &most)
	if most > 2000 {
		t.Errorf("a batch id holds %s rows, more than one batch", rows[0][0])
	}
}

// TestSinkDoesNotResendInsertedBatch simulates an INSERT whose answer was
// lost: the batch is in the table but marked attempted in the spool.
func TestSinkDoesNotResendInsertedBatch(t *testing.T) {
	srv := chtest.Start(t)
	for _, rowBinary := range []bool{false, true} {
		t.Run(formatName(rowBinary), func(t *testing.T) {
			c, _ := NewClient(srv.URL("fs" + formatName(rowBinary)))
			initSchema(t, c)
			spool := t.TempDir()
			sp, err := openSpool(spool)
			if err != nil {
				t.Fatal(err)
			}
			recs := testFlows(4, 1000, time.Now())
			b := testBatch(uint64(sp.collectorID)<<seqBits|7, recs, rowBinary, true)
			if err := c.Insert(context.Background(), c.Database+".flows", RawColumnList(), b.format(), b.data); err != nil {
				t.Fatal(err)
			}
			if _, err := sp.put(b); err != nil {
				t.Fatal(err)
			}
			// A second attempted batch that never reached the server.
			sp.put(testBatch(b.id+1, recs, rowBinary, true))
			s := newTestSink(t, c, spool, 1000)
			s.Close(30 * time.Second)
			want := sum(recs)
			want.flows, want.packets, want.bytes = 2*want.flows, 2*want.packets, 2*want.bytes
			if got := tableTotals(t, c, "flows"); got != want {
				t.Errorf("totals %+v, want %+v (batch 7 once, batch 8 once)", got, want)
			}
			if st := s.Stats(); st.AlreadyThere != 1 || st.Batches != 2 {
				t.Errorf("stats %+v: want one batch found already inserted, two done", st)
			}
		})
	}
}

func TestBatchIDsNotReusedAfterRestart(t *testing.T) {
	dir := t.TempDir()
	sp, err := openSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.reserve(100); err != nil {
		t.Fatal(err)
	}
	sp2, err := openSpool(dir)
	if err != nil {
		t.Fatal(err)
	}
	if sp2.collectorID != sp.collectorID || sp2.reserved != 100 {
		t.Errorf("reopened spool: id %d reserved %d, want id %d reserved 100", sp2.collectorID, sp2.reserved, sp.collectorID)
	}
}

// TestRebuildRepairsViews: consolidated tables made wrong (rows missing
// and rows doubled) are recomputed from the raw table.
func TestRebuildRepairsViews(t *testing.T) {
	srv := chtest.Start(t)
	c, _ := NewClient(srv.URL("fs"))
	initSchema(t, c)
	now := time.Now()
	recs := testFlows(5, 5000, now.Add(-2*time.Hour))
	var rows []byte
	for i := range recs {
		rows = AppendRow(rows, &recs[i], 1)
	}
	ctx := context.Background()
	if err := c.Insert(ctx, "fs.flows", RawColumnList(), "RowBinary", rows); err != nil {
		t.Fatal(err)
	}
	// Damage: flows_5m gets the first 1000 flows twice, flows_1m loses everything.
	if err := c.Exec(ctx, "INSERT INTO fs.flows_5m SELECT * FROM fs.flows_5m LIMIT 1000"); err != nil {
		t.Fatal(err)
	}
	if err := c.Exec(ctx, "ALTER TABLE fs.flows_1m DELETE WHERE 1"); err != nil {
		t.Fatal(err)
	}
	waitMutations(ctx, c, "fs", "flows_1m")
	want := sum(recs)
	if tableTotals(t, c, "flows_1m") == want {
		t.Fatal("damage did not take")
	}
	got, err := (&Schema{Database: "fs"}).Rebuild(ctx, c, now.Add(-5*time.Hour), now, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range TableNames() {
		if tt := tableTotals(t, c, table); tt != want {
			t.Errorf("%s after rebuild: %+v, want %+v", table, tt, want)
		}
	}
	if got["flows_1h"] != want.flows {
		t.Errorf("rebuild reports %v, want %d flows in each table", got, want.flows)
	}
	if _, err := (&Schema{Database: "fs"}).Rebuild(ctx, c, now.Add(-30*24*time.Hour), now, now); err == nil {
		t.Error("rebuild past the raw table's retention accepted")
	}
}

// addSlowView adds to database fs a view of the raw table, named to run
// before the others, that takes 3 s a block: INSERTs then outlive a short
// client timeout.
func addSlowView(t *testing.T, c *Client) {
	t.Helper()
	for _, stmt := range []string{
		"CREATE TABLE fs.slow (n UInt8) ENGINE = Null",
		"CREATE MATERIALIZED VIEW fs.flows_0slow_mv TO fs.slow AS SELECT sleep(3) AS n FROM fs.flows",
	} {
		if err := c.Exec(context.Background(), stmt); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSinkSlowInsertNotRepairedTwice: an INSERT the client gave up on
// (timeout) goes on on the server, its views after its raw part. The
// retry must wait for it and then neither send the batch again nor
// "repair" views that were only late.
func TestSinkSlowInsertNotRepairedTwice(t *testing.T) {
	srv := chtest.Start(t)
	c, _ := NewClient(srv.URL("fs"))
	initSchema(t, c)
	addSlowView(t, c)
	s, err := NewSink(SinkConfig{Shards: []*Client{c}, Schema: &Schema{Database: "fs"}, SpoolDir: t.TempDir(),
		BatchRows: 5000, FlushInterval: 100 * time.Millisecond, Timeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	recs := testFlows(7, 5000, time.Now())
	s.Flows(recs)
	s.Close(60 * time.Second)
	want := sum(recs)
	for _, table := range TableNames() {
		if got := tableTotals(t, c, table); got != want {
			t.Errorf("%s: %+v, want %+v", table, got, want)
		}
	}
	if st := s.Stats(); st.RepairedViews != 0 || st.Errors == 0 {
		t.Errorf("stats %+v: want the timeout counted and no view repaired", st)
	}
}

// TestSinkBlockingProducerLosesNothing: a producer faster than the server
// (loading files) waits for room instead of filling a small spool and
// dropping batches.
func TestSinkBlockingProducerLosesNothing(t *testing.T) {
	srv := chtest.Start(t)
	c, _ := NewClient(srv.URL("fs"))
	initSchema(t, c)
	s, err := NewSink(SinkConfig{Shards: []*Client{c}, Schema: &Schema{Database: "fs"}, SpoolDir: t.TempDir(),
		BatchRows: 10000, MemoryBatches: 2, SpoolMax: 1 << 20, Block: true,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	recs := testFlows(8, 4096, time.Now())
	var want totals
	for range 60 {
		s.Flows(recs)
		w := sum(recs)
		want.flows, want.packets, want.bytes = want.flows+w.flows, want.packets+w.packets, want.bytes+w.bytes
	}
	s.Close(2 * time.Minute)
	if st := s.Stats(); st.Dropped != 0 || st.Spooled != 0 {
		t.Errorf("stats %+v: a blocking producer must neither drop nor spool while the server is up", st)
	}
	if got := tableTotals(t, c, "flows"); got != want {
		t.Errorf("flows %+v, want %+v", got, want)
	}
}

// TestSinkPartialBatchAndMovedShard: an attempted batch is found on
// another shard than its id now picks (the shard list changed), with one
// of its two days missing (a crash between the parts): only the missing
// day is sent, to that shard, and nothing twice.
func TestSinkPartialBatchAndMovedShard(t *testing.T) {
	srvs := chtest.StartCluster(t, "", 2)
	for _, rowBinary := range []bool{false, true} {
		t.Run(formatName(rowBinary), func(t *testing.T) {
			testSinkPartialBatchAndMovedShard(t, srvs, rowBinary)
		})
	}
}

func testSinkPartialBatchAndMovedShard(t *testing.T, srvs []*chtest.Server, rowBinary bool) {
	db := "fs" + formatName(rowBinary)
	var clients []*Client
	for _, srv := range srvs {
		c, _ := NewClient(srv.URL(db))
		initSchema(t, c)
		clients = append(clients, c)
	}
	spool := t.TempDir()
	sp, err := openSpool(spool)
	if err != nil {
		t.Fatal(err)
	}
	midnight := time.Now().UTC().Truncate(24 * time.Hour)
	yesterday := testFlows(11, 300, midnight.Add(-time.Second)) // ends in the hour before midnight
	today := testFlows(12, 200, midnight.Add(90*time.Minute))   // ends after midnight
	all := append(append([]flow.Record{}, yesterday...), today...)
	b := testBatch(uint64(sp.collectorID)<<seqBits|40, all, rowBinary, true)
	// The earlier attempt stored yesterday's part on the shard that is
	// listed second now.
	first := testBatch(b.id, yesterday, rowBinary, true)
	if err := clients[1].Insert(context.Background(), db+".flows", RawColumnList(), first.format(), first.data); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.put(b); err != nil {
		t.Fatal(err)
	}
	s, err := NewSink(SinkConfig{Shards: clients, Schema: &Schema{Database: db}, SpoolDir: spool,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	if err != nil {
		t.Fatal(err)
	}
	s.Close(30 * time.Second)
	if got, want := tableTotals(t, clients[1], "flows"), sum(all); got != want {
		t.Errorf("shard holding the batch: %+v, want %+v", got, want)
	}
	if got := tableTotals(t, clients[0], "flows"); got.flows != 0 {
		t.Errorf("the other shard got %d flows of the batch", got.flows)
	}
	for _, table := range TableNames() {
		if got, want := tableTotals(t, clients[1], table), sum(all); got != want {
			t.Errorf("%s: %+v, want %+v", table, got, want)
		}
	}
}

// TestSinkSetsAsideRefusedBatches: batches the server refuses every time
// (here: the raw table was dropped behind the sink's back) are set aside
// in dead/ after maxRefusals tries each, not retried forever and not
// lost.
func TestSinkSetsAsideRefusedBatches(t *testing.T) {
	old := maxRefusals
	maxRefusals = 2
	defer func() { maxRefusals = old }()
	srv := chtest.Start(t)
	c, _ := NewClient(srv.URL("fs"))
	initSchema(t, c)
	spool := t.TempDir()
	s := newTestSink(t, c, spool, 1000)
	if err := c.Exec(context.Background(), "RENAME TABLE fs.flows TO fs.flows_gone"); err != nil {
		t.Fatal(err)
	}
	s.Flows(testFlows(13, 2000, time.Now()))
	s.Close(60 * time.Second)
	dead, _ := filepath.Glob(filepath.Join(spool, "dead", "*"+spoolSuffix))
	if st := s.Stats(); st.DeadBatches != 2 || len(dead) != 2 || st.Dropped != 0 || st.SpoolBatches != 0 {
		t.Errorf("stats %+v, dead files %v: want both batches set aside, nothing dropped or left in the spool", st, dead)
	}
}
