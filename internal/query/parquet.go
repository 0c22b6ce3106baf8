package query

import (
	"context"
	"io"

	"github.com/parquet-go/parquet-go"

	"github.com/flowscan/flowscan/internal/flow"
)

// ParquetFlow is one row of an exported Parquet file: the fields of
// flow.Record under the names of flow.Fields (plus the VLANs and the
// exporter's domain). Addresses are text; times are timestamps in
// milliseconds (UTC).
type ParquetFlow struct {
	Exporter     string `parquet:"exporter,dict"`
	SrcAddr      string `parquet:"src_addr"`
	DstAddr      string `parquet:"dst_addr"`
	NextHop      string `parquet:"next_hop,dict"`
	SrcPort      uint16 `parquet:"src_port"`
	DstPort      uint16 `parquet:"dst_port"`
	Proto        uint8  `parquet:"proto"`
	TOS          uint8  `parquet:"tos"`
	TCPFlags     uint8  `parquet:"tcp_flags"`
	InIf         uint32 `parquet:"in_if"`
	OutIf        uint32 `parquet:"out_if"`
	SrcAS        uint32 `parquet:"src_as"`
	DstAS        uint32 `parquet:"dst_as"`
	SrcMask      uint8  `parquet:"src_mask"`
	DstMask      uint8  `parquet:"dst_mask"`
	Bytes        uint64 `parquet:"bytes"`
	Packets      uint64 `parquet:"packets"`
	Start        int64  `parquet:"start,timestamp(millisecond)"`
	End          int64  `parquet:"end,timestamp(millisecond)"`
	SamplingRate uint32 `parquet:"sampling_rate"`
	SrcVLAN      uint16 `parquet:"src_vlan"`
	DstVLAN      uint16 `parquet:"dst_vlan"`
	Domain       uint32 `parquet:"domain"`
}

func toParquet(p *ParquetFlow, r *flow.Record, buf []byte) []byte {
	str := func(b []byte) string { return string(b) }
	buf = flow.AppendAddr(buf[:0], r.Exporter)
	p.Exporter = str(buf)
	buf = flow.AppendAddr(buf[:0], r.SrcAddr)
	p.SrcAddr = str(buf)
	buf = flow.AppendAddr(buf[:0], r.DstAddr)
	p.DstAddr = str(buf)
	buf = flow.AppendAddr(buf[:0], r.NextHop)
	p.NextHop = str(buf)
	p.SrcPort, p.DstPort, p.Proto, p.TOS, p.TCPFlags = r.SrcPort, r.DstPort, r.Proto, r.TOS, r.TCPFlags
	p.InIf, p.OutIf, p.SrcAS, p.DstAS = r.InIf, r.OutIf, r.SrcAS, r.DstAS
	p.SrcMask, p.DstMask, p.Bytes, p.Packets = r.SrcMask, r.DstMask, r.Bytes, r.Packets
	p.Start, p.End, p.SamplingRate = r.Start, r.End, r.SamplingRate
	p.SrcVLAN, p.DstVLAN, p.Domain = r.SrcVLAN, r.DstVLAN, r.Domain
	return buf
}

// ExportParquet writes the query's matching flows to w as one Parquet
// file (zstd-compressed columns) and returns the number of flows.
func (q *Query) ExportParquet(ctx context.Context, w io.Writer) (uint64, error) {
	return WriteParquet(ctx, w, q.Flows)
}

// WriteParquet writes the flows that stream hands over (the archive's, as
// Query.Flows; ClickHouse's, as Query.FlowsClickHouse bound to a server)
// to w as one Parquet file of ParquetFlow rows with zstd-compressed
// columns, and returns the number of flows.
func WriteParquet(ctx context.Context, w io.Writer, stream func(context.Context, func([]flow.Record) error) error) (uint64, error) {
	pw := parquet.NewGenericWriter[ParquetFlow](w, parquet.Compression(&parquet.Zstd))
	var rows []ParquetFlow
	var buf []byte
	var n uint64
	err := stream(ctx, func(batch []flow.Record) error {
		rows = rows[:0]
		for i := range batch {
			rows = append(rows, ParquetFlow{})
			buf = toParquet(&rows[len(rows)-1], &batch[i], buf)
		}
		n += uint64(len(rows))
		_, err := pw.Write(rows)
		return err
	})
	if err != nil {
		pw.Close()
		return n, err
	}
	return n, pw.Close()
}
