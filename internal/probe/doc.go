// Package probe builds flows from packets, the job of fprobe and
// softflowd: it reads frames from a pcap file (PcapReader) or a live
// interface (an AF_PACKET socket, Linux only), keeps a bounded flow table
// (Probe) and hands expired flows as flow.Records to a callback, which
// either exports them as NetFlow v5, v9 or IPFIX (Exporter) or writes flow
// files.
//
// # Flow key
//
// A flow is unidirectional and keyed by source and destination address,
// source and destination port, IP protocol and the outermost 802.1Q VLAN
// ID. This is softflowd's default "full" tracking (addresses, ports,
// protocol) plus the VLAN ID, which is 0 on untagged traffic, so on
// untagged captures both programs form the same flows. TOS is not part of
// the key: a flow reports the TOS of its first packet. For ICMP and
// ICMPv6 the destination port holds type<<8|code (as NetFlow v5 carries
// it) and the source port is 0; non-first fragments have ports 0.
//
// # Counters and time
//
// Bytes is the IP length (IPv4 total length, IPv6 payload length + 40),
// the NetFlow definition of octets; softflowd instead counts the captured
// frame minus the link header, so Ethernet padding of short IPv4 packets
// (a 40-byte ACK counts 46) makes its byte totals slightly larger. Time is
// the packet timestamp for pcap input and the clock for live capture;
// records carry milliseconds.
//
// # Expiry rules
//
//   - idle: a flow with no packet for IdleTimeout (default 15 s, Cisco's
//     inactive timeout) ends.
//   - active: a flow ends ActiveTimeout after its first packet (default
//     60 s) even while packets still arrive, so that long transfers are
//     reported in time for 5-minute files; the next packet starts a new
//     flow.
//   - TCP FIN/RST: a TCP flow that has seen FIN or RST ends FinTimeout
//     after its last packet (default 2 s), so the final ACKs still count
//     in it; a negative FinTimeout disables the rule.
//   - memory bound: the table holds at most MaxFlows flows (default 2^18,
//     about 200 bytes each, all allocated up front); a new flow arriving
//     at a full table first expires the least recently seen flow early
//     (counted in Stats.Evicted).
//   - Flush ends every flow (end of file, shutdown).
//
// softflowd's defaults are much longer (general and TCP 3600 s, UDP and
// ICMP 300 s, 120 s after RST, 300 s after FIN, maximum life 7 days); set
// the probe's timeouts to such values to get softflowd-like flows.
//
// # Implementation
//
// Entries live in one preallocated slice, indexed by an open-addressing
// hash table with linear probing and backward-shift deletion (no
// tombstones). Three intrusive lists keep the expiry order: open flows by
// last packet, FIN/RST flows by last packet and all flows by first
// packet, so each expiry check looks only at list heads. Parsing, lookup,
// update and expiry allocate nothing.
package probe
