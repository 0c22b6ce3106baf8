package clickhouse

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/clickhouse/chtest"
	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/gen"
)

// BenchmarkAppendRow is RowBinary's encoding (the sink's before Native),
// into a buffer small enough for the caches or of a default batch.
func BenchmarkAppendRow(b *testing.B) {
	for _, rows := range []int{1024, 262144} {
		b.Run(fmt.Sprintf("batch=%d", rows), func(b *testing.B) {
			recs := testFlows(9, 1024, time.Now())
			buf := make([]byte, 0, rows*RowSize)
			b.SetBytes(RowSize)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if i%rows == 0 {
					buf = buf[:0]
				}
				buf = AppendRow(buf, &recs[i%len(recs)], 1)
			}
		})
	}
}

// BenchmarkNativeAdd is the collector's cost per flow of the sink's
// encoding: one row into the Native columns of a batch, small enough for
// the caches or of the default size (262144 rows, 40 MB).
func BenchmarkNativeAdd(b *testing.B) {
	for _, rows := range []int{1024, 262144} {
		b.Run(fmt.Sprintf("batch=%d", rows), func(b *testing.B) {
			recs := testFlows(9, 1024, time.Now())
			var nb nativeBuilder
			nb.reset(make([]byte, nativeSize(rows)), rows)
			b.SetBytes(RowSize)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if nb.full() {
					nb.rows = 0
				}
				nb.add(&recs[i%len(recs)], 1)
			}
		})
	}
}

// BenchmarkSinkIntoClickHouse feeds flows to a Sink as the collector's
// pipeline would and waits until a local server has them all: the
// flows/s it reports is the sink's sustained insert rate (both on the
// same two cores, the server included).
func BenchmarkSinkIntoClickHouse(b *testing.B) {
	srv := chtest.Start(b)
	for _, senders := range []int{1, 2} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			db := fmt.Sprintf("bench%d", senders)
			c, _ := NewClient(srv.URL(db))
			if _, err := (&Schema{Database: db}).Migrate(context.Background(), c); err != nil {
				b.Fatal(err)
			}
			recs := testFlows(10, 4096, time.Now())
			s, err := NewSink(SinkConfig{Shards: []*Client{c}, SpoolDir: b.TempDir(), Schema: &Schema{Database: db},
				SendersPerShard: senders, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			start := time.Now()
			n := 0
			for n < b.N {
				k := min(1024, b.N-n)
				off := n % len(recs)
				k = min(k, len(recs)-off)
				s.Flows(recs[off : off+k])
				n += k
			}
			s.Close(10 * time.Minute)
			el := time.Since(start)
			st := s.Stats()
			if st.Rows != uint64(b.N) {
				b.Fatalf("inserted %d of %d flows (stats %+v)", st.Rows, b.N, st)
			}
			b.ReportMetric(float64(b.N)/el.Seconds(), "flows/s")
		})
	}
}

// BenchmarkServerCPU inserts batches of 262144 flows of `flowscan gen`'s
// traffic model (one exporter, flows ending over the last minute) into
// a local server with the full schema and reports the server's CPU per
// flow, background merges included (it waits for the server to go idle
// after the last batch): RowBinary as flowscan sent before, Native, and
// Native in the raw table's order as the sink sends now. Run with
// -benchtime 16x (one batch per iteration).
func BenchmarkServerCPU(b *testing.B) {
	srv := chtest.Start(b)
	for _, variant := range []string{"RowBinary", "Native", "Native-ordered"} {
		b.Run(variant, func(b *testing.B) {
			db := "cpu_" + strings.ReplaceAll(variant, "-", "_")
			c, _ := NewClient(srv.URL(db))
			if _, err := (&Schema{Database: db}).Migrate(context.Background(), c); err != nil {
				b.Fatal(err)
			}
			const rows = 262144
			mix := gen.NewMix(1, gen.MixOptions{IPv6Share: 0.1})
			exporter := netip.MustParseAddr("192.0.2.1")
			recs := make([]flow.Record, rows)
			now := time.Now()
			var order rawOrder
			buf := make([]byte, nativeSize(rows))
			srv.WaitIdle(time.Minute)
			cpu0, _ := srv.CPU()
			n := 0
			for b.Loop() {
				for i := range recs {
					mix.Next(&recs[i], now.Add(time.Duration(n)*time.Microsecond)) // 1 M flows/s
					recs[i].Exporter = exporter
					n++
				}
				bt := testBatch(uint64(n), recs, variant == "RowBinary", false)
				if variant == "Native-ordered" {
					bt.build.buf = buf
					order.order(bt, rows)
					buf = bt.build.buf
				}
				if err := c.Insert(context.Background(), db+".flows", RawColumnList(), bt.format(), bt.data); err != nil {
					b.Fatal(err)
				}
			}
			srv.WaitIdle(2 * time.Minute)
			cpu1, _ := srv.CPU()
			b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(n), "server-ns/flow")
		})
	}
}
