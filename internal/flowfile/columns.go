package flowfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/klauspost/compress/huff0"

	"github.com/flowscan/flowscan/internal/flow"
)

// Integer columns in payload order, after the four address columns.
const (
	colStart = iota
	colEnd
	colBytes
	colPackets
	colDomain
	colSamplingRate
	colInIf
	colOutIf
	colSrcAS
	colDstAS
	colSrcPort
	colDstPort
	colSrcVLAN
	colDstVLAN
	colProto
	colTOS
	colTCPFlags
	colSrcMask
	colDstMask
	colSrcMAC
	colDstMAC
	numIntColumns
)

// intColumnWidth is the largest width (bytes) each integer column may have.
var intColumnWidth = [numIntColumns]uint8{
	colStart: 8, colEnd: 8, colBytes: 8, colPackets: 8,
	colDomain: 4, colSamplingRate: 4, colInIf: 4, colOutIf: 4, colSrcAS: 4, colDstAS: 4,
	colSrcPort: 2, colDstPort: 2, colSrcVLAN: 2, colDstVLAN: 2,
	colProto: 1, colTOS: 1, colTCPFlags: 1, colSrcMask: 1, colDstMask: 1,
	colSrcMAC: 6, colDstMAC: 6,
}

// Address columns in payload order.
const (
	addrExporter = iota
	addrSrc
	addrDst
	addrNextHop
	numAddrColumns
)

// Address kinds in an address column.
const (
	kindZero   = 0
	kindV4     = 1
	kindV6     = 2
	kindV6Zone = 3
)

// columnCodec holds the scratch space of one encoder or decoder; reusing it
// makes steady-state encoding and decoding allocation-free.
type columnCodec struct {
	vals   []uint64
	starts []uint64
	addrs  []netip.Addr
	layout blockLayout
	enc    *sectionEncoder // allocated by the first appendSections
	// arena holds the streams of a sections payload that are not stored
	// raw; huff decodes them.
	arena []byte
	huff  huff0.Scratch
	// dicts holds the dictionaries of integer sections in dictionary
	// form; allocated when the first one is read.
	dicts *[numIntColumns][256]uint64
}

func (c *columnCodec) scratch(n int) {
	if cap(c.vals) < n {
		c.vals = make([]uint64, n)
		c.addrs = make([]netip.Addr, n)
	}
	c.vals = c.vals[:n]
	c.addrs = c.addrs[:n]
}

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

func macToUint(m [6]byte) uint64 {
	return uint64(m[0]) | uint64(m[1])<<8 | uint64(m[2])<<16 | uint64(m[3])<<24 | uint64(m[4])<<32 | uint64(m[5])<<40
}

func uintToMAC(v uint64) [6]byte {
	return [6]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24), byte(v >> 32), byte(v >> 40)}
}

// blockSummary is what a data block header says about its records.
type blockSummary struct {
	minStart, maxEnd int64
	packets, bytes   uint64
}

var errColumns = errors.New("malformed data block columns")

// Columns is a set of Record fields, for decoding only some of them (see
// Reader.SetColumns). Its bits follow the payload's column order.
type Columns uint32

// The columns of a data block, one per Record field.
const (
	ColExporter Columns = 1 << iota
	ColSrcAddr
	ColDstAddr
	ColNextHop
	ColStart
	ColEnd
	ColBytes
	ColPackets
	ColDomain
	ColSamplingRate
	ColInIf
	ColOutIf
	ColSrcAS
	ColDstAS
	ColSrcPort
	ColDstPort
	ColSrcVLAN
	ColDstVLAN
	ColProto
	ColTOS
	ColTCPFlags
	ColSrcMask
	ColDstMask
	ColSrcMAC
	ColDstMAC
	// AllColumns selects every field.
	AllColumns Columns = 1<<(numAddrColumns+numIntColumns) - 1
)

func addrColumn(col int) Columns { return 1 << col }
func intColumn(col int) Columns  { return 1 << (numAddrColumns + col) }

// decodeSelected appends the n records of the version-1 payload raw to
// dst, setting only the fields in cols; see appendLocated. Unselected
// columns are skipped but checked as strictly as decoding them would, so
// every selection accepts exactly the payloads a full decode accepts.
func (c *columnCodec) decodeSelected(dst []flow.Record, raw []byte, n int, base int64, cols Columns) ([]flow.Record, error) {
	if err := c.locate(raw, n, base); err != nil {
		return dst, err
	}
	return c.appendLocated(dst, cols), nil
}

// locateBlock checks a data block payload of n records (a version-1
// payload, or a sections payload when sections is set) and records where
// the columns in cols lie, for appendLocated and scanLocated.
func (c *columnCodec) locateBlock(payload []byte, sections bool, n int, base int64, cols Columns) error {
	if sections {
		return c.locateSections(payload, n, base, cols)
	}
	return c.locate(payload, n, base)
}

// appendLocated appends the records of the payload located last to dst,
// setting only the fields in cols (which locate must have covered); the
// appended records' other fields keep what dst's spare capacity held
// (zero in new memory).
func (c *columnCodec) appendLocated(dst []flow.Record, cols Columns) []flow.Record {
	n := c.layout.n
	old := len(dst)
	if cap(dst)-old < n {
		bigger := make([]flow.Record, old, old+n+old/4)
		copy(bigger, dst)
		dst = bigger
	}
	dst = dst[:old+n]
	c.decodeRange(dst[old:], 0, cols)
	return dst
}

// scanLocated decodes the records of the payload located last into buf,
// len(buf) (> 0) records at a time, setting only the fields in cols, and
// calls fn with each run of records in order. Decoding a run that fits in
// the CPU cache and using it at once is faster than decoding a whole block
// into memory and then reading it back.
func (c *columnCodec) scanLocated(buf []flow.Record, cols Columns, fn func([]flow.Record)) {
	n := c.layout.n
	for lo := 0; lo < n; lo += len(buf) {
		out := buf[:min(len(buf), n-lo)]
		c.decodeRange(out, lo, cols)
		fn(out)
	}
}

// addrLayout is where one address column's parts lie in a payload, and
// how far decodeRange has read it.
type addrLayout struct {
	kinds  []byte
	p4     [4][]byte  // byte planes of the IPv4 addresses, n4 bytes each
	p6     [16][]byte // byte planes of the IPv6 addresses, n6 bytes each
	n4, n6 int
	// j4 and j6 count the IPv4 and IPv6 addresses before the next record
	// to decode; zones holds the zone names from there on.
	j4, j6 int
	zones  []byte
}

// intLayout is where one integer column's byte planes lie in a payload:
// the planes that vary, and the bytes of those that do not.
type intLayout struct {
	fixed  uint64    // the constant planes' bytes in place
	planes [8][]byte // the varying planes, n bytes each
	shifts [8]uint8  // of each varying plane's byte in the value
	np     int       // varying planes
	// dict and index replace the planes of a column in dictionary form
	// (version 2): value i is dict[index[i]].
	dict  *[256]uint64
	index []byte
}

// blockLayout is a checked payload's columns, set by locate.
type blockLayout struct {
	n     int
	base  int64
	addrs [numAddrColumns]addrLayout
	ints  [numIntColumns]intLayout
}

// locate checks the whole payload of n records (as a full decode would)
// and records where its columns lie in c.layout, for decodeRange.
func (c *columnCodec) locate(raw []byte, n int, base int64) error {
	l := &c.layout
	l.n, l.base = n, base
	for col := range numAddrColumns {
		a := &l.addrs[col]
		if len(raw) < n {
			return errColumns
		}
		a.kinds = raw[:n]
		raw = raw[n:]
		n4, n6, nz, err := countKinds(a.kinds)
		if err != nil {
			return err
		}
		if len(raw) < 4*n4+16*n6 {
			return errColumns
		}
		a.n4, a.n6, a.j4, a.j6 = n4, n6, 0, 0
		for p := range a.p4 {
			a.p4[p] = raw[p*n4 : (p+1)*n4]
		}
		raw = raw[4*n4:]
		for p := range a.p6 {
			a.p6[p] = raw[p*n6 : (p+1)*n6]
		}
		raw = raw[16*n6:]
		zones := raw
		for range nz {
			l, m := binary.Uvarint(raw)
			if m <= 0 || l > maxZoneLen || uint64(len(raw)-m) < l {
				return fmt.Errorf("%w: bad zone", errColumns)
			}
			raw = raw[m+int(l):]
		}
		a.zones = zones[:len(zones)-len(raw)]
	}
	for col := range numIntColumns {
		if len(raw) < 1 {
			return fmt.Errorf("column %d: %w", col, errColumns)
		}
		width := raw[0]
		raw = raw[1:]
		if width > intColumnWidth[col] {
			return fmt.Errorf("column %d: %w: width %d", col, errColumns, width)
		}
		if len(raw) < int(width)*n {
			return fmt.Errorf("column %d: %w", col, errColumns)
		}
		il := &l.ints[col]
		*il = intLayout{np: int(width)}
		for p := range int(width) {
			il.planes[p], il.shifts[p] = raw[p*n:(p+1)*n], uint8(8*p)
		}
		raw = raw[int(width)*n:]
	}
	if len(raw) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errColumns, len(raw))
	}
	return nil
}

// decodeRange sets the fields in cols of out to records lo..lo+len(out)
// of the payload located last. Ranges must follow each other from 0 with
// the same cols (the address columns are read in order); locate checked
// everything, so it cannot fail.
func (c *columnCodec) decodeRange(out []flow.Record, lo int, cols Columns) {
	l := &c.layout
	n := len(out)
	c.scratch(n)
	for col := range numAddrColumns {
		a := &l.addrs[col]
		if cols&addrColumn(col) == 0 {
			continue // cols is the same for every range of a block
		}
		a.decode(c.addrs, lo)
		setAddrColumn(out, col, c.addrs)
	}
	// End is stored relative to Start: decoding End needs the starts.
	if cap(c.starts) < n {
		c.starts = make([]uint64, n)
	}
	starts := c.starts[:n]
	base := l.base
	for col := range numIntColumns {
		if cols&intColumn(col) == 0 && (col != colStart || cols&ColEnd == 0) {
			continue
		}
		v := c.vals
		if col == colStart {
			v = starts
		}
		l.ints[col].decode(v, lo)
		if col != colStart || cols&ColStart != 0 {
			setIntColumn(out, col, v, starts, base)
		}
	}
}

// setAddrColumn stores addrs into address column col of out.
func setAddrColumn(out []flow.Record, col int, addrs []netip.Addr) {
	addrs = addrs[:len(out)] // one length for both: no bounds checks
	switch col {
	case addrExporter:
		for i := range out {
			out[i].Exporter = addrs[i]
		}
	case addrSrc:
		for i := range out {
			out[i].SrcAddr = addrs[i]
		}
	case addrDst:
		for i := range out {
			out[i].DstAddr = addrs[i]
		}
	case addrNextHop:
		for i := range out {
			out[i].NextHop = addrs[i]
		}
	}
}

// setIntColumn stores the decoded values v of integer column col into
// out (End needs the decoded starts; Start and End are relative to base).
func setIntColumn(out []flow.Record, col int, v, starts []uint64, base int64) {
	switch col {
	case colStart:
		for i := range out {
			out[i].Start = base + int64(v[i])
		}
	case colEnd:
		for i := range out {
			out[i].End = base + int64(starts[i]) + unzigzag(v[i])
		}
	case colBytes:
		for i := range out {
			out[i].Bytes = v[i]
		}
	case colPackets:
		for i := range out {
			out[i].Packets = v[i]
		}
	case colDomain:
		for i := range out {
			out[i].Domain = uint32(v[i])
		}
	case colSamplingRate:
		for i := range out {
			out[i].SamplingRate = uint32(v[i])
		}
	case colInIf:
		for i := range out {
			out[i].InIf = uint32(v[i])
		}
	case colOutIf:
		for i := range out {
			out[i].OutIf = uint32(v[i])
		}
	case colSrcAS:
		for i := range out {
			out[i].SrcAS = uint32(v[i])
		}
	case colDstAS:
		for i := range out {
			out[i].DstAS = uint32(v[i])
		}
	case colSrcPort:
		for i := range out {
			out[i].SrcPort = uint16(v[i])
		}
	case colDstPort:
		for i := range out {
			out[i].DstPort = uint16(v[i])
		}
	case colSrcVLAN:
		for i := range out {
			out[i].SrcVLAN = uint16(v[i])
		}
	case colDstVLAN:
		for i := range out {
			out[i].DstVLAN = uint16(v[i])
		}
	case colProto:
		for i := range out {
			out[i].Proto = uint8(v[i])
		}
	case colTOS:
		for i := range out {
			out[i].TOS = uint8(v[i])
		}
	case colTCPFlags:
		for i := range out {
			out[i].TCPFlags = uint8(v[i])
		}
	case colSrcMask:
		for i := range out {
			out[i].SrcMask = uint8(v[i])
		}
	case colDstMask:
		for i := range out {
			out[i].DstMask = uint8(v[i])
		}
	case colSrcMAC:
		for i := range out {
			out[i].SrcMAC = uintToMAC(v[i])
		}
	case colDstMAC:
		for i := range out {
			out[i].DstMAC = uintToMAC(v[i])
		}
	}
}

// decode sets vals to values lo..lo+len(vals) of the column.
func (c *intLayout) decode(vals []uint64, lo int) {
	hi := lo + len(vals)
	if c.dict != nil {
		for i, b := range c.index[lo:hi] {
			vals[i] = c.dict[b]
		}
		return
	}
	if c.np == 0 {
		for i := range vals {
			vals[i] = c.fixed
		}
		return
	}
	fixed := c.fixed
	// One pass over the values for up to three planes (times, counters
	// and most identifiers have one to three), more passes beyond.
	p0, s0 := c.planes[0][lo:hi], c.shifts[0]&63
	switch c.np {
	case 1:
		for i, b := range p0 {
			vals[i] = fixed | uint64(b)<<s0
		}
		return
	case 2:
		p1, s1 := c.planes[1][lo:hi], c.shifts[1]&63
		p1 = p1[:len(p0)]
		for i, b := range p0 {
			vals[i] = fixed | uint64(b)<<s0 | uint64(p1[i])<<s1
		}
		return
	}
	p1, s1 := c.planes[1][lo:hi], c.shifts[1]&63
	p2, s2 := c.planes[2][lo:hi], c.shifts[2]&63
	p1, p2 = p1[:len(p0)], p2[:len(p0)]
	for i, b := range p0 {
		vals[i] = fixed | uint64(b)<<s0 | uint64(p1[i])<<s1 | uint64(p2[i])<<s2
	}
	for p := 3; p < c.np; p++ {
		shift := c.shifts[p] & 63
		for i, b := range c.planes[p][lo:hi] {
			vals[i] |= uint64(b) << shift
		}
	}
}

// decode sets addrs to addresses lo..lo+len(addrs) of the column and
// moves its cursors past them.
func (a *addrLayout) decode(addrs []netip.Addr, lo int) {
	p4, p6 := &a.p4, &a.p6
	j4, j6 := a.j4, a.j6
	for i, k := range a.kinds[lo : lo+len(addrs)] {
		switch k {
		case kindZero:
			addrs[i] = netip.Addr{}
		case kindV4:
			addrs[i] = netip.AddrFrom4([4]byte{p4[0][j4], p4[1][j4], p4[2][j4], p4[3][j4]})
			j4++
		default:
			var b [16]byte
			for p := range 16 {
				b[p] = p6[p][j6]
			}
			j6++
			addr := netip.AddrFrom16(b)
			if k == kindV6Zone {
				var zone []byte
				zone, a.zones = nextZone(a.zones)
				addr = addr.WithZone(string(zone))
			}
			addrs[i] = addr
		}
	}
	a.j4, a.j6 = j4, j6
}

// nextZone splits a checked zone list into its first name and the rest.
func nextZone(zones []byte) (zone, rest []byte) {
	l, m := binary.Uvarint(zones)
	return zones[m : m+int(l)], zones[m+int(l):]
}

// Kind bytes, eight at a time.
const (
	allKindZero = 0
	allKindV4   = 0x0101010101010101
	kindHighs   = 0xfcfcfcfcfcfcfcfc // set in any byte above kindV6Zone
)

// countKinds counts the IPv4 and IPv6 addresses and the zones of an
// address column's kind bytes, or fails on an unknown kind.
func countKinds(kinds []byte) (n4, n6, nz int, err error) {
	i := 0
	for ; i+8 <= len(kinds); i += 8 {
		w := binary.LittleEndian.Uint64(kinds[i:])
		switch {
		case w == allKindV4:
			n4 += 8
			continue
		case w == allKindZero:
			continue
		case w&kindHighs != 0:
			return 0, 0, 0, fmt.Errorf("%w: address kind above %d", errColumns, kindV6Zone)
		}
		for _, k := range kinds[i : i+8] {
			switch k {
			case kindV4:
				n4++
			case kindV6:
				n6++
			case kindV6Zone:
				n6++
				nz++
			}
		}
	}
	for _, k := range kinds[i:] {
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
			return 0, 0, 0, fmt.Errorf("%w: address kind %d", errColumns, k)
		}
	}
	return n4, n6, nz, nil
}
