package flowfile

// The straightforward column decoder: whole block, column after column,
// into full records. The readers use decodeSelected and scanSelected
// (locate, then decode runs); this independent decoder is their reference
// in tests and fuzzing, so it lives with the tests.

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/flowscan/flowscan/internal/flow"
)

// decodeColumns appends the n records encoded in raw to dst, column by
// column over the whole block. The readers use decodeSelected and
// scanSelected; this straightforward decoder is their reference in tests
// and fuzzing.
func (c *columnCodec) decodeColumns(dst []flow.Record, raw []byte, n int, base int64) ([]flow.Record, error) {
	c.scratch(n)
	old := len(dst)
	if cap(dst)-old < n {
		bigger := make([]flow.Record, old, old+n+old/4)
		copy(bigger, dst)
		dst = bigger
	}
	dst = dst[:old+n]
	out := dst[old:]
	var err error
	for col := range numAddrColumns {
		a := c.addrs
		raw, err = decodeAddrColumn(raw, a)
		if err != nil {
			return dst[:old], err
		}
		setAddrColumn(out, col, a)
	}
	// End is stored relative to Start: decoding End needs the starts.
	if cap(c.starts) < n {
		c.starts = make([]uint64, n)
	}
	starts := c.starts[:n]
	for col := range numIntColumns {
		v := c.vals
		if col == colStart {
			v = starts
		}
		raw, err = decodeIntColumn(raw, v, intColumnWidth[col])
		if err != nil {
			return dst[:old], fmt.Errorf("column %d: %w", col, err)
		}
		setIntColumn(out, col, v, starts, base)
	}
	if len(raw) != 0 {
		return dst[:old], fmt.Errorf("%w: %d trailing bytes", errColumns, len(raw))
	}
	return dst, nil
}

func decodeIntColumn(raw []byte, vals []uint64, maxWidth uint8) ([]byte, error) {
	if len(raw) < 1 {
		return raw, errColumns
	}
	width := raw[0]
	raw = raw[1:]
	if width > maxWidth {
		return raw, fmt.Errorf("%w: width %d", errColumns, width)
	}
	n := len(vals)
	if len(raw) < int(width)*n {
		return raw, errColumns
	}
	if width == 0 {
		clear(vals)
		return raw, nil
	}
	plane := raw[:n]
	for i, b := range plane {
		vals[i] = uint64(b)
	}
	for p := 1; p < int(width); p++ {
		plane = raw[p*n : (p+1)*n]
		shift := uint(8 * p)
		for i, b := range plane {
			vals[i] |= uint64(b) << shift
		}
	}
	return raw[int(width)*n:], nil
}

func decodeAddrColumn(raw []byte, addrs []netip.Addr) ([]byte, error) {
	n := len(addrs)
	if len(raw) < n {
		return raw, errColumns
	}
	kinds := raw[:n]
	raw = raw[n:]
	var n4, n6, nz int
	for _, k := range kinds {
		switch k {
		case kindZero:
		case kindV4:
			n4++
		case kindV6:
			n6++
		case kindV6Zone:
			n6++
			nz++
		default:
			return raw, fmt.Errorf("%w: address kind %d", errColumns, k)
		}
	}
	if len(raw) < 4*n4+16*n6 {
		return raw, errColumns
	}
	p4 := raw[:4*n4]
	p6 := raw[4*n4 : 4*n4+16*n6]
	raw = raw[4*n4+16*n6:]
	j4, j6 := 0, 0
	for i, k := range kinds {
		switch k {
		case kindZero:
			addrs[i] = netip.Addr{}
		case kindV4:
			addrs[i] = netip.AddrFrom4([4]byte{p4[j4], p4[n4+j4], p4[2*n4+j4], p4[3*n4+j4]})
			j4++
		default:
			var b [16]byte
			for p := range 16 {
				b[p] = p6[p*n6+j6]
			}
			j6++
			a := netip.AddrFrom16(b)
			if k == kindV6Zone {
				l, m := binary.Uvarint(raw)
				if m <= 0 || l > maxZoneLen || uint64(len(raw)-m) < l {
					return raw, fmt.Errorf("%w: bad zone", errColumns)
				}
				a = a.WithZone(string(raw[m : m+int(l)]))
				raw = raw[m+int(l):]
			}
			addrs[i] = a
		}
	}
	return raw, nil
}
