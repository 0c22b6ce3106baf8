package flowfile

import (
	"encoding/binary"
	"net/netip"

	"github.com/flowscan/flowscan/internal/flow"
)

// Storage of the integer columns in a colBlock, by width: the index of
// each column in its class.
const (
	u64Start = iota
	u64End
	u64Bytes
	u64Packets
	u64SrcMAC
	u64DstMAC
	numU64
)

const (
	numU32 = colDstAS - colDomain + 1    // domain, sampling rate, interfaces, AS numbers
	numU16 = colDstVLAN - colSrcPort + 1 // ports and VLANs
	numU8  = colDstMask - colProto + 1   // protocol, TOS, TCP flags, prefix lengths
)

// colBlock is a block of records stored column by column, the form the
// sections encoder reads. Writer.Write transposes the caller's records into
// it while they are in the CPU cache, gathering the statistics the encoder
// lays its planes out by, so that the background writer reads compact,
// pointer-free columns (about half the bytes of the records) instead of
// copies of the records.
type colBlock struct {
	n  int // records in the block
	st encodeStats
	// Address columns: every record's kind, and the IPv4 and IPv6
	// addresses in record order (IPv4 as the little-endian number of its
	// four bytes). Zones are rare and kept as strings.
	kinds [numAddrColumns][]byte
	v4    [numAddrColumns][]uint32
	v6    [numAddrColumns][][16]byte
	zones [numAddrColumns][]string
	// Integer columns by width. Start and End are stored as they are;
	// the encoder derives the stored values (start offset, zigzag
	// duration).
	u64 [numU64][]uint64
	u32 [numU32][]uint32
	u16 [numU16][]uint16
	u8  [numU8][]uint8
}

// newColBlock returns an empty block with room for n records.
func newColBlock(n int) *colBlock {
	b := &colBlock{}
	b.grow(n)
	b.reset()
	return b
}

// capacity is how many records b holds.
func (b *colBlock) capacity() int { return len(b.u64[0]) }

// grow makes room for n records (dropping the contents when it has to
// reallocate).
func (b *colBlock) grow(n int) {
	if b.capacity() >= n {
		return
	}
	for i := range b.kinds {
		b.kinds[i] = make([]byte, n)
		b.v4[i] = make([]uint32, n)
	}
	for i := range b.u64 {
		b.u64[i] = make([]uint64, n)
	}
	for i := range b.u32 {
		b.u32[i] = make([]uint32, n)
	}
	for i := range b.u16 {
		b.u16[i] = make([]uint16, n)
	}
	for i := range b.u8 {
		b.u8[i] = make([]uint8, n)
	}
}

// reset empties b.
func (b *colBlock) reset() {
	b.n = 0
	b.st.reset()
	for i := range b.v6 {
		b.v6[i] = b.v6[i][:0]
		clear(b.zones[i])
		b.zones[i] = b.zones[i][:0]
	}
}

// addrField returns address column col of r.
func addrField(r *flow.Record, col int) netip.Addr {
	switch col {
	case addrExporter:
		return r.Exporter
	case addrSrc:
		return r.SrcAddr
	case addrDst:
		return r.DstAddr
	}
	return r.NextHop
}

// add appends recs (at most the room left) to b and accounts for them in
// its statistics.
func (b *colBlock) add(recs []flow.Record) {
	at := b.n
	recs = recs[:min(len(recs), b.capacity()-at)]
	if len(recs) == 0 {
		return
	}
	for col := range numAddrColumns {
		b.addAddrs(col, recs, at)
	}
	b.addInts(recs, at)
	b.n += len(recs)
}

// addAddrs appends address column col of recs, records at.. of b.
func (b *colBlock) addAddrs(col int, recs []flow.Record, at int) {
	s := &b.st.addrs[col]
	kinds := b.kinds[col][at:][:len(recs)]
	// IPv4 addresses, by far the most common, with the statistics in
	// locals; the rest through s.
	v4 := b.v4[col][s.n4:]
	n4, or4, and4 := 0, s.or4, s.and4
	for i := range recs {
		a := addrField(&recs[i], col)
		if a.Is4() {
			b4 := a.As4()
			u := binary.LittleEndian.Uint32(b4[:])
			or4 |= u
			and4 &= u
			v4[n4] = u
			n4++
			kinds[i] = kindV4
			continue
		}
		k := addrKind(a)
		kinds[i] = k
		if k == kindZero {
			continue
		}
		b16 := a.As16()
		lo, hi := binary.LittleEndian.Uint64(b16[:8]), binary.LittleEndian.Uint64(b16[8:])
		s.or6lo |= lo
		s.and6lo &= lo
		s.or6hi |= hi
		s.and6hi &= hi
		s.n6++
		b.v6[col] = append(b.v6[col], b16)
		if k == kindV6Zone {
			s.nz++
			b.zones[col] = append(b.zones[col], a.Zone())
		}
	}
	s.n4 += n4
	s.or4, s.and4 = or4, and4
	// Whether the column holds one kind only.
	if !s.kindsInitDone {
		s.firstKind, s.kindsInitDone = kinds[0], true
	}
	if !s.kindsUniform {
		return
	}
	if n4 == len(kinds) {
		s.kindsUniform = s.firstKind == kindV4
		return
	}
	for _, k := range kinds {
		if k != s.firstKind {
			s.kindsUniform = false
			return
		}
	}
}

// addInts appends the integer columns of recs, records at.. of b.
func (b *colBlock) addInts(recs []flow.Record, at int) {
	st := &b.st
	or, and := &st.or, &st.and
	end := at + len(recs)
	starts, ends := b.u64[u64Start][at:end], b.u64[u64End][at:end]
	bytesCol, packetsCol := b.u64[u64Bytes][at:end], b.u64[u64Packets][at:end]
	srcMAC, dstMAC := b.u64[u64SrcMAC][at:end], b.u64[u64DstMAC][at:end]
	domain, sampling := b.u32[colDomain-colDomain][at:end], b.u32[colSamplingRate-colDomain][at:end]
	inIf, outIf := b.u32[colInIf-colDomain][at:end], b.u32[colOutIf-colDomain][at:end]
	srcAS, dstAS := b.u32[colSrcAS-colDomain][at:end], b.u32[colDstAS-colDomain][at:end]
	srcPort, dstPort := b.u16[colSrcPort-colSrcPort][at:end], b.u16[colDstPort-colSrcPort][at:end]
	srcVLAN, dstVLAN := b.u16[colSrcVLAN-colSrcPort][at:end], b.u16[colDstVLAN-colSrcPort][at:end]
	proto, tos := b.u8[colProto-colProto][at:end], b.u8[colTOS-colProto][at:end]
	flags := b.u8[colTCPFlags-colProto][at:end]
	srcMask, dstMask := b.u8[colSrcMask-colProto][at:end], b.u8[colDstMask-colProto][at:end]

	packets, bytes := st.sum.packets, st.sum.bytes
	minStart, maxStart, maxEnd := st.sum.minStart, st.maxStart, st.sum.maxEnd
	orDur, andDur := or[colEnd], and[colEnd]
	orBytes, andBytes := or[colBytes], and[colBytes]
	orPackets, andPackets := or[colPackets], and[colPackets]
	// The 32-bit columns two by two, ports and VLANs, the one-byte fields
	// and the MAC addresses are accumulated together until finish.
	or32a, and32a := or[colDomain], and[colDomain]
	or32b, and32b := or[colInIf], and[colInIf]
	or32c, and32c := or[colSrcAS], and[colSrcAS]
	orPorts, andPorts := or[colSrcPort], and[colSrcPort]
	orSmall, andSmall := or[colProto], and[colProto]
	orMAC, andMAC := or[colSrcMAC], and[colSrcMAC]
	orMAC2, andMAC2 := or[colDstMAC], and[colDstMAC]
	for i := range recs {
		r := &recs[i]
		starts[i], ends[i] = uint64(r.Start), uint64(r.End)
		minStart = min(minStart, r.Start)
		maxStart = max(maxStart, r.Start)
		maxEnd = max(maxEnd, r.End)
		d := zigzag(r.End - r.Start)
		orDur |= d
		andDur &= d

		bytesCol[i], packetsCol[i] = r.Bytes, r.Packets
		bytes += r.Bytes
		packets += r.Packets
		orBytes |= r.Bytes
		andBytes &= r.Bytes
		orPackets |= r.Packets
		andPackets &= r.Packets

		domain[i], sampling[i] = r.Domain, r.SamplingRate
		inIf[i], outIf[i] = r.InIf, r.OutIf
		srcAS[i], dstAS[i] = r.SrcAS, r.DstAS
		v := uint64(r.Domain) | uint64(r.SamplingRate)<<32
		or32a |= v
		and32a &= v
		v = uint64(r.InIf) | uint64(r.OutIf)<<32
		or32b |= v
		and32b &= v
		v = uint64(r.SrcAS) | uint64(r.DstAS)<<32
		or32c |= v
		and32c &= v

		srcPort[i], dstPort[i] = r.SrcPort, r.DstPort
		srcVLAN[i], dstVLAN[i] = r.SrcVLAN, r.DstVLAN
		v = uint64(r.SrcPort) | uint64(r.DstPort)<<16 | uint64(r.SrcVLAN)<<32 | uint64(r.DstVLAN)<<48
		orPorts |= v
		andPorts &= v

		proto[i], tos[i], flags[i] = r.Proto, r.TOS, r.TCPFlags
		srcMask[i], dstMask[i] = r.SrcMask, r.DstMask
		v = uint64(r.Proto) | uint64(r.TOS)<<8 | uint64(r.TCPFlags)<<16 | uint64(r.SrcMask)<<24 | uint64(r.DstMask)<<32
		orSmall |= v
		andSmall &= v

		m := mac48(&r.SrcMAC)
		srcMAC[i] = m
		orMAC |= m
		andMAC &= m
		m = mac48(&r.DstMAC)
		dstMAC[i] = m
		orMAC2 |= m
		andMAC2 &= m
	}
	st.sum = blockSummary{minStart: minStart, maxEnd: maxEnd, packets: packets, bytes: bytes}
	st.maxStart = maxStart
	or[colEnd], and[colEnd] = orDur, andDur
	or[colBytes], and[colBytes] = orBytes, andBytes
	or[colPackets], and[colPackets] = orPackets, andPackets
	or[colDomain], and[colDomain] = or32a, and32a
	or[colInIf], and[colInIf] = or32b, and32b
	or[colSrcAS], and[colSrcAS] = or32c, and32c
	or[colSrcPort], and[colSrcPort] = orPorts, andPorts
	or[colProto], and[colProto] = orSmall, andSmall
	or[colSrcMAC], and[colSrcMAC] = orMAC, andMAC
	or[colDstMAC], and[colDstMAC] = orMAC2, andMAC2
}

// values returns the stored values of integer column col of b's records:
// a column of b itself or vals (len ≥ b.n) filled with them. base is the
// block's smallest Start.
func (b *colBlock) values(vals []uint64, col int, base int64) []uint64 {
	n := b.n
	vals = vals[:n]
	switch {
	case col == colStart:
		starts := b.u64[u64Start][:n]
		for i := range vals {
			vals[i] = starts[i] - uint64(base)
		}
	case col == colEnd:
		starts, ends := b.u64[u64Start][:n], b.u64[u64End][:n]
		for i := range vals {
			vals[i] = zigzag(int64(ends[i] - starts[i]))
		}
	case col == colBytes:
		return b.u64[u64Bytes][:n]
	case col == colPackets:
		return b.u64[u64Packets][:n]
	case col == colSrcMAC:
		return b.u64[u64SrcMAC][:n]
	case col == colDstMAC:
		return b.u64[u64DstMAC][:n]
	case col <= colDstAS:
		for i, v := range b.u32[col-colDomain][:n] {
			vals[i] = uint64(v)
		}
	case col <= colDstVLAN:
		for i, v := range b.u16[col-colSrcPort][:n] {
			vals[i] = uint64(v)
		}
	default:
		for i, v := range b.u8[col-colProto][:n] {
			vals[i] = uint64(v)
		}
	}
	return vals
}

// appendRecords appends b's records to dst.
func (b *colBlock) appendRecords(dst []flow.Record) []flow.Record {
	at := len(dst)
	dst = append(dst, make([]flow.Record, b.n)...)
	out := dst[at:]
	addrs := make([]netip.Addr, b.n)
	for col := range numAddrColumns {
		j4, j6, jz := 0, 0, 0
		for i, k := range b.kinds[col][:b.n] {
			var a netip.Addr
			switch k {
			case kindV4:
				var b4 [4]byte
				binary.LittleEndian.PutUint32(b4[:], b.v4[col][j4])
				a = netip.AddrFrom4(b4)
				j4++
			case kindV6, kindV6Zone:
				a = netip.AddrFrom16(b.v6[col][j6])
				j6++
				if k == kindV6Zone {
					a = a.WithZone(b.zones[col][jz])
					jz++
				}
			}
			addrs[i] = a
		}
		setAddrColumn(out, col, addrs)
	}
	for i := range out {
		r := &out[i]
		r.Start, r.End = int64(b.u64[u64Start][i]), int64(b.u64[u64End][i])
		r.Bytes, r.Packets = b.u64[u64Bytes][i], b.u64[u64Packets][i]
		r.SrcMAC, r.DstMAC = uintToMAC(b.u64[u64SrcMAC][i]), uintToMAC(b.u64[u64DstMAC][i])
		r.Domain, r.SamplingRate = b.u32[colDomain-colDomain][i], b.u32[colSamplingRate-colDomain][i]
		r.InIf, r.OutIf = b.u32[colInIf-colDomain][i], b.u32[colOutIf-colDomain][i]
		r.SrcAS, r.DstAS = b.u32[colSrcAS-colDomain][i], b.u32[colDstAS-colDomain][i]
		r.SrcPort, r.DstPort = b.u16[colSrcPort-colSrcPort][i], b.u16[colDstPort-colSrcPort][i]
		r.SrcVLAN, r.DstVLAN = b.u16[colSrcVLAN-colSrcPort][i], b.u16[colDstVLAN-colSrcPort][i]
		r.Proto, r.TOS, r.TCPFlags = b.u8[colProto-colProto][i], b.u8[colTOS-colProto][i], b.u8[colTCPFlags-colProto][i]
		r.SrcMask, r.DstMask = b.u8[colSrcMask-colProto][i], b.u8[colDstMask-colProto][i]
	}
	return dst
}

// mac48 is macToUint with two loads.
func mac48(m *[6]byte) uint64 {
	return uint64(binary.LittleEndian.Uint32(m[:4])) | uint64(binary.LittleEndian.Uint16(m[4:]))<<32
}
