package campusio

import "github.com/flowscan/flowscan/internal/flow"

// Counters are byte, packet and flow counts.
type Counters struct {
	Bytes, Packets, Flows uint64
}

// Add counts one flow.
func (c *Counters) Add(r *flow.Record) {
	c.Bytes += r.Bytes
	c.Packets += r.Packets
	c.Flows++
}

// IO are counters by direction, indexed by In and Out.
type IO [2]Counters

// Values returns the six data-source values in RRD order: in_bytes
// out_bytes in_pkts out_pkts in_flows out_flows.
func (io *IO) Values() []float64 {
	return []float64{
		float64(io[In].Bytes), float64(io[Out].Bytes),
		float64(io[In].Packets), float64(io[Out].Packets),
		float64(io[In].Flows), float64(io[Out].Flows),
	}
}

// DSNames are the data sources of every in/out RRD file, in Values order.
var DSNames = []string{"in_bytes", "out_bytes", "in_pkts", "out_pkts", "in_flows", "out_flows"}

// ioTable is a fixed-capacity open-addressing hash table of IO counters;
// it never grows, so adding does not allocate. Keys beyond the limit are
// counted in overflow.
type ioTable struct {
	keys     []u128
	vals     []IO
	used     []bool
	order    []int32 // occupied slots, in insertion order
	mask     uint64
	limit    int
	overflow IO
}

func newIOTable(limit int) *ioTable {
	n := 16
	for n < 2*limit {
		n <<= 1
	}
	return &ioTable{
		keys: make([]u128, n), vals: make([]IO, n), used: make([]bool, n),
		order: make([]int32, 0, limit), mask: uint64(n - 1), limit: limit,
	}
}

func hash(k u128) uint64 {
	h := k.hi*0x9e3779b97f4a7c15 ^ k.lo
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 32
	return h
}

// get returns k's counters, inserting k; nil when the table is full.
func (t *ioTable) get(k u128) *IO {
	i := hash(k) & t.mask
	for t.used[i] {
		if t.keys[i] == k {
			return &t.vals[i]
		}
		i = (i + 1) & t.mask
	}
	if len(t.order) >= t.limit {
		return &t.overflow
	}
	t.used[i] = true
	t.keys[i] = k
	t.vals[i] = IO{}
	t.order = append(t.order, int32(i))
	return &t.vals[i]
}

func (t *ioTable) reset() {
	for _, i := range t.order {
		t.used[i] = false
	}
	t.order = t.order[:0]
	t.overflow = IO{}
}

func (t *ioTable) each(f func(k u128, io *IO)) {
	for _, i := range t.order {
		f(t.keys[i], &t.vals[i])
	}
}
