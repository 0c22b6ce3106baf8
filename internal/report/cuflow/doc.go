// Package cuflow is flowscan's re-implementation of CUFlow, the Columbia
// University FlowScan report module: per-category traffic in RRD files in
// CUFlow's layout (so that RRDs written by CUFlow carry on and CUGrapher
// reads ours), per-file top-N scoreboards and a running aggregate score.
// It registers itself as the report module "cuflow".
//
// # Configuration
//
// The module reads an existing CUFlow.cf unchanged (the cf setting, or
// `flowscan import cuflow CUFlow.cf`, which prints the YAML form through
// ParseCF and Config.YAML), its YAML section, or both: the CUFlow.cf is
// read first, then YAML lists add to it, YAML entries replace CUFlow.cf
// entries of the same label (same address for routers and sample rates)
// and YAML scalars override. Relative paths are relative to the
// configuration file's directory.
//
//	CUFlow.cf directive                       YAML
//	Subnet 128.59.0.0/16                      subnets: [128.59.0.0/16, "2001:db8::/32"]
//	Router 128.59.1.1 [name]                  routers: [{address: 128.59.1.1, name: gw}]
//	SampleRate 128.59.1.2 100                 sample_rates: {128.59.1.2: 100}  (or [{exporter, rate}])
//	Network 10.1.0.0/16[,...] label           networks: [{name: label, prefixes: [10.1.0.0/16]}]
//	Service 80/tcp,8000-8080/tcp,https/tcp web services: [{name: web, ports: ["80/tcp", "https/tcp"]}]
//	ASNumber 701,702[,...] label              as_numbers: [{name: label, asns: [701, "702-705"]}]
//	Multicast                                 multicast: true
//	Protocol 6 [tcp]                          protocols: [{number: 6, name: tcp}]  (number may be "tcp")
//	TOS 0-7,32 label                          tos: [{name: label, values: "0-7,32"}]
//	OutputDir rrds                            output_dir: rrds
//	Scoreboard 10 RootDir CurrentLink         scoreboard: {top_n: 10, dir: RootDir, current_link: CurrentLink,
//	                                                       reverse_dns: false, dns_timeout: 2s}
//	AggregateScore 10 DataFile OutFile        aggregate_score: {top_n: 10, data_file: DataFile, out_file: OutFile}
//
// In CUFlow.cf, # starts a comment; directive names are matched without
// regard to case; Subnet also takes a comma-separated list; AS is accepted
// for ASNumber, and AS numbers may be ranges (as in Lucas's book). Service
// ports are numbers or names, resolved through /etc/services and a small
// built-in table; protocols are numbers or the built-in names (tcp, udp,
// icmp, gre, esp, ...). Every error names file:line: unknown directives,
// wrong argument counts, bad prefixes (host bits set included), bad ports,
// protocols, TOS values or AS numbers, SampleRate without a positive
// number, and duplicate labels within a directive (CUFlow aborted on
// duplicate services only). Errors in YAML values name the list and index
// ("cuflow services[3]").
//
// # Classification
//
// As in CUFlow, a flow whose destination is inside (a Subnet) and source
// outside is "in", one whose source is inside and destination outside is
// "out". CUFlow silently dropped the rest; this module counts flows with
// both ends inside in internal.rrd and flows with both ends outside in
// transit.rrd (and the same per Router). Those flows have no direction:
// each is counted once in the in_* data sources, and out_* stay zero.
// They are not part of total.rrd or any other category, so total.rrd
// keeps CUFlow's meaning (border traffic) and CUGrapher's percentages
// stay right.
//
// With Multicast, a flow to 224.0.0.0/4 or ff00::/8 goes to
// protocol_multicast.rrd only (as in CUFlow), "out" when its source is
// inside and "in" otherwise. Without Multicast it is classified like any
// other flow.
//
// Each in/out flow counts in total.rrd; in protocol_<label>.rrd for its
// protocol; in tos_<label>.rrd for every TOS group holding its TOS byte;
// in as_<label>.rrd for every AS group holding its source AS (in) or
// destination AS (out); in network_<label>.rrd for every Network holding
// its inside address (all-traffic scope only); and in the services:
// service_<label>_src.rrd when its source port belongs to the service,
// service_<label>_dst.rrd when its destination port does. A flow whose
// source and destination ports both belong to the same service (53 to
// 53, or 443 to 80 for a web service holding both) counts once, in _dst;
// CUFlow counted it twice, which made CUGrapher's "other" negative.
// Groups may overlap: a value in two groups counts in both.
//
// # Sampling
//
// The collector already scales Bytes and Packets by the record's own
// sampling rate, so they are used as they come and one record is one
// flow. A SampleRate directive (CUFlow's "mandatory on Juniper") applies
// to its exporter's records only: a record with SamplingRate 0 or 1 (not
// scaled by the collector) has its bytes and packets multiplied by N and
// counts as N flows; a record that carries its own rate R > 1 keeps its
// (already scaled) bytes and packets and counts as R flows, so the rate
// the record carries wins over the configured one.
//
// # RRD files
//
// In OutputDir (the scanner's directory for the module unless set):
//
//	total.rrd, internal.rrd, transit.rrd
//	protocol_<label>.rrd, protocol_multicast.rrd
//	service_<label>_src.rrd, service_<label>_dst.rrd
//	tos_<label>.rrd, as_<label>.rrd
//	network_<label>.rrd                 (all traffic only)
//	<router name or address>/...        the same files per Router, without network_*
//
// Data sources are ABSOLUTE: in_bytes out_bytes in_pkts out_pkts in_flows
// out_flows, except network_*.rrd, which keeps CUFlow's order in_bytes
// in_pkts in_flows out_bytes out_pkts out_flows. The step is the scan
// interval (300 s gives exactly FlowScan's createGeneralRRD files, with
// its heartbeat and RRAs; nothing assumes 300 s). Each file's counts are
// stored with one update at the file's end time, so that the step ending
// then holds the traffic of the file's interval (FlowScan stamped updates
// with the time in the file name, the interval's start, which showed
// traffic one step early); a new RRD starts at the first file's start.
// The stored value is the file's count divided by the step (rrdtool's
// ABSOLUTE), found by rrdtool fetch in the row whose time is the file's
// end. An update at or before an RRD's last update is
// skipped (rrd.ErrPastUpdate), so a file scanned again after a crash is
// not counted twice. Every RRD is updated for every file, with zeros
// where nothing matched.
//
// # Scoreboards
//
// With Scoreboard, each file gets RootDir/YYYY-MM-DD/HH/HH:MM:SS.html
// (the file's start in local time, as CUFlow) and a .json twin with the
// same data, both replaced atomically, and CurrentLink is re-pointed at
// the page atomically (a new symbolic link renamed over the old one). The
// six tables rank the inside hosts of in/out flows (the destination of
// "in", the source of "out"; all exporters, Routers do not matter) by
// bytes, packets and flows in and out; each row shows the host's rates in
// both directions per second of the file's own duration (not 300 s) with
// its share of the total. Reverse DNS is off by default; when on, names
// come from a cache (an hour for names, ten minutes for failures) and
// each lookup is bounded by dns_timeout.
//
// AggregateScore keeps, in DataFile, per host: the number of reports in
// which it was in a top N, its counts in those reports and their length
// in seconds, plus the number of reports and the start time of the last
// file included (a file at or before it is not added again). After each
// report past 50 samples, hosts seen once are dropped and every count is
// halved, as CUFlow does. OutFile is an HTML page of average rankings:
// counts divided by the seconds the host was counted. The data file is
// this module's own text format (CUFlow's cannot be carried over).
//
// # Differences from CUFlow, in short
//
// No 300-second assumption; services counted once when both ports match;
// IPv6 everywhere; internal and transit traffic counted instead of
// dropped; the sampling rate taken from each record; duplicate labels of
// any kind rejected with file:line; JSON scoreboards; idempotent reports
// instead of CUFlow's unlocked double-forked report.
package cuflow
