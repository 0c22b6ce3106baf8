//go:build !linux

package probe

import (
	"context"
	"errors"
)

// Live is a live packet capture; it is implemented on Linux only.
type Live struct{}

// errNoLive reports that live capture is unavailable on this system.
var errNoLive = errors.New("probe: live capture needs Linux (AF_PACKET); use a pcap file")

// OpenLive fails outside Linux.
func OpenLive(name string, rcvBuf int) (*Live, error) { return nil, errNoLive }

// LinkType returns 0.
func (l *Live) LinkType() uint32 { return 0 }

// IfIndex returns 0.
func (l *Live) IfIndex() int { return 0 }

// Close does nothing.
func (l *Live) Close() error { return nil }

// Drops returns an error.
func (l *Live) Drops() (uint64, error) { return 0, errNoLive }

// Run fails outside Linux.
func (l *Live) Run(ctx context.Context, p *Probe, tick func()) error { return errNoLive }
