package flowfile

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/flowscan/flowscan/internal/decode"
)

// ExporterKey identifies one exporting process for accounting.
type ExporterKey struct {
	Addr   netip.Addr
	Domain uint32
	// Format is uint8(decode.Format).
	Format uint8
}

// ExporterStats are per-exporter counters accumulated over one file.
type ExporterStats struct {
	Datagrams, Flows, LostFlows, LostDatagrams, SequenceResets, Misordered uint64
	// SamplingRate is the last sampling rate seen (not summed).
	SamplingRate uint32
}

// add accumulates d into s; SamplingRate is replaced when d carries one.
func (s *ExporterStats) add(d ExporterStats) {
	s.Datagrams += d.Datagrams
	s.Flows += d.Flows
	s.LostFlows += d.LostFlows
	s.LostDatagrams += d.LostDatagrams
	s.SequenceResets += d.SequenceResets
	s.Misordered += d.Misordered
	if d.SamplingRate != 0 {
		s.SamplingRate = d.SamplingRate
	}
}

// ExporterMeta is one exporter's statistics as stored in a file's Meta.
type ExporterMeta struct {
	Addr   netip.Addr
	Domain uint32
	// Format is decode.Format(f).String().
	Format string
	ExporterStats
}

// Meta describes one flow file.
type Meta struct {
	// Version is the file format version.
	Version int
	// Start and End bound the time the file covers (End is the flush time
	// of the last meta block while the file is in progress).
	Start, End time.Time
	Hostname   string
	// Flows, Packets and Bytes total the file's records.
	Flows, Packets, Bytes uint64
	// FirstFlow and LastFlow are the smallest Start and largest End over
	// the records; zero when there are none.
	FirstFlow, LastFlow time.Time `json:",omitzero"`
	// Exporters are sorted by Addr, Domain.
	Exporters []ExporterMeta `json:",omitempty"`
	// DroppedFlows counts records that belonged to this file but were lost
	// (write error or a full write queue).
	DroppedFlows uint64 `json:",omitzero"`
	// Complete is true when the file was closed properly and no records
	// were dropped.
	Complete bool
	// Recovered is true when the file was completed by recovery after a
	// crash.
	Recovered bool `json:",omitzero"`

	// final is set on the meta block that ends a completed file.
	final bool
}

// LostFlows returns the flows the exporters' sequence numbers say were lost.
func (m *Meta) LostFlows() uint64 {
	var n uint64
	for i := range m.Exporters {
		n += m.Exporters[i].LostFlows
	}
	return n
}

// exporterSnapshot returns the accumulated statistics as sorted ExporterMeta.
func exporterSnapshot(acc map[ExporterKey]*ExporterStats) []ExporterMeta {
	if len(acc) == 0 {
		return nil
	}
	out := make([]ExporterMeta, 0, len(acc))
	for k, s := range acc {
		out = append(out, ExporterMeta{Addr: k.Addr, Domain: k.Domain, Format: decode.Format(k.Format).String(), ExporterStats: *s})
	}
	slices.SortFunc(out, func(a, b ExporterMeta) int {
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Domain, b.Domain); c != 0 {
			return c
		}
		return cmp.Compare(a.Format, b.Format)
	})
	return out
}

// formatByName maps decode.Format names back to values for restoring the
// accumulator of a resumed file.
func formatByName(name string) uint8 {
	for _, f := range []decode.Format{decode.FormatNetFlow5, decode.FormatNetFlow9, decode.FormatIPFIX, decode.FormatSFlow5} {
		if f.String() == name {
			return uint8(f)
		}
	}
	return uint8(decode.FormatUnknown)
}

// totals accumulates the record totals of a file from data block headers.
type totals struct {
	flows, packets, bytes uint64
	minStart, maxEnd      int64
}

func (t *totals) addBlock(records uint32, minStart, maxEnd int64, packets, bytes uint64) {
	if t.flows == 0 {
		t.minStart, t.maxEnd = minStart, maxEnd
	} else {
		t.minStart = min(t.minStart, minStart)
		t.maxEnd = max(t.maxEnd, maxEnd)
	}
	t.flows += uint64(records)
	t.packets += packets
	t.bytes += bytes
}

// apply copies the totals into m.
func (t *totals) apply(m *Meta) {
	m.Flows, m.Packets, m.Bytes = t.flows, t.packets, t.bytes
	m.FirstFlow, m.LastFlow = time.Time{}, time.Time{}
	if t.flows > 0 {
		m.FirstFlow = time.UnixMilli(t.minStart).UTC()
		m.LastFlow = time.UnixMilli(t.maxEnd).UTC()
	}
}
