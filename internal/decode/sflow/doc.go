// Package sflow decodes sFlow version 5 datagrams (sflow.org, "sFlow
// Version 5", July 2004) into flow.Records and interface counters.
//
// # What is decoded
//
// The datagram header gives the agent address (IPv4 or IPv6), the sub-agent
// ID and the datagram sequence number. Samples of enterprise 0 are decoded:
//
//   - flow samples, compact (1) and expanded (3), with the flow records
//     raw packet header (1; header protocols Ethernet, IPv4 and IPv6),
//     sampled Ethernet (2), sampled IPv4 (3), sampled IPv6 (4), extended
//     switch (1001), extended router (1002) and extended gateway (1003);
//   - counter samples, compact (2) and expanded (4), of which the generic
//     interface counters (record 1) are kept for DrainCounters.
//
// A raw packet header is followed through Ethernet, up to two 802.1Q/802.1ad
// tags, IPv4 or IPv6 (hop-by-hop, routing, destination options and fragment
// extension headers skipped), then TCP, UDP, ICMP or ICMPv6. Everything else
// (enterprise samples and records, other counter structures, other record
// types) is skipped by its length.
//
// # Mapping to flow.Record
//
// One record per flow sample that carries an IPv4 or IPv6 packet, from a raw
// header or a sampled IPv4/IPv6 record (the first of them in the sample
// wins); samples of other packets (ARP, for example) give no record.
//
//   - Exporter is the agent address (not the UDP source; the UDP source
//     when the agent address is unspecified), Domain the sub-agent ID.
//   - SrcAddr, DstAddr, Proto, TOS (IPv4 TOS or IPv6 traffic class),
//     SrcPort, DstPort and TCPFlags come from the sampled packet; for ICMP
//     and ICMPv6, DstPort is type<<8|code and SrcPort 0, as in NetFlow v5.
//   - Bytes is the sampled packet's IP length (IPv4 total length, IPv6
//     payload length + 40; the length field of sampled IPv4/IPv6 records),
//     not the frame length, times the sampling rate. When the IP length
//     field is 0 (segmentation offload, jumbograms) the frame length minus
//     the stripped bytes and the link header is used instead.
//   - Packets is the sampling rate (one sampled packet stands for rate
//     packets) and SamplingRate the sample's rate, unless
//     decode.Options.SamplingOverride replaces it for the agent.
//   - InIf and OutIf: expanded samples give the full 32-bit ifIndex;
//     compact samples the 30-bit value. Either is 0 when the format bits
//     say the packet was discarded or went to several interfaces, and a
//     compact 0x3FFFFFFF (unknown) is 0.
//   - SrcMAC and DstMAC come from the Ethernet header (or a sampled
//     Ethernet record).
//   - SrcVLAN and DstVLAN come from extended switch data (values above 4095,
//     as 0xFFFFFFFF for unknown, become 0); without it, SrcVLAN is the
//     first 802.1Q tag of the raw header.
//   - NextHop, SrcMask and DstMask come from extended router data (0.0.0.0
//     or :: means unknown).
//   - SrcAS is the extended gateway's source AS; DstAS the last AS of the
//     last non-empty segment of its destination AS path (the origin), or, when the path is empty
//     (the destination is local), the gateway's own AS.
//   - Start and End are both the datagram's arrival time: sFlow samples
//     are single packets and carry no time of their own (the header's
//     uptime is not a wall clock).
//
// decode.Result carries the agent, the sub-agent, and the datagram
// sequence number with SeqUnit decode.SeqDatagrams and SeqAdvance 1, so loss
// is counted in datagrams like NetFlow v9.
//
// # Limits
//
// Every count and length is checked against the bytes that are there
// before it is used; XDR opaque data is padded to 4 bytes. A datagram whose
// sample or record counts or lengths do not fit, or whose known structures
// are too short, fails with a *decode.Error (reasons short, bad_length,
// bad_count, bad_sample) and contributes neither flows nor counters; a raw
// packet header cut short only loses the fields it no longer holds. No
// allocation depends on a length read from the wire, and decoding appends
// to the caller's slice without allocating per sample.
//
// At most MaxBufferedCounters interface counter records wait for
// DrainCounters; further ones are dropped and counted (DroppedCounters).
// A Decoder is used by one goroutine at a time.
package sflow
