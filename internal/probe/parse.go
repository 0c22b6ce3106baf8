package probe

import (
	"encoding/binary"
	"errors"
)

// Link-layer header types (the LINKTYPE_* values of pcap files) that the
// parser understands.
const (
	// LinkNull is BSD loopback: a 4-byte address family in host order.
	LinkNull uint32 = 0
	// LinkEthernet is Ethernet II with up to two 802.1Q/802.1ad tags.
	LinkEthernet uint32 = 1
	// LinkRaw is a bare IPv4 or IPv6 packet.
	LinkRaw uint32 = 101
	// LinkLinuxSLL is Linux cooked capture v1.
	LinkLinuxSLL uint32 = 113
	// LinkLinuxSLL2 is Linux cooked capture v2.
	LinkLinuxSLL2 uint32 = 276
)

// Ethernet types the parser follows.
const (
	etherIPv4  = 0x0800
	etherIPv6  = 0x86dd
	etherVLAN  = 0x8100
	etherQinQ  = 0x88a8
	maxVLANTag = 2
)

// IP protocol numbers with special handling.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// IPv6 extension headers skipped on the way to the transport header.
const (
	ext6HopByHop = 0
	ext6Routing  = 43
	ext6Fragment = 44
	ext6AH       = 51
	ext6DestOpts = 60
	ext6Mobility = 135
	maxExt6      = 8 // bound on the extension header chain
)

// TCP flag bits used by the expiry rules.
const (
	tcpFIN = 0x01
	tcpRST = 0x04
)

// Parse errors; Stats counts packets per error kind.
var (
	// ErrNotIP marks frames that carry no IPv4 or IPv6 packet (ARP, LLDP,
	// ...): they are counted and skipped, not an error of the capture.
	ErrNotIP = errors.New("probe: not an IP packet")
	// ErrTruncated marks frames too short for the headers they announce.
	ErrTruncated = errors.New("probe: truncated header")
	// ErrLinkType marks an unsupported link-layer header type.
	ErrLinkType = errors.New("probe: unsupported link type")
)

// Packet is the flow-relevant view of one captured frame. Addresses are
// kept as 16-byte arrays (IPv4 in the IPv4-mapped form) so that parsing
// and hashing never allocate.
type Packet struct {
	// Src and Dst are the IP addresses; IPv4 addresses are IPv4-mapped.
	Src, Dst [16]byte
	// SrcMAC and DstMAC are the Ethernet addresses (zero without Ethernet).
	SrcMAC, DstMAC [6]byte
	// IPLen is the IP length: the IPv4 total length, or the IPv6 payload
	// length plus the 40-byte fixed header. It is what the flow counts.
	IPLen uint32
	// SrcPort and DstPort are the TCP/UDP ports; for ICMP and ICMPv6,
	// DstPort is type<<8|code (as NetFlow v5 carries it) and SrcPort is 0.
	// Both are 0 for other protocols and for non-first fragments.
	SrcPort, DstPort uint16
	// VLAN is the 802.1Q VLAN ID of the outermost tag, 0 without a tag.
	VLAN uint16
	// IPv6 is true for IPv6 packets.
	IPv6 bool
	// Proto is the IPv4 protocol or the IPv6 next header after extension
	// headers.
	Proto uint8
	// TOS is the IPv4 type of service or the IPv6 traffic class.
	TOS uint8
	// TCPFlags holds the TCP header's flags (low 8 bits).
	TCPFlags uint8
	// Fragment is true for non-first fragments, which carry no ports.
	Fragment bool
}

// ParseFrame decodes one frame of the given link type into p. It reads
// only headers, never allocates, and accepts captures truncated by a snap
// length as long as the IP header (and, when present, the first four bytes
// of the transport header) survive.
func ParseFrame(p *Packet, linkType uint32, frame []byte) error {
	*p = Packet{}
	var etherType uint16
	b := frame
	switch linkType {
	case LinkEthernet:
		if len(b) < 14 {
			return ErrTruncated
		}
		copy(p.DstMAC[:], b[0:6])
		copy(p.SrcMAC[:], b[6:12])
		etherType, b = binary.BigEndian.Uint16(b[12:]), b[14:]
		for i := 0; i < maxVLANTag && (etherType == etherVLAN || etherType == etherQinQ); i++ {
			if len(b) < 4 {
				return ErrTruncated
			}
			if i == 0 {
				p.VLAN = binary.BigEndian.Uint16(b) & 0x0fff
			}
			etherType, b = binary.BigEndian.Uint16(b[2:]), b[4:]
		}
	case LinkLinuxSLL:
		if len(b) < 16 {
			return ErrTruncated
		}
		etherType, b = binary.BigEndian.Uint16(b[14:]), b[16:]
	case LinkLinuxSLL2:
		if len(b) < 20 {
			return ErrTruncated
		}
		etherType, b = binary.BigEndian.Uint16(b[0:]), b[20:]
	case LinkNull:
		if len(b) < 4 {
			return ErrTruncated
		}
		fam := binary.LittleEndian.Uint32(b)
		if fam > 0xffff { // written on a big-endian host
			fam = binary.BigEndian.Uint32(b)
		}
		b = b[4:]
		switch fam {
		case 2:
			etherType = etherIPv4
		case 10, 24, 28, 30: // AF_INET6 on Linux, NetBSD/OpenBSD, FreeBSD, macOS
			etherType = etherIPv6
		default:
			return ErrNotIP
		}
	case LinkRaw:
		if len(b) == 0 {
			return ErrTruncated
		}
		switch b[0] >> 4 {
		case 4:
			etherType = etherIPv4
		case 6:
			etherType = etherIPv6
		default:
			return ErrNotIP
		}
	default:
		return ErrLinkType
	}
	switch etherType {
	case etherIPv4:
		return parseIPv4(p, b)
	case etherIPv6:
		return parseIPv6(p, b)
	}
	return ErrNotIP
}

// parseIPv4 decodes an IPv4 header and what follows it.
func parseIPv4(p *Packet, b []byte) error {
	if len(b) < 20 {
		return ErrTruncated
	}
	if b[0]>>4 != 4 {
		return ErrNotIP
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 || len(b) < ihl {
		return ErrTruncated
	}
	p.TOS = b[1]
	p.IPLen = uint32(binary.BigEndian.Uint16(b[2:]))
	p.Proto = b[9]
	p.Src[10], p.Src[11] = 0xff, 0xff
	p.Dst[10], p.Dst[11] = 0xff, 0xff
	copy(p.Src[12:], b[12:16])
	copy(p.Dst[12:], b[16:20])
	if binary.BigEndian.Uint16(b[6:])&0x1fff != 0 {
		p.Fragment = true
		return nil
	}
	return parseTransport(p, b[ihl:])
}

// parseIPv6 decodes an IPv6 header, skips extension headers and decodes
// the transport header.
func parseIPv6(p *Packet, b []byte) error {
	if len(b) < 40 {
		return ErrTruncated
	}
	if b[0]>>4 != 6 {
		return ErrNotIP
	}
	p.IPv6 = true
	p.TOS = uint8(binary.BigEndian.Uint16(b[0:]) >> 4)
	p.IPLen = uint32(binary.BigEndian.Uint16(b[4:])) + 40
	next := b[6]
	copy(p.Src[:], b[8:24])
	copy(p.Dst[:], b[24:40])
	b = b[40:]
	for range maxExt6 {
		var hl int
		switch next {
		case ext6HopByHop, ext6Routing, ext6DestOpts, ext6Mobility:
			if len(b) < 2 {
				return ErrTruncated
			}
			hl = (int(b[1]) + 1) * 8
		case ext6AH:
			if len(b) < 2 {
				return ErrTruncated
			}
			hl = (int(b[1]) + 2) * 4
		case ext6Fragment:
			if len(b) < 8 {
				return ErrTruncated
			}
			hl = 8
			if binary.BigEndian.Uint16(b[2:])&0xfff8 != 0 {
				p.Fragment = true
			}
		default:
			p.Proto = next
			if p.Fragment {
				return nil
			}
			return parseTransport(p, b)
		}
		if len(b) < hl {
			return ErrTruncated
		}
		next, b = b[0], b[hl:]
	}
	// An absurdly long extension chain: keep the flow, without ports.
	p.Proto = next
	return nil
}

// parseTransport reads ports (or ICMP type and code) and TCP flags. A
// transport header cut by the snap length leaves the fields it cannot
// read at zero rather than failing: the IP packet still counts.
func parseTransport(p *Packet, b []byte) error {
	switch p.Proto {
	case protoTCP:
		if len(b) >= 4 {
			p.SrcPort, p.DstPort = binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])
		}
		if len(b) >= 14 {
			p.TCPFlags = b[13]
		}
	case protoUDP, 132: // UDP, SCTP
		if len(b) >= 4 {
			p.SrcPort, p.DstPort = binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])
		}
	case protoICMP, protoICMPv6:
		if len(b) >= 2 {
			p.DstPort = uint16(b[0])<<8 | uint16(b[1])
		}
	}
	return nil
}
