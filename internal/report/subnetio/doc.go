// Package subnetio is flowscan's version of FlowScan's SubNetIO report
// module: everything campusio does (it is built on package campusio, with
// the same configuration keys, direction rules and RRD files) plus one
// RRD file and one top talkers report per configured subnet, so that a
// campus "customer" can be graphed and billed by subnet. Run either
// campusio or subnetio, not both: subnetio already writes campusio's
// files.
//
// # What a subnet counts
//
// A border flow (campusio's In or Out) counts for the subnet of its local
// end: the destination of an inbound flow, the source of an outbound
// one. With the default direction rules (by local_subnets) that is: in =
// traffic to hosts of the subnet from outside the local subnets, out =
// traffic from them to outside. An address inside several configured
// subnets counts for the most specific one only, so nested subnets do not
// double-bill. Internal and transit flows, and multicast when campusio
// counts it apart, count for no subnet.
//
// # Configuration
//
// campusio's keys (see package campusio), and:
//
//	subnetio:
//	  local_subnets: [10.0.0.0/8]   # default: the subnets themselves
//	  subnets:                      # required
//	    - 10.1.0.0/16               # a prefix...
//	    - {prefix: 10.2.0.0/16, name: physics}   # ...or prefix and name
//	    - prefix: "2001:db8:1::/48"
//	  top_n: 10
//	  report_prefix_format: "%Y%m%d/%H%M_"
//
// Every subnet must lie inside local_subnets; a subnet listed twice, a bad
// prefix or an unknown key is an error.
//
// # Files
//
// output_dir/<subnet>.rrd per subnet, <subnet> being the prefix with '/'
// replaced by '_' and, for IPv6, ':' by '-' (10.1.0.0_16.rrd,
// 2001-db8-1--_48.rrd), with campusio's six data sources in_bytes,
// out_bytes, in_pkts, out_pkts, in_flows and out_flows, updated for every
// flow file (zeros when idle). With top_n > 0,
// output_dir/top/<prefix><subnet>.html and .json list the subnet's top
// local hosts in and out by bytes, with rates over the flow file's real
// duration, next to campusio's <prefix>top.html for the whole network.
// The prefix is report_prefix_format expanded at the flow file's start in
// local time (%Y %m %d %H %M %%; it may contain directories); without it
// each report is replaced by the next file's.
//
// # Differences from FlowScan's SubNetIO
//
//   - Subnets are listed in the YAML configuration instead of Boulder
//     SubnetFiles; IPv6 subnets are supported.
//   - Nested subnets bill the most specific one.
//   - Top reports are HTML and JSON, written atomically, and rates use
//     each file's real duration rather than 300 seconds.
//   - local_subnets defaults to the subnets.
package subnetio
