// Package testutil holds helpers shared by flowscan's tests: a minimal
// pure-Go reader and writer for classic libpcap capture files, a parser that
// pulls UDP datagrams out of captured frames, and a generator of synthetic
// but realistic traffic captures used as input for real flow exporters.
//
// Nothing here is meant for production paths; it favours clarity over speed
// and supports only what the tests need.
package testutil

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"
)

// Link-layer header types (LINKTYPE_* values) understood by ParseFrame.
const (
	LinkTypeNull     uint32 = 0   // BSD loopback: 4-byte address family in host order
	LinkTypeEthernet uint32 = 1   // Ethernet II, optionally with 802.1Q/802.1ad tags
	LinkTypeRaw      uint32 = 101 // raw IPv4 or IPv6, no link header
	LinkTypeLinuxSLL uint32 = 113 // Linux cooked capture v1
	LinkTypeLinuxSL2 uint32 = 276 // Linux cooked capture v2
)

const (
	magicMicro        = 0xa1b2c3d4
	magicNano         = 0xa1b23c4d
	pcapngMagic       = 0x0a0d0d0a
	fileHeaderLen     = 24
	recordHeaderLen   = 16
	maxRecordCaptured = 1 << 18 // sanity bound on one record's captured length
)

// ErrPcapNG is returned by NewReader for pcapng files, which this package
// does not read (capture with tshark -F pcap).
var ErrPcapNG = errors.New("pcap: file is pcapng, not classic pcap (use tshark -F pcap)")

// Record is one captured frame.
type Record struct {
	// Time is the capture timestamp.
	Time time.Time
	// Data holds the captured bytes (possibly truncated to the snap length).
	Data []byte
	// OrigLen is the frame's length on the wire.
	OrigLen int
}

// Writer writes a classic pcap file with microsecond timestamps in little
// endian byte order.
type Writer struct {
	w       io.Writer
	snapLen uint32
	hdr     [recordHeaderLen]byte
}

// NewWriter writes the pcap file header for linkType and returns a Writer.
// Frames longer than snapLen are truncated when written (their original
// length is kept in the record header); snapLen 0 means 262144.
func NewWriter(w io.Writer, linkType, snapLen uint32) (*Writer, error) {
	if snapLen == 0 {
		snapLen = 262144
	}
	var h [fileHeaderLen]byte
	binary.LittleEndian.PutUint32(h[0:], magicMicro)
	binary.LittleEndian.PutUint16(h[4:], 2) // version 2.4
	binary.LittleEndian.PutUint16(h[6:], 4)
	// h[8:16]: thiszone and sigfigs, both zero.
	binary.LittleEndian.PutUint32(h[16:], snapLen)
	binary.LittleEndian.PutUint32(h[20:], linkType)
	if _, err := w.Write(h[:]); err != nil {
		return nil, err
	}
	return &Writer{w: w, snapLen: snapLen}, nil
}

// WritePacket writes one frame captured at ts. origLen is the frame's length
// on the wire; if it is smaller than len(data) it is taken as len(data).
func (w *Writer) WritePacket(ts time.Time, data []byte, origLen int) error {
	if origLen < len(data) {
		origLen = len(data)
	}
	if uint32(len(data)) > w.snapLen {
		data = data[:w.snapLen]
	}
	us := ts.UnixMicro()
	binary.LittleEndian.PutUint32(w.hdr[0:], uint32(us/1e6))
	binary.LittleEndian.PutUint32(w.hdr[4:], uint32(us%1e6))
	binary.LittleEndian.PutUint32(w.hdr[8:], uint32(len(data)))
	binary.LittleEndian.PutUint32(w.hdr[12:], uint32(origLen))
	if _, err := w.w.Write(w.hdr[:]); err != nil {
		return err
	}
	_, err := w.w.Write(data)
	return err
}

// Reader reads a classic pcap file in either byte order, with microsecond
// or nanosecond timestamps.
type Reader struct {
	r        io.Reader
	order    binary.ByteOrder
	nano     bool
	linkType uint32
	snapLen  uint32
	hdr      [recordHeaderLen]byte
}

// NewReader reads the file header from r.
func NewReader(r io.Reader) (*Reader, error) {
	var h [fileHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("pcap: file header: %w", err)
	}
	pr := &Reader{r: r}
	switch {
	case binary.LittleEndian.Uint32(h[0:]) == magicMicro:
		pr.order = binary.LittleEndian
	case binary.BigEndian.Uint32(h[0:]) == magicMicro:
		pr.order = binary.BigEndian
	case binary.LittleEndian.Uint32(h[0:]) == magicNano:
		pr.order, pr.nano = binary.LittleEndian, true
	case binary.BigEndian.Uint32(h[0:]) == magicNano:
		pr.order, pr.nano = binary.BigEndian, true
	case binary.LittleEndian.Uint32(h[0:]) == pcapngMagic:
		return nil, ErrPcapNG
	default:
		return nil, fmt.Errorf("pcap: bad magic %#08x", binary.LittleEndian.Uint32(h[0:]))
	}
	pr.snapLen = pr.order.Uint32(h[16:])
	// The upper bits of the link type field may carry FCS information.
	pr.linkType = pr.order.Uint32(h[20:]) & 0x0fffffff
	return pr, nil
}

// LinkType returns the file's link-layer header type.
func (r *Reader) LinkType() uint32 { return r.linkType }

// SnapLen returns the file's snapshot length.
func (r *Reader) SnapLen() uint32 { return r.snapLen }

// Next returns the next record, or io.EOF at the end of the file. A file
// cut inside a record yields io.ErrUnexpectedEOF.
func (r *Reader) Next() (Record, error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		return Record{}, err // io.EOF at a clean end
	}
	sec := int64(r.order.Uint32(r.hdr[0:]))
	frac := int64(r.order.Uint32(r.hdr[4:]))
	capLen := r.order.Uint32(r.hdr[8:])
	origLen := r.order.Uint32(r.hdr[12:])
	if capLen > maxRecordCaptured {
		return Record{}, fmt.Errorf("pcap: record captured length %d too large", capLen)
	}
	data := make([]byte, capLen)
	if _, err := io.ReadFull(r.r, data); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Record{}, err
	}
	if !r.nano {
		frac *= 1000
	}
	return Record{Time: time.Unix(sec, frac).UTC(), Data: data, OrigLen: int(origLen)}, nil
}

// ReadFile reads every record of a classic pcap file.
func ReadFile(path string) (linkType uint32, recs []Record, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	r, err := NewReader(bufio.NewReader(f))
	if err != nil {
		return 0, nil, err
	}
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return r.LinkType(), recs, nil
		}
		if err != nil {
			return r.LinkType(), recs, err
		}
		recs = append(recs, rec)
	}
}

// Packet is the network and transport view of one captured frame.
type Packet struct {
	// Src and Dst are the IP addresses.
	Src, Dst netip.Addr
	// Proto is the transport protocol (IPv4 protocol or the final IPv6
	// next header after extension headers).
	Proto uint8
	// IPLen is the packet length according to the IP header: IPv4 total
	// length, or IPv6 payload length plus the 40-byte fixed header.
	IPLen int
	// SrcPort and DstPort are set for TCP and UDP.
	SrcPort, DstPort uint16
	// Fragment is true for non-first fragments (no transport header).
	Fragment bool
	// Truncated is true when the capture holds less UDP payload than the
	// UDP length announces.
	Truncated bool
	// Payload is the captured transport payload (UDP data, TCP segment
	// data, or the ICMP message after its 4-byte header). It aliases the
	// frame and may be truncated by the snap length.
	Payload []byte
}

// IPv6 extension headers skipped by ParseFrame.
const (
	ipv6HopByHop  = 0
	ipv6Routing   = 43
	ipv6Fragment  = 44
	ipv6DestOpts  = 60
	ipv6MaxHeader = 8 // bound on the extension header chain
)

// errNotIP reports a frame that carries no IPv4 or IPv6 packet.
var errNotIP = errors.New("pcap: not an IP frame")

// ParseFrame decodes the link, IP and TCP/UDP headers of one frame.
func ParseFrame(linkType uint32, frame []byte) (Packet, error) {
	ip, err := linkPayload(linkType, frame)
	if err != nil {
		return Packet{}, err
	}
	return parseIP(ip)
}

// linkPayload strips the link-layer header and returns the IP packet.
func linkPayload(linkType uint32, b []byte) ([]byte, error) {
	var etherType uint16
	switch linkType {
	case LinkTypeEthernet:
		if len(b) < 14 {
			return nil, errors.New("pcap: short Ethernet header")
		}
		etherType, b = binary.BigEndian.Uint16(b[12:]), b[14:]
		for i := 0; i < 2 && (etherType == 0x8100 || etherType == 0x88a8); i++ {
			if len(b) < 4 {
				return nil, errors.New("pcap: short VLAN tag")
			}
			etherType, b = binary.BigEndian.Uint16(b[2:]), b[4:]
		}
	case LinkTypeLinuxSLL:
		if len(b) < 16 {
			return nil, errors.New("pcap: short SLL header")
		}
		etherType, b = binary.BigEndian.Uint16(b[14:]), b[16:]
	case LinkTypeLinuxSL2:
		if len(b) < 20 {
			return nil, errors.New("pcap: short SLL2 header")
		}
		etherType, b = binary.BigEndian.Uint16(b[0:]), b[20:]
	case LinkTypeNull:
		if len(b) < 4 {
			return nil, errors.New("pcap: short loopback header")
		}
		// The family is in the capturing host's byte order; accept both.
		fam := binary.LittleEndian.Uint32(b)
		if fam > 0xffff {
			fam = binary.BigEndian.Uint32(b)
		}
		b = b[4:]
		switch fam {
		case 2:
			etherType = 0x0800
		case 10, 24, 28, 30: // AF_INET6 on Linux, NetBSD/OpenBSD, FreeBSD, macOS
			etherType = 0x86dd
		default:
			return nil, errNotIP
		}
	case LinkTypeRaw:
		return b, nil
	default:
		return nil, fmt.Errorf("pcap: unsupported link type %d", linkType)
	}
	if etherType != 0x0800 && etherType != 0x86dd {
		return nil, errNotIP
	}
	return b, nil
}

// parseIP decodes an IPv4 or IPv6 packet and its TCP/UDP ports.
func parseIP(b []byte) (Packet, error) {
	var p Packet
	if len(b) < 1 {
		return p, errors.New("pcap: empty IP packet")
	}
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return p, errors.New("pcap: short IPv4 header")
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return p, errors.New("pcap: bad IPv4 header length")
		}
		p.IPLen = int(binary.BigEndian.Uint16(b[2:]))
		p.Proto = b[9]
		p.Src = netip.AddrFrom4([4]byte(b[12:16]))
		p.Dst = netip.AddrFrom4([4]byte(b[16:20]))
		if binary.BigEndian.Uint16(b[6:])&0x1fff != 0 {
			p.Fragment = true
			return p, nil
		}
		end := min(len(b), max(p.IPLen, ihl))
		b = b[ihl:end]
	case 6:
		if len(b) < 40 {
			return p, errors.New("pcap: short IPv6 header")
		}
		plen := int(binary.BigEndian.Uint16(b[4:]))
		p.IPLen = plen + 40
		next := b[6]
		p.Src = netip.AddrFrom16([16]byte(b[8:24]))
		p.Dst = netip.AddrFrom16([16]byte(b[24:40]))
		b = b[40:min(len(b), 40+plen)]
		for i := 0; i < ipv6MaxHeader; i++ {
			if next != ipv6HopByHop && next != ipv6Routing && next != ipv6DestOpts && next != ipv6Fragment {
				break
			}
			if len(b) < 8 {
				return p, errors.New("pcap: short IPv6 extension header")
			}
			hl := 8
			if next != ipv6Fragment {
				hl = (int(b[1]) + 1) * 8
			} else if binary.BigEndian.Uint16(b[2:])&0xfff8 != 0 {
				p.Fragment = true
			}
			if len(b) < hl {
				return p, errors.New("pcap: short IPv6 extension header")
			}
			next, b = b[0], b[hl:]
		}
		p.Proto = next
		if p.Fragment {
			return p, nil
		}
	default:
		return p, errNotIP
	}
	switch p.Proto {
	case 6: // TCP
		if len(b) < 4 {
			return p, nil // ports truncated away
		}
		p.SrcPort, p.DstPort = binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])
		if len(b) >= 20 {
			off := int(b[12]>>4) * 4
			if off >= 20 && off <= len(b) {
				p.Payload = b[off:]
			}
		}
	case 17: // UDP
		if len(b) < 8 {
			if len(b) >= 4 {
				p.SrcPort, p.DstPort = binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])
			}
			return p, nil
		}
		p.SrcPort, p.DstPort = binary.BigEndian.Uint16(b), binary.BigEndian.Uint16(b[2:])
		ulen := int(binary.BigEndian.Uint16(b[4:]))
		end := len(b)
		if ulen >= 8 && ulen < end {
			end = ulen
		}
		p.Payload = b[8:end]
		p.Truncated = ulen > len(b)
	case 1, 58: // ICMP, ICMPv6
		if len(b) >= 4 {
			p.Payload = b[4:]
		}
	}
	return p, nil
}

// Datagram is one UDP datagram taken from a capture.
type Datagram struct {
	// Time is the capture timestamp.
	Time time.Time
	// Src and Dst are the sender and receiver.
	Src, Dst netip.AddrPort
	// Payload is the UDP payload (truncated if the capture was).
	Payload []byte
	// Truncated is true when the capture holds less than the UDP length.
	Truncated bool
}

// UDPDatagrams returns the UDP datagrams of a pcap file, optionally only
// those sent to dstPort (0 means any port). Non-UDP frames are skipped.
func UDPDatagrams(path string, dstPort uint16) ([]Datagram, error) {
	lt, recs, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Datagram
	for _, rec := range recs {
		p, err := ParseFrame(lt, rec.Data)
		if err != nil || p.Proto != 17 || p.Fragment {
			continue
		}
		if dstPort != 0 && p.DstPort != dstPort {
			continue
		}
		out = append(out, Datagram{
			Time:      rec.Time,
			Src:       netip.AddrPortFrom(p.Src, p.SrcPort),
			Dst:       netip.AddrPortFrom(p.Dst, p.DstPort),
			Payload:   p.Payload,
			Truncated: p.Truncated,
		})
	}
	return out, nil
}
