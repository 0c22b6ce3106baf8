// Package jkflow is flowscan's re-implementation of JKFlow's traffic
// model (Jurgen Kobierczynski's FlowScan module, itself grown out of
// CUFlow), written from its description; no JKFlow code is used. It
// registers the report module "jkflow".
//
// # Model
//
// Sites are named sets of IPv4 and IPv6 prefixes. Router groups list
// exporters with either SNMP interfaces or local subnets. Define sets are
// reusable bundles of counters. "all" counts every flow; directions are
// the cells of a traffic matrix, each with its own counters, sample rate,
// optional scoreboard and nested directions.
//
// # In and out
//
//   - A direction with from/to (sites or prefixes; an absent side means
//     any address; no_from/no_to exclude): a flow whose source is in
//     "from" and destination in "to" counts as out; a flow the other way
//     (source in "to", destination in "from", the exclusions mirrored)
//     counts as in. A flow that matches both ways counts once, as out.
//   - A router-group direction: among the group's routers whose exporter
//     address is the flow's exporter, one with interfaces makes the flow
//     in if its input ifIndex is one of them, else out if its output
//     ifIndex is; one with local subnets makes it out if the source is
//     local, else in if the destination is. Router groups cannot be
//     combined with from/to in one direction (nest directions instead).
//   - "all": out if the source is in its local_subnets, else in if the
//     destination is, else not counted; with no local_subnets every flow
//     counts as out.
//   - "other": a direction named other receives the flows that none of
//     its sibling directions matched, with the way they counted one level
//     up (for the top level: the way they counted for "all", and out when
//     "all" did not count them). It takes no from/to/router_group.
//   - Nested directions see only the flows their parent matched; their
//     files go under <parent>/<child>/. They inherit the parent's sample
//     rate unless they set their own.
//   - A flow counts for every top-level direction it matches (cells may
//     overlap); only "other" depends on the others.
//
// The sample rate multiplies bytes, packets and flows (JKFlow's
// samplerate), on top of any sampling the exporter already reported.
//
// # Files
//
// Each direction writes output_dir/<direction path>/<type>_<name>.rrd,
// "all" writes output_dir/all/:
//
//	total_total.rrd            total: true
//	protocol_<name>.rrd        protocols: [tcp, udp, 47...] (name as written)
//	protocol_other.rrd         other_protocols: flows of unlisted protocols
//	protocol_multicast.rrd     multicast: destination in 224/4 or ff00::/8
//	service_<app>_src.rrd      applications: {app: [ports]}, as JKFlow did
//	service_<app>_dst.rrd
//	service_<spec>_src.rrd     services: ["22-23/tcp"] gives
//	service_<spec>_dst.rrd       service_22-23_tcp_src.rrd and _dst.rrd
//	service_other.rrd          other_services: TCP/UDP flows matching no
//	                             service or application on either port
//	tos_BE.rrd, tos_other.rrd  tos: DSCP 0 (the ECN bits are ignored) or not
//	tos_<class>.rrd            dscp: BE, AF11-AF43, CS1-CS7, EF, other
//
// A flow whose source port is in a service counts in _src, one whose
// destination port is counts in _dst; when both ports fall in the same
// service the flow counts once, in _dst. A port may belong to one service
// or application of a direction only. tos and dscp cannot both be on for
// one direction (both would write tos_BE and tos_other).
//
// Every file has the six ABSOLUTE data sources in_bytes, out_bytes,
// in_pkts, out_pkts, in_flows, out_flows, the scanner's interval as step
// and FlowScan's archives. Report creates a missing file starting at the
// flow file's start and stores the file's counts at the file's end time,
// so the step ending then holds the file's traffic; the RRD turns the
// counts into per-second rates over the step. An
// update at an already stored time (a file scanned again after a crash)
// is skipped, so nothing is counted twice. Files with nothing counted get
// zeros, as in FlowScan.
//
// # Scoreboards
//
// A direction with scoreboard: {hosts: true, ports: true, top_n: N}
// writes output_dir/<direction>/scoreboard/scoreboard.json and
// scoreboard.html (replaced atomically) for each file: the top N hosts
// and ports by bytes. Hosts are the direction's "from" side (the source
// of out flows, the destination of in flows); ports are the lower of the
// two ports of TCP/UDP flows, other protocols by name. Rates divide by
// sample_time seconds, or by the file's real duration when unset.
//
// # Configuration
//
// The YAML section follows Config; ParseXML converts an existing
// JKFlow.xml (see testdata/JKFlow.xml and testdata/JKFlow.golden.yaml).
// Not implemented: FTP data-session tracking (<ftp/>), aggregate
// scoreboard reports, scoreboardother, tuples, AS-based directions and the
// DBM::Deep sample database; ParseXML lists what it dropped in
// Config.Notes.
package jkflow
