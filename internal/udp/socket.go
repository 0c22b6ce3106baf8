// Package udp is flowscan's UDP receive path, shared by the collector and
// the relay: sockets with SO_REUSEPORT, a large (forced) receive buffer and
// the kernel's drop count (SO_MEMINFO), read with recvmmsg into recycled
// batches, allocating nothing per datagram.
package udp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Receive-side sizes. A slot holds one datagram; datagrams longer than a
// slot (jumbo frames beyond 9 KB) are counted as truncated and dropped.
const (
	SlotSize      = 9216
	BatchSlots    = 32
	DefaultRcvBuf = 4 << 20
)

// Batch is a group of datagrams read by one recvmmsg call. Batches are
// meant to be recycled (a free list), so reading allocates nothing.
type Batch struct {
	buf  []byte // BatchSlots * SlotSize
	lens [BatchSlots]int
	srcs [BatchSlots]netip.AddrPort
	// N is the number of datagrams in the batch.
	N int
	// Truncated counts datagrams dropped because they did not fit a slot.
	Truncated int
	// Received is when the batch was read.
	Received time.Time
}

// NewBatch allocates a batch.
func NewBatch() *Batch { return &Batch{buf: make([]byte, BatchSlots*SlotSize)} }

// Data returns datagram i of the batch; it is valid until the batch is
// read into again.
func (b *Batch) Data(i int) []byte { return b.buf[i*SlotSize : i*SlotSize+b.lens[i]] }

// Src returns the sender of datagram i.
func (b *Batch) Src(i int) netip.AddrPort { return b.srcs[i] }

// Socket is one UDP socket read with recvmmsg. ReadBatch is for one
// goroutine; Drops, Addr and Close may be called from others.
type Socket struct {
	conn  *net.UDPConn
	raw   syscall.RawConn
	local string

	// recvmmsg state, allocated once.
	hdrs   [BatchSlots]unix.Mmsghdr
	iovs   [BatchSlots]unix.Iovec
	names  [BatchSlots]unix.RawSockaddrInet6
	cur    *Batch
	got    int
	err    error
	noWait bool // TryReadBatch: an empty socket returns at once
	read   func(fd uintptr) bool

	// dropsMu guards the drop count: the kernel's 32-bit counter as last
	// read, and the total, which goes on past the counter's wrap.
	dropsMu    sync.Mutex
	dropsRaw   uint32
	dropsTotal uint64
}

// Listen opens a UDP socket on addr ("127.0.0.1:2055", "[::]:6343",
// ":2055") with SO_REUSEPORT (so several sockets can share a port), a
// receive buffer of rcvbuf bytes (DefaultRcvBuf if 0; forced past
// net.core.rmem_max when running as root). It returns the receive buffer
// the kernel granted.
func Listen(ctx context.Context, addr string, rcvbuf int) (*Socket, int, error) {
	if rcvbuf <= 0 {
		rcvbuf = DefaultRcvBuf
	}
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
	s := &Socket{conn: conn, raw: raw, local: conn.LocalAddr().String()}
	for i := range s.hdrs {
		s.hdrs[i].Hdr.Iov = &s.iovs[i]
		s.hdrs[i].Hdr.Iovlen = 1
		s.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&s.names[i]))
	}
	s.read = s.recvmmsg
	// The kernel reports twice the requested size; report what we asked for.
	return s, got / 2, nil
}

// recvmmsg is the RawConn.Read callback: it fills s.cur from the socket
// without blocking and reports false (wait for readability) on EAGAIN.
func (s *Socket) recvmmsg(fd uintptr) bool {
	b := s.cur
	for i := range s.hdrs {
		s.iovs[i].Base = &b.buf[i*SlotSize]
		s.iovs[i].SetLen(SlotSize)
		s.hdrs[i].Hdr.Namelen = uint32(unsafe.Sizeof(s.names[i]))
		s.hdrs[i].Hdr.Flags = 0
	}
	// MSG_DONTWAIT: the call never blocks, so it is made as a raw system
	// call, without telling the scheduler (which would otherwise hand this
	// thread's P to another thread and keep its monitor thread awake).
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[0])), BatchSlots, unix.MSG_DONTWAIT, 0, 0)
	for errno == unix.EINTR {
		// Interrupted before it took a datagram: try again at once.
		// Waiting for readability instead could leave datagrams already
		// queued waiting for the next one to arrive (the poller reports
		// new arrivals, not a non-empty queue).
		n, _, errno = unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[0])), BatchSlots, unix.MSG_DONTWAIT, 0, 0)
	}
	if errno == unix.EAGAIN || errno == unix.EWOULDBLOCK {
		if s.noWait {
			s.got, s.err = 0, nil
			return true
		}
		return false
	}
	if errno != 0 {
		s.err, s.got = errno, 0
		return true
	}
	s.got, s.err = int(n), nil
	return true
}

// ReadBatch blocks until at least one datagram arrives and fills b with up
// to BatchSlots datagrams. After Close it returns an error for which
// IsClosed is true.
func (s *Socket) ReadBatch(b *Batch) error { return s.readBatch(b, false) }

// TryReadBatch is ReadBatch without the wait: when no datagram is waiting
// it returns at once with an empty batch.
func (s *Socket) TryReadBatch(b *Batch) error { return s.readBatch(b, true) }

func (s *Socket) readBatch(b *Batch, noWait bool) error {
	s.cur, s.noWait = b, noWait
	b.N, b.Truncated = 0, 0
	if err := s.raw.Read(s.read); err != nil {
		return err
	}
	if s.err != nil {
		return fmt.Errorf("recvmmsg on %s: %w", s.local, s.err)
	}
	b.Received = time.Now()
	for i := 0; i < s.got; i++ {
		h := &s.hdrs[i]
		if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
			b.Truncated++
			continue
		}
		if src, ok := sockaddrToAddrPort(&s.names[i]); ok {
			if b.N != i {
				copy(b.buf[b.N*SlotSize:], b.buf[i*SlotSize:i*SlotSize+int(h.Len)])
			}
			b.lens[b.N] = int(h.Len)
			b.srcs[b.N] = src
			b.N++
		}
	}
	return nil
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

// Close closes the socket; a ReadBatch in progress returns.
func (s *Socket) Close() error { return s.conn.Close() }

// Addr returns the local address the socket is bound to.
func (s *Socket) Addr() string { return s.local }

// Drops returns the datagrams the kernel dropped on this socket, almost
// all for lack of receive buffer space (SK_MEMINFO_DROPS of SO_MEMINFO,
// the counter SO_RXQ_OVFL reports). It asks the kernel on each call, so the
// datagrams themselves carry no control message; the kernel's counter is
// 32 bits, and Drops goes on counting past its wrap (as long as it is
// called at least once per 2^32 drops). After Close it returns the last
// count read.
func (s *Socket) Drops() uint64 {
	var mem [unix.SK_MEMINFO_VARS]uint32
	var errno syscall.Errno
	err := s.raw.Control(func(fd uintptr) {
		size := uint32(unsafe.Sizeof(mem))
		_, _, errno = unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&mem[0])), uintptr(unsafe.Pointer(&size)), 0)
	})
	s.dropsMu.Lock()
	defer s.dropsMu.Unlock()
	if err == nil && errno == 0 {
		s.dropsTotal += uint64(s.addDrops(mem[unix.SK_MEMINFO_DROPS]))
	}
	return s.dropsTotal
}

// addDrops records raw, a new reading of the kernel's 32-bit drop counter,
// and returns the drops since the last reading (modulo 2^32, so across a
// wrap too).
func (s *Socket) addDrops(raw uint32) uint32 {
	d := raw - s.dropsRaw
	s.dropsRaw = raw
	return d
}

// IsClosed reports whether err means the socket was closed on purpose.
func IsClosed(err error) bool { return errors.Is(err, net.ErrClosed) || errors.Is(err, unix.EBADF) }
