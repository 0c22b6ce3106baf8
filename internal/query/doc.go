// Package query selects, filters, ranks and aggregates the flows of a
// flow archive: native flow files (internal/flowfile) and flow-tools files
// (internal/flowfile/flowtools). It is the engine of `flowscan query` and
// `flowscan export` and the Go API the web UI's flow explorer calls:
//
//	f, err := query.Compile("proto tcp and dst port 443")
//	q := &query.Query{Dirs: []string{"/var/flows"}, From: from, To: to, Filter: f}
//	err = q.Flows(ctx, func(batch []flow.Record) error { ... })         // matching flows, in archive order
//	keys, _ := query.ParseKeys("src_addr/24")
//	res, err := q.Aggregate(ctx, query.AggregateSpec{Keys: keys, Order: query.ByBytes, Limit: 10})
//
// # Reading
//
// Files are chosen by the start time in their names: a file holds the
// flows received between its start and the next file's start, so files
// whose successor starts at or before From are skipped, as are files
// starting more than Lag after To. Inside a native file, blocks whose
// [MinStart, MaxEnd] bounds lie outside the window are skipped without
// being read; blocks entirely inside it skip the per-flow time check. The
// window selects flows by start time: From <= Start < To.
//
// Workers (GOMAXPROCS by default) read units of two blocks (or a whole
// flow-tools file) in parallel, decoding only the columns the query reads,
// and evaluate the filter a run of records at a time (one loop per
// predicate over a selection). Aggregations count into one table per
// worker: keys that fit in 64 bits (IPv4 addresses, ports, AS numbers)
// packed into an open-addressing table with inline counters (a direct
// table, one slot per key, for keys of up to 16 bits), the others (IPv6)
// into a general one. The tables are merged and ranked in parallel,
// one part of the key space per worker, and the top N chosen with heaps.
// A summary without a filter reads the blocks' stored totals. Flows keeps
// archive order: workers read ahead and results are handed over unit by
// unit.
//
// # Filter language
//
// A filter is a boolean expression over conditions, tcpdump/nfdump style.
// Keywords are case-insensitive. "not" (or "!") binds tightest, then "and"
// ("&&"), then "or" ("||"); parentheses group. The empty filter matches
// every flow.
//
//	host ADDR, ip ADDR          either address is ADDR (IPv4 or IPv6)
//	net PREFIX                  either address is in PREFIX (10.0.0.0/8, 2001:db8::/32)
//	port N                      either port; names allowed (https, domain, ...)
//	as N                        either AS number
//	if N                        input or output interface (ifIndex)
//	mask N, vlan N              either prefix length / VLAN
//	src ..., dst ...            qualify host, ip, net, port, as, mask, vlan
//	in if N, out if N           qualify if
//	proto P                     protocol number or name (tcp, udp, icmp, icmp6, gre, esp, sctp, ...)
//	tcp, udp, icmp, icmp6, ...  short for proto P
//	exporter ADDR|PREFIX        the exporter's address
//	nexthop ADDR|PREFIX         the IP next hop
//	tos N                       type of service / traffic class byte
//	flags LETTERS|N             all these TCP flags set: U A P R S F (X = all six), or a bit mask
//	bytes, packets N            counters (after sampling)
//	duration N                  End-Start in milliseconds
//	bps, pps, bpp N             bits/s, packets/s over the duration (0 when it is 0); bytes per packet
//	ipv4 (inet), ipv6 (inet6)   address family
//	any                         every flow
//
// Numeric conditions take a comparison before the value: = == != < <= > >=
// or eq ne lt le gt ge (default =). Values are decimal or 0x hex, with an
// optional K, M, G or T suffix (powers of 1000; 1.5M is allowed). Lists
// match any member: "port in [80 443]", "host in [10.0.0.1, 2001:db8::1]",
// "proto in [tcp udp]". Addresses mapped into IPv6 (::ffff:10.0.0.1)
// match as IPv4.
//
// A syntax error is a *SyntaxError with the 1-based column it was found
// at. Compile lowers the expression to a slice of typed predicate nodes
// with forward jumps on true and false (a short-circuit program like BPF);
// Match walks it without allocating.
//
// # Keys, orders and output
//
// Key fields are src_addr, dst_addr, exporter, next_hop (optionally
// masked: src_addr/24, or /V4LEN/V6LEN such as dst_addr/24/64; a single
// length above 32 masks IPv6 only), src_port, dst_port, proto, tos,
// tcp_flags, in_if, out_if, src_as, dst_as, src_mask, dst_mask, src_vlan,
// dst_vlan. Rows are ranked by flows, packets, bytes, bps, pps or bpp;
// the rates of a row are over its span, from its first start to its last
// end. Ties are broken by key so that output is deterministic. Result
// carries the top rows, the "other" remainder and the total.
//
// WriteResult and FlowWriter print tables, CSV, JSON lines (json and its
// alias ndjson; flows use the field names of flowscan dump) or one JSON
// array (jsonarray). ExportParquet writes a Parquet file (zstd columns,
// the same field names, timestamps in milliseconds) for DuckDB, pandas or
// Spark.
package query
