package campusio

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
)

// Direction is how a flow crosses the border.
type Direction uint8

// Directions. In and Out index an IO.
const (
	In       Direction = 0 // from outside to the local network
	Out      Direction = 1 // from the local network to outside
	Internal Direction = 2 // does not cross the border, stays inside
	Transit  Direction = 3 // crosses the network without a local end, or both ways at once
)

// String returns "in", "out", "internal" or "transit".
func (d Direction) String() string {
	switch d {
	case In:
		return "in"
	case Out:
		return "out"
	case Internal:
		return "internal"
	case Transit:
		return "transit"
	}
	return "Direction(" + strconv.Itoa(int(d)) + ")"
}

// Classifier decides the Direction of flows: by border interfaces and
// next hops when configured, else by local subnets (see the package doc).
type Classifier struct {
	local    *PrefixTable
	nextHops *PrefixTable
	ifs      []uint32 // sorted
}

// NewClassifier builds a classifier. ifIndexes need not be sorted.
func NewClassifier(local, nextHops []netip.Prefix, ifIndexes []uint32) (*Classifier, error) {
	c := &Classifier{ifs: slices.Clone(ifIndexes)}
	slices.Sort(c.ifs)
	var err error
	if c.local, err = NewPrefixTable(local); err != nil {
		return nil, err
	}
	if c.nextHops, err = NewPrefixTable(nextHops); err != nil {
		return nil, err
	}
	return c, nil
}

// Local returns the local subnets.
func (c *Classifier) Local() *PrefixTable { return c.local }

// IsLocal reports whether a is in the local subnets.
func (c *Classifier) IsLocal(a netip.Addr) bool { return c.local.Contains(a) }

func (c *Classifier) isBorderIf(i uint32) bool {
	lo, hi := 0, len(c.ifs)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if c.ifs[mid] < i {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo < len(c.ifs) && c.ifs[lo] == i
}

// Classify returns the flow's direction. It does not allocate.
func (c *Classifier) Classify(r *flow.Record) Direction {
	if len(c.ifs) == 0 && c.nextHops.Len() == 0 {
		src, dst := c.local.Contains(r.SrcAddr), c.local.Contains(r.DstAddr)
		switch {
		case src && !dst:
			return Out
		case dst && !src:
			return In
		case src && dst:
			return Internal
		}
		return Transit
	}
	out := c.isBorderIf(r.OutIf) || (r.NextHop.IsValid() && c.nextHops.Contains(r.NextHop))
	var in bool
	if len(c.ifs) > 0 {
		in = c.isBorderIf(r.InIf)
	} else {
		in = c.local.Contains(r.DstAddr) && !c.local.Contains(r.SrcAddr)
	}
	switch {
	case out && !in:
		return Out
	case in && !out:
		return In
	case in && out:
		return Transit
	}
	if c.local.Len() > 0 && !c.local.Contains(r.SrcAddr) && !c.local.Contains(r.DstAddr) {
		return Transit
	}
	return Internal
}

// checkPrefixFormat rejects unknown % directives.
func checkPrefixFormat(f string) error {
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		if i+1 >= len(f) || !strings.ContainsRune("YmdHM%", rune(f[i+1])) {
			return errBadFormat(f)
		}
		i++
	}
	if strings.Contains(f, "..") || strings.HasPrefix(f, "/") {
		return errBadFormat(f)
	}
	return nil
}

type errBadFormat string

func (e errBadFormat) Error() string {
	return "bad format " + strconv.Quote(string(e)) + ": only %Y %m %d %H %M %% are supported, and no absolute or .. paths"
}

// ReportPrefix expands a report_prefix_format at t in local time.
func ReportPrefix(format string, t time.Time) string {
	t = t.Local()
	var b strings.Builder
	pad := func(v, n int) {
		s := strconv.Itoa(v)
		for i := len(s); i < n; i++ {
			b.WriteByte('0')
		}
		b.WriteString(s)
	}
	for i := 0; i < len(format); i++ {
		if format[i] != '%' || i+1 >= len(format) {
			b.WriteByte(format[i])
			continue
		}
		i++
		switch format[i] {
		case 'Y':
			pad(t.Year(), 4)
		case 'm':
			pad(int(t.Month()), 2)
		case 'd':
			pad(t.Day(), 2)
		case 'H':
			pad(t.Hour(), 2)
		case 'M':
			pad(t.Minute(), 2)
		default:
			b.WriteByte(format[i])
		}
	}
	return b.String()
}
