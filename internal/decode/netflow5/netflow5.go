// Package netflow5 decodes Cisco NetFlow version 5 export datagrams: a
// 24-byte header followed by up to 30 fixed 48-byte records, IPv4 only,
// with 16-bit interface indexes and AS numbers.
package netflow5

import (
	"encoding/binary"
	"net/netip"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/flow"
)

// Wire sizes of the NetFlow v5 header and record.
const (
	HeaderLen  = 24
	RecordLen  = 48
	MaxRecords = 30 // the most records a v5 datagram may carry
)

func init() {
	decode.Register(decode.Factory{
		Format: decode.FormatNetFlow5,
		Match:  Match,
		New:    func(opts decode.Options) decode.Decoder { return New(opts) },
	})
}

// Match reports whether data starts with a NetFlow v5 header.
func Match(data []byte) bool {
	return len(data) >= 2 && data[0] == 0 && data[1] == 5
}

// Decoder decodes NetFlow v5. It is stateless apart from its options, so
// one Decoder may be shared by several goroutines.
type Decoder struct {
	opts decode.Options
}

// New returns a NetFlow v5 decoder.
func New(opts decode.Options) *Decoder { return &Decoder{opts: opts} }

// Format implements decode.Decoder.
func (d *Decoder) Format() decode.Format { return decode.FormatNetFlow5 }

// Decode implements decode.Decoder.
func (d *Decoder) Decode(dst []flow.Record, pkt *decode.Packet) ([]flow.Record, decode.Result, error) {
	b := pkt.Data
	exporter := pkt.Src.Addr().Unmap()
	res := decode.Result{Format: decode.FormatNetFlow5, Exporter: exporter, SeqUnit: decode.SeqFlows, SeqExact: true}
	if len(b) < HeaderLen {
		return dst, res, decode.Errorf(decode.FormatNetFlow5, decode.ReasonShort, "datagram of %d bytes is shorter than the header", len(b))
	}
	if binary.BigEndian.Uint16(b[0:2]) != 5 {
		return dst, res, decode.Errorf(decode.FormatNetFlow5, decode.ReasonVersion, "version %d", binary.BigEndian.Uint16(b[0:2]))
	}
	count := int(binary.BigEndian.Uint16(b[2:4]))
	if count == 0 || count > MaxRecords {
		return dst, res, decode.Errorf(decode.FormatNetFlow5, decode.ReasonCount, "record count %d", count)
	}
	if len(b) < HeaderLen+count*RecordLen {
		return dst, res, decode.Errorf(decode.FormatNetFlow5, decode.ReasonLength, "count %d needs %d bytes, datagram has %d", count, HeaderLen+count*RecordLen, len(b))
	}
	uptime := binary.BigEndian.Uint32(b[4:8])
	exportMilli := int64(binary.BigEndian.Uint32(b[8:12]))*1000 + int64(binary.BigEndian.Uint32(b[12:16]))/1_000_000
	res.Sequence = binary.BigEndian.Uint32(b[16:20])
	res.Domain = uint32(b[20])<<8 | uint32(b[21])
	res.SeqAdvance = uint32(count)
	rate := uint32(binary.BigEndian.Uint16(b[22:24]) & 0x3fff)
	if d.opts.SamplingOverride != nil {
		if r, ok := d.opts.SamplingOverride(exporter); ok {
			rate = r
		}
	}

	n := len(dst)
	dst = grow(dst, count)
	for i := 0; i < count; i++ {
		p := b[HeaderLen+i*RecordLen : HeaderLen+(i+1)*RecordLen : HeaderLen+(i+1)*RecordLen]
		r := &dst[n+i]
		*r = flow.Record{
			Exporter: exporter,
			Domain:   res.Domain,
			SrcAddr:  netip.AddrFrom4([4]byte(p[0:4])),
			DstAddr:  netip.AddrFrom4([4]byte(p[4:8])),
			InIf:     uint32(binary.BigEndian.Uint16(p[12:14])),
			OutIf:    uint32(binary.BigEndian.Uint16(p[14:16])),
			Packets:  uint64(binary.BigEndian.Uint32(p[16:20])),
			Bytes:    uint64(binary.BigEndian.Uint32(p[20:24])),
			Start:    decode.UptimeToUnixMilli(binary.BigEndian.Uint32(p[24:28]), uptime, exportMilli),
			End:      decode.UptimeToUnixMilli(binary.BigEndian.Uint32(p[28:32]), uptime, exportMilli),
			SrcPort:  binary.BigEndian.Uint16(p[32:34]),
			DstPort:  binary.BigEndian.Uint16(p[34:36]),
			TCPFlags: p[37],
			Proto:    p[38],
			TOS:      p[39],
			SrcAS:    uint32(binary.BigEndian.Uint16(p[40:42])),
			DstAS:    uint32(binary.BigEndian.Uint16(p[42:44])),
			SrcMask:  p[44],
			DstMask:  p[45],
		}
		// 0.0.0.0 means "no next hop"; report it as unknown, as the
		// template formats do when the field is absent.
		if nh := [4]byte(p[8:12]); nh != [4]byte{} {
			r.NextHop = netip.AddrFrom4(nh)
		}
		r.ApplySampling(rate)
	}
	res.Flows = count
	return dst, res, nil
}

// grow extends s by n zeroed-or-reused elements, reallocating only when the
// capacity is exhausted.
func grow(s []flow.Record, n int) []flow.Record {
	if cap(s)-len(s) < n {
		ns := make([]flow.Record, len(s), 2*cap(s)+n)
		copy(ns, s)
		s = ns
	}
	return s[:len(s)+n]
}

var _ decode.Decoder = (*Decoder)(nil)
