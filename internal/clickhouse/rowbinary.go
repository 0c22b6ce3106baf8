package clickhouse

import (
	"encoding/binary"
	"errors"
	"math"
	"net/netip"

	"github.com/flowscan/flowscan/internal/flow"
)

// RowSize is the size of one raw-table row in RowBinary.
const RowSize = 4 + 4 + 4 + 16 + 4 + 16*3 + 2 + 2 + 1 + 1 + 1 + 4*4 + 1 + 1 + 8 + 8 + 4 + 2 + 2 + 8 + 8 + 8

// AppendRow appends r as one RowBinary row of the raw table (columns in
// RawColumnList order) tagged with batchID. Addresses are stored as 16
// bytes, IPv4 as IPv4-mapped IPv6; times as whole seconds (DateTime),
// with the duration kept in milliseconds. It does not allocate when dst
// has room for RowSize more bytes.
func AppendRow(dst []byte, r *flow.Record, batchID uint64) []byte {
	n := len(dst)
	if cap(dst)-n < RowSize {
		nd := make([]byte, n, 2*cap(dst)+RowSize)
		copy(nd, dst)
		dst = nd
	}
	b := dst[n : n+RowSize]
	le := binary.LittleEndian
	le.PutUint32(b[0:], unixSeconds(r.Start))
	le.PutUint32(b[4:], unixSeconds(r.End))
	d := r.End - r.Start
	if d < 0 {
		d = 0
	} else if d > math.MaxUint32 {
		d = math.MaxUint32
	}
	le.PutUint32(b[8:], uint32(d))
	putAddr(b[12:], r.Exporter)
	le.PutUint32(b[28:], r.Domain)
	putAddr(b[32:], r.SrcAddr)
	putAddr(b[48:], r.DstAddr)
	putAddr(b[64:], r.NextHop)
	le.PutUint16(b[80:], r.SrcPort)
	le.PutUint16(b[82:], r.DstPort)
	b[84], b[85], b[86] = r.Proto, r.TOS, r.TCPFlags
	le.PutUint32(b[87:], r.InIf)
	le.PutUint32(b[91:], r.OutIf)
	le.PutUint32(b[95:], r.SrcAS)
	le.PutUint32(b[99:], r.DstAS)
	b[103], b[104] = r.SrcMask, r.DstMask
	le.PutUint64(b[105:], r.Bytes)
	le.PutUint64(b[113:], r.Packets)
	le.PutUint32(b[121:], r.SamplingRate)
	le.PutUint16(b[125:], r.SrcVLAN)
	le.PutUint16(b[127:], r.DstVLAN)
	le.PutUint64(b[129:], macUint(r.SrcMAC))
	le.PutUint64(b[137:], macUint(r.DstMAC))
	le.PutUint64(b[145:], batchID)
	return dst[:n+RowSize]
}

// errShortRow is returned by DecodeRow for a truncated row.
var errShortRow = errors.New("clickhouse: truncated RowBinary row")

// DecodeRow reads one raw-table row written by AppendRow (or selected
// with the columns of RawColumnList, FORMAT RowBinary) into r and returns
// the batch id. Times come back with whole-second End and Start = End -
// duration.
func DecodeRow(b []byte, r *flow.Record) (batchID uint64, err error) {
	if len(b) < RowSize {
		return 0, errShortRow
	}
	le := binary.LittleEndian
	end := int64(le.Uint32(b[4:])) * 1000
	dur := int64(le.Uint32(b[8:]))
	*r = flow.Record{
		End: end, Start: end - dur,
		Exporter: getAddr(b[12:]), Domain: le.Uint32(b[28:]),
		SrcAddr: getAddr(b[32:]), DstAddr: getAddr(b[48:]), NextHop: getAddr(b[64:]),
		SrcPort: le.Uint16(b[80:]), DstPort: le.Uint16(b[82:]),
		Proto: b[84], TOS: b[85], TCPFlags: b[86],
		InIf: le.Uint32(b[87:]), OutIf: le.Uint32(b[91:]), SrcAS: le.Uint32(b[95:]), DstAS: le.Uint32(b[99:]),
		SrcMask: b[103], DstMask: b[104],
		Bytes: le.Uint64(b[105:]), Packets: le.Uint64(b[113:]), SamplingRate: le.Uint32(b[121:]),
		SrcVLAN: le.Uint16(b[125:]), DstVLAN: le.Uint16(b[127:]),
		SrcMAC: uintMAC(le.Uint64(b[129:])), DstMAC: uintMAC(le.Uint64(b[137:])),
	}
	return le.Uint64(b[145:]), nil
}

func unixSeconds(ms int64) uint32 {
	s := ms / 1000
	if s < 0 {
		return 0
	}
	if s > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(s)
}

// putAddr writes a as 16 bytes: IPv4 as ::ffff:a.b.c.d, the zero Addr as
// all zeros.
func putAddr(b []byte, a netip.Addr) {
	switch {
	case !a.IsValid():
		clear(b[:16])
	case a.Is4():
		clear(b[:10])
		b[10], b[11] = 0xff, 0xff
		x := a.As4()
		copy(b[12:16], x[:])
	default:
		x := a.As16()
		copy(b[:16], x[:])
	}
}

// getAddr reads 16 bytes back: all zeros is the zero Addr (unknown),
// IPv4-mapped becomes IPv4.
func getAddr(b []byte) netip.Addr {
	var x [16]byte
	copy(x[:], b[:16])
	if x == ([16]byte{}) {
		return netip.Addr{}
	}
	return netip.AddrFrom16(x).Unmap()
}

// AddrBytes is the 16-byte form of a as stored in the tables.
func AddrBytes(a netip.Addr) [16]byte {
	var b [16]byte
	putAddr(b[:], a)
	return b
}

func macUint(m [6]byte) uint64 {
	return uint64(m[0])<<40 | uint64(m[1])<<32 | uint64(m[2])<<24 | uint64(m[3])<<16 | uint64(m[4])<<8 | uint64(m[5])
}

func uintMAC(v uint64) [6]byte {
	return [6]byte{byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}
