package query

import (
	"container/heap"
	"fmt"
	"slices"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/flowfile"
)

// Counters total a set of flows.
type Counters struct {
	Flows, Packets, Bytes uint64
	// First and Last are the earliest Start and latest End (Unix ms);
	// zero when Flows is 0.
	First, Last int64
}

// Add counts r.
func (c *Counters) Add(r *flow.Record) {
	if c.Flows == 0 || r.Start < c.First {
		c.First = r.Start
	}
	if c.Flows == 0 || r.End > c.Last {
		c.Last = r.End
	}
	c.Flows++
	c.Packets += r.Packets
	c.Bytes += r.Bytes
}

// Merge adds o's counts to c.
func (c *Counters) Merge(o *Counters) {
	if o.Flows == 0 {
		return
	}
	if c.Flows == 0 || o.First < c.First {
		c.First = o.First
	}
	if c.Flows == 0 || o.Last > c.Last {
		c.Last = o.Last
	}
	c.Flows += o.Flows
	c.Packets += o.Packets
	c.Bytes += o.Bytes
}

// Sub removes o's flow, packet and byte counts from c (times unchanged).
func (c *Counters) Sub(o *Counters) {
	c.Flows -= o.Flows
	c.Packets -= o.Packets
	c.Bytes -= o.Bytes
}

// SpanMillis is Last-First, never negative.
func (c *Counters) SpanMillis() int64 { return max(c.Last-c.First, 0) }

// BPS is the average bits per second over the span (0 for a zero span).
func (c *Counters) BPS() uint64 { return rate(c.Bytes*8, c.SpanMillis()) }

// PPS is the average packets per second over the span.
func (c *Counters) PPS() uint64 { return rate(c.Packets, c.SpanMillis()) }

// BPP is the average bytes per packet.
func (c *Counters) BPP() uint64 {
	if c.Packets == 0 {
		return 0
	}
	return c.Bytes / c.Packets
}

// Order is what top-N rows are ranked by.
type Order uint8

// Orders.
const (
	ByFlows Order = iota
	ByPackets
	ByBytes
	ByBPS
	ByPPS
	ByBPP
)

var orderNames = []string{"flows", "packets", "bytes", "bps", "pps", "bpp"}

// ParseOrder parses flows, packets, bytes, bps, pps or bpp.
func ParseOrder(s string) (Order, error) {
	if i := slices.Index(orderNames, s); i >= 0 {
		return Order(i), nil
	}
	return 0, fmt.Errorf("unknown order %q (want flows, packets, bytes, bps, pps or bpp)", s)
}

// String returns the order's name.
func (o Order) String() string { return orderNames[o] }

func (o Order) value(c *Counters) uint64 {
	switch o {
	case ByPackets:
		return c.Packets
	case ByBytes:
		return c.Bytes
	case ByBPS:
		return c.BPS()
	case ByPPS:
		return c.PPS()
	case ByBPP:
		return c.BPP()
	}
	return c.Flows
}

// aggregator groups flows by key. Each worker has its own; they are merged
// at the end.
type aggregator struct {
	keys []KeyField
	// m counts the keys that do not pack into 64 bits (all of them when
	// layout is nil).
	m *keyTable
	// packed counts the keys that pack by layout (nil layout: none do).
	packed *packedTable
	layout []packedField
	total  Counters
	// batchKeys, batchTags, packedKeys, homes and skip are addBatch's
	// scratch space; slow holds the flows of a batch whose key does not
	// pack, fast the others.
	batchKeys  []Key
	batchTags  []uint32
	packedKeys []uint64
	homes      []uint32
	skip       []bool
	slow, fast []int32
}

func newAggregator(keys []KeyField) *aggregator {
	a := &aggregator{keys: keys, m: newKeyTable(keyWords(keys))}
	if keys != nil {
		if a.layout = packLayout(keys); a.layout != nil {
			if bits := packedBits(a.layout); bits <= maxDirectBits {
				a.packed = newDirectTable(bits)
			} else {
				a.packed = newPackedTable(10)
			}
		}
	}
	return a
}

// keyWords is the number of Key words the key fields use.
func keyWords(keys []KeyField) int {
	n := 0
	for _, kf := range keys {
		if isAddrField(kf.f) {
			n += 2
		} else {
			n++
		}
	}
	return min(n, maxKeyWords)
}

// add counts r under its key; it allocates only when the table grows. It
// is the reference that addBatch must agree with: it always uses the
// general table.
func (a *aggregator) add(r *flow.Record) {
	a.total.Add(r)
	if a.keys == nil {
		return
	}
	k := makeKey(r, a.keys)
	a.m.get(&k).Add(r)
}

// addTotals counts recs[i] for each i in sel in the total.
func (a *aggregator) addTotals(recs []flow.Record, sel []int32) {
	if len(sel) == 0 {
		return
	}
	c := &a.total
	first, last := recs[sel[0]].Start, recs[sel[0]].End
	var packets, bytes uint64
	for _, i := range sel {
		r := &recs[i]
		packets += r.Packets
		bytes += r.Bytes
		first = min(first, r.Start)
		last = max(last, r.End)
	}
	c.Merge(&Counters{Flows: uint64(len(sel)), Packets: packets, Bytes: bytes, First: first, Last: last})
}

// addBlockTotals counts every flow of blocks in the total, from their
// headers.
func (a *aggregator) addBlockTotals(blocks []flowfile.BlockInfo) {
	for _, b := range blocks {
		if b.Records > 0 {
			a.total.Merge(&Counters{Flows: uint64(b.Records), Packets: b.Packets, Bytes: b.Bytes, First: b.MinStart, Last: b.MaxEnd})
		}
	}
}

// addBatch counts recs[i] for each i in sel, as add does (the result is
// the same). Keys that pack into 64 bits go to the packed table, the
// others are built in full and looked up in the general table after
// their slots and entries have been touched, so that the cache misses of
// a batch overlap.
func (a *aggregator) addBatch(recs []flow.Record, sel []int32) {
	a.addTotals(recs, sel)
	if a.keys == nil || len(sel) == 0 {
		return
	}
	if a.layout != nil {
		if cap(a.packedKeys) < len(sel) {
			a.packedKeys = make([]uint64, len(sel))
			a.homes = make([]uint32, len(sel))
			a.skip = make([]bool, len(sel))
		}
		keys, skip := a.packedKeys[:len(sel)], a.skip[:len(sel)]
		if packKeys(recs, sel, a.keys, a.layout, keys, skip) {
			// Keys that do not pack (IPv6) go to the general table; the
			// others are moved up in a copy of sel.
			a.slow = a.slow[:0]
			a.fast = a.fast[:0]
			n := 0
			for j, i := range sel {
				if skip[j] {
					skip[j] = false
					a.slow = append(a.slow, i)
					continue
				}
				a.fast = append(a.fast, i)
				keys[n] = keys[j]
				n++
			}
			a.packed.add(recs, a.fast, keys[:n], a.homes)
			a.addGeneral(recs, a.slow)
			return
		}
		a.packed.add(recs, sel, keys, a.homes)
		return
	}
	a.addGeneral(recs, sel)
}

// addGeneral counts recs[i] for each i in sel in the general table.
func (a *aggregator) addGeneral(recs []flow.Record, sel []int32) {
	if cap(a.batchKeys) < len(sel) {
		a.batchKeys = make([]Key, len(sel))
		a.batchTags = make([]uint32, len(sel))
	}
	keys, tags := a.batchKeys[:len(sel)], a.batchTags[:len(sel)]
	for j, i := range sel {
		keys[j] = makeKey(&recs[i], a.keys)
		tags[j] = a.m.tag(&keys[j])
	}
	a.m.touch(tags)
	for j, i := range sel {
		a.m.getTagged(&keys[j], tags[j]).Add(&recs[i])
	}
}

func (a *aggregator) merge(o *aggregator) {
	a.total.Merge(&o.total)
	if a.m.len() < o.m.len() {
		a.m, o.m = o.m, a.m
	}
	for k, c := range o.m.all() {
		a.m.get(&k).Merge(c)
	}
	if a.packed != nil && o.packed != nil {
		if a.packed.n < o.packed.n {
			a.packed, o.packed = o.packed, a.packed
		}
		for k, c := range o.packed.all() {
			a.packed.merge(k, c)
		}
	}
}

// release frees the memory of the aggregator's tables outside the Go
// heap; the aggregator must not be used after.
func (a *aggregator) release() {
	if a.packed != nil {
		a.packed.release()
	}
}

// groups is the number of distinct keys.
func (a *aggregator) groups() int {
	n := a.m.len()
	if a.packed != nil {
		n += a.packed.n
	}
	return n
}

// Row is one aggregated key and its counters.
type Row struct {
	Key Key
	Counters
}

// Result is the outcome of an aggregation.
type Result struct {
	// Keys are the key fields of the rows.
	Keys []KeyField
	// Order ranked the rows (largest first).
	Order Order
	// Rows are the top rows, largest first; ties broken by key.
	Rows []Row
	// Other totals the matching flows not in Rows; Other.Flows is 0 when
	// every group is listed.
	Other Counters
	// Groups is the number of distinct keys.
	Groups int
	// Total counts all matching flows.
	Total Counters
}

// Values decodes a row's key.
func (res *Result) Values(row *Row) []KeyValue { return row.Key.Values(res.Keys) }

// Percent returns part as a percentage of total (0 when total is 0).
func Percent(part, total uint64) float64 {
	if total == 0 {
		return 0
	}
	return float64(part) * 100 / float64(total)
}

// rowHeap is a min-heap on the order value, keeping the n largest rows.
type rowHeap struct {
	rows  []Row
	order Order
}

func (h *rowHeap) Len() int           { return len(h.rows) }
func (h *rowHeap) Less(i, j int) bool { return rowLess(h.order, &h.rows[i], &h.rows[j]) }
func (h *rowHeap) Swap(i, j int)      { h.rows[i], h.rows[j] = h.rows[j], h.rows[i] }
func (h *rowHeap) Push(x any)         { h.rows = append(h.rows, x.(Row)) }
func (h *rowHeap) Pop() any {
	x := h.rows[len(h.rows)-1]
	h.rows = h.rows[:len(h.rows)-1]
	return x
}

// rowLess orders by the order value, then by key (larger key words rank
// lower) so that results are deterministic.
func rowLess(o Order, a, b *Row) bool {
	va, vb := o.value(&a.Counters), o.value(&b.Counters)
	if va != vb {
		return va < vb
	}
	if a.Key.fam != b.Key.fam {
		return a.Key.fam > b.Key.fam
	}
	for i := range a.Key.w {
		if a.Key.w[i] != b.Key.w[i] {
			return a.Key.w[i] > b.Key.w[i]
		}
	}
	return false
}

// topN selects the n largest groups of a (all when n <= 0) with a heap.
func (a *aggregator) topN(order Order, n int) *Result {
	return topParts([]*aggregator{a}, a.keys, a.total, order, n)
}

// offer adds the group k to the heap of the n largest when it ranks
// among them.
func (h *rowHeap) offer(n int, k Key, c *Counters) {
	if len(h.rows) < n {
		heap.Push(h, Row{Key: k, Counters: *c})
		return
	}
	if n == 0 {
		return
	}
	row := Row{Key: k, Counters: *c}
	if rowLess(h.order, &h.rows[0], &row) {
		h.rows[0] = row
		heap.Fix(h, 0)
	}
}
