package clickhouse

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/clickhouse/chtest"
	"github.com/flowscan/flowscan/internal/flow"
)

// rawKey is a row's raw-table sort key, for the reference order.
type rawKey struct {
	hour, t  uint32
	exporter [16]byte
}

func keyOf(cols *[numRawColumns][]byte, i int) rawKey {
	t := binary.LittleEndian.Uint32(cols[1][4*i:])
	return rawKey{hour: t - t%3600, t: t, exporter: [16]byte(cols[3][16*i:])}
}

func compareKeys(a, b rawKey) int {
	return cmp.Or(cmp.Compare(a.hour, b.hour), bytes.Compare(a.exporter[:], b.exporter[:]), cmp.Compare(a.t, b.t))
}

func TestSortBlock(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 30, 0, time.UTC) // the hour changes within the flows
	many := testFlows(31, 3000, now)
	for i := range many {
		many[i].Exporter = netip.AddrFrom4([4]byte{10, 1, byte(i / 256), byte(i)})
	}
	sortedAlready := testFlows(32, 500, now)
	slices.SortStableFunc(sortedAlready, func(a, b flow.Record) int {
		return cmp.Compare(a.End/1000, b.End/1000)
	})
	for i := range sortedAlready {
		sortedAlready[i].Exporter = netip.MustParseAddr("192.0.2.1")
	}
	spread := testFlows(33, 100, now)
	spread[0].End = now.Add(-400 * 24 * time.Hour).UnixMilli()
	for _, tc := range []struct {
		name       string
		recs       []flow.Record
		wantSorted bool // sortBlock reports a new order
	}{
		{"two exporters over two hours", testFlows(30, 5000, now), true},
		{"one row", testFlows(34, 1, now), false},
		{"in order already", sortedAlready, false},
		{"too many exporters", many, false},
		{"too many seconds", spread, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			block := testBatch(5, tc.recs, false, false).data
			orig := slices.Clone(block)
			var o rawOrder
			out, ok := o.sortBlock(block, nil)
			if ok != tc.wantSorted {
				t.Fatalf("sortBlock reports %v, want %v", ok, tc.wantSorted)
			}
			if !bytes.Equal(block, orig) {
				t.Fatal("sortBlock changed its input")
			}
			if !ok {
				if !bytes.Equal(out, block) {
					t.Fatal("a block left as it is came back changed")
				}
				return
			}
			rows, cols, err := parseNative(out)
			if err != nil || rows != len(tc.recs) {
				t.Fatalf("ordered block: %d rows, %v", rows, err)
			}
			// The same rows, in the reference (stable) order.
			_, in, _ := parseNative(block)
			idx := make([]int, rows)
			for i := range idx {
				idx[i] = i
			}
			slices.SortStableFunc(idx, func(a, b int) int { return compareKeys(keyOf(&in, a), keyOf(&in, b)) })
			for j, i := range idx {
				var want, got flow.Record
				nativeRow(&in, i, &want)
				nativeRow(&cols, j, &got)
				if got != want {
					t.Fatalf("row %d: %+v, want %+v", j, got, want)
				}
			}
		})
	}
}

// TestOrderSwapsBuffers: ordering a batch from memory leaves it in the
// scratch buffer and keeps the batch's old buffer as the next scratch;
// sending it again (a retry) finds it in order.
func TestOrderSwapsBuffers(t *testing.T) {
	recs := testFlows(35, 2000, time.Now())
	b := &batch{id: 1, rows: len(recs)}
	b.build.reset(make([]byte, nativeSize(4096)), 4096)
	for i := range recs {
		b.build.add(&recs[i], 1)
	}
	b.data = b.build.seal()
	old := b.build.buf
	var o rawOrder
	o.order(b, 4096)
	if &o.buf[0] != &old[0] || &b.build.buf[0] == &old[0] {
		t.Fatal("buffers not swapped")
	}
	if _, ok := o.sortBlock(b.data, o.buf); ok {
		t.Fatal("an ordered batch is ordered again")
	}
}

// BenchmarkOrderBatch is the collector's cost per flow of putting a
// full batch (262144 flows) in the raw table's order: flows of two
// exporters ending over the last minute (as `flowscan gen` sends them)
// or over the last hour.
func BenchmarkOrderBatch(b *testing.B) {
	for _, window := range []time.Duration{time.Minute, time.Hour} {
		b.Run(fmt.Sprintf("window=%s", window), func(b *testing.B) { benchmarkOrderBatch(b, window) })
	}
}

func benchmarkOrderBatch(b *testing.B, window time.Duration) {
	const rows = 262144
	now := time.Now()
	recs := testFlows(36, rows, now)
	for i := range recs { // testFlows spreads ends over an hour
		recs[i].End = now.Add(-time.Duration(now.Sub(time.UnixMilli(recs[i].End)) * window / time.Hour)).UnixMilli()
	}
	block := testBatch(1, recs, false, false).data
	dst := make([]byte, nativeSize(rows))
	var o rawOrder
	b.SetBytes(rows * RowSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := o.sortBlock(block, dst); !ok {
			b.Fatal("not ordered")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/flow")
}

// TestServerSkipsSortOfOrderedBatches: while batches wait for the
// server, the sink sends them in the raw table's order and the server
// writes them without sorting (its MergeTreeDataWriterBlocksAlreadySorted
// counter); a sink whose server keeps up leaves the sorting to the server.
// The rows are all there either way.
func TestServerSkipsSortOfOrderedBatches(t *testing.T) {
	srv := chtest.Start(t)
	noon := time.Now().UTC().Truncate(24 * time.Hour).Add(12 * time.Hour) // flows of one day
	for _, tc := range []struct {
		name            string
		flows, perBatch int
		wantSorted      bool
	}{
		{"five batches at once", 5000, 1000, true},
		{"one batch", 1000, 5000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := NewClient(srv.URL(fmt.Sprintf("fso%d", tc.perBatch)))
			initSchema(t, c)
			sorted := func() uint64 {
				rows, err := c.QueryRows(context.Background(), "SELECT sum(value) FROM system.events WHERE event = 'MergeTreeDataWriterBlocksAlreadySorted'")
				if err != nil {
					t.Fatal(err)
				}
				n, _ := strconv.ParseUint(rows[0][0], 10, 64)
				return n
			}
			before := sorted()
			s := newTestSink(t, c, t.TempDir(), tc.perBatch)
			recs := testFlows(37, tc.flows, noon) // two exporters, in random order
			s.Flows(recs)
			s.Close(30 * time.Second)
			if got, want := tableTotals(t, c, "flows"), sum(recs); got != want {
				t.Fatalf("raw table %+v, want %+v", got, want)
			}
			if d := sorted() - before; (d > 0) != tc.wantSorted {
				t.Errorf("%d blocks found in order by the server; want some: %v", d, tc.wantSorted)
			}
		})
	}
}
