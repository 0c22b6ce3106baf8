package relay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sndBuf is the send buffer requested for every destination socket.
const sndBuf = 4 << 20

// sendResult is the outcome of sending one batch.
type sendResult struct {
	sent, failed int
	bytes        uint64 // payload bytes of the sent datagrams
	err          error  // the last refusal
}

// mmsgWriter sends a batch of prepared messages with sendmmsg through a
// RawConn, so a full send buffer parks the goroutine in the poller rather
// than in a system call. A message the kernel refuses is counted and
// skipped; the rest of the batch still goes.
type mmsgWriter struct {
	rc      syscall.RawConn
	hdrs    [sendBatch]unix.Mmsghdr
	iovs    [sendBatch]unix.Iovec
	payload [sendBatch]int // payload length of each message
	n, off  int
	res     sendResult
	write   func(fd uintptr) bool
}

func (w *mmsgWriter) init(rc syscall.RawConn) {
	w.rc = rc
	for i := range w.hdrs {
		w.hdrs[i].Hdr.Iov = &w.iovs[i]
		w.hdrs[i].Hdr.Iovlen = 1
	}
	w.write = w.sendmmsg
}

// sendmmsg is the RawConn.Write callback.
func (w *mmsgWriter) sendmmsg(fd uintptr) bool {
	for w.off < w.n {
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&w.hdrs[w.off])), uintptr(w.n-w.off), unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			for i := w.off; i < w.off+int(r); i++ {
				w.res.bytes += uint64(w.payload[i])
			}
			w.res.sent += int(r)
			w.off += int(r)
		case unix.EAGAIN:
			return false
		case unix.EINTR:
		default:
			// The first remaining message was refused (or a pending ICMP
			// error was reported on it): count it and go on.
			w.res.failed++
			w.res.err = errno
			w.off++
		}
	}
	return true
}

// flush sends the n prepared messages.
func (w *mmsgWriter) flush(n int) sendResult {
	w.n, w.off, w.res = n, 0, sendResult{}
	if err := w.rc.Write(w.write); err != nil && w.res.err == nil {
		w.res.err = err
	}
	return w.res
}

// udpSender sends from a connected UDP socket (the relay's own address).
type udpSender struct {
	conn *net.UDPConn
	w    mmsgWriter
}

func newUDPSender(addr netip.AddrPort) (*udpSender, error) {
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, err
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, err
	}
	setSndBuf(rc)
	s := &udpSender{conn: conn}
	s.w.init(rc)
	return s, nil
}

func (s *udpSender) send(batch []*packet) sendResult {
	for i, p := range batch {
		s.w.iovs[i].Base = &p.buf[headroom]
		s.w.iovs[i].SetLen(p.n)
		s.w.payload[i] = p.n
	}
	return s.w.flush(len(batch))
}

func (s *udpSender) interrupt()   { _ = s.conn.SetWriteDeadline(time.Unix(1, 0)) }
func (s *udpSender) close() error { return s.conn.Close() }

// setSndBuf raises the socket's send buffer (forced past wmem_max when
// privileged).
func setSndBuf(rc syscall.RawConn) {
	_ = rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sndBuf) != nil {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, sndBuf)
		}
	})
}

// rawSender sends through a raw socket with a hand-built IP and UDP
// header carrying the original exporter's address and port. IPv4 uses
// IPPROTO_RAW (which implies IP_HDRINCL); IPv6 uses IPPROTO_RAW with
// IPV6_HDRINCL (Linux 4.5 and later). The kernel does not fragment such
// packets: a datagram larger than the path MTU is refused and counted.
type rawSender struct {
	file *os.File
	dst  netip.AddrPort
	v6   bool
	w    mmsgWriter
	sa4  unix.RawSockaddrInet4
	sa6  unix.RawSockaddrInet6
	id   uint16 // IPv4 identification of the last packet
	// errFamily reports exporters of the other address family.
	errFamily error
}

func newRawSender(addr netip.AddrPort) (*rawSender, error) {
	v6 := addr.Addr().Is6()
	family := unix.AF_INET
	if v6 {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("spoof needs a raw socket (root or CAP_NET_RAW): %w", err)
		}
		return nil, fmt.Errorf("raw socket: %w", err)
	}
	if v6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_HDRINCL, 1); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("IPV6_HDRINCL (needs Linux 4.5 or later): %w", err)
		}
	}
	file := os.NewFile(uintptr(fd), "raw:"+addr.String())
	rc, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, err
	}
	setSndBuf(rc)
	s := &rawSender{file: file, dst: addr, v6: v6,
		errFamily: fmt.Errorf("exporter address family differs from destination %s: its source cannot be kept", addr)}
	s.w.init(rc)
	if v6 {
		s.sa6.Family = unix.AF_INET6
		s.sa6.Addr = addr.Addr().As16()
		for i := range s.w.hdrs {
			s.w.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&s.sa6))
			s.w.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		}
	} else {
		s.sa4.Family = unix.AF_INET
		s.sa4.Addr = addr.Addr().As4()
		for i := range s.w.hdrs {
			s.w.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&s.sa4))
			s.w.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet4
		}
	}
	return s, nil
}

// send writes the headers in front of each payload and sends the batch.
// A datagram whose exporter is of the other address family cannot keep its
// source and is counted as failed.
func (s *rawSender) send(batch []*packet) sendResult {
	n, mismatched := 0, 0
	for _, p := range batch {
		src := p.src.Addr().Unmap()
		if src.Is6() != s.v6 {
			mismatched++
			continue
		}
		var hdr []byte
		if s.v6 {
			hdr = s.header6(p, src)
		} else {
			hdr = s.header4(p, src)
		}
		s.w.iovs[n].Base = &hdr[0]
		s.w.iovs[n].SetLen(len(hdr))
		s.w.payload[n] = p.n
		n++
	}
	var r sendResult
	if n > 0 {
		r = s.w.flush(n)
	}
	if mismatched > 0 {
		r.failed += mismatched
		r.err = s.errFamily
	}
	return r
}

// header4 writes the IPv4 and UDP headers before p's payload and returns
// header and payload together.
func (s *rawSender) header4(p *packet, src netip.Addr) []byte {
	const hl = 20 + 8
	b := p.buf[headroom-hl : headroom+p.n]
	be := binary.BigEndian
	s.id++
	b[0] = 0x45 // version 4, 5 words
	b[1] = 0
	be.PutUint16(b[2:], uint16(len(b)))
	be.PutUint16(b[4:], s.id)
	be.PutUint16(b[6:], 0) // no flags: may be fragmented on the way
	b[8] = 64              // TTL
	b[9] = unix.IPPROTO_UDP
	be.PutUint16(b[10:], 0)
	s4, d4 := src.As4(), s.dst.Addr().As4()
	copy(b[12:16], s4[:])
	copy(b[16:20], d4[:])
	be.PutUint16(b[10:], ^uint16(fold(sum(0, b[:20]))))
	u := b[20:]
	be.PutUint16(u[0:], p.src.Port())
	be.PutUint16(u[2:], s.dst.Port())
	be.PutUint16(u[4:], uint16(len(u)))
	be.PutUint16(u[6:], 0)
	acc := sum(0, s4[:])
	acc = sum(acc, d4[:])
	acc += unix.IPPROTO_UDP + uint64(len(u))
	acc = sum(acc, u)
	be.PutUint16(u[6:], udpChecksum(acc))
	return b
}

// header6 writes the IPv6 and UDP headers before p's payload.
func (s *rawSender) header6(p *packet, src netip.Addr) []byte {
	const hl = 40 + 8
	b := p.buf[headroom-hl : headroom+p.n]
	be := binary.BigEndian
	be.PutUint32(b[0:], 6<<28) // version 6, traffic class 0, flow label 0
	be.PutUint16(b[4:], uint16(len(b)-40))
	b[6] = unix.IPPROTO_UDP
	b[7] = 64 // hop limit
	s16, d16 := src.As16(), s.dst.Addr().As16()
	copy(b[8:24], s16[:])
	copy(b[24:40], d16[:])
	u := b[40:]
	be.PutUint16(u[0:], p.src.Port())
	be.PutUint16(u[2:], s.dst.Port())
	be.PutUint16(u[4:], uint16(len(u)))
	be.PutUint16(u[6:], 0)
	acc := sum(0, s16[:])
	acc = sum(acc, d16[:])
	acc += unix.IPPROTO_UDP + uint64(len(u))
	acc = sum(acc, u)
	be.PutUint16(u[6:], udpChecksum(acc))
	return b
}

func (s *rawSender) interrupt()   { _ = s.file.SetWriteDeadline(time.Unix(1, 0)) }
func (s *rawSender) close() error { return s.file.Close() }

// sum adds b to the one's-complement accumulator acc as big-endian 16-bit
// words (an odd last byte is padded with zero).
func sum(acc uint64, b []byte) uint64 {
	for len(b) >= 8 {
		v := binary.BigEndian.Uint64(b)
		acc += v>>48 + v>>32&0xffff + v>>16&0xffff + v&0xffff
		b = b[8:]
	}
	for len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return acc
}

// fold folds a one's-complement accumulator to 16 bits.
func fold(acc uint64) uint16 {
	for acc>>16 != 0 {
		acc = acc&0xffff + acc>>16
	}
	return uint16(acc)
}

// udpChecksum finishes a UDP checksum; zero is sent as all ones (RFC 768).
func udpChecksum(acc uint64) uint16 {
	c := ^fold(acc)
	if c == 0 {
		c = 0xffff
	}
	return c
}
