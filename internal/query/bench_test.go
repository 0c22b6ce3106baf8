package query

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/gen"
)

const benchFlows = 200_000

// benchArchive writes benchFlows flows of the generator's traffic mix
// (as `flowscan gen --format v5` sends) into a flow file under dir.
func benchArchive(b *testing.B, dir string) {
	mix := gen.NewMix(1, gen.MixOptions{})
	exporter := netip.MustParseAddr("127.0.0.1")
	recs := make([]flow.Record, benchFlows)
	for i := range recs {
		mix.Next(&recs[i], testBase)
		recs[i].Exporter = exporter
	}
	writeArchive(b, dir, testBase.Add(time.Minute), recs)
}

// BenchmarkAggregate runs the queries of scripts/bench-query.sh.
func BenchmarkAggregate(b *testing.B) {
	dir := b.TempDir()
	benchArchive(b, dir)
	benches := []struct {
		name, filter, keys string
		order              Order
	}{
		{"top_src_addr_bytes", "", "src_addr", ByBytes},
		{"summary_tcp_443", "proto tcp and dst port 443", "", ByFlows},
		{"top_dst_port_udp", "proto udp", "dst_port", ByFlows},
		{"top_src24_packets_bytes10K", "bytes > 10K", "src_addr/24", ByPackets},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			spec := AggregateSpec{Order: bb.order, Limit: 10}
			if bb.keys != "" {
				keys, err := ParseKeys(bb.keys)
				if err != nil {
					b.Fatal(err)
				}
				spec.Keys = keys
			}
			f := MustCompile(bb.filter)
			b.ReportAllocs()
			for b.Loop() {
				q := &Query{Dirs: []string{dir}, Filter: f}
				res, err := q.Aggregate(context.Background(), spec)
				if err != nil {
					b.Fatal(err)
				}
				if res.Total.Flows == 0 && bb.filter == "" {
					b.Fatal("no flows")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchFlows, "ns/flow")
		})
	}
}

// BenchmarkPackedTable counts the generator's flows by source address in
// a packed table, in runs of scanRecords as the engine does (no decoding;
// the counters are read from one run of records, in the cache as a freshly
// decoded run is).
func BenchmarkPackedTable(b *testing.B) {
	mix := gen.NewMix(1, gen.MixOptions{})
	recs := make([]flow.Record, benchFlows)
	for i := range recs {
		mix.Next(&recs[i], testBase)
	}
	keys, err := ParseKeys("src_addr")
	if err != nil {
		b.Fatal(err)
	}
	layout := packLayout(keys)
	sel := make([]int32, scanRecords)
	for i := range sel {
		sel[i] = int32(i)
	}
	packed := make([]uint64, len(recs))
	skip := make([]bool, len(recs))
	homes := make([]uint32, scanRecords)
	for lo := 0; lo < len(recs); lo += scanRecords {
		n := min(scanRecords, len(recs)-lo)
		packKeys(recs[lo:lo+n], sel[:n], keys, layout, packed[lo:lo+n], skip[lo:lo+n])
	}
	b.ReportAllocs()
	for b.Loop() {
		t := newPackedTable(10)
		for lo := 0; lo < len(recs); lo += scanRecords {
			n := min(scanRecords, len(recs)-lo)
			t.add(recs[:n], sel[:n], packed[lo:lo+n], homes)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchFlows, "ns/flow")
}
