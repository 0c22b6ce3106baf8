// Package reexport sends the collector's normalized flows on to another
// collector as NetFlow v9 (RFC 3954) or IPFIX (RFC 7011), IPv4 and IPv6,
// so that networks that export only sFlow (or a mix of formats) can feed
// tools that read only NetFlow.
//
// An Exporter is a collect.FlowSink: the collector hands it each batch of
// decoded flows on its pipeline goroutine; Flows copies them into a bounded
// queue (a full queue drops and counts, it never blocks) and one goroutine
// encodes them with gen.V9Encoder or gen.IPFIXEncoder into datagrams of at
// most Config.MaxDatagram (1400) bytes and sends them from a connected UDP
// socket.
//
// What goes out:
//   - one data template for IPv4 and one for IPv6 flows (addresses, next
//     hop, interfaces, 64-bit byte and packet counters, start and end time,
//     ports, protocol, TOS, TCP flags, AS numbers, prefix lengths, VLANs,
//     MAC addresses), sent in the first datagram, then every TemplateEvery
//     datagrams and at least every TemplateInterval;
//   - the source ID (v9) or observation domain (IPFIX) is Config.Domain;
//     the original exporter's address is not carried: every flow is
//     attributed to this exporter;
//   - byte and packet counters exactly as they are in the records. Those
//     are already scaled by each exporter's sampling rate, so no sampling
//     rate is announced (no options template): a receiver must take the
//     counters as they are and not scale them again;
//   - v9 sequence numbers count datagrams, IPFIX sequence numbers count
//     data records, as the RFCs say.
//
// Counters: flows, datagrams and bytes sent, flows dropped at the queue,
// datagrams the kernel refused (Stats, WriteMetrics).
package reexport
