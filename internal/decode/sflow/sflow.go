package sflow

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/flow"
)

// Version is the only sFlow datagram version decoded.
const Version = 5

// MaxBufferedCounters bounds the interface counters a Decoder keeps between
// two DrainCounters calls; counters beyond it are dropped and counted.
const MaxBufferedCounters = 4096

// Sample types (enterprise 0).
const (
	sampleFlow             = 1
	sampleCounters         = 2
	sampleFlowExpanded     = 3
	sampleCountersExpanded = 4
)

// Flow record types (enterprise 0).
const (
	recordRawHeader    = 1
	recordEthernet     = 2
	recordIPv4         = 3
	recordIPv6         = 4
	recordSwitch       = 1001
	recordRouter       = 1002
	recordGateway      = 1003
	counterGenericIf   = 1
	genericIfLen       = 88
	compactIfUnknown   = 0x3fffffff
	compactIfValueMask = 0x3fffffff
)

// Header protocols of a raw packet header record.
const (
	headerEthernet = 1
	headerIPv4     = 11
	headerIPv6     = 12
)

// minSampleLen is the smallest possible sample or record: format and length.
const minItemLen = 8

const format = decode.FormatSFlow5

func init() {
	decode.Register(decode.Factory{
		Format: decode.FormatSFlow5,
		Match:  Match,
		New:    func(opts decode.Options) decode.Decoder { return New(opts) },
	})
}

// Match reports whether data starts with an sFlow v5 header: the 32-bit
// version 5 followed by agent address type 1 (IPv4) or 2 (IPv6). NetFlow v5
// starts with the 16-bit version 5, so its first 16 bits are never 0 like
// sFlow's.
func Match(data []byte) bool {
	if len(data) < 8 || binary.BigEndian.Uint32(data) != Version {
		return false
	}
	t := binary.BigEndian.Uint32(data[4:])
	return t == 1 || t == 2
}

// Decoder decodes sFlow v5 datagrams. Flow decoding keeps no state, but the
// interface counters buffered for DrainCounters do: a Decoder is for one
// goroutine at a time (Decode and DrainCounters from the same goroutine).
type Decoder struct {
	opts     decode.Options
	counters []decode.IfCounters
	dropped  atomic.Uint64
}

// New returns an sFlow v5 decoder.
func New(opts decode.Options) *Decoder { return &Decoder{opts: opts} }

// Format implements decode.Decoder.
func (d *Decoder) Format() decode.Format { return decode.FormatSFlow5 }

// DrainCounters implements decode.CounterSource: it appends the interface
// counters decoded since the last call to dst and forgets them.
func (d *Decoder) DrainCounters(dst []decode.IfCounters) []decode.IfCounters {
	dst = append(dst, d.counters...)
	d.counters = d.counters[:0]
	return dst
}

// DroppedCounters returns how many interface counter records were dropped
// because more than MaxBufferedCounters were waiting to be drained.
func (d *Decoder) DroppedCounters() uint64 { return d.dropped.Load() }

// datagram is the per-datagram decoding context.
type datagram struct {
	agent    netip.Addr
	subAgent uint32
	received int64
	pkt      *decode.Packet
}

// Decode implements decode.Decoder. Every flow sample that carries an IPv4
// or IPv6 packet becomes one record; counter samples with generic interface
// counters are buffered for DrainCounters.
func (d *Decoder) Decode(dst []flow.Record, pkt *decode.Packet) ([]flow.Record, decode.Result, error) {
	b := pkt.Data
	res := decode.Result{Format: format, Exporter: pkt.Src.Addr().Unmap(), SeqUnit: decode.SeqDatagrams, SeqExact: true}
	if len(b) < 8 {
		return dst, res, decode.Errorf(format, decode.ReasonShort, "datagram of %d bytes is shorter than the header", len(b))
	}
	if v := binary.BigEndian.Uint32(b); v != Version {
		return dst, res, decode.Errorf(format, decode.ReasonVersion, "version %d", v)
	}
	var dg datagram
	off := 8
	switch t := binary.BigEndian.Uint32(b[4:]); t {
	case 1:
		if len(b) < off+4+16 {
			return dst, res, decode.Errorf(format, decode.ReasonShort, "datagram of %d bytes is shorter than the header", len(b))
		}
		dg.agent = netip.AddrFrom4([4]byte(b[off : off+4]))
		off += 4
	case 2:
		if len(b) < off+16+16 {
			return dst, res, decode.Errorf(format, decode.ReasonShort, "datagram of %d bytes is shorter than the header", len(b))
		}
		dg.agent = netip.AddrFrom16([16]byte(b[off : off+16]))
		off += 16
	default:
		return dst, res, decode.Errorf(format, decode.ReasonVersion, "agent address type %d", t)
	}
	if dg.agent.IsUnspecified() {
		// An agent that does not know its address yet: attribute its
		// flows to the datagram's source, as the other formats do,
		// rather than lump every such agent together.
		dg.agent = res.Exporter
	}
	dg.subAgent = binary.BigEndian.Uint32(b[off:])
	res.Sequence = binary.BigEndian.Uint32(b[off+4:])
	// b[off+8:off+12] is the agent's uptime, not needed: samples carry no
	// time of their own, records are stamped with the arrival time.
	numSamples := binary.BigEndian.Uint32(b[off+12:])
	off += 16
	res.Exporter, res.Domain, res.SeqAdvance = dg.agent, dg.subAgent, 1
	dg.received = pkt.Received.UnixMilli()
	dg.pkt = pkt

	if uint64(numSamples)*minItemLen > uint64(len(b)-off) {
		return dst, res, decode.Errorf(format, decode.ReasonCount, "%d samples cannot fit in %d bytes", numSamples, len(b)-off)
	}
	n, nc := len(dst), len(d.counters)
	var err *decode.Error
	for i := uint32(0); i < numSamples; i++ {
		var body []byte
		var typ uint32
		typ, body, off, err = item(b, off, "sample")
		if err != nil {
			break
		}
		if typ>>12 != 0 { // enterprise-specific sample: skipped
			continue
		}
		switch typ {
		case sampleFlow, sampleFlowExpanded:
			before := len(dst)
			dst, err = d.flowSample(dst, &dg, body, typ == sampleFlowExpanded)
			if err == nil && len(dst) == before {
				res.Skipped++ // no IP header in it (ARP, MPLS, ...)
			}
		case sampleCounters, sampleCountersExpanded:
			err = d.counterSample(&dg, body, typ == sampleCountersExpanded)
		}
		if err != nil {
			break
		}
	}
	if err != nil {
		d.counters = d.counters[:nc]
		return dst[:n], res, err
	}
	res.Flows = len(dst) - n
	return dst, res, nil
}

// item reads one XDR-tagged item (data format, length, opaque body) at off
// and returns its type, body and the offset after its padding.
func item(b []byte, off int, what string) (typ uint32, body []byte, next int, err *decode.Error) {
	if len(b)-off < minItemLen {
		return 0, nil, off, decode.Errorf(format, decode.ReasonShort, "%s header truncated at offset %d", what, off)
	}
	typ = binary.BigEndian.Uint32(b[off:])
	l := uint64(binary.BigEndian.Uint32(b[off+4:]))
	off += minItemLen
	if padded := (l + 3) &^ 3; padded > uint64(len(b)-off) {
		return 0, nil, off, decode.Errorf(format, decode.ReasonLength, "%s of type %d:%d claims %d bytes, %d left", what, typ>>12, typ&0xfff, l, len(b)-off)
	}
	return typ, b[off : off+int(l)], off + int((l+3)&^3), nil
}

// sampleFacts gathers what the records of one flow sample say about the
// sampled packet before it becomes a flow.Record.
type sampleFacts struct {
	rec        flow.Record
	hasIP      bool
	hasSwitch  bool
	hasMAC     bool
	headerVLAN uint16
}

// flowSample decodes a flow sample (compact or expanded) and appends a
// record if it carried an IP packet.
func (d *Decoder) flowSample(dst []flow.Record, dg *datagram, b []byte, expanded bool) ([]flow.Record, *decode.Error) {
	var rate, in, out, numRecords uint32
	var off int
	be := binary.BigEndian
	if expanded {
		// seq, source type, source index, rate, pool, drops, input format,
		// input value, output format, output value, record count.
		if len(b) < 44 {
			return dst, decode.Errorf(format, decode.ReasonSample, "expanded flow sample of %d bytes", len(b))
		}
		rate = be.Uint32(b[12:])
		if be.Uint32(b[24:]) == 0 {
			in = be.Uint32(b[28:])
		}
		if be.Uint32(b[32:]) == 0 {
			out = be.Uint32(b[36:])
		}
		numRecords, off = be.Uint32(b[40:]), 44
	} else {
		// seq, source id, rate, pool, drops, input, output, record count.
		if len(b) < 32 {
			return dst, decode.Errorf(format, decode.ReasonSample, "flow sample of %d bytes", len(b))
		}
		rate = be.Uint32(b[8:])
		in, out = compactIf(be.Uint32(b[20:])), compactIf(be.Uint32(b[24:]))
		numRecords, off = be.Uint32(b[28:]), 32
	}
	if uint64(numRecords)*minItemLen > uint64(len(b)-off) {
		return dst, decode.Errorf(format, decode.ReasonCount, "%d flow records cannot fit in %d bytes", numRecords, len(b)-off)
	}
	var f sampleFacts
	for i := uint32(0); i < numRecords; i++ {
		typ, body, next, err := item(b, off, "flow record")
		if err != nil {
			return dst, err
		}
		off = next
		if typ>>12 != 0 {
			continue
		}
		if err := f.record(typ, body); err != nil {
			return dst, err
		}
	}
	if !f.hasIP {
		return dst, nil
	}
	r := &f.rec
	if !f.hasSwitch {
		r.SrcVLAN = f.headerVLAN
	}
	r.Exporter, r.Domain = dg.agent, dg.subAgent
	r.Start, r.End = dg.received, dg.received
	r.InIf, r.OutIf = in, out
	r.Packets = 1
	if d.opts.SamplingOverride != nil {
		if o, ok := d.opts.SamplingOverride(dg.agent); ok {
			rate = o
		}
	}
	r.ApplySampling(rate)
	return append(dst, *r), nil
}

// compactIf returns the ifIndex of a compact flow sample's input or output
// field: only format 0 holds one, and 0x3FFFFFFF means unknown.
func compactIf(v uint32) uint32 {
	if v>>30 != 0 || v&compactIfValueMask == compactIfUnknown {
		return 0
	}
	return v & compactIfValueMask
}

// record decodes one flow record into f.
func (f *sampleFacts) record(typ uint32, b []byte) *decode.Error {
	be := binary.BigEndian
	r := &f.rec
	switch typ {
	case recordRawHeader:
		// protocol, frame length, stripped, header<>.
		if len(b) < 16 {
			return decode.Errorf(format, decode.ReasonSample, "raw packet header record of %d bytes", len(b))
		}
		proto, frameLen, stripped := be.Uint32(b), be.Uint32(b[4:]), be.Uint32(b[8:])
		hl := uint64(be.Uint32(b[12:]))
		if hl > uint64(len(b)-16) {
			return decode.Errorf(format, decode.ReasonLength, "sampled header of %d bytes in a record of %d", hl, len(b))
		}
		if f.hasIP {
			return nil
		}
		var wire int64 // packet length from the layer the header starts at
		if frameLen >= stripped {
			wire = int64(frameLen - stripped)
		}
		f.header(proto, b[16:16+hl], wire)
	case recordEthernet:
		// length, src MAC (padded to 8), dst MAC (padded to 8), type.
		if len(b) < 24 {
			return decode.Errorf(format, decode.ReasonSample, "sampled Ethernet record of %d bytes", len(b))
		}
		if !f.hasMAC {
			r.SrcMAC, r.DstMAC = [6]byte(b[4:10]), [6]byte(b[12:18])
			f.hasMAC = true
		}
	case recordIPv4:
		// length, protocol, src, dst, src port, dst port, TCP flags, TOS.
		if len(b) < 32 {
			return decode.Errorf(format, decode.ReasonSample, "sampled IPv4 record of %d bytes", len(b))
		}
		if f.hasIP {
			return nil
		}
		r.Bytes = uint64(be.Uint32(b))
		r.Proto = uint8(be.Uint32(b[4:]))
		r.SrcAddr, r.DstAddr = netip.AddrFrom4([4]byte(b[8:12])), netip.AddrFrom4([4]byte(b[12:16]))
		r.SrcPort, r.DstPort = uint16(be.Uint32(b[16:])), uint16(be.Uint32(b[20:]))
		r.TCPFlags, r.TOS = uint8(be.Uint32(b[24:])), uint8(be.Uint32(b[28:]))
		f.hasIP = true
	case recordIPv6:
		// length, protocol, src, dst, src port, dst port, TCP flags, priority.
		if len(b) < 56 {
			return decode.Errorf(format, decode.ReasonSample, "sampled IPv6 record of %d bytes", len(b))
		}
		if f.hasIP {
			return nil
		}
		r.Bytes = uint64(be.Uint32(b))
		r.Proto = uint8(be.Uint32(b[4:]))
		r.SrcAddr, r.DstAddr = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		r.SrcPort, r.DstPort = uint16(be.Uint32(b[40:])), uint16(be.Uint32(b[44:]))
		r.TCPFlags, r.TOS = uint8(be.Uint32(b[48:])), uint8(be.Uint32(b[52:]))
		f.hasIP = true
	case recordSwitch:
		// src VLAN, src priority, dst VLAN, dst priority.
		if len(b) < 16 {
			return decode.Errorf(format, decode.ReasonSample, "extended switch record of %d bytes", len(b))
		}
		r.SrcVLAN, r.DstVLAN = vlanID(be.Uint32(b)), vlanID(be.Uint32(b[8:]))
		f.hasSwitch = true
	case recordRouter:
		// next hop address, src mask, dst mask.
		nh, rest, ok := address(b)
		if !ok || len(rest) < 8 {
			return decode.Errorf(format, decode.ReasonSample, "extended router record of %d bytes", len(b))
		}
		r.NextHop = nh
		r.SrcMask, r.DstMask = mask(be.Uint32(rest)), mask(be.Uint32(rest[4:]))
	case recordGateway:
		return f.gateway(b)
	}
	return nil
}

// gateway decodes an extended gateway record: next hop, own AS, source AS,
// source peer AS, destination AS path, communities, local preference. Only
// the AS numbers are kept.
func (f *sampleFacts) gateway(b []byte) *decode.Error {
	be := binary.BigEndian
	_, rest, ok := address(b)
	if !ok || len(rest) < 16 {
		return decode.Errorf(format, decode.ReasonSample, "extended gateway record of %d bytes", len(b))
	}
	own, src := be.Uint32(rest), be.Uint32(rest[4:])
	segments := be.Uint32(rest[12:])
	rest = rest[16:]
	// The destination AS is the origin: the last AS of the last non-empty
	// segment (a path may start with confederation segments).
	dstAS := own
	for i := uint32(0); i < segments; i++ {
		// segment: type, AS count, AS numbers.
		if len(rest) < 8 {
			return decode.Errorf(format, decode.ReasonSample, "extended gateway AS path truncated")
		}
		count := uint64(be.Uint32(rest[4:]))
		if count*4 > uint64(len(rest)-8) {
			return decode.Errorf(format, decode.ReasonLength, "AS path segment of %d AS numbers in %d bytes", count, len(rest)-8)
		}
		if count > 0 {
			dstAS = be.Uint32(rest[8+4*(count-1):])
		}
		rest = rest[8+4*count:]
	}
	f.rec.SrcAS, f.rec.DstAS = src, dstAS
	return nil
}

// address reads an XDR address (type, then 4 or 16 bytes; type 0 has none)
// and returns it with the rest of b.
func address(b []byte) (netip.Addr, []byte, bool) {
	if len(b) < 4 {
		return netip.Addr{}, nil, false
	}
	switch binary.BigEndian.Uint32(b) {
	case 0:
		return netip.Addr{}, b[4:], true
	case 1:
		if len(b) < 8 {
			return netip.Addr{}, nil, false
		}
		a := [4]byte(b[4:8])
		if a == [4]byte{} {
			return netip.Addr{}, b[8:], true
		}
		return netip.AddrFrom4(a), b[8:], true
	case 2:
		if len(b) < 20 {
			return netip.Addr{}, nil, false
		}
		a := [16]byte(b[4:20])
		if a == [16]byte{} {
			return netip.Addr{}, b[20:], true
		}
		return netip.AddrFrom16(a), b[20:], true
	}
	return netip.Addr{}, nil, false
}

// vlanID returns a VLAN ID, or 0 for values outside 802.1Q's range (agents
// send 0xFFFFFFFF for "unknown").
func vlanID(v uint32) uint16 {
	if v > 4095 {
		return 0
	}
	return uint16(v)
}

// mask returns a prefix length, 0 when out of range.
func mask(v uint32) uint8 {
	if v > 128 {
		return 0
	}
	return uint8(v)
}

// counterSample decodes a counter sample (compact or expanded) and buffers
// its generic interface counters.
func (d *Decoder) counterSample(dg *datagram, b []byte, expanded bool) *decode.Error {
	be := binary.BigEndian
	var seq, numRecords uint32
	var off int
	if expanded {
		if len(b) < 16 {
			return decode.Errorf(format, decode.ReasonSample, "expanded counter sample of %d bytes", len(b))
		}
		seq, numRecords, off = be.Uint32(b), be.Uint32(b[12:]), 16
	} else {
		if len(b) < 12 {
			return decode.Errorf(format, decode.ReasonSample, "counter sample of %d bytes", len(b))
		}
		seq, numRecords, off = be.Uint32(b), be.Uint32(b[8:]), 12
	}
	if uint64(numRecords)*minItemLen > uint64(len(b)-off) {
		return decode.Errorf(format, decode.ReasonCount, "%d counter records cannot fit in %d bytes", numRecords, len(b)-off)
	}
	for i := uint32(0); i < numRecords; i++ {
		typ, body, next, err := item(b, off, "counter record")
		if err != nil {
			return err
		}
		off = next
		if typ != counterGenericIf {
			continue
		}
		if len(body) < genericIfLen {
			return decode.Errorf(format, decode.ReasonSample, "generic interface counters of %d bytes", len(body))
		}
		if len(d.counters) >= MaxBufferedCounters {
			d.dropped.Add(1)
			continue
		}
		c := body
		d.counters = append(d.counters, decode.IfCounters{
			Exporter:         dg.agent,
			Domain:           dg.subAgent,
			Time:             dg.pkt.Received,
			Sequence:         seq,
			IfIndex:          be.Uint32(c[0:]),
			IfType:           be.Uint32(c[4:]),
			Speed:            be.Uint64(c[8:]),
			Direction:        be.Uint32(c[16:]),
			Status:           be.Uint32(c[20:]),
			InOctets:         be.Uint64(c[24:]),
			InUcastPkts:      be.Uint32(c[32:]),
			InMulticastPkts:  be.Uint32(c[36:]),
			InBroadcastPkts:  be.Uint32(c[40:]),
			InDiscards:       be.Uint32(c[44:]),
			InErrors:         be.Uint32(c[48:]),
			InUnknownProtos:  be.Uint32(c[52:]),
			OutOctets:        be.Uint64(c[56:]),
			OutUcastPkts:     be.Uint32(c[64:]),
			OutMulticastPkts: be.Uint32(c[68:]),
			OutBroadcastPkts: be.Uint32(c[72:]),
			OutDiscards:      be.Uint32(c[76:]),
			OutErrors:        be.Uint32(c[80:]),
			Promiscuous:      be.Uint32(c[84:]),
		})
	}
	return nil
}

var (
	_ decode.Decoder       = (*Decoder)(nil)
	_ decode.CounterSource = (*Decoder)(nil)
)
