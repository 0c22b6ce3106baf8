package jkflow

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// u128 is an IPv6 address as two big-endian halves.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func (a u128) next() (u128, bool) {
	if a.lo == ^uint64(0) {
		if a.hi == ^uint64(0) {
			return a, false
		}
		return u128{a.hi + 1, 0}, true
	}
	return u128{a.hi, a.lo + 1}, true
}

func u128Of(a netip.Addr) u128 {
	b := a.As16()
	var hi, lo uint64
	for i := 0; i < 8; i++ {
		hi = hi<<8 | uint64(b[i])
		lo = lo<<8 | uint64(b[i+8])
	}
	return u128{hi, lo}
}

type range4 struct{ lo, hi uint32 }
type range6 struct{ lo, hi u128 }

// prefixSet is a compiled set of IPv4 and IPv6 prefixes: sorted, merged,
// non-overlapping address ranges searched by bisection. Lookups do not
// allocate.
type prefixSet struct {
	v4 []range4
	v6 []range6
}

// parsePrefix accepts "a.b.c.d/n", "v6::/n" or a bare address (a host
// route). Host bits set below the mask are an error, as they usually mean
// a typo.
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad prefix %q", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad prefix %q", s)
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("bad prefix %q: IPv4-mapped with a mask shorter than 96", s)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("bad prefix %q: host bits set (did you mean %s?)", s, p.Masked())
	}
	return p, nil
}

// newPrefixSet builds a set from parsed prefixes.
func newPrefixSet(ps []netip.Prefix) *prefixSet {
	s := &prefixSet{}
	for _, p := range ps {
		if p.Addr().Is4() {
			b := p.Addr().As4()
			lo := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			hi := lo | uint32((uint64(1)<<(32-p.Bits()))-1)
			s.v4 = append(s.v4, range4{lo, hi})
			continue
		}
		lo := u128Of(p.Addr())
		hi := lo
		host := 128 - p.Bits()
		switch {
		case host >= 64:
			hi.lo = ^uint64(0)
			if host == 128 {
				hi.hi = ^uint64(0)
			} else {
				hi.hi |= (uint64(1) << (host - 64)) - 1
			}
		case host > 0:
			hi.lo |= (uint64(1) << host) - 1
		}
		s.v6 = append(s.v6, range6{lo, hi})
	}
	sort.Slice(s.v4, func(i, j int) bool { return s.v4[i].lo < s.v4[j].lo })
	sort.Slice(s.v6, func(i, j int) bool { return s.v6[i].lo.less(s.v6[j].lo) })
	// Merge overlapping and adjacent ranges.
	var m4 []range4
	for _, r := range s.v4 {
		if n := len(m4); n > 0 && (m4[n-1].hi == ^uint32(0) || r.lo <= m4[n-1].hi+1) {
			m4[n-1].hi = max(m4[n-1].hi, r.hi)
			continue
		}
		m4 = append(m4, r)
	}
	s.v4 = m4
	var m6 []range6
	for _, r := range s.v6 {
		if n := len(m6); n > 0 {
			nx, ok := m6[n-1].hi.next()
			if !ok || !nx.less(r.lo) {
				if m6[n-1].hi.less(r.hi) {
					m6[n-1].hi = r.hi
				}
				continue
			}
		}
		m6 = append(m6, r)
	}
	s.v6 = m6
	return s
}

// empty reports whether the set holds no address.
func (s *prefixSet) empty() bool { return s == nil || len(s.v4) == 0 && len(s.v6) == 0 }

// addrKey is an address prepared for lookups: a flow's addresses are
// converted once, then looked up in many sets.
type addrKey struct {
	valid, v4 bool
	a4        uint32
	a6        u128
}

func keyOf(a netip.Addr) addrKey {
	switch {
	case a.Is4() || a.Is4In6():
		b := a.As16()
		return addrKey{valid: true, v4: true, a4: uint32(b[12])<<24 | uint32(b[13])<<16 | uint32(b[14])<<8 | uint32(b[15])}
	case a.Is6():
		return addrKey{valid: true, a6: u128Of(a)}
	}
	return addrKey{}
}

// contains reports whether a is in the set. IPv4-mapped IPv6 addresses
// are looked up as IPv4.
func (s *prefixSet) contains(a netip.Addr) bool {
	k := keyOf(a)
	return s.has(&k)
}

// has reports whether the address k is in the set.
func (s *prefixSet) has(k *addrKey) bool {
	if s == nil || !k.valid {
		return false
	}
	if k.v4 {
		v := k.a4
		r := s.v4
		// first range with hi >= v
		lo, hi := 0, len(r)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if r[m].hi < v {
				lo = m + 1
			} else {
				hi = m
			}
		}
		return lo < len(r) && r[lo].lo <= v
	}
	v := k.a6
	r := s.v6
	lo, hi := 0, len(r)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r[m].hi.less(v) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < len(r) && !v.less(r[lo].lo)
}
