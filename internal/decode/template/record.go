package template

import (
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/flow"
)

// Context carries what a set decoder needs to know about the datagram a
// set came from.
type Context struct {
	// Format is used in errors.
	Format decode.Format
	// Exporter and Domain are copied into every record.
	Exporter netip.Addr
	Domain   uint32
	// Dom is the exporter domain's state; options records update it.
	Dom *Domain
	// ExportMilli is the export time of the datagram in Unix milliseconds.
	ExportMilli int64
	// SysUptime is the exporter's uptime in milliseconds at export time;
	// valid when HasSysUptime (NetFlow v9 header).
	SysUptime    uint32
	HasSysUptime bool
	// ReceivedMilli is the arrival time, used for flows without times.
	ReceivedMilli int64
	// OverrideRate replaces every announced sampling rate when
	// HasOverride is set.
	OverrideRate uint32
	HasOverride  bool
}

// ntpEpochOffset is the number of seconds from 1900-01-01 (NTP era 0) to
// 1970-01-01.
const ntpEpochOffset = 2208988800

// Flags recording which optional fields a record carried.
const (
	hasOctetDelta uint32 = 1 << iota
	hasPacketDelta
	hasFirst
	hasLast
	hasStartAbs
	hasEndAbs
	hasStartDelta
	hasEndDelta
	hasSysInit
	hasSrcVLAN
	hasDstVLAN
	hasSrcMAC
	hasDstMAC
	hasInterval
	hasSamplerID
	hasRandomInterval
	hasPacketInterval
	hasPacketSpace
	hasICMP
	// The next hops hold a specified address (not 0.0.0.0 or ::).
	hasNextHop4
	hasNextHop6
	hasBGPNextHop4
	hasBGPNextHop6
)

// setIf returns has with flag set when cond holds and cleared otherwise.
func setIf(has, flag uint32, cond bool) uint32 {
	if cond {
		return has | flag
	}
	return has &^ flag
}

// specified reports whether an IPv4 or IPv6 address in network order is
// not the unspecified address (all zeroes).
func specified(v []byte) bool {
	if len(v) == 4 {
		return binary.BigEndian.Uint32(v) != 0
	}
	return binary.BigEndian.Uint64(v)|binary.BigEndian.Uint64(v[8:]) != 0
}

// scratch collects the fields of one record that need post-processing.
type scratch struct {
	has                      uint32
	octetTotal, packetTotal  uint64
	nextHop4, nextHop6       netip.Addr
	bgpNextHop4, bgpNextHop6 netip.Addr
	first, last              uint32
	startAbs, endAbs         int64
	startDelta, endDelta     uint32
	sysInit                  int64
	dot1q, postDot1q         uint16
	postSrcMAC, postDstMAC   [6]byte
	interval                 uint32
	samplerID                uint64
	randomInterval           uint32
	packetInterval           uint32
	packetSpace              uint32
	icmp                     uint16
}

// readUint reads a big-endian unsigned integer of 1 to 8 octets (reduced
// size encoding, RFC 7011 §6.2). Other lengths read as 0.
func readUint(b []byte) uint64 {
	switch len(b) {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(b))
	case 4:
		return uint64(binary.BigEndian.Uint32(b))
	case 8:
		return binary.BigEndian.Uint64(b)
	case 3, 5, 6, 7:
		var v uint64
		for _, c := range b {
			v = v<<8 | uint64(c)
		}
		return v
	}
	return 0
}

// ntpToUnixMilli converts an NTP-format timestamp (RFC 7011 §6.1.9/10) to
// Unix milliseconds. Seconds values below the Unix epoch are taken to be
// in NTP era 1 (after 2036).
func ntpToUnixMilli(b []byte) (int64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	sec := int64(binary.BigEndian.Uint32(b))
	frac := uint64(binary.BigEndian.Uint32(b[4:]))
	if sec < ntpEpochOffset {
		sec += 1 << 32
	}
	return (sec-ntpEpochOffset)*1000 + int64((frac*1000)>>32), true
}

// packetRate turns a samplingPacketInterval/samplingPacketSpace pair into
// a 1-in-N rate, rounded to the nearest integer.
func packetRate(interval, space uint32) uint32 {
	if interval == 0 {
		return 0
	}
	n := (uint64(interval) + uint64(space) + uint64(interval)/2) / uint64(interval)
	if n > 0xFFFFFFFF {
		n = 0xFFFFFFFF
	}
	return uint32(n)
}

// DecodeSet decodes the records of one data set body (after the set header)
// with t. Data records are appended to dst as flows; options data records
// update c.Dom. It returns the number of records found. Trailing octets too
// short for a record are padding. A variable-length field that overruns
// the set is a *decode.Error with ReasonFieldLength.
//
// Data records of fixed-length templates are decoded decodeChunk at a
// time, field by field across the chunk (each field's store is chosen once
// per chunk, not once per record); other records one at a time, field by
// field.
func (t *Template) DecodeSet(dst []flow.Record, body []byte, c *Context) ([]flow.Record, int, error) {
	n := 0
	if t.fixed && !t.Options {
		var ss [decodeChunk]scratch
		for len(body) >= t.minLen {
			k := min(decodeChunk, len(body)/t.minLen)
			start := len(dst)
			dst = slices.Grow(dst, k)[:start+k]
			recs := dst[start:]
			clear(recs)
			sc := ss[:k]
			clear(sc)
			for _, o := range t.fixedOps {
				storeField(o.kind, body, t.minLen, int(o.off), int(o.length), recs, sc)
			}
			for i := range recs {
				c.finish(&recs[i], &sc[i])
			}
			body = body[k*t.minLen:]
			n += k
		}
		return dst, n, nil
	}
	var s [1]scratch
	for len(body) >= t.minLen {
		// Decode straight into dst's next slot (no copy of the record).
		dst = append(dst, flow.Record{})
		r := dst[len(dst)-1:]
		s[0] = scratch{}
		used, ok := t.decodeRecord(body, r, s[:])
		if !ok {
			return dst[:len(dst)-1], n, decode.Errorf(c.Format, decode.ReasonFieldLength, "template %d: variable-length field overruns the set", t.ID)
		}
		body = body[used:]
		n++
		if t.Options {
			dst = dst[:len(dst)-1]
			c.applyOptions(&s[0])
			continue
		}
		c.finish(&r[0], &s[0])
	}
	return dst, n, nil
}

// decodeChunk is how many records of a fixed-length template DecodeSet
// decodes together.
const decodeChunk = 16

// decodeRecord walks the template's fields over one record at the start of
// b, which holds at least t.minLen octets, stores them into r[0] and s[0]
// and returns the record length.
func (t *Template) decodeRecord(b []byte, r []flow.Record, s []scratch) (int, bool) {
	pos := 0
	for _, o := range t.ops {
		n := int(o.length)
		if o.variable {
			if pos >= len(b) {
				return 0, false
			}
			n = int(b[pos])
			pos++
			if n == 255 {
				if pos+2 > len(b) {
					return 0, false
				}
				n = int(binary.BigEndian.Uint16(b[pos:]))
				pos += 2
			}
		}
		if n > len(b)-pos {
			return 0, false
		}
		if o.kind != kindSkip {
			storeField(o.kind, b, 0, pos, n, r, s)
		}
		pos += n
	}
	return pos, true
}

// field returns the n octets at off of record i, records being stride
// octets apart in b.
func field(b []byte, i, stride, off, n int) []byte {
	p := i*stride + off
	return b[p : p+n]
}

// storeField stores one field of kind k of every record of recs (with its
// scratch in ss): the field of record i is the n octets at off of the
// i-th stride-long record of b.
func storeField(k kind, b []byte, stride, off, n int, recs []flow.Record, ss []scratch) {
	ss = ss[:len(recs)]
	switch k {
	case kindSkip:
	case kindOctetDelta:
		for i := range recs {
			r, s, v := &recs[i], &ss[i], field(b, i, stride, off, n)
			r.Bytes = readUint(v)
			s.has |= hasOctetDelta
		}
	case kindPacketDelta:
		for i := range recs {
			r, s, v := &recs[i], &ss[i], field(b, i, stride, off, n)
			r.Packets = readUint(v)
			s.has |= hasPacketDelta
		}
	case kindOctetTotal:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			s.octetTotal = readUint(v)
		}
	case kindPacketTotal:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			s.packetTotal = readUint(v)
		}
	case kindProto:
		for i := range recs {
			r, v := &recs[i], field(b, i, stride, off, n)
			r.Proto = uint8(readUint(v))
		}
	case kindTOS:
		for i := range recs {
			r, v := &recs[i], field(b, i, stride, off, n)
			r.TOS = uint8(readUint(v))
		}
	case kindTCPFlags:
		for i := range recs {
			r, v := &recs[i], field(b, i, stride, off, n)
			r.TCPFlags = uint8(readUint(v))
		}
	case kindSrcPort:
		for i := range recs {
			r, v := &recs[i], field(b, i, stride, off, n)
			r.SrcPort = uint16(readUint(v))
		}
	case kindDstPort:
		for i := range recs {
			r, v := &recs[i], field(b, i, stride, off, n)
			r.DstPort = uint16(readUint(v))
		}
	case kindSrcIPv4:
		for i := range recs {
			r, v := &recs[i], field(b, i, stride, off, n)
			if len(v) == 4 {
				r.SrcAddr = netip.AddrFrom4([4]byte(v))
			}
		}
	case kindDstIPv4:
		for i := range recs {
			r, v := &recs[i], field(b, i, stride, off, n)
			if len(v) == 4 {
				r.DstAddr = netip.AddrFrom4([4]byte(v))
			}
		}
	case kindSrcIPv6:
		for i := range recs {
			r, v := &recs[i], field(b, i, stride, off, n)
			if len(v) == 16 {
				r.SrcAddr = netip.AddrFrom16([16]byte(v))
			}
		}
	case kindDstIPv6:
		for i := range recs {
			r, v := &recs[i], field(b, i, stride, off, n)
			if len(v) == 16 {
				r.DstAddr = netip.AddrFrom16([16]byte(v))
			}
		}
	case kindSrcMask:
		for i := range recs {
			r, v := &recs[i], field(b, i, stride, off, n)
			r.SrcMask = uint8(readUint(v))
		}
	case kindDstMask:
		for i := range recs {
			r, v := &recs[i], field(b, i, stride, off, n)
			r.DstMask = uint8(readUint(v))
		}
	case kindInIf:
		for i := range recs {
			r, v := &recs[i], field(b, i, stride, off, n)
			r.InIf = uint32(readUint(v))
		}
	case kindOutIf:
		for i := range recs {
			r, v := &recs[i], field(b, i, stride, off, n)
			r.OutIf = uint32(readUint(v))
		}
	case kindNextHopIPv4:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			if len(v) == 4 {
				s.nextHop4 = netip.AddrFrom4([4]byte(v))
				s.has = setIf(s.has, hasNextHop4, specified(v))
			}
		}
	case kindBGPNextHopIPv4:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			if len(v) == 4 {
				s.bgpNextHop4 = netip.AddrFrom4([4]byte(v))
				s.has = setIf(s.has, hasBGPNextHop4, specified(v))
			}
		}
	case kindNextHopIPv6:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			if len(v) == 16 {
				s.nextHop6 = netip.AddrFrom16([16]byte(v))
				s.has = setIf(s.has, hasNextHop6, specified(v))
			}
		}
	case kindBGPNextHopIPv6:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			if len(v) == 16 {
				s.bgpNextHop6 = netip.AddrFrom16([16]byte(v))
				s.has = setIf(s.has, hasBGPNextHop6, specified(v))
			}
		}
	case kindSrcAS:
		for i := range recs {
			r, v := &recs[i], field(b, i, stride, off, n)
			r.SrcAS = uint32(readUint(v))
		}
	case kindDstAS:
		for i := range recs {
			r, v := &recs[i], field(b, i, stride, off, n)
			r.DstAS = uint32(readUint(v))
		}
	case kindLastSwitched:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			s.last = uint32(readUint(v))
			s.has |= hasLast
		}
	case kindFirstSwitched:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			s.first = uint32(readUint(v))
			s.has |= hasFirst
		}
	case kindStartSeconds:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			s.startAbs = int64(readUint(v)) * 1000
			s.has |= hasStartAbs
		}
	case kindEndSeconds:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			s.endAbs = int64(readUint(v)) * 1000
			s.has |= hasEndAbs
		}
	case kindStartMillis:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			s.startAbs = int64(readUint(v))
			s.has |= hasStartAbs
		}
	case kindEndMillis:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			s.endAbs = int64(readUint(v))
			s.has |= hasEndAbs
		}
	case kindStartMicros, kindStartNanos:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			if ms, ok := ntpToUnixMilli(v); ok {
				s.startAbs = ms
				s.has |= hasStartAbs
			}
		}
	case kindEndMicros, kindEndNanos:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			if ms, ok := ntpToUnixMilli(v); ok {
				s.endAbs = ms
				s.has |= hasEndAbs
			}
		}
	case kindStartDeltaMicros:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			s.startDelta = uint32(readUint(v))
			s.has |= hasStartDelta
		}
	case kindEndDeltaMicros:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			s.endDelta = uint32(readUint(v))
			s.has |= hasEndDelta
		}
	case kindSystemInitMillis:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			s.sysInit = int64(readUint(v))
			s.has |= hasSysInit
		}
	case kindSrcVLAN:
		for i := range recs {
			r, s, v := &recs[i], &ss[i], field(b, i, stride, off, n)
			r.SrcVLAN = uint16(readUint(v))
			s.has |= hasSrcVLAN
		}
	case kindDstVLAN:
		for i := range recs {
			r, s, v := &recs[i], &ss[i], field(b, i, stride, off, n)
			r.DstVLAN = uint16(readUint(v))
			s.has |= hasDstVLAN
		}
	case kindDot1qVLAN:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			s.dot1q = uint16(readUint(v))
		}
	case kindPostDot1qVLAN:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			s.postDot1q = uint16(readUint(v))
		}
	case kindSrcMAC:
		for i := range recs {
			r, s, v := &recs[i], &ss[i], field(b, i, stride, off, n)
			if len(v) == 6 {
				r.SrcMAC = [6]byte(v)
				s.has |= hasSrcMAC
			}
		}
	case kindDstMAC:
		for i := range recs {
			r, s, v := &recs[i], &ss[i], field(b, i, stride, off, n)
			if len(v) == 6 {
				r.DstMAC = [6]byte(v)
				s.has |= hasDstMAC
			}
		}
	case kindPostSrcMAC:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			if len(v) == 6 {
				s.postSrcMAC = [6]byte(v)
			}
		}
	case kindPostDstMAC:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			if len(v) == 6 {
				s.postDstMAC = [6]byte(v)
			}
		}
	case kindSamplingInterval:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			s.interval = uint32(readUint(v))
			s.has |= hasInterval
		}
	case kindSamplerID, kindSelectorID:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			s.samplerID = readUint(v)
			s.has |= hasSamplerID
		}
	case kindSamplerRandomInterval:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			s.randomInterval = uint32(readUint(v))
			s.has |= hasRandomInterval
		}
	case kindSamplingPacketInterval:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			s.packetInterval = uint32(readUint(v))
			s.has |= hasPacketInterval
		}
	case kindICMPTypeCode:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			s.icmp = uint16(readUint(v))
			s.has |= hasICMP
		}
	case kindICMPType:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			s.icmp = s.icmp&0x00FF | uint16(readUint(v))<<8
			s.has |= hasICMP
		}
	case kindICMPCode:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			s.icmp = s.icmp&0xFF00 | uint16(uint8(readUint(v)))
			s.has |= hasICMP
		}
	case kindSamplingPacketSpace:
		for i := range recs {
			s, v := &ss[i], field(b, i, stride, off, n)
			s.packetSpace = uint32(readUint(v))
			s.has |= hasPacketSpace
		}
	}
}

// nextHop picks the first known, specified next hop: the IP next hop
// before the BGP next hop, the flow's own address family first.
func (s *scratch) nextHop(ipv6 bool) netip.Addr {
	h := s.has
	switch {
	case h&(hasNextHop4|hasNextHop6|hasBGPNextHop4|hasBGPNextHop6) == 0:
		return netip.Addr{}
	case ipv6 && h&hasNextHop6 != 0:
		return s.nextHop6
	case h&hasNextHop4 != 0:
		return s.nextHop4
	case h&hasNextHop6 != 0:
		return s.nextHop6
	case ipv6 && h&hasBGPNextHop6 != 0:
		return s.bgpNextHop6
	case h&hasBGPNextHop4 != 0:
		return s.bgpNextHop4
	default:
		return s.bgpNextHop6
	}
}

func (s *scratch) hasFlag(f uint32) bool { return s.has&f != 0 }

// recordRate returns the sampling rate a record states itself: a random
// sampler interval, a samplingInterval, or a packet interval/space pair.
func (s *scratch) recordRate() uint32 {
	switch {
	case s.hasFlag(hasRandomInterval) && s.randomInterval > 0:
		return s.randomInterval
	case s.hasFlag(hasInterval) && s.interval > 0:
		return s.interval
	case s.hasFlag(hasPacketInterval):
		return packetRate(s.packetInterval, s.packetSpace)
	}
	return 0
}

// applyOptions stores what an options data record announces: a sampler or
// selector rate (also kept as the domain's default rate, the best guess
// for data records that do not name their sampler) and the exporter's
// system init time.
func (c *Context) applyOptions(s *scratch) {
	if c.Dom == nil {
		return
	}
	if rate := s.recordRate(); rate > 0 {
		if s.hasFlag(hasSamplerID) {
			c.Dom.setSampler(s.samplerID, rate)
		}
		c.Dom.setRate(rate)
	}
	if s.hasFlag(hasSysInit) {
		c.Dom.setSysInit(s.sysInit)
	}
}

// finish resolves fallbacks (total counters, BGP next hop, VLAN and MAC
// alternatives, ICMP type/code into DstPort), computes absolute times and applies sampling.
func (c *Context) finish(r *flow.Record, s *scratch) {
	r.Exporter = c.Exporter
	r.Domain = c.Domain
	if !s.hasFlag(hasOctetDelta) {
		r.Bytes = s.octetTotal
	}
	if !s.hasFlag(hasPacketDelta) {
		r.Packets = s.packetTotal
	}
	r.NextHop = s.nextHop(r.SrcAddr.Is6())
	// ICMP type and code go into DstPort (type<<8|code), as NetFlow v5
	// carries them, so that all formats agree.
	if s.hasFlag(hasICMP) && r.DstPort == 0 {
		r.DstPort = s.icmp
	}
	if !s.hasFlag(hasSrcVLAN) {
		r.SrcVLAN = s.dot1q
	}
	if !s.hasFlag(hasDstVLAN) {
		r.DstVLAN = s.postDot1q
	}
	if !s.hasFlag(hasSrcMAC) {
		r.SrcMAC = s.postSrcMAC
	}
	if !s.hasFlag(hasDstMAC) {
		r.DstMAC = s.postDstMAC
	}
	c.times(r, s)

	var rate uint32
	switch {
	case c.HasOverride:
		rate = c.OverrideRate
	default:
		rate = s.recordRate()
		if rate == 0 && s.hasFlag(hasSamplerID) && c.Dom != nil {
			rate = c.Dom.samplers[s.samplerID]
		}
		if rate == 0 {
			rate = c.Dom.Rate()
		}
	}
	r.ApplySampling(rate)
}

// times sets Start and End. Per end, absolute times (IE 150-157) win over
// delta times (IE 158/159, microseconds before export), which win over
// sysUpTime times (IE 21/22). SysUpTime times are converted with the v9
// header's uptime; for IPFIX with systemInitTimeMilliseconds (IE 160, from
// the record or an options record) when known, modulo 2^32 like v9's so
// that an exporter up for more than 49.7 days is right, else by taking
// the flow's end as the export time. A missing end is copied from the other; with no
// time at all both are the arrival time.
func (c *Context) times(r *flow.Record, s *scratch) {
	start, end := int64(0), int64(0)
	haveStart, haveEnd := false, false
	if s.hasFlag(hasFirst) || s.hasFlag(hasLast) {
		first, last := s.first, s.last
		if !s.hasFlag(hasFirst) {
			first = last
		} else if !s.hasFlag(hasLast) {
			last = first
		}
		sysInit, haveInit := s.sysInit, s.hasFlag(hasSysInit)
		if !haveInit && c.Dom != nil && c.Dom.sysInitMilli != 0 {
			sysInit, haveInit = c.Dom.sysInitMilli, true
		}
		switch {
		case c.HasSysUptime:
			start = decode.UptimeToUnixMilli(first, c.SysUptime, c.ExportMilli)
			end = decode.UptimeToUnixMilli(last, c.SysUptime, c.ExportMilli)
		case haveInit:
			// The uptimes are 32-bit milliseconds since sysInit and
			// wrap every 49.7 days: convert them like v9's, with the
			// uptime the exporter had at export time.
			uptime := uint32(c.ExportMilli - sysInit)
			start = decode.UptimeToUnixMilli(first, uptime, c.ExportMilli)
			end = decode.UptimeToUnixMilli(last, uptime, c.ExportMilli)
		default:
			start = decode.UptimeToUnixMilli(first, last, c.ExportMilli)
			end = c.ExportMilli
		}
		haveStart, haveEnd = true, true
	}
	if s.hasFlag(hasStartDelta) {
		start, haveStart = c.ExportMilli-int64(s.startDelta/1000), true
	}
	if s.hasFlag(hasEndDelta) {
		end, haveEnd = c.ExportMilli-int64(s.endDelta/1000), true
	}
	if s.hasFlag(hasStartAbs) {
		start, haveStart = s.startAbs, true
	}
	if s.hasFlag(hasEndAbs) {
		end, haveEnd = s.endAbs, true
	}
	switch {
	case haveStart && !haveEnd:
		end = start
	case haveEnd && !haveStart:
		start = end
	case !haveStart && !haveEnd:
		start, end = c.ReceivedMilli, c.ReceivedMilli
	}
	r.Start, r.End = start, end
}
