package flowfile

// The version-1 column encoder. Writers now store sections payloads
// (appendSections); this encoder makes version-1 payloads for the tests of
// the version-1 decoder, which readers keep for files written before.

import (
	"encoding/binary"
	"math/bits"
	"net/netip"

	"github.com/flowscan/flowscan/internal/flow"
)

func summarize(recs []flow.Record) blockSummary {
	s := blockSummary{minStart: recs[0].Start, maxEnd: recs[0].End}
	for i := range recs {
		r := &recs[i]
		s.minStart = min(s.minStart, r.Start)
		s.maxEnd = max(s.maxEnd, r.End)
		s.packets += r.Packets
		s.bytes += r.Bytes
	}
	return s
}

// appendColumns appends the column-wise encoding of recs (len > 0) to dst.
// base must be the smallest Start in recs.
func (c *columnCodec) appendColumns(dst []byte, recs []flow.Record, base int64) []byte {
	n := len(recs)
	c.scratch(n)
	for col := range numAddrColumns {
		a := c.addrs[:n]
		for i := range recs {
			a[i] = addrField(&recs[i], col)
		}
		dst = appendAddrColumn(dst, a)
	}
	// The integer values are the same in both versions: the version-2
	// encoder's column block gives them.
	b := newColBlock(n)
	b.add(recs)
	for col := range numIntColumns {
		dst = appendIntColumn(dst, b.values(c.vals[:n], col, base))
	}
	return dst
}

// appendIntColumn writes a width byte and the byte planes of vals.
func appendIntColumn(dst []byte, vals []uint64) []byte {
	var or uint64
	for _, v := range vals {
		or |= v
	}
	width := (bits.Len64(or) + 7) / 8
	dst = append(dst, byte(width))
	n := len(vals)
	for p := range width {
		start := len(dst)
		dst = grow(dst, n)
		plane := dst[start : start+n]
		shift := uint(8 * p)
		for i, v := range vals {
			plane[i] = byte(v >> shift)
		}
	}
	return dst
}

func appendAddrColumn(dst []byte, addrs []netip.Addr) []byte {
	n := len(addrs)
	start := len(dst)
	dst = grow(dst, n)
	kinds := dst[start:]
	var n4, n6, nz int
	for i, a := range addrs {
		switch {
		case !a.IsValid():
			kinds[i] = kindZero
		case a.Is4():
			kinds[i] = kindV4
			n4++
		case a.Zone() != "":
			kinds[i] = kindV6Zone
			n6++
			nz++
		default:
			kinds[i] = kindV6
			n6++
		}
	}
	if n4 > 0 {
		start = len(dst)
		dst = grow(dst, 4*n4)
		planes := dst[start:]
		j := 0
		for _, a := range addrs {
			if a.Is4() {
				b := a.As4()
				planes[j] = b[0]
				planes[n4+j] = b[1]
				planes[2*n4+j] = b[2]
				planes[3*n4+j] = b[3]
				j++
			}
		}
	}
	if n6 > 0 {
		start = len(dst)
		dst = grow(dst, 16*n6)
		planes := dst[start:]
		j := 0
		for _, a := range addrs {
			if a.Is6() {
				b := a.As16()
				for p := range 16 {
					planes[p*n6+j] = b[p]
				}
				j++
			}
		}
	}
	if nz > 0 {
		for _, a := range addrs {
			if z := a.Zone(); z != "" && a.Is6() {
				if len(z) > maxZoneLen {
					z = z[:maxZoneLen]
				}
				dst = binary.AppendUvarint(dst, uint64(len(z)))
				dst = append(dst, z...)
			}
		}
	}
	return dst
}

// scanSelected locates the version-1 payload raw and scans it with
// scanLocated.
func (c *columnCodec) scanSelected(buf []flow.Record, raw []byte, n int, base int64, cols Columns, fn func([]flow.Record)) error {
	if err := c.locate(raw, n, base); err != nil {
		return err
	}
	c.scanLocated(buf, cols, fn)
	return nil
}
