// Package campusio is flowscan's version of FlowScan's CampusIO report
// module: traffic in and out across a network border, in total, by IP
// protocol, by TCP/UDP service, multicast, optionally by AS pair, with a
// top talkers report per flow file. Package subnetio builds on it.
//
// # Direction
//
// Every flow gets one Direction (see Classifier):
//
//   - With output_if_indexes and/or next_hops configured, a flow is
//     outbound when its output ifIndex is a border interface or its next
//     hop is a border next hop, and inbound when its input ifIndex is a
//     border interface (without output_if_indexes: when its destination
//     is local and its source is not). Both at once is transit; neither
//     is internal, or transit when neither address is local.
//   - Otherwise by local_subnets: local source and outside destination is
//     out, the reverse in, both local internal, neither transit.
//
// In and out flows are border traffic: they count in total.rrd, the
// protocol, service and AS pair files and the top talkers. Internal and
// transit flows are not dropped: they count in internal.rrd and
// transit.rrd only. With multicast enabled, flows to a multicast group
// count in MCAST.rrd only (out when the source is local, in otherwise).
// Wanted returns true for border and multicast flows, so the scan log's
// "flow hit ratio" is the border share of the traffic.
//
// # Configuration
//
//	campusio:
//	  output_dir: campusio          # default: the scanner's rrd_dir/campusio
//	  local_subnets: [10.0.0.0/8, "2001:db8::/32"]
//	  next_hops: [192.0.2.254]      # addresses, not prefixes
//	  output_if_indexes: [3, 7]
//	  tcp_services: [http, https, ssh, "8443", "web=8080"]
//	  udp_services: [domain, ntp]
//	  protocols: [tcp, udp, icmp, gre, "50"]  # default: tcp, udp, icmp
//	  multicast: true
//	  as_pairs: true
//	  as_pairs_top: 20              # default 20
//	  top_n: 10                     # 0 (default): no top talkers report
//	  report_prefix_format: "%Y%m%d/%H%M_"
//	  max_hosts: 65536              # hosts tracked per file for top_n
//
// Prefixes may be IPv4 or IPv6; a bare address is a host prefix; host
// bits must be zero. Services are a name ("http": a built-in table of
// common services, then the system's services database), a port number
// ("8443", named tcp_8443 or udp_8443) or name=port ("web=8080"). A name
// given in both tcp_services and udp_services is one service counting
// both (domain over TCP and UDP in one file); one port in two services is
// an error. Protocols are names (icmp igmp ipip tcp egp udp ipv6 rsvp gre
// esp ah icmp6 eigrp ospf pim vrrp l2tp sctp) or numbers; unnamed numbers
// get files proto_<n>.rrd. Unknown keys are errors.
//
// # RRD files
//
// All in output_dir, all created with the scanner's interval as step,
// FlowScan's archives (rrd.FlowScanRRAs) and ABSOLUTE data sources with
// FlowScan's heartbeat; each flow file is one update at the file's end
// time with the file's counts, so the step that ends when the file ends
// holds the file's traffic as a rate. Files with in/out data sources have, in this order, the data
// sources in_bytes, out_bytes, in_pkts, out_pkts, in_flows and out_flows.
// The files:
//
//   - total.rrd: all border traffic.
//   - MCAST.rrd: multicast (when enabled).
//   - <proto>.rrd: per protocol (tcp.rrd, udp.rrd, icmp.rrd...).
//   - <service>_src.rrd: border flows whose source port is the service's
//     (the server's answers: for http, downloads in and uploads by local
//     web servers out); <service>_dst.rrd: whose destination port is
//     (the requests). A flow with both ports in services counts in both.
//     Only TCP (6) and UDP (17) flows are looked at.
//   - as_<srcAS>_<dstAS>.rrd: per AS pair, for the as_pairs_top pairs
//     with the most bytes in each file; a pair outside the top of a file
//     gets no update for it (unknown, a gap in graphs).
//   - internal.rrd, transit.rrd: data sources bytes, pkts and flows.
//
// Every file but the AS pair files is updated for every flow file, with
// zeros when nothing matched. A rescan of a flow file that was reported
// before a crash skips updates at already-stored times, so nothing is
// counted twice.
//
// # Top talkers
//
// With top_n > 0, output_dir/top/<prefix>top.html and .json (prefix:
// report_prefix_format expanded at the flow file's start, local time;
// empty keeps only the latest report) list the top_n local hosts by bytes
// in (destinations of inbound flows) and out (sources of outbound flows)
// with bytes, packets, flows and bits/s over the flow file's real
// duration. Both files are replaced atomically. At most max_hosts hosts
// are tracked per file; later ones still count in the RRD files.
//
// # Differences from FlowScan's CampusIO
//
//   - Configuration is YAML in the flowscan configuration file instead of
//     CampusIO.cf; local subnets are listed inline rather than in
//     Boulder-format LocalSubnetFiles.
//   - IPv6 is supported everywhere.
//   - Internal and transit traffic are counted (internal.rrd, transit.rrd)
//     instead of being ignored.
//   - No stateful application identification: the Napster, passive FTP
//     and RealMedia heuristics and the saved/other raw flow dump are not
//     implemented; services are port-based.
//   - The step and heartbeat follow the collector's interval instead of a
//     fixed 300 s, and report rates use each file's real duration.
//   - The hot path does not allocate: prefix lookups are binary searches
//     over flattened ranges, ports and protocols are array lookups, and
//     hosts and AS pairs go into fixed-size tables.
package campusio
