package query

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
)

// Formats are the output formats of WriteResult and FlowWriter.
var Formats = []string{"table", "csv", "json", "ndjson", "jsonarray"}

// CheckFormat returns an error for an unknown output format.
func CheckFormat(format string) error {
	for _, f := range Formats {
		if f == format {
			return nil
		}
	}
	return fmt.Errorf("unknown format %q (want %s)", format, strings.Join(Formats, ", "))
}

// OutputOptions control WriteResult.
type OutputOptions struct {
	// Format is table, csv, json / ndjson (one object per line) or
	// jsonarray (one JSON array).
	Format string
	// Names prints protocol and service names instead of numbers.
	Names bool
	// Totals adds the "other" row and the summary to csv and JSON output
	// (the table always has them).
	Totals bool
}

// rowColumns are the counter columns of result rows after the keys.
var rowColumns = []string{"flows", "packets", "bytes", "flows_pct", "packets_pct", "bytes_pct", "bps", "pps", "bpp", "first", "last"}

// WriteResult writes an aggregation result.
func WriteResult(w io.Writer, res *Result, opt OutputOptions) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	switch opt.Format {
	case "table":
		writeTable(bw, res, opt.Names)
	case "csv":
		var hdr []string
		for _, k := range res.Keys {
			hdr = append(hdr, k.Name)
		}
		if len(hdr) == 0 {
			hdr = []string{"key"} // the summary row's "total"
		}
		bw.WriteString(strings.Join(append(hdr, rowColumns...), ",") + "\n")
		var b []byte
		for i := range res.Rows {
			b = appendCSVRow(b[:0], res, res.Values(&res.Rows[i]), &res.Rows[i].Counters, opt.Names)
			bw.Write(append(b, '\n'))
		}
		if opt.Totals {
			if res.Other.Flows > 0 {
				b = appendCSVRow(b[:0], res, nil, &res.Other, false)
				bw.Write(append(b, '\n'))
			}
			b = appendCSVRow(b[:0], res, nil, &res.Total, false)
			bw.Write(append(b, '\n'))
		}
	case "json", "ndjson", "jsonarray":
		arr := opt.Format == "jsonarray"
		sep := "\n"
		if arr {
			bw.WriteString("[")
			sep = ",\n"
		}
		n := 0
		emit := func(b []byte) {
			if n > 0 {
				bw.WriteString(sep)
			}
			bw.Write(b)
			n++
		}
		var b []byte
		for i := range res.Rows {
			b = appendJSONRow(b[:0], res, res.Values(&res.Rows[i]), &res.Rows[i].Counters, opt.Names, "")
			emit(b)
		}
		if opt.Totals {
			if res.Other.Flows > 0 {
				emit(appendJSONRow(b[:0], res, nil, &res.Other, false, "other"))
			}
			emit(appendJSONRow(b[:0], res, nil, &res.Total, false, "summary"))
		}
		if arr {
			bw.WriteString("]")
		}
		if n > 0 || arr {
			bw.WriteString("\n")
		}
	default:
		return CheckFormat(opt.Format)
	}
	return bw.Flush()
}

func appendCSVRow(b []byte, res *Result, vals []KeyValue, c *Counters, names bool) []byte {
	for i, k := range res.Keys {
		if i > 0 {
			b = append(b, ',')
		}
		if vals == nil {
			if i == 0 {
				b = append(b, "other"...)
				if c == &res.Total {
					b = append(b[:len(b)-5], "total"...)
				}
			}
			continue
		}
		b = vals[i].AppendText(b, k, names)
	}
	if len(res.Keys) == 0 {
		b = append(b, "total"...)
	}
	b = appendCounters(b, res, c, ',', nil)
	return b
}

func appendCounters(b []byte, res *Result, c *Counters, sep byte, keys []string) []byte {
	vals := [...]uint64{c.Flows, c.Packets, c.Bytes}
	for i, v := range vals {
		b = append(b, sep)
		if keys != nil {
			b = append(b, keys[i]...)
		}
		b = strconv.AppendUint(b, v, 10)
	}
	pcts := [...]float64{Percent(c.Flows, res.Total.Flows), Percent(c.Packets, res.Total.Packets), Percent(c.Bytes, res.Total.Bytes)}
	for i, v := range pcts {
		b = append(b, sep)
		if keys != nil {
			b = append(b, keys[3+i]...)
		}
		b = strconv.AppendFloat(b, v, 'f', 2, 64)
	}
	for i, v := range [...]uint64{c.BPS(), c.PPS(), c.BPP()} {
		b = append(b, sep)
		if keys != nil {
			b = append(b, keys[6+i]...)
		}
		b = strconv.AppendUint(b, v, 10)
	}
	for i, t := range [...]int64{c.First, c.Last} {
		b = append(b, sep)
		if keys != nil {
			b = append(b, keys[9+i]...)
			b = append(b, '"')
		}
		if c.Flows > 0 {
			b = flow.AppendTime(b, t)
		}
		if keys != nil {
			b = append(b, '"')
		}
	}
	return b
}

var jsonCounterKeys = func() []string {
	out := make([]string, len(rowColumns))
	for i, c := range rowColumns {
		out[i] = `"` + c + `":`
	}
	return out
}()

func appendJSONRow(b []byte, res *Result, vals []KeyValue, c *Counters, names bool, label string) []byte {
	b = append(b, '{')
	if vals == nil {
		b = append(b, `"`+label+`":true`...)
	}
	for i, k := range res.Keys {
		if vals == nil {
			break
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, k.Name...)
		b = append(b, `":`...)
		numeric := k.IsNumeric() && !(names && (k.f == fieldProto || k.f == fieldSrcPort || k.f == fieldDstPort))
		if !numeric {
			b = append(b, '"')
		}
		b = vals[i].AppendText(b, k, names)
		if !numeric {
			b = append(b, '"')
		}
	}
	if vals != nil && len(res.Keys) == 0 {
		b = append(b, `"summary":true`...)
	}
	b = appendCounters(b, res, c, ',', jsonCounterKeys)
	return append(b, '}')
}

// writeTable prints aligned columns, the other row and the summary.
func writeTable(w *bufio.Writer, res *Result, names bool) {
	var rows [][]string
	hdr := []string{}
	for _, k := range res.Keys {
		hdr = append(hdr, k.Name)
	}
	hdr = append(hdr, "flows", "%", "packets", "%", "bytes", "%", "bps", "pps", "bpp")
	rows = append(rows, hdr)
	cells := func(keys []string, c *Counters) []string {
		return append(keys,
			strconv.FormatUint(c.Flows, 10), pct(c.Flows, res.Total.Flows),
			Human(c.Packets), pct(c.Packets, res.Total.Packets),
			Human(c.Bytes), pct(c.Bytes, res.Total.Bytes),
			Human(c.BPS()), Human(c.PPS()), strconv.FormatUint(c.BPP(), 10))
	}
	for i := range res.Rows {
		var keys []string
		for j, v := range res.Values(&res.Rows[i]) {
			keys = append(keys, string(v.AppendText(nil, res.Keys[j], names)))
		}
		rows = append(rows, cells(keys, &res.Rows[i].Counters))
	}
	if res.Other.Flows > 0 {
		keys := make([]string, len(res.Keys))
		if len(keys) > 0 {
			keys[0] = "other"
		}
		rows = append(rows, cells(keys, &res.Other))
	}
	if len(res.Keys) > 0 {
		widths := make([]int, len(hdr))
		for _, r := range rows {
			for i, c := range r {
				widths[i] = max(widths[i], len(c))
			}
		}
		for _, r := range rows {
			var line []byte
			for i, c := range r {
				if i > 0 {
					line = append(line, ' ', ' ')
				}
				if i < len(res.Keys) {
					line = append(line, c...)
					line = append(line, strings.Repeat(" ", widths[i]-len(c))...)
				} else {
					line = append(line, strings.Repeat(" ", widths[i]-len(c))...)
					line = append(line, c...)
				}
			}
			w.Write(append([]byte(strings.TrimRight(string(line), " ")), '\n'))
		}
	}
	w.WriteString(Summary(&res.Total, res.Groups, len(res.Keys) > 0))
	w.WriteByte('\n')
}

func pct(part, total uint64) string {
	return strconv.FormatFloat(Percent(part, total), 'f', 1, 64)
}

// Summary returns the one-line summary of a query: flows, bytes, packets,
// time span and average rates.
func Summary(c *Counters, groups int, withGroups bool) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "summary: flows %d, bytes %d (%s), packets %d (%s)", c.Flows, c.Bytes, Human(c.Bytes), c.Packets, Human(c.Packets))
	if withGroups {
		fmt.Fprintf(&sb, ", groups %d", groups)
	}
	if c.Flows > 0 {
		fmt.Fprintf(&sb, ", time %s - %s (%s), avg %sbps %spps %d B/packet",
			flow.AppendTime(nil, c.First), flow.AppendTime(nil, c.Last),
			(time.Duration(c.SpanMillis()) * time.Millisecond).String(), Human(c.BPS()), Human(c.PPS()), c.BPP())
	}
	return sb.String()
}

// Human formats v with a K, M, G or T suffix (powers of 1000), one
// decimal.
func Human(v uint64) string {
	const units = "KMGTPE"
	if v < 1000 {
		return strconv.FormatUint(v, 10)
	}
	f := float64(v)
	i := -1
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + units[i:i+1]
}

// FlowWriter prints flows in one of Formats.
type FlowWriter struct {
	w      *bufio.Writer
	format string
	names  bool
	n      uint64
	buf    []byte
}

// NewFlowWriter returns a writer of flows to w. JSON and CSV use the field
// names of flowscan dump (flow.Fields); the table shows names of
// protocols and services when names is set.
func NewFlowWriter(w io.Writer, format string, names bool) (*FlowWriter, error) {
	if err := CheckFormat(format); err != nil {
		return nil, err
	}
	fw := &FlowWriter{w: bufio.NewWriterSize(w, 1<<16), format: format, names: names}
	switch format {
	case "csv":
		fw.w.WriteString(strings.Join(flow.Fields, ",") + "\n")
	case "table":
		fw.w.WriteString(tableHeader)
	case "jsonarray":
		fw.w.WriteString("[")
	}
	return fw, nil
}

const tableHeader = "start                    duration  proto  src                                            dst                                             packets     bytes  flags  in   out\n"

// Write prints one flow.
func (fw *FlowWriter) Write(r *flow.Record) error {
	b := fw.buf[:0]
	switch fw.format {
	case "json", "ndjson":
		b = flow.AppendJSON(b, r)
	case "jsonarray":
		if fw.n > 0 {
			b = append(b, ',')
		}
		b = append(b, '\n')
		b = flow.AppendJSON(b, r)
	case "csv":
		b = flow.AppendCSV(b, r)
	default:
		b = fw.appendTable(b, r)
	}
	if fw.format != "jsonarray" {
		b = append(b, '\n')
	}
	fw.buf = b
	fw.n++
	_, err := fw.w.Write(b)
	return err
}

// Count returns the flows written.
func (fw *FlowWriter) Count() uint64 { return fw.n }

// Close ends the output (the JSON array) and flushes it.
func (fw *FlowWriter) Close() error {
	if fw.format == "jsonarray" {
		fw.w.WriteString("\n]\n")
	}
	return fw.w.Flush()
}

func (fw *FlowWriter) appendTable(b []byte, r *flow.Record) []byte {
	start := len(b)
	b = r.StartTime().AppendFormat(b, "2006-01-02 15:04:05.000")
	b = padTo(b, start, 25)
	col := len(b)
	b = strconv.AppendFloat(b, r.Duration().Seconds(), 'f', 3, 64)
	b = padTo(b, col, 10)
	col = len(b)
	if fw.names {
		b = append(b, ProtoName(r.Proto)...)
	} else {
		b = strconv.AppendUint(b, uint64(r.Proto), 10)
	}
	b = padTo(b, col, 7)
	col = len(b)
	b = fw.appendEndpoint(b, r.SrcAddr, r.SrcPort)
	b = padTo(b, col, 47)
	col = len(b)
	b = fw.appendEndpoint(b, r.DstAddr, r.DstPort)
	b = padTo(b, col, 47)
	col = len(b)
	b = append(b, Human(r.Packets)...)
	b = padTo(b, col, 12)
	col = len(b)
	b = append(b, Human(r.Bytes)...)
	b = padTo(b, col, 7)
	col = len(b)
	const letters = "UAPRSF"
	for i := range 6 {
		if r.TCPFlags&(1<<(5-i)) != 0 {
			b = append(b, letters[i])
		} else {
			b = append(b, '.')
		}
	}
	b = append(b, ' ')
	col = len(b)
	b = strconv.AppendUint(b, uint64(r.InIf), 10)
	b = padTo(b, col, 5)
	return strconv.AppendUint(b, uint64(r.OutIf), 10)
}

func (fw *FlowWriter) appendEndpoint(b []byte, a netip.Addr, port uint16) []byte {
	a = a.Unmap()
	if a.Is6() {
		b = append(b, '[')
		b = a.AppendTo(b)
		b = append(b, ']')
	} else {
		b = flow.AppendAddr(b, a)
	}
	b = append(b, ':')
	if fw.names {
		return append(b, ServiceName(port)...)
	}
	return strconv.AppendUint(b, uint64(port), 10)
}

func padTo(b []byte, start, width int) []byte {
	for len(b)-start < width-1 {
		b = append(b, ' ')
	}
	return append(b, ' ')
}
