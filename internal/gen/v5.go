package gen

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
)

// NetFlow v5 wire sizes.
const (
	V5HeaderLen  = 24 // bytes in a NetFlow v5 header
	V5RecordLen  = 48 // bytes in a NetFlow v5 flow record
	V5MaxRecords = 30 // most records a NetFlow v5 datagram may carry
)

// asTrans is AS_TRANS (RFC 6793), sent in 16-bit AS fields for 32-bit ASNs.
const asTrans = 23456

// NetFlow v5 sampling modes (top two bits of sampling_interval).
const (
	V5SamplingNone          = 0 // no sampling announced
	V5SamplingDeterministic = 1 // 1 in N, deterministic
	V5SamplingRandom        = 2 // 1 in N, random
)

// V5Header holds the per-datagram NetFlow v5 header fields; count is taken
// from the number of records.
type V5Header struct {
	// SysUptime is the exporter's uptime in milliseconds at export time.
	SysUptime uint32
	// UnixSecs and UnixNsecs are the export wall-clock time.
	UnixSecs, UnixNsecs uint32
	// FlowSequence is the number of flows exported before this datagram.
	FlowSequence uint32
	// EngineType and EngineID identify the flow-switching engine.
	EngineType, EngineID uint8
	// SamplingMode is one of the V5Sampling constants (2 bits).
	SamplingMode uint8
	// SamplingInterval is N of 1-in-N sampling (14 bits, at most 16383).
	SamplingInterval uint16
}

// NewV5Header returns a header for export time now from an exporter that
// booted at boot.
func NewV5Header(now, boot time.Time, seq uint32) V5Header {
	return V5Header{
		SysUptime:    uint32(now.Sub(boot).Milliseconds()),
		UnixSecs:     uint32(now.Unix()),
		UnixNsecs:    uint32(now.Nanosecond()),
		FlowSequence: seq,
	}
}

// unixMilli returns the header's wall clock in Unix milliseconds, computed
// the way collectors do (nanoseconds truncated).
func (h *V5Header) unixMilli() int64 {
	return int64(h.UnixSecs)*1000 + int64(h.UnixNsecs)/1_000_000
}

// uptimeAt converts an absolute Unix millisecond time to the exporter's
// uptime clock, relative to the header (modulo 2^32).
func uptimeAt(ms int64, hdrUptime uint32, hdrMilli int64) uint32 {
	return hdrUptime - uint32(hdrMilli-ms)
}

// sat32 saturates a counter at the largest 32-bit value.
func sat32(v uint64) uint32 {
	if v > 0xffffffff {
		return 0xffffffff
	}
	return uint32(v)
}

// as16 maps a 32-bit AS number to a 16-bit field (AS_TRANS when too big).
func as16(as uint32) uint16 {
	if as > 0xffff {
		return asTrans
	}
	return uint16(as)
}

// v4bytes returns the 4 bytes of an IPv4 (or IPv4-mapped) address, zero
// for anything else.
func v4bytes(b []byte, a netip.Addr) {
	if a.Is4() || a.Is4In6() {
		v := a.Unmap().As4()
		copy(b, v[:])
		return
	}
	b[0], b[1], b[2], b[3] = 0, 0, 0, 0
}

// AppendNetFlow5 appends one NetFlow v5 datagram carrying recs to dst.
// Only the first V5MaxRecords records are encoded. IPv6 addresses are
// written as 0.0.0.0 (v5 cannot carry them), interface indexes are
// truncated to 16 bits, AS numbers above 65535 become AS_TRANS (23456)
// and counters saturate at 2^32-1. Start and End are converted to uptime
// milliseconds relative to the header.
func AppendNetFlow5(dst []byte, h V5Header, recs []flow.Record) []byte {
	if len(recs) > V5MaxRecords {
		recs = recs[:V5MaxRecords]
	}
	n := len(dst)
	dst = growBytes(dst, V5HeaderLen+len(recs)*V5RecordLen)
	b := dst[n:]
	be := binary.BigEndian
	be.PutUint16(b[0:], 5)
	be.PutUint16(b[2:], uint16(len(recs)))
	be.PutUint32(b[4:], h.SysUptime)
	be.PutUint32(b[8:], h.UnixSecs)
	be.PutUint32(b[12:], h.UnixNsecs)
	be.PutUint32(b[16:], h.FlowSequence)
	b[20] = h.EngineType
	b[21] = h.EngineID
	be.PutUint16(b[22:], uint16(h.SamplingMode&3)<<14|h.SamplingInterval&0x3fff)
	hm := h.unixMilli()
	for i := range recs {
		r := &recs[i]
		p := b[V5HeaderLen+i*V5RecordLen : V5HeaderLen+(i+1)*V5RecordLen]
		v4bytes(p[0:4], r.SrcAddr)
		v4bytes(p[4:8], r.DstAddr)
		v4bytes(p[8:12], r.NextHop)
		be.PutUint16(p[12:], uint16(r.InIf))
		be.PutUint16(p[14:], uint16(r.OutIf))
		be.PutUint32(p[16:], sat32(r.Packets))
		be.PutUint32(p[20:], sat32(r.Bytes))
		be.PutUint32(p[24:], uptimeAt(r.Start, h.SysUptime, hm))
		be.PutUint32(p[28:], uptimeAt(r.End, h.SysUptime, hm))
		be.PutUint16(p[32:], r.SrcPort)
		be.PutUint16(p[34:], r.DstPort)
		p[36] = 0
		p[37] = r.TCPFlags
		p[38] = r.Proto
		p[39] = r.TOS
		be.PutUint16(p[40:], as16(r.SrcAS))
		be.PutUint16(p[42:], as16(r.DstAS))
		p[44] = r.SrcMask
		p[45] = r.DstMask
		p[46], p[47] = 0, 0
	}
	return dst
}

// V5Datagram returns the size of a NetFlow v5 datagram with n records.
func V5Datagram(n int) int { return V5HeaderLen + n*V5RecordLen }

// V5MaxRecordsFor returns how many v5 records fit in maxDatagram bytes
// (at most V5MaxRecords).
func V5MaxRecordsFor(maxDatagram int) int {
	n := (maxDatagram - V5HeaderLen) / V5RecordLen
	return max(0, min(n, V5MaxRecords))
}

// growBytes extends b by n bytes, reallocating only when capacity runs out.
func growBytes(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), 2*cap(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}
