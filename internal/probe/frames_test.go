package probe

import (
	"encoding/binary"
	"net/netip"
)

// frameSpec describes a crafted test frame.
type frameSpec struct {
	src, dst     netip.Addr
	proto        uint8
	sport, dport uint16 // ICMP: dport = type<<8|code
	tcpFlags     uint8
	tos          uint8
	payload      int
	vlan         uint16 // 0: untagged
	fragOffset   uint16 // IPv4: non-zero makes a non-first fragment
	ext6         bool   // IPv6: insert a hop-by-hop and a destination options header
}

// ethernet builds an Ethernet frame for s.
func (s frameSpec) ethernet() []byte {
	b := []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1}
	if s.vlan != 0 {
		b = binary.BigEndian.AppendUint16(b, etherVLAN)
		b = binary.BigEndian.AppendUint16(b, s.vlan)
	}
	if s.src.Is4() {
		b = binary.BigEndian.AppendUint16(b, etherIPv4)
	} else {
		b = binary.BigEndian.AppendUint16(b, etherIPv6)
	}
	return append(b, s.ip()...)
}

// transport returns the transport header and payload.
func (s frameSpec) transport() []byte {
	var t []byte
	switch s.proto {
	case protoTCP:
		t = make([]byte, 20)
		binary.BigEndian.PutUint16(t[0:], s.sport)
		binary.BigEndian.PutUint16(t[2:], s.dport)
		t[12] = 5 << 4
		t[13] = s.tcpFlags
	case protoUDP:
		t = make([]byte, 8)
		binary.BigEndian.PutUint16(t[0:], s.sport)
		binary.BigEndian.PutUint16(t[2:], s.dport)
		binary.BigEndian.PutUint16(t[4:], uint16(8+s.payload))
	case protoICMP, protoICMPv6:
		t = make([]byte, 8)
		t[0], t[1] = byte(s.dport>>8), byte(s.dport)
	}
	return append(t, make([]byte, s.payload)...)
}

// ip returns the IP packet.
func (s frameSpec) ip() []byte {
	t := s.transport()
	if s.src.Is4() {
		h := make([]byte, 20)
		h[0] = 0x45
		h[1] = s.tos
		binary.BigEndian.PutUint16(h[2:], uint16(20+len(t)))
		binary.BigEndian.PutUint16(h[6:], s.fragOffset&0x1fff)
		h[8] = 64
		h[9] = s.proto
		a, d := s.src.As4(), s.dst.As4()
		copy(h[12:], a[:])
		copy(h[16:], d[:])
		return append(h, t...)
	}
	h := make([]byte, 40)
	binary.BigEndian.PutUint32(h[0:], 6<<28|uint32(s.tos)<<20)
	next := s.proto
	if s.ext6 {
		// hop-by-hop (8 bytes) -> destination options (16 bytes) -> proto
		ext := make([]byte, 24)
		ext[0], ext[1] = ext6DestOpts, 0
		ext[8], ext[9] = s.proto, 1
		t = append(ext, t...)
		next = ext6HopByHop
	}
	binary.BigEndian.PutUint16(h[4:], uint16(len(t)))
	h[6] = next
	h[7] = 64
	a, d := s.src.As16(), s.dst.As16()
	copy(h[8:], a[:])
	copy(h[24:], d[:])
	return append(h, t...)
}
