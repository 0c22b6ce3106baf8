package query

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
)

func TestFieldColumns(t *testing.T) {
	for f := fieldSrcAddr; f <= fieldBPP; f++ {
		if int(f) >= len(fieldColumns) || fieldColumns[f] == 0 {
			t.Errorf("field %d has no flow file columns", f)
		}
	}
}

// variedFlows returns n flows whose every field takes a few values, so
// that filters on any field select some of them.
func variedFlows(n int, base int64) []flow.Record {
	rng := rand.New(rand.NewPCG(3, 4))
	pick := func(vals ...uint64) uint64 { return vals[rng.IntN(len(vals))] }
	addr := func() netip.Addr {
		switch rng.IntN(6) {
		case 0:
			return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(rng.IntN(4))})
		case 1:
			return netip.Addr{}
		}
		return netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(3)), byte(rng.IntN(5))})
	}
	recs := make([]flow.Record, n)
	for i := range recs {
		start := base + rng.Int64N(600_000)
		recs[i] = flow.Record{
			Exporter: addr(), SrcAddr: addr(), DstAddr: addr(), NextHop: addr(),
			Start: start, End: start + rng.Int64N(5000),
			Bytes: 40 + rng.Uint64N(20000), Packets: 1 + rng.Uint64N(30),
			InIf: uint32(pick(1, 2, 3)), OutIf: uint32(pick(1, 2, 7)), SrcAS: uint32(pick(0, 64500, 15169)),
			DstAS: uint32(pick(0, 64500, 15169)), SrcPort: uint16(pick(53, 443, 40000)),
			DstPort: uint16(pick(53, 80, 443)), SrcVLAN: uint16(pick(0, 10)), DstVLAN: uint16(pick(0, 20)),
			Proto: uint8(pick(1, 6, 17)), TOS: uint8(pick(0, 0x20)), TCPFlags: uint8(pick(0x02, 0x12, 0x1b)),
			SrcMask: uint8(pick(16, 24)), DstMask: uint8(pick(8, 24)), Domain: 5, SamplingRate: 1,
		}
	}
	return recs
}

// TestAggregateMatchesInMemory checks that aggregations, which decode only
// the columns they need, count exactly what the filter and keys give on
// the complete records.
func TestAggregateMatchesInMemory(t *testing.T) {
	base := testBase.UnixMilli()
	recs := variedFlows(3000, base)
	dir := t.TempDir()
	writeArchive(t, dir, testBase.Add(11*time.Minute), recs)
	filters := []string{
		"", "src host 10.0.1.2", "dst net 10.0.2.0/24", "exporter 10.0.0.0/16", "nexthop 2001:db8::/32",
		"src port 443", "dst port in [53 80]", "proto tcp", "tos 0x20", "flags SA", "in if 2", "out if 7",
		"src as 64500", "dst as 15169", "src mask 24", "dst mask 8", "src vlan 10", "dst vlan 20",
		"bytes > 10K", "packets < 5", "duration > 2500", "bps > 50K", "pps < 20", "bpp > 1000",
		"ipv6", "ipv4 and not proto udp",
	}
	for _, expr := range filters {
		f := MustCompile(expr)
		for _, name := range append(KeyFieldNames, "", "src_addr/24,dst_port", "dst_addr/16/64,proto") {
			t.Run(fmt.Sprintf("%s/%s", expr, name), func(t *testing.T) {
				var keys []KeyField
				if name != "" {
					var err error
					if keys, err = ParseKeys(name); err != nil {
						t.Fatal(err)
					}
				}
				want := newAggregator(keys)
				for i := range recs {
					if f.Match(&recs[i]) {
						want.add(&recs[i])
					}
				}
				q := &Query{Dirs: []string{dir}, Filter: f, Workers: 2}
				got, err := q.Aggregate(context.Background(), AggregateSpec{Keys: keys, Order: ByBytes})
				if err != nil {
					t.Fatal(err)
				}
				wantRes := want.topN(ByBytes, 0)
				if got.Total != wantRes.Total || got.Groups != wantRes.Groups {
					t.Fatalf("total %+v in %d groups, want %+v in %d", got.Total, got.Groups, wantRes.Total, wantRes.Groups)
				}
				if wantRes.Total.Flows == 0 && expr != "" {
					t.Fatalf("filter %q matches none of the test flows", expr)
				}
				for i := range wantRes.Rows {
					if got.Rows[i] != wantRes.Rows[i] {
						t.Fatalf("row %d: %+v, want %+v", i, got.Rows[i], wantRes.Rows[i])
					}
				}
			})
		}
	}
}
