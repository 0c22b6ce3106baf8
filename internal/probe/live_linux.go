package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Live is a packet socket (AF_PACKET, SOCK_RAW) bound to one interface.
// It is pure Go (no libpcap) and reads one frame per system call, which
// suits the rates a software probe sees; it needs CAP_NET_RAW.
type Live struct {
	fd       int
	ifIndex  int
	linkType uint32
	loopback bool
	buf      []byte
	oob      []byte
	sa       unix.RawSockaddrLinklayer
}

// vlanRoom is the headroom kept before each received frame to put back
// an 802.1Q tag the kernel stripped.
const vlanRoom = 4

// ARPHRD values from /sys/class/net/IF/type that map to a link type.
const (
	arphrdEther    = 1
	arphrdLoopback = 772
	arphrdNone     = 65534 // tun and other raw-IP devices
)

// OpenLive opens a packet socket on the named interface, receiving every
// protocol, with a receive buffer of rcvBuf bytes (0: the kernel default).
// Outgoing packets are kept (as pcap does) except on loopback, where each
// packet would otherwise be seen twice.
func OpenLive(name string, rcvBuf int) (*Live, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, err
	}
	arphrd, err := hardwareType(name)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", name, err)
	}
	l := &Live{ifIndex: ifi.Index, buf: make([]byte, vlanRoom+65536), oob: make([]byte, unix.CmsgSpace(int(unsafe.Sizeof(unix.TpacketAuxdata{}))))}
	switch arphrd {
	case arphrdEther:
		l.linkType = LinkEthernet
	case arphrdLoopback:
		l.linkType, l.loopback = LinkEthernet, true
	case arphrdNone:
		l.linkType = LinkRaw
	default:
		return nil, fmt.Errorf("interface %s: unsupported hardware type %d", name, arphrd)
	}
	// Protocol 0 receives nothing until the socket is bound to the
	// interface with ETH_P_ALL below: no frames of other interfaces slip
	// in between.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("AF_PACKET socket (needs CAP_NET_RAW): %w", err)
	}
	l.fd = fd
	// With VLAN offload the kernel strips the 802.1Q tag off received
	// frames; PACKET_AUXDATA hands it back so it can be put back in.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("PACKET_AUXDATA: %w", err)
	}
	if rcvBuf > 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf); err != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf)
		}
	}
	// Wake up at least every 200 ms so Run can expire flows and stop.
	tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind to %s: %w", name, err)
	}
	return l, nil
}

// LinkType returns the link-layer header type of the frames read.
func (l *Live) LinkType() uint32 { return l.linkType }

// IfIndex returns the interface index.
func (l *Live) IfIndex() int { return l.ifIndex }

// Close closes the socket.
func (l *Live) Close() error { return unix.Close(l.fd) }

// Drops returns the packets the kernel dropped since the last call
// (receive buffer full).
func (l *Live) Drops() (uint64, error) {
	st, err := unix.GetsockoptTpacketStats(l.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return 0, err
	}
	return uint64(st.Drops), nil
}

// errTimeout reports that no frame arrived within the socket timeout.
var errTimeout = errors.New("probe: receive timeout")

// next reads one frame; it does not allocate. A VLAN tag the kernel took
// off (VLAN offload) is put back from the packet's auxiliary data, so the
// frame looks as it did on the wire.
func (l *Live) next() ([]byte, error) {
	for {
		iov := unix.Iovec{Base: &l.buf[vlanRoom]}
		iov.SetLen(len(l.buf) - vlanRoom)
		msg := unix.Msghdr{Name: (*byte)(unsafe.Pointer(&l.sa)), Namelen: uint32(unsafe.Sizeof(l.sa)),
			Iov: &iov, Iovlen: 1, Control: &l.oob[0]}
		msg.SetControllen(len(l.oob))
		n, _, errno := unix.Syscall(unix.SYS_RECVMSG, uintptr(l.fd), uintptr(unsafe.Pointer(&msg)), 0)
		switch errno {
		case 0:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return nil, errTimeout
		default:
			return nil, errno
		}
		if l.loopback && l.sa.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		frame := l.buf[vlanRoom : vlanRoom+int(n)]
		if tci, tpid, ok := auxVLAN(l.oob[:msg.Controllen]); ok && l.linkType == LinkEthernet && len(frame) >= 12 {
			copy(l.buf[0:12], frame[:12])
			binary.BigEndian.PutUint16(l.buf[12:], tpid)
			binary.BigEndian.PutUint16(l.buf[14:], tci)
			frame = l.buf[:vlanRoom+int(n)]
		}
		return frame, nil
	}
}

// auxVLAN finds the VLAN tag in a PACKET_AUXDATA control message.
func auxVLAN(oob []byte) (tci, tpid uint16, ok bool) {
	hdr := int(unsafe.Sizeof(unix.Cmsghdr{}))
	for len(oob) >= hdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if int(h.Len) < hdr || int(h.Len) > len(oob) {
			return 0, 0, false
		}
		if h.Level == unix.SOL_PACKET && h.Type == unix.PACKET_AUXDATA && int(h.Len)-unix.CmsgLen(0) >= int(unsafe.Sizeof(unix.TpacketAuxdata{})) {
			aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
			if aux.Status&unix.TP_STATUS_VLAN_VALID == 0 {
				return 0, 0, false
			}
			tpid = unix.ETH_P_8021Q
			if aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 && aux.Vlan_tpid != 0 {
				tpid = aux.Vlan_tpid
			}
			return aux.Vlan_tci, tpid, true
		}
		next := unix.CmsgSpace(int(h.Len) - unix.CmsgLen(0))
		if next > len(oob) {
			break
		}
		oob = oob[next:]
	}
	return 0, 0, false
}

// Run feeds frames to p until ctx is done, using the clock for packet
// times and advancing p's clock at least every 200 ms so idle flows
// expire in quiet periods. tick, if not nil, is called about once a
// second from the same goroutine (for periodic work such as rotating
// flow files). It returns nil when ctx ends; the caller flushes p.
func (l *Live) Run(ctx context.Context, p *Probe, tick func()) error {
	lastTick := time.Now().UnixNano()
	for ctx.Err() == nil {
		frame, err := l.next()
		now := time.Now().UnixNano()
		if tick != nil && now-lastTick >= int64(time.Second) {
			lastTick = now
			tick()
		}
		if err == errTimeout {
			p.Advance(now)
			continue
		}
		if err != nil {
			return fmt.Errorf("read packet: %w", err)
		}
		p.Packet(l.linkType, frame, now)
	}
	return nil
}

// hardwareType returns the interface's ARPHRD_* type (SIOCGIFHWADDR), in
// the network namespace of the calling thread.
func hardwareType(name string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFHWADDR, ifr); err != nil {
		return 0, fmt.Errorf("SIOCGIFHWADDR: %w", err)
	}
	return int(ifr.Uint16()), nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
