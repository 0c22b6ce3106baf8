package query

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/flowfile"
	"github.com/flowscan/flowscan/internal/flowfile/flowtools"
)

// TestSelectRunMatchesMatch checks the run-at-a-time evaluation, chained
// and general, against Match record by record, on selections with gaps.
func TestSelectRunMatchesMatch(t *testing.T) {
	recs := variedFlows(700, testBase.UnixMilli())
	tests := []struct {
		expr  string
		chain bool
	}{
		{"proto tcp and dst port 443", true},
		{"tcp and not port 53 and bytes > 1000", true},
		{"not src net 10.0.1.0/24", true},
		{"port 443", true},
		{"port != 443", true},
		{"dst port in [53 80] and src as in [0 64500]", true},
		{"ipv6 and packets >= 10", true},
		{"ipv4 and flags S", true},
		{"tcp or udp", false},
		{"src port 443 or dst port 80 or proto icmp", false},
		{"(tcp and dst port 443) or (udp and dst port 53)", false},
		{"not (tcp and dst port 443)", false},
		{"(host 10.0.1.2 or net 2001:db8::/32) and not (bytes < 1K or duration > 4000)", false},
		{"bps > 10K or pps < 5 or bpp = 0", false},
		{"in if 2 or out if 7 and vlan 10", false},
		{"tos 0x20 or mask 24 or as 15169", false},
		{"exporter 10.0.0.0/16 or nexthop 2001:db8::/32", false},
	}
	rng := rand.New(rand.NewPCG(7, 8))
	var s runScratch
	for _, tt := range tests {
		f := MustCompile(tt.expr)
		if got := f.chainKeep != nil; got != tt.chain {
			t.Errorf("%q: chain %v, want %v", tt.expr, got, tt.chain)
		}
		for round := range 4 {
			var sel, want []int32
			for i := range recs {
				if round > 0 && rng.IntN(3) == 0 {
					continue
				}
				sel = append(sel, int32(i))
				if f.Match(&recs[i]) {
					want = append(want, int32(i))
				}
			}
			got := f.selectRun(recs, sel, &s)
			if len(got) != len(want) {
				t.Fatalf("%q round %d: %d records selected, want %d", tt.expr, round, len(got), len(want))
			}
			for j := range want {
				if got[j] != want[j] {
					t.Fatalf("%q round %d: selection %d is record %d, want %d", tt.expr, round, j, got[j], want[j])
				}
			}
		}
	}
}

// TestPackedKeysMatchMakeKey checks that packing a key and unpacking it
// gives makeKey's Key, for IPv4, IPv4-mapped and zero addresses, masks and
// every numeric field, and that IPv6 addresses are left to the general
// table.
func TestPackedKeysMatchMakeKey(t *testing.T) {
	recs := variedFlows(500, testBase.UnixMilli())
	recs[1].SrcAddr = netip.MustParseAddr("::ffff:192.0.2.7")
	recs[2].DstAddr = netip.MustParseAddr("::ffff:198.51.100.9")
	recs[3].SrcAddr = netip.Addr{}
	recs[4].SrcAddr = netip.MustParseAddr("255.255.255.255")
	recs[4].SrcAS, recs[4].DstAS = 1<<32-1, 1<<32-1
	specs := append([]string{"src_addr/24,dst_port", "dst_addr/16/64,proto", "src_as,dst_as", "src_addr,src_port,proto",
		"exporter/8,src_port,tos", "src_addr/1", "dst_addr/32"}, KeyFieldNames...)
	sel := make([]int32, len(recs))
	for i := range sel {
		sel[i] = int32(i)
	}
	for _, spec := range specs {
		keys, err := ParseKeys(spec)
		if err != nil {
			t.Fatal(err)
		}
		layout := packLayout(keys)
		if layout == nil {
			t.Fatalf("%s: does not pack", spec)
		}
		packed := make([]uint64, len(recs))
		skip := make([]bool, len(recs))
		packKeys(recs, sel, keys, layout, packed, skip)
		for i := range recs {
			r := &recs[i]
			want := makeKey(r, keys)
			v6 := false
			for _, kf := range keys {
				if a := addrField(r, kf.f); isAddrField(kf.f) && a.Is6() && !a.Is4In6() {
					v6 = true
				}
			}
			if skip[i] != v6 {
				t.Fatalf("%s: record %d skipped %v, want %v", spec, i, skip[i], v6)
			}
			if v6 {
				continue
			}
			if got := unpackKey(packed[i], keys, layout); got != want {
				t.Fatalf("%s: record %d: key %+v, want %+v", spec, i, got, want)
			}
		}
	}
	for _, spec := range []string{"src_addr,dst_addr", "src_as,dst_as,proto", "exporter,next_hop"} {
		keys, err := ParseKeys(spec)
		if err != nil {
			t.Fatal(err)
		}
		if packLayout(keys) != nil {
			t.Errorf("%s: packs into 64 bits", spec)
		}
	}
}

// TestPackedTable checks the packed table, hashed and direct, against a
// Go map across growth and merging.
func TestPackedTable(t *testing.T) {
	for _, direct := range []bool{false, true} {
		t.Run(fmt.Sprintf("direct=%v", direct), func(t *testing.T) { testPackedTable(t, direct) })
	}
}

func testPackedTable(t *testing.T, direct bool) {
	rng := rand.New(rand.NewPCG(5, 6))
	recs := make([]flow.Record, 1)
	sel := []int32{0}
	want := map[uint64]Counters{}
	a, b := newPackedTable(10), newPackedTable(10)
	if direct {
		a, b = newDirectTable(16), newDirectTable(16)
	}
	defer a.release()
	defer b.release()
	for i := range 200_000 {
		k := rng.Uint64N(uint64(1 + i/4))
		if direct {
			k &= 0xffff
		}
		if i%7 == 0 {
			k = 0 // the zero key is a key like any other
		}
		recs[0] = flow.Record{Packets: 1 + rng.Uint64N(9), Bytes: rng.Uint64N(1500), Start: rng.Int64N(1000), End: 1000 + rng.Int64N(1000)}
		c := want[k]
		c.Add(&recs[0])
		want[k] = c
		tbl := a
		if i%3 == 0 {
			tbl = b
		}
		tbl.add(recs, sel, []uint64{k}, make([]uint32, 1))
	}
	for k, c := range b.all() {
		a.merge(k, c)
	}
	if a.n != len(want) {
		t.Fatalf("%d keys, want %d", a.n, len(want))
	}
	for k, c := range a.all() {
		if *c != want[k] {
			t.Fatalf("key %d: %+v, want %+v", k, *c, want[k])
		}
	}
}

// TestSummaryWindow checks summaries (block headers for blocks inside the
// window, decoded flows for the blocks across its edges) against a count
// over the records, with and without a filter.
func TestSummaryWindow(t *testing.T) {
	base := testBase.UnixMilli()
	// Blocks of 4 records (16 blocks: fewer than the writer's queue
	// holds) written in time order: most lie inside a window, some across
	// its edges.
	recs := variedFlows(64, base)
	slices.SortFunc(recs, func(a, b flow.Record) int { return cmp.Compare(a.Start, b.Start) })
	dir := t.TempDir()
	writeArchive(t, dir, testBase.Add(11*time.Minute), recs)
	for _, w := range []struct{ from, to int64 }{{0, 0}, {100_000, 0}, {0, 300_001}, {123_457, 456_789}} {
		for _, expr := range []string{"", "proto tcp"} {
			f := MustCompile(expr)
			q := &Query{Dirs: []string{dir}, Filter: f, Workers: 2}
			if w.from != 0 {
				q.From = time.UnixMilli(base + w.from)
			}
			if w.to != 0 {
				q.To = time.UnixMilli(base + w.to)
			}
			from, to := q.window()
			var want Counters
			for i := range recs {
				if recs[i].Start >= from && recs[i].Start < to && f.Match(&recs[i]) {
					want.Add(&recs[i])
				}
			}
			got, err := q.Aggregate(context.Background(), AggregateSpec{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Total != want || want.Flows == 0 {
				t.Errorf("window %+v filter %q: %+v, want %+v", w, expr, got.Total, want)
			}
		}
	}
}

// TestMergeParts checks the parallel merge and ranking (parts of the key
// space merged and ranked on their own, then combined) against one
// reference aggregator, with enough groups to take the parallel path and
// IPv6 keys in the general tables.
func TestMergeParts(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	recs := make([]flow.Record, 40_000)
	for i := range recs {
		r := &recs[i]
		if rng.IntN(10) == 0 {
			r.SrcAddr = netip.AddrFrom16([16]byte{0x20, 0x01, 14: byte(rng.IntN(40)), 15: byte(rng.IntN(250))})
		} else {
			r.SrcAddr = netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256))})
		}
		r.DstPort = uint16(rng.IntN(3))
		r.Start = rng.Int64N(100_000)
		r.End = r.Start + rng.Int64N(10_000)
		r.Packets = 1 + rng.Uint64N(5)
		r.Bytes = r.Packets * (40 + rng.Uint64N(5)) // many ties
	}
	keys, err := ParseKeys("src_addr,dst_port")
	if err != nil {
		t.Fatal(err)
	}
	ref := newAggregator(keys)
	for i := range recs {
		ref.add(&recs[i])
	}
	orders, limits := []Order{ByFlows, ByBytes, ByBPS}, []int{0, 1, 10, 5000}
	wants := map[[2]int]*Result{}
	for _, order := range orders {
		for _, n := range limits {
			wants[[2]int{int(order), n}] = ref.topN(order, n)
		}
	}
	for _, workers := range []int{2, 3} {
		// The workers' aggregators, built anew for each merge (merging
		// takes their tables).
		build := func() ([]*aggregator, Counters) {
			aggs := make([]*aggregator, workers)
			for w := range aggs {
				aggs[w] = newAggregator(keys)
			}
			sel := make([]int32, 0, 1000)
			for lo := 0; lo < len(recs); lo += 1000 {
				sel = sel[:0]
				for i := range 1000 {
					sel = append(sel, int32(i))
				}
				aggs[(lo/1000)%workers].addBatch(recs[lo:lo+1000], sel)
			}
			var total Counters
			for _, a := range aggs {
				total.Merge(&a.total)
			}
			return aggs, total
		}
		for _, parts := range []int{1, 2, 3} {
			aggs, total := build()
			if aggs[0].groups() < minParallelGroups {
				t.Fatalf("%d groups per worker: too few for the parallel merge", aggs[0].groups())
			}
			merged := mergeParts(aggs, keys, parts)
			if parts > 1 && len(merged) != parts {
				t.Fatalf("%d parts, want %d", len(merged), parts)
			}
			for i, m := range merged {
				if m.groups() < ref.groups()/(2*parts) {
					t.Errorf("part %d of %d has %d of %d groups", i, parts, m.groups(), ref.groups())
				}
			}
			for _, order := range orders {
				for _, n := range limits {
					got := topParts(merged, keys, total, order, n)
					want := wants[[2]int{int(order), n}]
					if got.Groups != want.Groups || got.Total != want.Total || got.Other != want.Other || len(got.Rows) != len(want.Rows) {
						t.Fatalf("workers %d parts %d order %v n %d: %d groups, other %+v, %d rows; want %d, %+v, %d",
							workers, parts, order, n, got.Groups, got.Other, len(got.Rows), want.Groups, want.Other, len(want.Rows))
					}
					for i := range want.Rows {
						if got.Rows[i] != want.Rows[i] {
							t.Fatalf("workers %d parts %d order %v n %d: row %d %+v, want %+v", workers, parts, order, n, i, got.Rows[i], want.Rows[i])
						}
					}
				}
			}
			for _, a := range append(merged, aggs...) {
				a.release()
			}
		}
	}
}

// TestTopPartsOtherSpan checks that a part's top group that is not among
// the overall top still counts in the other groups' time span.
func TestTopPartsOtherSpan(t *testing.T) {
	keys, err := ParseKeys("dst_port")
	if err != nil {
		t.Fatal(err)
	}
	mk := func(port uint16, bytes uint64, start, end int64) *flow.Record {
		return &flow.Record{DstPort: port, Bytes: bytes, Packets: 1, Start: start, End: end}
	}
	a, b := newAggregator(keys), newAggregator(keys)
	a.add(mk(1, 100, 0, 10_000))
	b.add(mk(2, 200, 5000, 6000))
	b.add(mk(3, 150, 5000, 6000))
	var total Counters
	total.Merge(&a.total)
	total.Merge(&b.total)
	got := topParts([]*aggregator{a, b}, keys, total, ByBytes, 1)
	if len(got.Rows) != 1 || got.Rows[0].Bytes != 200 {
		t.Fatalf("rows %+v, want port 2 alone", got.Rows)
	}
	want := Counters{Flows: 2, Packets: 2, Bytes: 250, First: 0, Last: 10_000}
	if got.Other != want {
		t.Fatalf("other %+v, want %+v", got.Other, want)
	}
}

// TestPlannedReaders checks queries over more files than plan keeps open
// for the workers (the others are opened again), and that every file is
// closed afterwards, whether a worker took its planned reader or not.
func TestPlannedReaders(t *testing.T) {
	defer func(n int) { maxPlannedReaders = n }(maxPlannedReaders)
	maxPlannedReaders = 2
	dir := t.TempDir()
	recs := variedFlows(40, testBase.UnixMilli())
	for f := range 5 {
		at := testBase.Add(time.Duration(f)*5*time.Minute + time.Minute)
		part := recs[8*f : 8*f+8]
		for i := range part {
			part[i].Start = at.UnixMilli() - 30_000 + int64(i)
			part[i].End = part[i].Start + 1000
		}
		writeArchive(t, dir, at, part)
	}
	openFiles := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd:", err)
		}
		return len(ents)
	}
	before := openFiles()
	for _, window := range []bool{false, true} {
		q := &Query{Dirs: []string{dir}, Workers: 2}
		var want Counters
		for i := range recs {
			want.Add(&recs[i])
		}
		if window { // the last two files only: their blocks, the others skipped
			q.From = time.UnixMilli(recs[24].Start)
			want = Counters{}
			for i := range recs[24:] {
				want.Add(&recs[24+i])
			}
		}
		res, err := q.Aggregate(context.Background(), AggregateSpec{Keys: []KeyField{{Name: "proto", f: fieldProto}}, Order: ByFlows})
		if err != nil {
			t.Fatal(err)
		}
		if res.Total != want {
			t.Errorf("window %v: total %+v, want %+v", window, res.Total, want)
		}
		n := 0
		if err := q.Flows(context.Background(), func(batch []flow.Record) error { n += len(batch); return nil }); err != nil {
			t.Fatal(err)
		}
		if uint64(n) != want.Flows {
			t.Errorf("window %v: %d flows listed, want %d", window, n, want.Flows)
		}
		if _, _, _, err := q.Plan(); err != nil {
			t.Fatal(err)
		}
	}
	// A listing stopped after its first batch leaves planned readers
	// that no worker took.
	maxPlannedReaders = 5
	stop := errors.New("enough")
	q := &Query{Dirs: []string{dir}, Workers: 1}
	if err := q.Flows(context.Background(), func([]flow.Record) error { return stop }); err != stop {
		t.Fatalf("Flows returned %v, want the callback's error", err)
	}
	if after := openFiles(); after != before {
		t.Errorf("%d open files after the queries, %d before", after, before)
	}
}

// TestListDir checks the one-walk listing against flowfile.List and
// flowtools.List on a nested tree with both kinds, files in progress and
// other files.
func TestListDir(t *testing.T) {
	dir := t.TempDir()
	names := []string{
		"flows.2026-11-23.124500+0000.fsf", "2026/2026-11/flows.2026-11-22.000000+0000.fsf",
		"2026/flows.2026-11-23.120000+0100.fsf", "flows.2026-11-23.125000+0000.fsf.tmp",
		"ft-v05.2026-11-23.124500+0100", "2026/2026-11/ft-v05.2026-11-21.000000+0000",
		"counters/sflow.2026-11-23.json", "notes.txt",
	}
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	native, ft, err := listDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	wantNative, err := flowfile.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	wantFT, err := flowtools.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	same := func(a, b flowfile.Entry) bool { return a.Path == b.Path && a.Start.Equal(b.Start) }
	if len(native) != 3 || len(ft) != 2 || !slices.EqualFunc(native, wantNative, same) || !slices.EqualFunc(ft, wantFT, same) {
		t.Fatalf("listed %v and %v, want %v and %v", native, ft, wantNative, wantFT)
	}
	if _, _, err := listDir(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing directory listed without error")
	}
}

// BenchmarkSelectRun evaluates filters a run of scanRecords records at a
// time (chained and general programs), as the workers do.
func BenchmarkSelectRun(b *testing.B) {
	recs := variedFlows(scanRecords, testBase.UnixMilli())
	for _, expr := range []string{
		"proto tcp and dst port 443",
		"net 10.0.0.0/8 and not dst port in [22 53 80 443] and bytes > 1M",
		"(src host 10.0.1.2 or dst net 2001:db8::/32) and bps > 10K",
	} {
		b.Run(expr, func(b *testing.B) {
			f := MustCompile(expr)
			var s runScratch
			sel := make([]int32, len(recs))
			b.ReportAllocs()
			for b.Loop() {
				for i := range sel {
					sel[i] = int32(i)
				}
				f.selectRun(recs, sel, &s)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(recs)), "ns/flow")
		})
	}
}
