package query

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/flowfile"
	"github.com/flowscan/flowscan/internal/flowfile/flowtools"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// writeArchive writes recs into one completed flow file under dir whose
// clock is at, with small blocks so that block skipping is exercised.
func writeArchive(t testing.TB, dir string, at time.Time, recs []flow.Record) {
	t.Helper()
	block := 4
	if len(recs) > 1000 {
		block = 0 // the default
	}
	w, err := flowfile.NewWriter(flowfile.Config{Dir: dir, Location: time.UTC, BlockRecords: block, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(recs); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// handFlows are 10 flows from 3 sources, hand-counted in the tests below.
func handFlows(base int64) []flow.Record {
	mk := func(src string, dport uint16, proto uint8, bytes, pkts uint64, startSec int64) flow.Record {
		return flow.Record{Exporter: netip.MustParseAddr("127.0.0.1"), SrcAddr: netip.MustParseAddr(src),
			DstAddr: netip.MustParseAddr("192.0.2.1"), SrcPort: 50000, DstPort: dport, Proto: proto,
			Bytes: bytes, Packets: pkts, Start: base + startSec*1000, End: base + startSec*1000 + 1000}
	}
	return []flow.Record{
		mk("10.0.0.1", 443, 6, 1000, 10, 0),
		mk("10.0.0.1", 443, 6, 2000, 20, 10),
		mk("10.0.0.1", 80, 6, 500, 5, 20),
		mk("10.0.0.2", 443, 6, 4000, 4, 30),
		mk("10.0.0.2", 53, 17, 100, 1, 40),
		mk("10.0.1.9", 443, 6, 50, 1, 50),
		mk("10.0.1.9", 443, 6, 50, 1, 60),
		mk("10.0.1.9", 443, 6, 50, 1, 70),
		mk("10.0.1.9", 123, 17, 76, 1, 80),
		mk("2001:db8::1", 443, 6, 300, 3, 90),
	}
}

var testBase = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestAggregateTopN(t *testing.T) {
	dir := t.TempDir()
	writeArchive(t, dir, testBase.Add(5*time.Minute), handFlows(testBase.UnixMilli()))
	ctx := context.Background()
	tests := []struct {
		name   string
		filter string
		keys   string
		order  Order
		limit  int
		want   [][2]uint64 // order value per row
		other  uint64      // other flows
		total  uint64      // total flows
		first  string      // first row key
	}{
		// bytes per source: .1 3500, .2 4100, 1.9 226, v6 300
		{"src bytes", "", "src_addr", ByBytes, 2, [][2]uint64{{4100}, {3500}}, 5, 10, "10.0.0.2"},
		// flows per source: 1.9 4, .1 3, .2 2, v6 1
		{"src flows", "", "src_addr", ByFlows, 3, [][2]uint64{{4}, {3}, {2}}, 1, 10, "10.0.1.9"},
		{"src/24 bytes", "", "src_addr/24", ByBytes, 0, [][2]uint64{{7600}, {300}, {226}}, 0, 10, "10.0.0.0/24"},
		{"dst_port packets tcp", "proto tcp", "dst_port", ByPackets, 5, [][2]uint64{{40}, {5}}, 0, 8, "443"},
		{"proto,dst_port flows", "", "proto,dst_port", ByFlows, 1, [][2]uint64{{7}}, 3, 10, "6"},
		{"bpp", "", "src_addr", ByBPP, 1, [][2]uint64{{820}}, 8, 10, "10.0.0.2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := ParseKeys(tc.keys)
			if err != nil {
				t.Fatal(err)
			}
			q := &Query{Dirs: []string{dir}, Filter: MustCompile(tc.filter), Workers: 3}
			res, err := q.Aggregate(ctx, AggregateSpec{Keys: keys, Order: tc.order, Limit: tc.limit})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Rows) != len(tc.want) {
				t.Fatalf("%d rows, want %d", len(res.Rows), len(tc.want))
			}
			for i, w := range tc.want {
				if got := tc.order.value(&res.Rows[i].Counters); got != w[0] {
					t.Errorf("row %d: %s %d, want %d", i, tc.order, got, w[0])
				}
			}
			if res.Other.Flows != tc.other || res.Total.Flows != tc.total {
				t.Errorf("other %d total %d flows, want %d and %d", res.Other.Flows, res.Total.Flows, tc.other, tc.total)
			}
			if got := string(res.Values(&res.Rows[0])[0].AppendText(nil, keys[0], false)); got != tc.first {
				t.Errorf("first key %q, want %q", got, tc.first)
			}
			var sum Counters
			for i := range res.Rows {
				sum.Merge(&res.Rows[i].Counters)
			}
			sum.Merge(&res.Other)
			if sum.Flows != res.Total.Flows || sum.Bytes != res.Total.Bytes || sum.Packets != res.Total.Packets {
				t.Errorf("rows+other %+v != total %+v", sum, res.Total)
			}
		})
	}
}

func TestGoldenOutput(t *testing.T) {
	dir := t.TempDir()
	writeArchive(t, dir, testBase.Add(5*time.Minute), handFlows(testBase.UnixMilli()))
	keys, _ := ParseKeys("src_addr")
	q := &Query{Dirs: []string{dir}}
	res, err := q.Aggregate(context.Background(), AggregateSpec{Keys: keys, Order: ByBytes, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"table", "csv", "json"} {
		var buf bytes.Buffer
		if err := WriteResult(&buf, res, OutputOptions{Format: format, Names: format == "table", Totals: true}); err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", "top3-src-bytes."+format)
		if *update {
			os.WriteFile(golden, buf.Bytes(), 0o644)
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("%s output:\n%s\nwant:\n%s", format, buf.Bytes(), want)
		}
	}
}

func TestFlowsWindowAndOrder(t *testing.T) {
	dir := t.TempDir()
	// Two files an hour apart, and a flow-tools file in between.
	first := handFlows(testBase.UnixMilli())
	second := handFlows(testBase.Add(time.Hour).UnixMilli())
	writeArchive(t, dir, testBase.Add(5*time.Minute), first)
	writeArchive(t, dir, testBase.Add(65*time.Minute), second)
	ftRecs := handFlows(testBase.Add(30 * time.Minute).UnixMilli())[:9] // IPv4 only
	ftPath := filepath.Join(dir, "ft-v05."+testBase.Add(30*time.Minute).Format("2006-01-02.150405-0700"))
	f, err := os.Create(ftPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := flowtools.Write(f, flowtools.Header{}, ftRecs, flowtools.WriteOptions{Compress: true}); err != nil {
		t.Skipf("flowtools.Write: %v", err)
	}
	f.Close()

	count := func(q *Query) (n int, starts []int64) {
		t.Helper()
		err := q.Flows(context.Background(), func(b []flow.Record) error {
			for i := range b {
				starts = append(starts, b[i].Start)
			}
			n += len(b)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return n, starts
	}
	tests := []struct {
		name     string
		from, to time.Time
		filter   string
		want     int
	}{
		{"all", time.Time{}, time.Time{}, "", 29},
		{"first hour", testBase, testBase.Add(time.Hour), "", 19},
		{"second file", testBase.Add(time.Hour), time.Time{}, "", 10},
		{"inside first file", testBase.Add(25 * time.Second), testBase.Add(65 * time.Second), "", 4},
		{"flow-tools only", testBase.Add(20 * time.Minute), testBase.Add(40 * time.Minute), "", 9},
		{"filter", time.Time{}, time.Time{}, "proto tcp and dst port 443", 2*7 + 6},
	}
	for _, tc := range tests {
		for _, workers := range []int{1, 4} {
			q := &Query{Dirs: []string{dir}, From: tc.from, To: tc.to, Filter: MustCompile(tc.filter), Workers: workers}
			n, starts := count(q)
			if n != tc.want {
				t.Errorf("%s, %d workers: %d flows, want %d", tc.name, workers, n, tc.want)
			}
			for i := 1; i < len(starts); i++ {
				if starts[i] < starts[i-1] {
					t.Errorf("%s, %d workers: flows out of archive order at %d", tc.name, workers, i)
					break
				}
			}
		}
	}
	// Block skipping: the window inside the first file reads fewer blocks.
	q := &Query{Dirs: []string{dir}, From: testBase.Add(25 * time.Second), To: testBase.Add(65 * time.Second)}
	files, blocks, skipped, err := q.Plan()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || blocks != 2 || skipped < 1 {
		t.Errorf("plan: files %v, %d blocks, %d skipped; want the first file and the flow-tools file, 2 blocks read", files, blocks, skipped)
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2026-02-01T10:00:00Z", time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC)},
		{"-1h", now.Add(-time.Hour)},
		{"-90m", now.Add(-90 * time.Minute)},
		{"-7d", now.AddDate(0, 0, -7)},
		{"now", now},
		{"2026-02-01", time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)},
		{"2026-02-01 10:30", time.Date(2026, 2, 1, 10, 30, 0, 0, time.UTC)},
	}
	for _, tc := range tests {
		got, err := ParseTime(tc.in, now, time.UTC)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "yesterday", "-1x", "2026-13-01", "--1h"} {
		if _, err := ParseTime(bad, now, time.UTC); err == nil {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
}

// TestAggregateMaxGroups checks that an aggregation whose groups pass
// MaxGroups stops with ErrTooManyGroups, and that one within it answers.
func TestAggregateMaxGroups(t *testing.T) {
	dir := t.TempDir()
	base := testBase.UnixMilli()
	recs := make([]flow.Record, 50_000)
	for i := range recs {
		recs[i] = flow.Record{Exporter: netip.MustParseAddr("127.0.0.1"),
			SrcAddr: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}),
			DstAddr: netip.MustParseAddr("192.0.2.1"), Proto: 6, Bytes: 100, Packets: 1,
			Start: base + int64(i), End: base + int64(i) + 1}
	}
	writeArchive(t, dir, testBase.Add(5*time.Minute), recs)
	keys, err := ParseKeys("src_addr")
	if err != nil {
		t.Fatal(err)
	}
	q := &Query{Dirs: []string{dir}, Filter: MustCompile(""), Workers: 2}
	_, err = q.Aggregate(context.Background(), AggregateSpec{Keys: keys, Order: ByBytes, Limit: 10, MaxGroups: 1000})
	if !errors.Is(err, ErrTooManyGroups) {
		t.Fatalf("50 000 sources with MaxGroups 1000: err = %v, want ErrTooManyGroups", err)
	}
	res, err := q.Aggregate(context.Background(), AggregateSpec{Keys: keys, Order: ByBytes, Limit: 10, MaxGroups: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Groups != len(recs) {
		t.Errorf("%d groups, want %d", res.Groups, len(recs))
	}
	// The proto key has one group: any limit above it answers.
	pk, _ := ParseKeys("proto")
	if _, err := q.Aggregate(context.Background(), AggregateSpec{Keys: pk, Order: ByFlows, MaxGroups: 1}); err != nil {
		t.Errorf("one group with MaxGroups 1: %v", err)
	}
}

// TestUnreadableFilesLeftOut damages an archive two ways, an empty file
// with a flow file's name and a block whose checksum no longer matches:
// the query leaves out what it cannot read, reports it, and counts every
// other flow; with Strict it fails instead.
func TestUnreadableFilesLeftOut(t *testing.T) {
	dir := t.TempDir()
	writeArchive(t, dir, testBase.Add(5*time.Minute), handFlows(testBase.UnixMilli()))
	writeArchive(t, dir, testBase.Add(65*time.Minute), handFlows(testBase.Add(time.Hour).UnixMilli()))
	empty := filepath.Join(dir, flowfile.FileName(testBase.Add(30*time.Minute)))
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	entries, err := flowfile.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	damaged := entries[len(entries)-1].Path
	r, err := flowfile.Open(damaged)
	if err != nil {
		t.Fatal(err)
	}
	blocks := r.Blocks()
	r.Close()
	if len(blocks) < 3 {
		t.Fatalf("%d blocks in %s, want at least 3", len(blocks), damaged)
	}
	lost := blocks[1].Records
	raw, err := os.ReadFile(damaged)
	if err != nil {
		t.Fatal(err)
	}
	raw[blocks[2].Offset-1] ^= 0xff // the last payload byte of block 1
	if err := os.WriteFile(damaged, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	want := uint64(20 - lost)
	// A key, so that blocks are decoded (a total alone comes from the
	// block headers, which the damage leaves intact).
	keys, err := ParseKeys("src_addr")
	if err != nil {
		t.Fatal(err)
	}
	for _, workers := range []int{1, 3} {
		var reported []string
		var mu sync.Mutex
		q := &Query{Dirs: []string{dir}, Workers: workers, OnSkip: func(fe FileError) {
			mu.Lock()
			reported = append(reported, fe.Path)
			mu.Unlock()
		}}
		res, err := q.Aggregate(context.Background(), AggregateSpec{Keys: keys})
		if err != nil {
			t.Fatalf("%d workers: %v", workers, err)
		}
		if res.Total.Flows != want {
			t.Errorf("%d workers: total %d flows, want %d (every flow outside the damage)", workers, res.Total.Flows, want)
		}
		slices.Sort(reported)
		if wantRep := []string{empty, damaged}; !slices.Equal(reported, wantRep) {
			t.Errorf("%d workers: reported %v, want %v", workers, reported, wantRep)
		}
		if got := q.Skipped(); len(got) != 2 {
			t.Errorf("%d workers: Skipped() = %v, want 2 entries", workers, got)
		}
		q = &Query{Dirs: []string{dir}, Workers: workers, OnSkip: func(FileError) {}}
		n := 0
		if err := q.Flows(context.Background(), func(b []flow.Record) error { n += len(b); return nil }); err != nil {
			t.Fatal(err)
		}
		if uint64(n) != want {
			t.Errorf("%d workers: Flows gave %d flows, want %d", workers, n, want)
		}
	}
	q := &Query{Dirs: []string{dir}, Strict: true}
	_, err = q.Aggregate(context.Background(), AggregateSpec{Keys: keys})
	var fe FileError
	if !errors.As(err, &fe) || fe.Path != empty {
		t.Errorf("strict: error %v, want the empty file's", err)
	}
}
