package web

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/flowfile"
	flowquery "github.com/flowscan/flowscan/internal/query"
)

// benchFlowCount is the size of the explorer benchmarks' archive.
const benchFlowCount = 200_000

// benchExplorer writes benchFlowCount flows (about 20 000 sources, 50
// ports, over the window's first 50 minutes) into ten files and returns
// a server over them.
func benchExplorer(b *testing.B) (*Server, string) {
	b.Helper()
	dir := b.TempDir()
	flowDir := filepath.Join(dir, "flows")
	x := uint64(1)
	next := func() uint64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x }
	per := benchFlowCount / 10
	for f := range 10 {
		recs := make([]flow.Record, per)
		for i := range recs {
			v := next()
			start := explorerBase.Add(time.Duration(f)*5*time.Minute + time.Duration(i)*time.Millisecond).UnixMilli()
			recs[i] = flow.Record{Exporter: netip.MustParseAddr("192.0.2.1"),
				SrcAddr: netip.AddrFrom4([4]byte{10, byte(v >> 8 % 80), byte(v >> 16), byte(v >> 24)}),
				DstAddr: netip.AddrFrom4([4]byte{192, 0, 2, byte(v >> 32)}), SrcPort: uint16(v >> 40), DstPort: uint16(v>>48%50) + 1,
				Proto: []uint8{6, 17}[v>>60&1], Bytes: v>>20%100000 + 40, Packets: v>>36%100 + 1, Start: start, End: start + 1000, SamplingRate: 1}
		}
		at := explorerBase.Add(time.Duration(f+1) * 5 * time.Minute)
		w, err := flowfile.NewWriter(flowfile.Config{Dir: flowDir, Location: time.UTC, Logger: quiet, Now: func() time.Time { return at }})
		if err != nil {
			b.Fatal(err)
		}
		if err := w.Write(recs); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	s, err := New(Config{RRDDir: filepath.Join(dir, "rrd"), FlowDir: flowDir, Logger: quiet,
		Now: func() time.Time { return explorerBase.Add(time.Hour) }})
	if err != nil {
		b.Fatal(err)
	}
	return s, flowDir
}

// BenchmarkFlowsAPI answers /api/v1/flows on benchFlowCount flows; the
// engine sub-benchmark runs the same top 10 through internal/query alone,
// so the ratio is the handler's overhead.
func BenchmarkFlowsAPI(b *testing.B) {
	s, flowDir := benchExplorer(b)
	h := s.Handler()
	for _, bc := range []struct{ name, query string }{
		{"top10-src", "by=src_addr&top=10"},
		{"top1000-src-tcp", "by=src_addr&top=1000&filter=proto+tcp"},
		{"top10-dstport-flows", "by=dst_port&order=flows"},
		{"list1000-port7", "list=1000&filter=dst+port+7"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/flows?"+explorerWindow()+"&"+bc.query, nil))
				if w.Code != 200 {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
			b.ReportMetric(float64(benchFlowCount)*float64(b.N)/b.Elapsed().Seconds(), "flows/s")
		})
	}
	b.Run("engine-top10-src", func(b *testing.B) {
		b.ReportAllocs()
		keys, err := flowquery.ParseKeys("src_addr")
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			q := &flowquery.Query{Dirs: []string{flowDir}, From: explorerBase, To: explorerBase.Add(time.Hour), Workers: runtime.GOMAXPROCS(0)}
			if _, err := q.Aggregate(context.Background(), flowquery.AggregateSpec{Keys: keys, Order: flowquery.ByBytes, Limit: 10}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(benchFlowCount)*float64(b.N)/b.Elapsed().Seconds(), "flows/s")
	})
}
