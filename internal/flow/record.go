// Package flow defines Record, the one normalized flow that every input format
// decodes into and every later stage (flow files, scan, query, web) reads.
package flow

import (
	"net/netip"
	"time"
)

// Record is one unidirectional flow as seen by one exporter.
//
// Bytes and Packets are already scaled by SamplingRate: they estimate the
// traffic on the wire, not the sampled traffic. SamplingRate is kept so that
// consumers can tell estimates (rate > 1) from exact counts (rate 0 or 1).
type Record struct {
	// Exporter is the address the export datagram came from (the agent
	// address for sFlow).
	Exporter netip.Addr
	// SrcAddr and DstAddr are IPv4 or IPv6 addresses.
	SrcAddr, DstAddr netip.Addr
	// NextHop is the IP next hop, or the zero Addr when unknown.
	NextHop netip.Addr

	// Start and End are absolute flow times in Unix milliseconds (UTC).
	Start, End int64

	// Bytes and Packets are the (sampling-scaled) layer-3 counters.
	Bytes, Packets uint64

	// Domain identifies the exporting process inside the exporter: NetFlow
	// v5 engine_type<<8|engine_id, NetFlow v9 source ID, IPFIX observation
	// domain ID, sFlow sub-agent ID.
	Domain uint32
	// SamplingRate is 1 in N packets; 0 means unknown (treated as 1).
	SamplingRate uint32
	// InIf and OutIf are SNMP ifIndex values (32 bits).
	InIf, OutIf uint32
	// SrcAS and DstAS are 32-bit autonomous system numbers.
	SrcAS, DstAS uint32

	SrcPort, DstPort uint16
	// SrcVLAN and DstVLAN are 802.1Q VLAN IDs, 0 when absent.
	SrcVLAN, DstVLAN uint16

	// Proto is the IP protocol number (6 TCP, 17 UDP, ...).
	Proto uint8
	// TOS is the IPv4 type of service byte or IPv6 traffic class.
	TOS uint8
	// TCPFlags is the cumulative OR of TCP flags seen in the flow.
	TCPFlags uint8
	// SrcMask and DstMask are the routing prefix lengths.
	SrcMask, DstMask uint8

	// SrcMAC and DstMAC are Ethernet addresses, zero when unknown.
	SrcMAC, DstMAC [6]byte
}

// StartTime returns Start as a time.Time in UTC.
func (r *Record) StartTime() time.Time { return time.UnixMilli(r.Start).UTC() }

// EndTime returns End as a time.Time in UTC.
func (r *Record) EndTime() time.Time { return time.UnixMilli(r.End).UTC() }

// Duration returns End-Start, never negative.
func (r *Record) Duration() time.Duration {
	if r.End <= r.Start {
		return 0
	}
	return time.Duration(r.End-r.Start) * time.Millisecond
}

// ApplySampling scales Bytes and Packets by rate and records the rate.
// A rate of 0 or 1 leaves the counters unchanged.
func (r *Record) ApplySampling(rate uint32) {
	r.SamplingRate = rate
	if rate > 1 {
		r.Bytes *= uint64(rate)
		r.Packets *= uint64(rate)
	}
}

// IsIPv6 reports whether the flow's addresses are IPv6.
func (r *Record) IsIPv6() bool { return r.SrcAddr.Is6() && !r.SrcAddr.Is4In6() }
