package relay

import (
	"context"
	"net/netip"
	"sync/atomic"

	"github.com/flowscan/flowscan/internal/udp"
)

// DefaultRcvBuf is the receive buffer a Receiver asks for.
const DefaultRcvBuf = udp.DefaultRcvBuf

// Receiver reads datagrams from one UDP socket (the collector's receive
// path: recvmmsg batches, a large buffer, the kernel's drop count) and
// hands each to a handler.
type Receiver struct {
	sock  *udp.Socket
	local netip.AddrPort
	batch *udp.Batch

	received, truncated atomic.Uint64
}

// Listen opens a UDP socket on addr ("127.0.0.1:2055", "[::]:6343",
// ":2055") with SO_REUSEPORT and a receive buffer of rcvBuf bytes
// (DefaultRcvBuf if 0; forced past net.core.rmem_max when privileged).
func Listen(ctx context.Context, addr string, rcvBuf int) (*Receiver, error) {
	s, _, err := udp.Listen(ctx, addr, rcvBuf)
	if err != nil {
		return nil, err
	}
	local, err := netip.ParseAddrPort(s.Addr())
	if err != nil {
		s.Close()
		return nil, err
	}
	return &Receiver{sock: s, local: local, batch: udp.NewBatch()}, nil
}

// Addr returns the local address the socket is bound to.
func (r *Receiver) Addr() netip.AddrPort { return r.local }

// Received returns the number of datagrams handed to the handler.
func (r *Receiver) Received() uint64 { return r.received.Load() }

// Truncated returns the number of datagrams dropped for being longer than
// a receive slot.
func (r *Receiver) Truncated() uint64 { return r.truncated.Load() }

// KernelDrops returns the kernel's count of datagrams dropped on this
// socket for lack of receive buffer space.
func (r *Receiver) KernelDrops() uint64 { return uint64(r.sock.Drops()) }

// Run reads datagrams and calls handle for each until Close; it then
// returns nil. handle must not keep data after it returns.
func (r *Receiver) Run(handle func(src netip.AddrPort, data []byte)) error {
	b := r.batch
	for {
		if err := r.sock.ReadBatch(b); err != nil {
			if udp.IsClosed(err) {
				return nil
			}
			return err
		}
		r.truncated.Add(uint64(b.Truncated))
		for i := 0; i < b.N; i++ {
			handle(b.Src(i), b.Data(i))
		}
		r.received.Add(uint64(b.N))
	}
}

// Close closes the socket, which ends Run.
func (r *Receiver) Close() error { return r.sock.Close() }
