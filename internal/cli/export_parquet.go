package cli

import (
	"context"
	"io"
	"net/netip"

	"github.com/parquet-go/parquet-go"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/query"
)

// writeParquet writes the flows that stream hands over to w as one
// Parquet file with the rows of query.ParquetFlow (the layout of
// query.ExportParquet, which reads only the archive) and returns the
// number of flows. export uses it for ClickHouse.
func writeParquet(ctx context.Context, w io.Writer, stream func(context.Context, func([]flow.Record) error) error) (uint64, error) {
	pw := parquet.NewGenericWriter[query.ParquetFlow](w, parquet.Compression(&parquet.Zstd))
	var rows []query.ParquetFlow
	var buf []byte
	var n uint64
	err := stream(ctx, func(batch []flow.Record) error {
		rows = rows[:0]
		for i := range batch {
			rows = append(rows, query.ParquetFlow{})
			buf = parquetRow(&rows[len(rows)-1], &batch[i], buf)
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

// parquetRow fills p from r; buf is scratch space for the addresses and
// is returned for reuse.
func parquetRow(p *query.ParquetFlow, r *flow.Record, buf []byte) []byte {
	addr := func(a netip.Addr) string {
		buf = flow.AppendAddr(buf[:0], a)
		return string(buf)
	}
	p.Exporter, p.SrcAddr, p.DstAddr, p.NextHop = addr(r.Exporter), addr(r.SrcAddr), addr(r.DstAddr), addr(r.NextHop)
	p.SrcPort, p.DstPort, p.Proto, p.TOS, p.TCPFlags = r.SrcPort, r.DstPort, r.Proto, r.TOS, r.TCPFlags
	p.InIf, p.OutIf, p.SrcAS, p.DstAS = r.InIf, r.OutIf, r.SrcAS, r.DstAS
	p.SrcMask, p.DstMask, p.Bytes, p.Packets = r.SrcMask, r.DstMask, r.Bytes, r.Packets
	p.Start, p.End, p.SamplingRate = r.Start, r.End, r.SamplingRate
	p.SrcVLAN, p.DstVLAN, p.Domain = r.SrcVLAN, r.DstVLAN, r.Domain
	return buf
}
