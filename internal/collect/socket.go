package collect

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Receive-side sizes. A slot holds one datagram; datagrams longer than a
// slot (jumbo frames beyond 9 KB) are counted as truncated and dropped.
const (
	slotSize      = 9216
	batchSlots    = 32
	oobSize       = 64 // room for one SO_RXQ_OVFL control message
	defaultRcvBuf = 4 << 20
)

// batch is a group of datagrams read by one recvmmsg call. Batches are
// recycled between a socket reader and the pipeline through a free list.
type batch struct {
	buf   []byte // batchSlots * slotSize
	n     int
	lens  [batchSlots]int
	srcs  [batchSlots]netip.AddrPort
	trunc int // datagrams dropped because they did not fit a slot
	recv  time.Time
}

func newBatch() *batch { return &batch{buf: make([]byte, batchSlots*slotSize)} }

// data returns datagram i of the batch.
func (b *batch) data(i int) []byte { return b.buf[i*slotSize : i*slotSize+b.lens[i]] }

// socket is one UDP socket read with recvmmsg.
type socket struct {
	conn  *net.UDPConn
	raw   syscall.RawConn
	local string

	// recvmmsg state, allocated once.
	hdrs  [batchSlots]unix.Mmsghdr
	iovs  [batchSlots]unix.Iovec
	names [batchSlots]unix.RawSockaddrInet6
	oobs  [batchSlots][oobSize]byte
	cur   *batch
	got   int
	err   error
	read  func(fd uintptr) bool

	// drops is the kernel's cumulative count of datagrams dropped on this
	// socket for lack of buffer space (SO_RXQ_OVFL).
	drops atomic.Uint32
}

// listen opens a UDP socket on addr with SO_REUSEPORT (so several sockets
// can share a port), a receive buffer of rcvbuf bytes (forced past
// net.core.rmem_max when running as root) and drop reporting.
func listen(ctx context.Context, addr string, rcvbuf int) (*socket, int, error) {
	got := 0
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); serr != nil {
				return
			}
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
			}
			got, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil {
		return nil, 0, err
	}
	conn := pc.(*net.UDPConn)
	raw, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, 0, err
	}
	s := &socket{conn: conn, raw: raw, local: conn.LocalAddr().String()}
	for i := range s.hdrs {
		s.hdrs[i].Hdr.Iov = &s.iovs[i]
		s.hdrs[i].Hdr.Iovlen = 1
		s.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&s.names[i]))
		s.hdrs[i].Hdr.Control = &s.oobs[i][0]
	}
	s.read = s.recvmmsg
	// The kernel reports twice the requested size; report what we asked for.
	return s, got / 2, nil
}

// recvmmsg is the RawConn.Read callback: it fills s.cur from the socket
// without blocking and reports false (wait for readability) on EAGAIN.
func (s *socket) recvmmsg(fd uintptr) bool {
	b := s.cur
	for i := range s.hdrs {
		s.iovs[i].Base = &b.buf[i*slotSize]
		s.iovs[i].SetLen(slotSize)
		s.hdrs[i].Hdr.Namelen = uint32(unsafe.Sizeof(s.names[i]))
		s.hdrs[i].Hdr.SetControllen(oobSize)
		s.hdrs[i].Hdr.Flags = 0
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[0])), batchSlots, unix.MSG_DONTWAIT, 0, 0)
	if errno == unix.EAGAIN || errno == unix.EWOULDBLOCK {
		return false
	}
	if errno == unix.EINTR {
		return false
	}
	if errno != 0 {
		s.err, s.got = errno, 0
		return true
	}
	s.got, s.err = int(n), nil
	return true
}

// readBatch blocks until at least one datagram arrives and fills b with up to
// batchSlots datagrams.
func (s *socket) readBatch(b *batch) error {
	s.cur = b
	b.n, b.trunc = 0, 0
	if err := s.raw.Read(s.read); err != nil {
		return err
	}
	if s.err != nil {
		return fmt.Errorf("recvmmsg on %s: %w", s.local, s.err)
	}
	b.recv = time.Now()
	for i := 0; i < s.got; i++ {
		h := &s.hdrs[i]
		if h.Hdr.Controllen > 0 {
			s.parseControl(s.oobs[i][:h.Hdr.Controllen])
		}
		if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
			b.trunc++
			continue
		}
		if src, ok := sockaddrToAddrPort(&s.names[i]); ok {
			if b.n != i {
				copy(b.buf[b.n*slotSize:], b.buf[i*slotSize:i*slotSize+int(h.Len)])
			}
			b.lens[b.n] = int(h.Len)
			b.srcs[b.n] = src
			b.n++
		}
	}
	return nil
}

// parseControl picks the SO_RXQ_OVFL drop counter out of a control message.
func (s *socket) parseControl(oob []byte) {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SO_RXQ_OVFL && l >= unix.SizeofCmsghdr+4 {
			s.drops.Store(binary.NativeEndian.Uint32(oob[unix.SizeofCmsghdr:]))
		}
		adv := (l + 7) &^ 7
		if adv > len(oob) {
			return
		}
		oob = oob[adv:]
	}
}

func sockaddrToAddrPort(sa *unix.RawSockaddrInet6) (netip.AddrPort, bool) {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port), true
	case unix.AF_INET6:
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port), true
	}
	return netip.AddrPort{}, false
}

func (s *socket) close() error { return s.conn.Close() }

// isClosed reports whether err means the socket was closed on purpose.
func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }
