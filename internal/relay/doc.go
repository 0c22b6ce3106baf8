// Package relay copies flow export datagrams (NetFlow v5/v9, IPFIX, sFlow),
// unchanged, to several collectors: the `flowscan relay` command and the
// collector's `--forward` option.
//
// A Forwarder is a collect.DatagramSink. Datagram copies each datagram
// into a pooled buffer on the bounded queue of every destination whose
// filters it passes (exporter prefixes, formats recognised by the
// registered decoders' header matchers) and returns at once; a full queue
// drops the datagram and counts it. One goroutine per destination sends
// its queue in batches of up to 64 datagrams per sendmmsg call, in order,
// from a connected UDP socket. A destination that refuses datagrams
// (ICMP port unreachable) or cannot keep up costs only its own queue.
//
// With Destination.Spoof the datagram leaves with the original exporter's
// address and port as its source, so the receiving collector still sees
// who exported: the sender writes an IPv4 (IPPROTO_RAW, which implies
// IP_HDRINCL) or IPv6 (IPV6_HDRINCL, Linux 4.5 and later) header and a UDP
// header with a checksum in front of the payload and sends it from a raw
// socket (root or CAP_NET_RAW). The exporter must be of the destination's
// address family; datagrams that are not are counted as errors. The kernel
// does not fragment such packets: a datagram larger than the path MTU is
// refused and counted. Networks with reverse-path filtering between relay
// and collector must let the exporters' addresses through.
//
// Destinations are written as
//
//	HOST:PORT[;exporter=ADDR|PREFIX[,...]][;format=NAME[,...]][;spoof][;queue=N]
//
// (see ParseDestination). Counters per destination: forwarded datagrams
// and bytes, queue-full drops, filtered datagrams and send errors (Stats,
// WriteMetrics).
//
// Receiver is the relay command's own socket reader (recvmmsg, 64
// datagrams per call, kernel drop counts).
package relay
