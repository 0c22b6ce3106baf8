package sflow

import (
	"encoding/binary"
	"net/netip"
)

// EtherTypes and IP protocols the raw header parser follows.
const (
	etherIPv4   = 0x0800
	etherIPv6   = 0x86dd
	etherVLAN   = 0x8100
	etherQinQ   = 0x88a8
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
	// maxVLANTags and maxIPv6ExtHeaders bound the header walks.
	maxVLANTags       = 2
	maxIPv6ExtHeaders = 8
)

// header parses a raw packet header record's bytes. wire is the length of
// the packet from the header's first byte on (frame length minus stripped
// bytes), used only when the IP header carries no usable length.
func (f *sampleFacts) header(proto uint32, h []byte, wire int64) {
	r := &f.rec
	switch proto {
	case headerEthernet:
		if len(h) < 14 {
			return
		}
		if !f.hasMAC {
			r.DstMAC, r.SrcMAC = [6]byte(h[0:6]), [6]byte(h[6:12])
			f.hasMAC = true
		}
		etherType := binary.BigEndian.Uint16(h[12:])
		h, wire = h[14:], wire-14
		for i := 0; i < maxVLANTags && (etherType == etherVLAN || etherType == etherQinQ); i++ {
			if len(h) < 4 {
				return
			}
			if i == 0 {
				f.headerVLAN = binary.BigEndian.Uint16(h) & 0x0fff
			}
			etherType = binary.BigEndian.Uint16(h[2:])
			h, wire = h[4:], wire-4
		}
		switch etherType {
		case etherIPv4:
			f.ipv4(h, wire)
		case etherIPv6:
			f.ipv6(h, wire)
		}
	case headerIPv4:
		f.ipv4(h, wire)
	case headerIPv6:
		f.ipv6(h, wire)
	}
}

// ipv4 parses an IPv4 header and what follows it.
func (f *sampleFacts) ipv4(h []byte, wire int64) {
	if len(h) < 20 || h[0]>>4 != 4 {
		return
	}
	ihl := int(h[0]&0x0f) * 4
	if ihl < 20 || ihl > len(h) {
		return
	}
	r := &f.rec
	r.TOS = h[1]
	total := int64(binary.BigEndian.Uint16(h[2:]))
	if total < int64(ihl) { // 0 with TCP segmentation offload: use the frame
		total = max(wire, int64(ihl))
	}
	r.Bytes = uint64(total)
	r.Proto = h[9]
	r.SrcAddr, r.DstAddr = netip.AddrFrom4([4]byte(h[12:16])), netip.AddrFrom4([4]byte(h[16:20]))
	f.hasIP = true
	if binary.BigEndian.Uint16(h[6:])&0x1fff != 0 { // later fragment: no transport header
		return
	}
	f.transport(h[ihl:])
}

// ipv6 parses an IPv6 header, skips extension headers and parses the
// transport header.
func (f *sampleFacts) ipv6(h []byte, wire int64) {
	if len(h) < 40 || h[0]>>4 != 6 {
		return
	}
	r := &f.rec
	r.TOS = h[0]<<4 | h[1]>>4
	plen := int64(binary.BigEndian.Uint16(h[4:]))
	if plen == 0 && wire > 40 { // jumbogram or offload: use the frame
		plen = wire - 40
	}
	r.Bytes = uint64(plen) + 40
	next := h[6]
	r.SrcAddr, r.DstAddr = netip.AddrFrom16([16]byte(h[8:24])), netip.AddrFrom16([16]byte(h[24:40]))
	f.hasIP = true
	h = h[40:]
walk:
	for i := 0; i < maxIPv6ExtHeaders; i++ {
		switch next {
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(h) < 8 {
				r.Proto = next
				return
			}
			l := (int(h[1]) + 1) * 8
			if l > len(h) {
				r.Proto = h[0]
				return
			}
			next, h = h[0], h[l:]
			continue
		case 44: // fragment
			if len(h) < 8 {
				r.Proto = next
				return
			}
			next = h[0]
			if binary.BigEndian.Uint16(h[2:])&0xfff8 != 0 {
				r.Proto = next
				return
			}
			h = h[8:]
			continue
		}
		break walk
	}
	r.Proto = next
	f.transport(h)
}

// transport takes ports, TCP flags or the ICMP type and code (as type<<8 |
// code in DstPort, the NetFlow v5 convention) from the transport header.
func (f *sampleFacts) transport(h []byte) {
	r := &f.rec
	switch r.Proto {
	case protoTCP:
		if len(h) >= 4 {
			r.SrcPort, r.DstPort = binary.BigEndian.Uint16(h), binary.BigEndian.Uint16(h[2:])
		}
		if len(h) >= 14 {
			r.TCPFlags = h[13]
		}
	case protoUDP:
		if len(h) >= 4 {
			r.SrcPort, r.DstPort = binary.BigEndian.Uint16(h), binary.BigEndian.Uint16(h[2:])
		}
	case protoICMP, protoICMPv6:
		if len(h) >= 2 {
			r.DstPort = uint16(h[0])<<8 | uint16(h[1])
		}
	}
}
