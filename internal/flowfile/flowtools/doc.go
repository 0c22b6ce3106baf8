// Package flowtools reads (and, for tests and export, writes) the files of
// flow-tools' flow-capture, the archive FlowScan traditionally ran on.
//
// # Names and layout
//
// flow-capture names a finished file ft-vNN.YYYY-MM-DD.HHMMSS±ZZZZ (v8
// aggregation files ft-vNNmAA.…) after the local start of its capture, and
// the file being written tmp-vNN.…; with -N it nests them in YYYY/,
// YYYY/YYYY-MM/ or YYYY/YYYY-MM/YYYY-MM-DD/ directories. ParseName accepts
// the finished names only and List walks any nesting.
//
// # File format (stream version 3), as implemented
//
// All multi-byte values are in the byte order named by byte 2.
//
//	offset  size  field
//	0       1     magic 0xCF
//	1       1     magic 0x10
//	2       1     byte order: 1 little endian, 2 big endian
//	3       1     stream version: 3
//	4       4     header length H, including these 8 bytes and padding
//	8       H-8   TLVs, then zero padding to a multiple of 4
//	H       ...   body: records, zlib-deflated when FlagCompress is set
//
// A TLV is type (16 bits), length (16 bits) and length bytes of value.
// Types read here: 0 null, 1 vendor (written as 1 byte), 2 export version
// (16 bits), 3 aggregation version and 4 aggregation method (8 bits),
// 5 exporter IPv4 address, 6 capture start and 7 capture end (Unix
// seconds), 8 header flags, 9 rotation schedule, 10 flow count, 11 lost
// flows, 12 misordered flows, 13 corrupt packets, 14 sequence resets (all
// 32 bits), 15 capture hostname and 16 comments (NUL-terminated strings),
// 17 interface name (address 32, ifIndex 16, string) and 18 interface
// alias (address 32, count 16, count ifIndexes of 16 bits, string).
// Unknown types are skipped by their length. Header flags: 0x1 done, 0x2
// compressed, 0x8 streaming (flow-cat output), 0x10 translated, 0x20
// preloaded. IPv4 addresses are 32-bit numbers in the stream's byte
// order.
//
// The body is a sequence of fixed-size records of the header's export
// version; the compressed form is one zlib stream (RFC 1950) of them. The
// NetFlow v5 record (flow-tools' fts3rec_v5) is 64 bytes:
//
//	0 unix_secs 32   4 unix_nsecs 32   8 sysUpTime 32   12 exaddr 32
//	16 srcaddr 32    20 dstaddr 32     24 nexthop 32
//	28 input 16      30 output 16      32 dPkts 32      36 dOctets 32
//	40 First 32      44 Last 32        48 srcport 16    50 dstport 16
//	52 prot 8        53 tos 8          54 tcp_flags 8   55 pad 8
//	56 engine_type 8 57 engine_id 8    58 src_mask 8    59 dst_mask 8
//	60 src_as 16     62 dst_as 16
//
// v6 (72 bytes) and v7 (68 bytes) records begin with the same 64 bytes and
// are read through them (their extra fields are dropped).
//
// # Mapping to flow.Record
//
// Start and End are First and Last converted with decode.UptimeToUnixMilli
// against the record's own sysUpTime and unix_secs/unix_nsecs (millisecond
// precision). Exporter is exaddr (per record, so a file fed by several
// exporters keeps them apart), Domain is engine_type<<8|engine_id, a
// nexthop of 0.0.0.0 becomes the zero Addr, SamplingRate is 0 (flow-tools
// does not store it; counters are as exported).
//
// # Writing
//
// Write produces a stream version 3, export version 5 file with FlagDone
// set, compressed or not, in either byte order, with the header TLVs in
// flow-tools' order (vendor, export version, exporter, capture start/end,
// flags, rotation, flow count, lost, misordered, corrupt, resets, hostname,
// comments, interface names and aliases). Each record's wall clock is its
// End and its uptimes count from an imaginary boot an hour before the
// earliest flow. IPv6 flows cannot be stored and are skipped (counted);
// wider values are narrowed (see Write).
//
// # Limits and differences from flow-tools
//
//   - Stream version 1 (flow-tools before 0.60) is rejected with
//     ErrUnsupported, as are export versions other than 5, 6 and 7 (v1, the
//     v8 aggregations, tagged v1005).
//   - The header may declare at most MaxHeaderSize bytes; flow-tools writes
//     at most 16 KiB. The header is never compressed, so the only
//     decompressed data is the body, which is streamed through a fixed
//     batch buffer (BatchSize records) and never sized from the header's
//     flow count. At most 4096 interface names and aliases are kept.
//   - Like flow-tools, a TLV whose length runs past the header ends header
//     decoding, keeping the values before it. Fixed-size TLVs shorter than
//     their value are an error (flow-tools would read past them).
//   - A body ending inside a record, or a zlib stream cut short (a tmp-
//     file being written, a damaged file), yields the whole records before
//     the cut and then ErrTruncated; a zlib checksum or data error gives
//     ErrCorrupt. flow-tools only warns and stops.
//   - The header's flow count is informational: records are read to the
//     end of the body whatever it says.
//   - Interrupt records (TLV type 19, never produced by flow-tools' own
//     tools) are not recognised.
package flowtools
