package campusio

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// u128 is an address as a 128-bit number; IPv4 addresses are mapped into
// ::ffff:0:0/96, so one table holds both families.
type u128 struct{ hi, lo uint64 }

func key(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func (k u128) addr() netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.hi)
	binary.BigEndian.PutUint64(b[8:], k.lo)
	return netip.AddrFrom16(b).Unmap()
}

func (k u128) less(o u128) bool { return k.hi < o.hi || (k.hi == o.hi && k.lo < o.lo) }

func (k u128) inc() (u128, bool) {
	lo := k.lo + 1
	hi := k.hi
	if lo == 0 {
		hi++
		if hi == 0 {
			return u128{}, false
		}
	}
	return u128{hi, lo}, true
}

// bounds returns the first and last address of p in u128 space.
func bounds(p netip.Prefix) (lo, hi u128, bits int) {
	p = p.Masked()
	bits = p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	lo = key(p.Addr())
	var mhi, mlo uint64 // host mask
	switch {
	case bits == 0:
		mhi, mlo = ^uint64(0), ^uint64(0)
	case bits < 64:
		mhi, mlo = (uint64(1)<<(64-bits))-1, ^uint64(0)
	case bits == 64:
		mlo = ^uint64(0)
	case bits < 128:
		mlo = (uint64(1) << (128 - bits)) - 1
	}
	return lo, u128{lo.hi | mhi, lo.lo | mlo}, bits
}

// PrefixTable maps addresses to the most specific of a set of IPv4 and
// IPv6 prefixes. It is built once and read without allocation: the
// prefixes are flattened into sorted, non-overlapping address ranges that
// a binary search walks.
type PrefixTable struct {
	prefixes []netip.Prefix
	starts   []u128  // range starts, sorted; starts[0] is ::
	vals     []int32 // prefix index of each range, -1 for none
}

// NewPrefixTable builds a table of ps; Lookup returns indexes into ps.
// Duplicate prefixes are an error.
func NewPrefixTable(ps []netip.Prefix) (*PrefixTable, error) {
	t := &PrefixTable{prefixes: make([]netip.Prefix, len(ps))}
	type rng struct {
		lo, hi u128
		bits   int
	}
	rs := make([]rng, len(ps))
	seen := make(map[netip.Prefix]int, len(ps))
	points := []u128{{}}
	for i, p := range ps {
		if !p.IsValid() {
			return nil, fmt.Errorf("invalid prefix %v", p)
		}
		p = p.Masked()
		if j, dup := seen[p]; dup {
			return nil, fmt.Errorf("prefix %v listed twice (entries %d and %d)", p, j+1, i+1)
		}
		seen[p] = i
		t.prefixes[i] = p
		lo, hi, bits := bounds(p)
		rs[i] = rng{lo, hi, bits}
		points = append(points, lo)
		if next, ok := hi.inc(); ok {
			points = append(points, next)
		}
	}
	sort.Slice(points, func(i, j int) bool { return points[i].less(points[j]) })
	for i, p := range points {
		if i > 0 && p == points[i-1] {
			continue
		}
		best, bestBits := int32(-1), -1
		for j, r := range rs {
			if !p.less(r.lo) && !r.hi.less(p) && r.bits > bestBits {
				best, bestBits = int32(j), r.bits
			}
		}
		if n := len(t.vals); n > 0 && t.vals[n-1] == best {
			continue
		}
		t.starts = append(t.starts, p)
		t.vals = append(t.vals, best)
	}
	return t, nil
}

// ParsePrefixes parses prefixes ("10.0.0.0/8", "2001:db8::/32"); a bare
// address is a host prefix (/32 or /128). IPv4-mapped IPv6 forms are
// unmapped.
func ParsePrefixes(what string, ss []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		s = strings.TrimSpace(s)
		var p netip.Prefix
		var err error
		if strings.Contains(s, "/") {
			p, err = netip.ParsePrefix(s)
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(s)
			if err == nil {
				a = a.Unmap()
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s: bad prefix %q: %v", what, s, err)
		}
		if p.Addr().Zone() != "" {
			return nil, fmt.Errorf("%s: bad prefix %q: zones are not allowed", what, s)
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		if p.Masked() != p {
			return nil, fmt.Errorf("%s: prefix %q has host bits set (did you mean %v?)", what, s, p.Masked())
		}
		out = append(out, p)
	}
	return out, nil
}

// Lookup returns the index of the most specific prefix containing a, or
// -1. It does not allocate.
func (t *PrefixTable) Lookup(a netip.Addr) int {
	if t == nil || len(t.prefixes) == 0 {
		return -1
	}
	k := key(a)
	// Largest i with starts[i] <= k; starts[0] is 0, so i >= 0.
	lo, hi := 0, len(t.starts)
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		if k.less(t.starts[mid]) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return int(t.vals[lo])
}

// Contains reports whether a is inside any of the prefixes.
func (t *PrefixTable) Contains(a netip.Addr) bool { return t.Lookup(a) >= 0 }

// Len returns the number of prefixes.
func (t *PrefixTable) Len() int {
	if t == nil {
		return 0
	}
	return len(t.prefixes)
}

// Prefix returns prefix i (masked).
func (t *PrefixTable) Prefix(i int) netip.Prefix { return t.prefixes[i] }

// Covers reports whether every address of p is inside the table's prefixes.
func (t *PrefixTable) Covers(p netip.Prefix) bool {
	if t.Len() == 0 {
		return false
	}
	lo, hi, _ := bounds(p)
	for i, s := range t.starts {
		overlaps := !hi.less(s) && (i+1 == len(t.starts) || lo.less(t.starts[i+1]))
		if overlaps && t.vals[i] < 0 {
			return false
		}
	}
	return true
}
