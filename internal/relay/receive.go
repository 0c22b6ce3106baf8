package relay

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Receive-side sizes: a slot holds one datagram; longer datagrams are
// counted as truncated and not forwarded.
const (
	recvSlot  = 9216
	recvBatch = 64
	recvOOB   = 64 // room for one SO_RXQ_OVFL control message
	// DefaultRcvBuf is the receive buffer a Receiver asks for.
	DefaultRcvBuf = 4 << 20
)

// Receiver reads datagrams from one UDP socket, up to 64 per recvmmsg
// call, and hands each to a handler. The socket asks for a large receive
// buffer and reports the kernel's drop count (SO_RXQ_OVFL).
type Receiver struct {
	conn  *net.UDPConn
	rc    syscall.RawConn
	local netip.AddrPort

	buf   []byte
	hdrs  [recvBatch]unix.Mmsghdr
	iovs  [recvBatch]unix.Iovec
	names [recvBatch]unix.RawSockaddrInet6
	oobs  [recvBatch][recvOOB]byte
	got   int
	err   error
	read  func(fd uintptr) bool

	received, truncated atomic.Uint64
	kernelDrops         atomic.Uint32
}

// Listen opens a UDP socket on addr ("127.0.0.1:2055", "[::]:6343",
// ":2055") with SO_REUSEPORT and a receive buffer of rcvBuf bytes
// (DefaultRcvBuf if 0; forced past net.core.rmem_max when privileged).
func Listen(ctx context.Context, addr string, rcvBuf int) (*Receiver, error) {
	if rcvBuf <= 0 {
		rcvBuf = DefaultRcvBuf
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); serr != nil {
				return
			}
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf)
			}
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil {
		return nil, err
	}
	conn := pc.(*net.UDPConn)
	rc, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, err
	}
	r := &Receiver{conn: conn, rc: rc, local: conn.LocalAddr().(*net.UDPAddr).AddrPort(), buf: make([]byte, recvBatch*recvSlot)}
	for i := range r.hdrs {
		r.iovs[i].Base = &r.buf[i*recvSlot]
		r.iovs[i].SetLen(recvSlot)
		r.hdrs[i].Hdr.Iov = &r.iovs[i]
		r.hdrs[i].Hdr.Iovlen = 1
		r.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		r.hdrs[i].Hdr.Control = &r.oobs[i][0]
	}
	r.read = r.recvmmsg
	return r, nil
}

// Addr returns the local address the socket is bound to.
func (r *Receiver) Addr() netip.AddrPort { return r.local }

// Received returns the number of datagrams handed to the handler.
func (r *Receiver) Received() uint64 { return r.received.Load() }

// Truncated returns the number of datagrams dropped for being longer than
// 9216 bytes.
func (r *Receiver) Truncated() uint64 { return r.truncated.Load() }

// KernelDrops returns the kernel's count of datagrams dropped on the
// socket for lack of receive buffer space.
func (r *Receiver) KernelDrops() uint64 { return uint64(r.kernelDrops.Load()) }

// Run reads datagrams and calls handle for each until Close; it then
// returns nil. handle must not keep data after it returns.
func (r *Receiver) Run(handle func(src netip.AddrPort, data []byte)) error {
	for {
		if err := r.rc.Read(r.read); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if r.err != nil {
			if errors.Is(r.err, unix.EBADF) {
				return nil
			}
			return fmt.Errorf("recvmmsg on %s: %w", r.local, r.err)
		}
		n := 0
		for i := 0; i < r.got; i++ {
			h := &r.hdrs[i]
			if h.Hdr.Controllen > 0 {
				r.parseControl(r.oobs[i][:h.Hdr.Controllen])
			}
			if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
				r.truncated.Add(1)
				continue
			}
			src, ok := sockaddrAddrPort(&r.names[i])
			if !ok {
				continue
			}
			handle(src, r.buf[i*recvSlot:i*recvSlot+int(h.Len)])
			n++
		}
		r.received.Add(uint64(n))
	}
}

// Close closes the socket, which ends Run.
func (r *Receiver) Close() error { return r.conn.Close() }

// recvmmsg is the RawConn.Read callback.
func (r *Receiver) recvmmsg(fd uintptr) bool {
	for i := range r.hdrs {
		r.hdrs[i].Hdr.Namelen = uint32(unsafe.Sizeof(r.names[i]))
		r.hdrs[i].Hdr.SetControllen(recvOOB)
		r.hdrs[i].Hdr.Flags = 0
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), recvBatch, unix.MSG_DONTWAIT, 0, 0)
	switch errno {
	case 0:
		r.got, r.err = int(n), nil
	case unix.EAGAIN, unix.EINTR:
		return false
	default:
		r.got, r.err = 0, errno
	}
	return true
}

// parseControl reads the SO_RXQ_OVFL counter out of a control message.
func (r *Receiver) parseControl(oob []byte) {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SO_RXQ_OVFL && l >= unix.SizeofCmsghdr+4 {
			r.kernelDrops.Store(binary.NativeEndian.Uint32(oob[unix.SizeofCmsghdr:]))
		}
		adv := (l + 7) &^ 7
		if adv >= len(oob) {
			return
		}
		oob = oob[adv:]
	}
}

// sockaddrAddrPort converts a received source address.
func sockaddrAddrPort(sa *unix.RawSockaddrInet6) (netip.AddrPort, bool) {
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
