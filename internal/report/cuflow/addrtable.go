package cuflow

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// addrClass is what the configuration says about one address: whether it
// is inside (a Subnet) and which Networks contain it.
type addrClass struct {
	inside   bool
	networks []uint16
}

// addrTable maps addresses to classes. The address space of each family is
// cut into disjoint intervals at every prefix boundary; each interval has
// one class, found by binary search on the interval starts. IPv4 starts
// are indexed by their top 16 bits first, so a lookup searches only the
// few intervals of one /16.
type addrTable struct {
	classes []addrClass // classes[0] is outside, no network

	v4Start []uint32
	v4Class []uint16
	// v4First[h] is the index of the interval containing h<<16.
	v4First []uint16
	// v4Many is set when there are too many intervals for v4First, which
	// then is unused.
	v4Many bool

	v6Start []u128
	v6Class []uint16
}

type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func (a u128) addOne() (u128, bool) {
	lo := a.lo + 1
	hi := a.hi
	if lo == 0 {
		hi++
		if hi == 0 {
			return u128{}, true
		}
	}
	return u128{hi, lo}, false
}

func addrU128(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// tagged is a prefix with what it marks: network index, or -1 for Subnet.
type tagged struct {
	prefix  netip.Prefix
	network int
}

// buildAddrTable builds the table from Subnets and Networks.
func buildAddrTable(items []tagged) *addrTable {
	t := &addrTable{classes: []addrClass{{}}}
	classIndex := map[string]uint16{"o": 0}
	classOf := func(inside bool, nets []uint16) uint16 {
		var sb strings.Builder
		if inside {
			sb.WriteString("i")
		} else {
			sb.WriteString("o")
		}
		for _, n := range nets {
			sb.WriteString("," + strconv.Itoa(int(n)))
		}
		if id, ok := classIndex[sb.String()]; ok {
			return id
		}
		id := uint16(len(t.classes))
		classIndex[sb.String()] = id
		t.classes = append(t.classes, addrClass{inside: inside, networks: slices.Clone(nets)})
		return id
	}
	for _, v6 := range []bool{false, true} {
		type span struct {
			lo, hi  u128
			network int
		}
		var spans []span
		bounds := []u128{{}}
		for _, it := range items {
			if it.prefix.Addr().Is6() != v6 {
				continue
			}
			lo, hi := prefixRange(it.prefix)
			spans = append(spans, span{lo, hi, it.network})
			bounds = append(bounds, lo)
			if next, overflow := hi.addOne(); !overflow && (v6 || next.lo <= 0xffffffff) {
				bounds = append(bounds, next)
			}
		}
		slices.SortFunc(bounds, func(a, b u128) int {
			if a == b {
				return 0
			}
			if a.less(b) {
				return -1
			}
			return 1
		})
		bounds = slices.Compact(bounds)
		var starts []u128
		var classes []uint16
		for _, b := range bounds {
			inside := false
			var nets []uint16
			for _, s := range spans {
				if b.less(s.lo) || s.hi.less(b) {
					continue
				}
				if s.network < 0 {
					inside = true
				} else if !slices.Contains(nets, uint16(s.network)) {
					nets = append(nets, uint16(s.network))
				}
			}
			slices.Sort(nets)
			c := classOf(inside, nets)
			if len(classes) > 0 && classes[len(classes)-1] == c {
				continue
			}
			starts = append(starts, b)
			classes = append(classes, c)
		}
		if v6 {
			t.v6Start, t.v6Class = starts, classes
			continue
		}
		t.v4Class = classes
		for _, s := range starts {
			t.v4Start = append(t.v4Start, uint32(s.lo))
		}
		if len(t.v4Start) > 1<<16 {
			t.v4Many = true
			continue
		}
		t.v4First = make([]uint16, 1<<16)
		i := 0
		for h := range t.v4First {
			base := uint32(h) << 16
			for i+1 < len(t.v4Start) && t.v4Start[i+1] <= base {
				i++
			}
			t.v4First[h] = uint16(i)
		}
	}
	return t
}

// prefixRange returns the first and last address of p as 128-bit numbers
// (IPv4 in the low 32 bits).
func prefixRange(p netip.Prefix) (lo, hi u128) {
	if p.Addr().Is4() {
		b := p.Addr().As4()
		v := binary.BigEndian.Uint32(b[:])
		host := uint32(0)
		if p.Bits() < 32 {
			host = 1<<(32-p.Bits()) - 1
		}
		return u128{0, uint64(v)}, u128{0, uint64(v | host)}
	}
	lo = addrU128(p.Addr())
	hi = lo
	bits := p.Bits()
	switch {
	case bits <= 64:
		hi.lo = ^uint64(0)
		if bits < 64 {
			hi.hi |= ^uint64(0) >> bits
		}
	default:
		hi.lo |= ^uint64(0) >> (bits - 64)
	}
	return lo, hi
}

// lookup returns the class index of a (an IPv4-mapped IPv6 address counts
// as IPv4; the zero Addr is outside).
func (t *addrTable) lookup(a netip.Addr) uint16 {
	if a.Is4() || a.Is4In6() {
		b := a.As16()
		v := binary.BigEndian.Uint32(b[12:])
		starts := t.v4Start
		if t.v4Many {
			lo, hi := 0, len(starts)-1
			for lo < hi {
				mid := int(uint(lo+hi+1) >> 1)
				if v < starts[mid] {
					hi = mid - 1
				} else {
					lo = mid
				}
			}
			return t.v4Class[lo]
		}
		i := int(t.v4First[v>>16])
		for i+1 < len(starts) && starts[i+1] <= v {
			// Few intervals share a /16; a short scan beats a search
			// until there are many.
			if i+9 < len(starts) && starts[i+8] <= v {
				i += 8
				continue
			}
			i++
		}
		return t.v4Class[i]
	}
	if !a.Is6() || len(t.v6Start) == 0 {
		return 0
	}
	v := addrU128(a)
	lo, hi := 0, len(t.v6Start)-1
	for lo < hi {
		mid := int(uint(lo+hi+1) >> 1)
		if v.less(t.v6Start[mid]) {
			hi = mid - 1
		} else {
			lo = mid
		}
	}
	return t.v6Class[lo]
}
