package flow

import (
	"net/netip"
	"strconv"
	"time"
)

// Fields are the external names of Record's fields, in output order. They
// are the JSON keys and CSV header of `flowscan dump` and `flowscan query`.
var Fields = []string{
	"exporter", "src_addr", "dst_addr", "next_hop", "src_port", "dst_port",
	"proto", "tos", "tcp_flags", "in_if", "out_if", "src_as", "dst_as",
	"src_mask", "dst_mask", "bytes", "packets", "start", "end", "sampling_rate",
}

// AppendJSON appends r as one JSON object (no trailing newline) using the
// names in Fields. Times are RFC 3339 with milliseconds, in UTC.
func AppendJSON(dst []byte, r *Record) []byte {
	dst = append(dst, `{"exporter":`...)
	dst = appendQuotedAddr(dst, r.Exporter)
	dst = append(dst, `,"src_addr":`...)
	dst = appendQuotedAddr(dst, r.SrcAddr)
	dst = append(dst, `,"dst_addr":`...)
	dst = appendQuotedAddr(dst, r.DstAddr)
	dst = append(dst, `,"next_hop":`...)
	dst = appendQuotedAddr(dst, r.NextHop)
	dst = appendUintField(dst, `,"src_port":`, uint64(r.SrcPort))
	dst = appendUintField(dst, `,"dst_port":`, uint64(r.DstPort))
	dst = appendUintField(dst, `,"proto":`, uint64(r.Proto))
	dst = appendUintField(dst, `,"tos":`, uint64(r.TOS))
	dst = appendUintField(dst, `,"tcp_flags":`, uint64(r.TCPFlags))
	dst = appendUintField(dst, `,"in_if":`, uint64(r.InIf))
	dst = appendUintField(dst, `,"out_if":`, uint64(r.OutIf))
	dst = appendUintField(dst, `,"src_as":`, uint64(r.SrcAS))
	dst = appendUintField(dst, `,"dst_as":`, uint64(r.DstAS))
	dst = appendUintField(dst, `,"src_mask":`, uint64(r.SrcMask))
	dst = appendUintField(dst, `,"dst_mask":`, uint64(r.DstMask))
	dst = appendUintField(dst, `,"bytes":`, r.Bytes)
	dst = appendUintField(dst, `,"packets":`, r.Packets)
	dst = append(dst, `,"start":"`...)
	dst = AppendTime(dst, r.Start)
	dst = append(dst, `","end":"`...)
	dst = AppendTime(dst, r.End)
	dst = append(dst, '"')
	dst = appendUintField(dst, `,"sampling_rate":`, uint64(r.SamplingRate))
	return append(dst, '}')
}

// AppendCSV appends r as one CSV line (no trailing newline) in Fields order.
func AppendCSV(dst []byte, r *Record) []byte {
	dst = AppendAddr(dst, r.Exporter)
	dst = append(dst, ',')
	dst = AppendAddr(dst, r.SrcAddr)
	dst = append(dst, ',')
	dst = AppendAddr(dst, r.DstAddr)
	dst = append(dst, ',')
	dst = AppendAddr(dst, r.NextHop)
	for _, v := range [...]uint64{uint64(r.SrcPort), uint64(r.DstPort), uint64(r.Proto), uint64(r.TOS),
		uint64(r.TCPFlags), uint64(r.InIf), uint64(r.OutIf), uint64(r.SrcAS), uint64(r.DstAS),
		uint64(r.SrcMask), uint64(r.DstMask), r.Bytes, r.Packets} {
		dst = append(dst, ',')
		dst = strconv.AppendUint(dst, v, 10)
	}
	dst = append(dst, ',')
	dst = AppendTime(dst, r.Start)
	dst = append(dst, ',')
	dst = AppendTime(dst, r.End)
	dst = append(dst, ',')
	return strconv.AppendUint(dst, uint64(r.SamplingRate), 10)
}

// AppendAddr appends a's text form, or nothing for the zero Addr. IPv4
// addresses mapped into IPv6 are printed as IPv4.
func AppendAddr(dst []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return dst
	}
	return a.Unmap().AppendTo(dst)
}

// AppendTime appends the Unix-millisecond time ms in RFC 3339 with
// millisecond precision, UTC.
func AppendTime(dst []byte, ms int64) []byte {
	return time.UnixMilli(ms).UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
}

func appendQuotedAddr(dst []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(dst, `""`...)
	}
	dst = append(dst, '"')
	dst = AppendAddr(dst, a)
	return append(dst, '"')
}

func appendUintField(dst []byte, key string, v uint64) []byte {
	dst = append(dst, key...)
	return strconv.AppendUint(dst, v, 10)
}
