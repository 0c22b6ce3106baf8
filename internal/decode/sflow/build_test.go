package sflow

import (
	"encoding/binary"
	"net/netip"
)

// This file builds sFlow v5 datagrams and sampled packets for the tests.

// xdr appends big-endian XDR items.
type xdr []byte

func (x xdr) u32(v uint32) xdr { return binary.BigEndian.AppendUint32(x, v) }
func (x xdr) u64(v uint64) xdr { return binary.BigEndian.AppendUint64(x, v) }

// fixed appends p padded to a multiple of 4 bytes.
func (x xdr) fixed(p []byte) xdr {
	x = append(x, p...)
	for len(p)%4 != 0 {
		x, p = append(x, 0), append(p, 0)
	}
	return x
}

// opaque appends a variable-length opaque: length, bytes, padding.
func (x xdr) opaque(p []byte) xdr { return x.u32(uint32(len(p))).fixed(p) }

// addr appends an XDR address (type 1 or 2, or type 0 for the zero Addr).
func (x xdr) addr(a netip.Addr) xdr {
	switch {
	case !a.IsValid():
		return x.u32(0)
	case a.Is4():
		b := a.As4()
		return x.u32(1).fixed(b[:])
	default:
		b := a.As16()
		return x.u32(2).fixed(b[:])
	}
}

// tagged is an enterprise/format-tagged item: type, length, body.
func tagged(typ uint32, body []byte) []byte {
	return xdr(nil).u32(typ).opaque(body)
}

// buildDatagram builds a datagram from already tagged samples.
func buildDatagram(agent netip.Addr, subAgent, seq uint32, samples ...[]byte) []byte {
	x := xdr(nil).u32(5).addr(agent).u32(subAgent).u32(seq).u32(123456).u32(uint32(len(samples)))
	for _, s := range samples {
		x = append(x, s...)
	}
	return x
}

// flowSample builds a tagged compact flow sample.
func flowSample(seq, rate, in, out uint32, records ...[]byte) []byte {
	x := xdr(nil).u32(seq).u32(3).u32(rate).u32(rate * seq).u32(0).u32(in).u32(out).u32(uint32(len(records)))
	for _, r := range records {
		x = append(x, r...)
	}
	return tagged(sampleFlow, x)
}

// flowSampleExpanded builds a tagged expanded flow sample.
func flowSampleExpanded(seq, rate, inFormat, in, outFormat, out uint32, records ...[]byte) []byte {
	x := xdr(nil).u32(seq).u32(0).u32(70000).u32(rate).u32(rate * seq).u32(0).
		u32(inFormat).u32(in).u32(outFormat).u32(out).u32(uint32(len(records)))
	for _, r := range records {
		x = append(x, r...)
	}
	return tagged(sampleFlowExpanded, x)
}

// counterSample builds a tagged compact or expanded counter sample.
func counterSample(expanded bool, seq uint32, records ...[]byte) []byte {
	x := xdr(nil).u32(seq)
	if expanded {
		x = x.u32(0).u32(70000)
	} else {
		x = x.u32(70000)
	}
	x = x.u32(uint32(len(records)))
	for _, r := range records {
		x = append(x, r...)
	}
	if expanded {
		return tagged(sampleCountersExpanded, x)
	}
	return tagged(sampleCounters, x)
}

// genericIf builds a tagged generic interface counter record from c.
func genericIf(c ifCounters) []byte {
	x := xdr(nil).u32(c.index).u32(c.typ).u64(c.speed).u32(c.direction).u32(c.status).
		u64(c.inOctets).u32(c.inUcast).u32(c.inMcast).u32(c.inBcast).u32(c.inDiscards).u32(c.inErrors).u32(c.inUnknown).
		u64(c.outOctets).u32(c.outUcast).u32(c.outMcast).u32(c.outBcast).u32(c.outDiscards).u32(c.outErrors).u32(c.promisc)
	return tagged(counterGenericIf, x)
}

// ifCounters are the values of a generic interface counter record.
type ifCounters struct {
	index, typ                                                    uint32
	speed                                                         uint64
	direction, status                                             uint32
	inOctets                                                      uint64
	inUcast, inMcast, inBcast, inDiscards, inErrors, inUnknown    uint32
	outOctets                                                     uint64
	outUcast, outMcast, outBcast, outDiscards, outErrors, promisc uint32
}

// rawHeader builds a tagged raw packet header record.
func rawHeader(proto, frameLen, stripped uint32, header []byte) []byte {
	return tagged(recordRawHeader, xdr(nil).u32(proto).u32(frameLen).u32(stripped).opaque(header))
}

// sampledIPv4 builds a tagged sampled IPv4 record.
func sampledIPv4(length, proto uint32, src, dst netip.Addr, sport, dport, flags, tos uint32) []byte {
	s, d := src.As4(), dst.As4()
	return tagged(recordIPv4, xdr(nil).u32(length).u32(proto).fixed(s[:]).fixed(d[:]).u32(sport).u32(dport).u32(flags).u32(tos))
}

// sampledIPv6 builds a tagged sampled IPv6 record.
func sampledIPv6(length, proto uint32, src, dst netip.Addr, sport, dport, flags, prio uint32) []byte {
	s, d := src.As16(), dst.As16()
	return tagged(recordIPv6, xdr(nil).u32(length).u32(proto).fixed(s[:]).fixed(d[:]).u32(sport).u32(dport).u32(flags).u32(prio))
}

// sampledEthernet builds a tagged sampled Ethernet record.
func sampledEthernet(length uint32, src, dst [6]byte, etherType uint32) []byte {
	return tagged(recordEthernet, xdr(nil).u32(length).fixed(src[:]).fixed(dst[:]).u32(etherType))
}

// extSwitch builds a tagged extended switch record.
func extSwitch(srcVLAN, srcPrio, dstVLAN, dstPrio uint32) []byte {
	return tagged(recordSwitch, xdr(nil).u32(srcVLAN).u32(srcPrio).u32(dstVLAN).u32(dstPrio))
}

// extRouter builds a tagged extended router record.
func extRouter(nextHop netip.Addr, srcMask, dstMask uint32) []byte {
	return tagged(recordRouter, xdr(nil).addr(nextHop).u32(srcMask).u32(dstMask))
}

// extGateway builds a tagged extended gateway record with one AS path
// segment per element of path (type 2, AS_SEQUENCE).
func extGateway(nextHop netip.Addr, own, src, srcPeer uint32, path [][]uint32, communities []uint32) []byte {
	x := xdr(nil).addr(nextHop).u32(own).u32(src).u32(srcPeer).u32(uint32(len(path)))
	for _, seg := range path {
		x = x.u32(2).u32(uint32(len(seg)))
		for _, as := range seg {
			x = x.u32(as)
		}
	}
	x = x.u32(uint32(len(communities)))
	for _, c := range communities {
		x = x.u32(c)
	}
	return tagged(recordGateway, x.u32(100))
}

// Packet builders.

func ether(dst, src [6]byte, vlans []uint16, etherType uint16, payload []byte) []byte {
	b := append(append([]byte(nil), dst[:]...), src[:]...)
	for _, v := range vlans {
		b = binary.BigEndian.AppendUint16(b, etherVLAN)
		b = binary.BigEndian.AppendUint16(b, 5<<13|v)
	}
	b = binary.BigEndian.AppendUint16(b, etherType)
	return append(b, payload...)
}

// ipv4Packet builds an IPv4 header (no options) with the given total
// length field and fragment offset, followed by payload.
func ipv4Packet(tos uint8, totalLen uint16, proto uint8, src, dst netip.Addr, fragOff uint16, payload []byte) []byte {
	b := make([]byte, 20, 20+len(payload))
	b[0], b[1] = 0x45, tos
	binary.BigEndian.PutUint16(b[2:], totalLen)
	binary.BigEndian.PutUint16(b[6:], fragOff)
	b[8], b[9] = 64, proto
	s, d := src.As4(), dst.As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	return append(b, payload...)
}

// ipv6Packet builds an IPv6 header followed by payload.
func ipv6Packet(tclass uint8, payloadLen uint16, next uint8, src, dst netip.Addr, payload []byte) []byte {
	b := make([]byte, 40, 40+len(payload))
	b[0], b[1] = 0x60|tclass>>4, tclass<<4
	binary.BigEndian.PutUint16(b[4:], payloadLen)
	b[6], b[7] = next, 64
	s, d := src.As16(), dst.As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	return append(b, payload...)
}

func tcpHeader(sport, dport uint16, flags uint8) []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint16(b, sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	b[12], b[13] = 5<<4, flags
	return b
}

func udpHeader(sport, dport, length uint16) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint16(b, sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], length)
	return b
}

func icmpHeader(typ, code uint8) []byte { return []byte{typ, code, 0, 0, 0, 1, 0, 1} }
