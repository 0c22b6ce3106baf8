package probe

import (
	"fmt"
	"io"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/gen"
)

// ExportFormat is the wire format an Exporter sends.
type ExportFormat uint8

// Export formats.
const (
	ExportV5 ExportFormat = iota + 1
	ExportV9
	ExportIPFIX
)

// String returns the format's command-line name.
func (f ExportFormat) String() string {
	switch f {
	case ExportV5:
		return "v5"
	case ExportV9:
		return "v9"
	case ExportIPFIX:
		return "ipfix"
	}
	return fmt.Sprintf("ExportFormat(%d)", uint8(f))
}

// ParseExportFormat parses "v5", "v9" or "ipfix" (also "5", "9", "10").
func ParseExportFormat(s string) (ExportFormat, error) {
	switch s {
	case "v5", "5":
		return ExportV5, nil
	case "v9", "9":
		return ExportV9, nil
	case "ipfix", "10":
		return ExportIPFIX, nil
	}
	return 0, fmt.Errorf("export format %q: want v5, v9 or ipfix", s)
}

// ExporterStats are an Exporter's counters.
type ExporterStats struct {
	// Datagrams and Records count what was written; Errors counts failed
	// writes (their records are lost).
	Datagrams, Records, Errors uint64
	// SkippedIPv6 counts IPv6 flows dropped because NetFlow v5 cannot
	// carry them.
	SkippedIPv6 uint64
}

// Exporter encodes flows as NetFlow v5, v9 or IPFIX datagrams and writes
// each datagram with one Write call (a connected UDP socket). Sequence
// numbers follow each format's rule (v5: flows before the datagram, v9:
// datagrams, IPFIX: data records before the message), and the engine /
// source ID / observation domain is the constant Domain.
type Exporter struct {
	w      io.Writer
	format ExportFormat
	domain uint32
	v9     gen.V9Encoder
	ipfix  gen.IPFIXEncoder
	v5Seq  uint32
	v5Boot time.Time
	buf    []byte
	v4     []flow.Record
	stats  ExporterStats
	err    error
}

// NewExporter returns an Exporter writing format to w with the given
// engine ID (v5: engine_type<<8|engine_id), source ID (v9) or observation
// domain (IPFIX).
func NewExporter(w io.Writer, format ExportFormat, domain uint32) (*Exporter, error) {
	if format < ExportV5 || format > ExportIPFIX {
		return nil, fmt.Errorf("exporter: unknown format %d", format)
	}
	e := &Exporter{w: w, format: format, domain: domain, buf: make([]byte, 0, 1500)}
	e.v9.SourceID = domain
	e.ipfix.ObservationDomain = domain
	return e, nil
}

// Stats returns the counters.
func (e *Exporter) Stats() ExporterStats { return e.stats }

// Export sends recs in as many datagrams as needed; now is the export
// time written in the headers (the packet clock for pcap input). It
// returns the first write error, after trying every datagram.
func (e *Exporter) Export(recs []flow.Record, now time.Time) error {
	e.err = nil
	switch e.format {
	case ExportV5:
		if e.v5Boot.IsZero() {
			e.v5Boot = now.Add(-24 * time.Hour)
		}
		e.v4 = e.v4[:0]
		for i := range recs {
			if recs[i].IsIPv6() {
				e.stats.SkippedIPv6++
				continue
			}
			e.v4 = append(e.v4, recs[i])
		}
		for rs := e.v4; len(rs) > 0; {
			n := min(len(rs), gen.V5MaxRecords)
			h := gen.NewV5Header(now, e.v5Boot, e.v5Seq)
			h.EngineType, h.EngineID = uint8(e.domain>>8), uint8(e.domain)
			e.buf = gen.AppendNetFlow5(e.buf[:0], h, rs[:n])
			e.v5Seq += uint32(n)
			e.send(n)
			rs = rs[n:]
		}
	case ExportV9:
		for rs, max := recs, e.v9.MaxRecords(); len(rs) > 0; {
			n := min(len(rs), max)
			e.buf = e.v9.Append(e.buf[:0], now, rs[:n])
			e.send(n)
			rs = rs[n:]
		}
	case ExportIPFIX:
		for rs, max := recs, e.ipfix.MaxRecords(); len(rs) > 0; {
			n := min(len(rs), max)
			e.buf = e.ipfix.Append(e.buf[:0], now, rs[:n])
			e.send(n)
			rs = rs[n:]
		}
	}
	return e.err
}

// send writes the datagram in e.buf holding n records.
func (e *Exporter) send(n int) {
	if _, err := e.w.Write(e.buf); err != nil {
		e.stats.Errors++
		if e.err == nil {
			e.err = err
		}
		return
	}
	e.stats.Datagrams++
	e.stats.Records += uint64(n)
}
