package query

import (
	"container/heap"
	"math"
	"slices"
	"sync"
)

// The workers' tables are merged and ranked in parallel: the key space is
// split by hash into one part per worker, each part's groups are gathered
// from every worker's tables into a table of its own, and each part
// selects its top groups; the parts' tops are then combined. Every step
// but the last (a few rows per part) runs on all cores.

// minParallelGroups is the table size below which merging on one core is
// cheaper than starting goroutines.
const minParallelGroups = 1 << 13

// partOf maps a 32-bit hash to one of parts parts.
func partOf(h uint32, parts int) int { return int(uint64(h) * uint64(parts) >> 32) }

// packedPartHash hashes packed key k for choosing its part. It must not
// be the hash whose high bits choose the slots (packedTable.home): the
// keys of one part would all have their home in one share of the part's
// table, and collide.
func packedPartHash(k uint64) uint32 { return uint32((k * 0xC2B2AE3D27D4EB4F) >> 32) }

// mergeParts gathers the groups of aggs into parts aggregators, each with
// the groups of one part of the key space, in parallel; the parts' totals
// are zero (the caller sums the workers' totals). With one aggregator or
// few groups, it returns one part.
func mergeParts(aggs []*aggregator, keys []KeyField, parts int) []*aggregator {
	most := 0
	for _, a := range aggs {
		most = max(most, a.groups())
	}
	if len(aggs) == 1 {
		return aggs
	}
	direct := len(aggs) > 0 && aggs[0].packed != nil && aggs[0].packed.direct
	if parts <= 1 || most < minParallelGroups || direct {
		// Direct tables (at most 64 Ki slots) merge slot by slot.
		one := newAggregator(keys)
		for _, a := range aggs {
			one.merge(a)
		}
		one.total = Counters{}
		return []*aggregator{one}
	}
	out := make([]*aggregator, parts)
	var wg sync.WaitGroup
	for p := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			part := newAggregator(keys)
			if part.packed != nil {
				part.packed.release()
				part.packed = newPackedTable(logSizeFor(most / parts))
			}
			for _, a := range aggs {
				for k, c := range a.m.all() {
					if partOf(a.m.tag(&k), parts) == p {
						part.m.get(&k).Merge(c)
					}
				}
				if a.packed == nil {
					continue
				}
				for k, c := range a.packed.all() {
					if partOf(packedPartHash(k), parts) == p {
						part.packed.merge(k, c)
					}
				}
			}
			out[p] = part
		}()
	}
	wg.Wait()
	return out
}

// partTop is one part's share of a top-N: its n largest groups, and the
// time span of its other groups.
type partTop struct {
	rows        []Row
	first, last int64
}

// top selects the n largest groups of a (all when n <= 0 or more than
// it has) and the span of the others.
func (a *aggregator) top(order Order, n int) partTop {
	groups := a.groups()
	if n <= 0 || n > groups {
		n = groups
	}
	h := &rowHeap{rows: make([]Row, 0, n+1), order: order}
	for k, c := range a.m.all() {
		h.offer(n, k, c)
	}
	if a.packed != nil {
		for p, c := range a.packed.all() {
			// Most groups rank below the heap's least: decide that on
			// the counters before unpacking the key.
			if len(h.rows) == n && (n == 0 || order.value(c) < order.value(&h.rows[0].Counters)) {
				continue
			}
			h.offer(n, unpackKey(p, a.keys, a.layout), c)
		}
	}
	pt := partTop{rows: h.rows, first: math.MaxInt64, last: math.MinInt64}
	if len(h.rows) == groups {
		return pt
	}
	// The span of the groups not selected: only a group that would widen
	// it is looked up among the selected ones.
	listed := make(map[Key]struct{}, len(h.rows))
	for i := range h.rows {
		listed[h.rows[i].Key] = struct{}{}
	}
	for k, c := range a.m.all() {
		if c.First < pt.first || c.Last > pt.last {
			if _, ok := listed[k]; !ok {
				pt.first = min(pt.first, c.First)
				pt.last = max(pt.last, c.Last)
			}
		}
	}
	if a.packed != nil {
		for p, c := range a.packed.all() {
			if c.First < pt.first || c.Last > pt.last {
				if _, ok := listed[unpackKey(p, a.keys, a.layout)]; !ok {
					pt.first = min(pt.first, c.First)
					pt.last = max(pt.last, c.Last)
				}
			}
		}
	}
	return pt
}

// topParts ranks the groups of parts (disjoint sets of keys, as
// mergeParts makes) whose flows total counts: the n largest (all when
// n <= 0), the rest as Other. Parts are ranked in parallel.
func topParts(parts []*aggregator, keys []KeyField, total Counters, order Order, n int) *Result {
	groups := 0
	for _, p := range parts {
		groups += p.groups()
	}
	res := &Result{Keys: keys, Order: order, Groups: groups, Total: total}
	if n <= 0 || n > groups {
		n = groups
	}
	tops := make([]partTop, len(parts))
	if len(parts) == 1 {
		tops[0] = parts[0].top(order, n)
	} else {
		var wg sync.WaitGroup
		for i, p := range parts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tops[i] = p.top(order, n)
			}()
		}
		wg.Wait()
	}
	// The n largest of the parts' largest; the span of the rest is that
	// of each part's rest and of the part rows not kept.
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	var rows []Row
	if len(tops) == 1 {
		rows = tops[0].rows
		first, last = tops[0].first, tops[0].last
	} else {
		h := &rowHeap{rows: make([]Row, 0, n+1), order: order}
		var dropped []Row
		for _, t := range tops {
			first, last = min(first, t.first), max(last, t.last)
			for i := range t.rows {
				row := t.rows[i]
				switch {
				case len(h.rows) < n:
					heap.Push(h, row)
				case n > 0 && rowLess(order, &h.rows[0], &row):
					dropped = append(dropped, h.rows[0])
					h.rows[0] = row
					heap.Fix(h, 0)
				default:
					dropped = append(dropped, row)
				}
			}
		}
		for i := range dropped {
			first, last = min(first, dropped[i].First), max(last, dropped[i].Last)
		}
		rows = h.rows
	}
	slices.SortFunc(rows, func(x, y Row) int {
		switch {
		case rowLess(order, &y, &x):
			return -1
		case rowLess(order, &x, &y):
			return 1
		}
		return 0
	})
	res.Rows = rows
	if len(rows) < groups {
		res.Other = total
		for i := range rows {
			res.Other.Sub(&rows[i].Counters)
		}
		res.Other.First, res.Other.Last = first, last
	}
	return res
}
