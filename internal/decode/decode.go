// Package decode turns export datagrams (NetFlow v5, NetFlow v9, IPFIX,
// sFlow) into flow.Records.
//
// Each wire format lives in its own sub-package and registers a Factory with
// Register from an init function; a Mux picks the decoder for a datagram by
// asking each registered format whether the datagram's header matches.
// Decoders do no I/O and, in steady state, allocate nothing per record: they
// append to a caller-owned slice.
package decode

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
)

// Format names a wire format.
type Format uint8

// The wire formats flowscan knows. Values are stable (they are stored).
const (
	FormatUnknown  Format = 0
	FormatNetFlow5 Format = 5
	FormatNetFlow9 Format = 9
	FormatIPFIX    Format = 10
	FormatSFlow5   Format = 20
)

// String returns the format's short name as used in metrics and metadata.
func (f Format) String() string {
	switch f {
	case FormatNetFlow5:
		return "netflow5"
	case FormatNetFlow9:
		return "netflow9"
	case FormatIPFIX:
		return "ipfix"
	case FormatSFlow5:
		return "sflow5"
	}
	return "unknown"
}

// SequenceUnit says what a format's sequence number counts.
type SequenceUnit uint8

// Sequence units.
const (
	// SeqNone: the format carries no usable sequence number.
	SeqNone SequenceUnit = iota
	// SeqFlows: the sequence advances by the number of flow records
	// (NetFlow v5 flow_sequence, IPFIX sequence number).
	SeqFlows
	// SeqDatagrams: the sequence advances by one per export datagram
	// (NetFlow v9 package sequence, sFlow datagram sequence).
	SeqDatagrams
)

// Packet is one received datagram.
type Packet struct {
	// Data is the UDP payload. Decoders must not keep it after Decode returns.
	Data []byte
	// Src is the address and port the datagram came from.
	Src netip.AddrPort
	// Received is the arrival time, used where a format carries no clock.
	Received time.Time
}

// Result describes one decoded datagram for accounting and metrics.
type Result struct {
	Format Format
	// Exporter is the address the flows are attributed to (normally the
	// datagram's source; the agent address for sFlow).
	Exporter netip.Addr
	// Domain is engine type<<8|engine id (v5), source ID (v9),
	// observation domain ID (IPFIX) or sub-agent ID (sFlow).
	Domain uint32
	// Sequence is the datagram's sequence number, counted in SeqUnit.
	Sequence uint32
	SeqUnit  SequenceUnit
	// SeqAdvance is how far this datagram advances the sequence: the number
	// of data records for SeqFlows, 1 for SeqDatagrams. SeqExact is false
	// when the datagram held records that could not be decoded (for
	// example data sets whose template is not known yet), so SeqAdvance is
	// a lower bound and loss accounting must resynchronise instead of
	// counting.
	SeqAdvance uint32
	SeqExact   bool
	// Flows is the number of flow records appended.
	Flows int
	// Templates is the number of (options) template records learned or
	// withdrawn in this datagram.
	Templates int
	// Skipped counts data records that became no flow record, which is
	// not an error: NetFlow v9 and IPFIX data of a template not known
	// yet, sFlow flow samples of a packet without an IP header (ARP, MPLS
	// and the like).
	Skipped int
}

// Reason classifies a decode error; it is the "reason" label in metrics.
type Reason string

// Decode error reasons shared by all formats.
const (
	ReasonShort       Reason = "short"        // datagram or header truncated
	ReasonVersion     Reason = "version"      // unknown format or version
	ReasonLength      Reason = "bad_length"   // a length field disagrees with the data
	ReasonCount       Reason = "bad_count"    // absurd record or set count
	ReasonTemplate    Reason = "bad_template" // malformed template or options template
	ReasonTooMany     Reason = "template_limit"
	ReasonFieldLength Reason = "bad_field_length"
	ReasonSample      Reason = "bad_sample" // sFlow sample or record malformed
)

// Error is a decode failure with a metrics reason.
type Error struct {
	Format Format
	Reason Reason
	Detail string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("%s: %s", e.Format, e.Reason)
	}
	return fmt.Sprintf("%s: %s: %s", e.Format, e.Reason, e.Detail)
}

// Errorf builds an *Error.
func Errorf(f Format, r Reason, format string, args ...any) *Error {
	return &Error{Format: f, Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the Reason of err, or "other" if err is not an *Error.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return "other"
}

// Options configure decoders.
type Options struct {
	// SamplingOverride, if set, returns a fixed sampling rate for an
	// exporter (ok=true), which replaces whatever the exporter announces.
	SamplingOverride func(exporter netip.Addr) (rate uint32, ok bool)
	// MaxTemplates bounds the number of templates kept per exporter and
	// domain (template-flood protection). 0 means a default of 1024.
	MaxTemplates int
}

// Decoder decodes datagrams of one format. A Decoder keeps per-exporter
// state (templates, sampling rates) and is safe for use by one goroutine at
// a time unless its package says otherwise.
type Decoder interface {
	// Format returns the format this decoder handles.
	Format() Format
	// Decode appends the flows of pkt to dst and returns the extended slice.
	// On error, dst is returned unchanged in length; records of a partly
	// decoded datagram are discarded.
	Decode(dst []flow.Record, pkt *Packet) ([]flow.Record, Result, error)
}

// Factory describes a registered format.
type Factory struct {
	Format Format
	// Match reports whether a datagram's header belongs to this format. It
	// must look only at the first few bytes and never allocate.
	Match func(data []byte) bool
	// New builds a decoder.
	New func(opts Options) Decoder
}

var (
	registryMu sync.RWMutex
	registry   = map[Format]Factory{}
)

// Register makes a format available to NewMux. It panics on duplicates, so
// it belongs in an init function.
func Register(f Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[f.Format]; dup {
		panic("decode: format registered twice: " + f.Format.String())
	}
	registry[f.Format] = f
}

// Registered returns the registered factories ordered by Format.
func Registered() []Factory {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]Factory, 0, len(registry))
	for _, f := range registry {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Format < out[j].Format })
	return out
}

// Mux dispatches datagrams to the decoder whose header matches.
type Mux struct {
	match    []func([]byte) bool
	decoders []Decoder
}

// NewMux builds one decoder of every registered format.
func NewMux(opts Options) *Mux {
	m := &Mux{}
	for _, f := range Registered() {
		m.match = append(m.match, f.Match)
		m.decoders = append(m.decoders, f.New(opts))
	}
	return m
}

// Decoder returns the Mux's decoder for format f, or nil.
func (m *Mux) Decoder(f Format) Decoder {
	for _, d := range m.decoders {
		if d.Format() == f {
			return d
		}
	}
	return nil
}

// Decode finds the matching decoder and decodes pkt with it.
func (m *Mux) Decode(dst []flow.Record, pkt *Packet) ([]flow.Record, Result, error) {
	for i, match := range m.match {
		if match(pkt.Data) {
			return m.decoders[i].Decode(dst, pkt)
		}
	}
	return dst, Result{Exporter: pkt.Src.Addr().Unmap()}, errUnknownFormat
}

var errUnknownFormat = &Error{Format: FormatUnknown, Reason: ReasonVersion, Detail: "no registered format matches the header"}

// UptimeToUnixMilli converts a router uptime timestamp (milliseconds since
// boot) to Unix milliseconds, given the export header's uptime and its wall
// clock. The difference is taken modulo 2^32 so that flows which started
// before the 49.7-day uptime counter wrapped still land in the past.
func UptimeToUnixMilli(flowUptime, headerUptime uint32, headerUnixMilli int64) int64 {
	return headerUnixMilli - int64(int32(headerUptime-flowUptime))
}

// Stateful is implemented by decoders that learn state from the wire
// (templates, announced sampling rates) worth keeping across a restart, so
// that data arriving right after a restart can be decoded at once.
// SaveState, LoadState and TemplateCount may be called from a goroutine
// other than the one calling Decode; implementations synchronise.
type Stateful interface {
	// SaveState writes the decoder's learned state.
	SaveState(w io.Writer) error
	// LoadState replaces the decoder's state with one written by SaveState.
	LoadState(r io.Reader) error
	// StateGeneration increases whenever the state changes, so a caller
	// can save only when something changed.
	StateGeneration() uint64
	// TemplateCount returns how many templates are currently known.
	TemplateCount() int
}

// IfCounters is one interface's counters as an agent reported them (sFlow
// generic interface counter samples), kept so interface utilisation can be
// graphed next to the flows.
type IfCounters struct {
	// Exporter is the agent address; Domain its sub-agent ID.
	Exporter netip.Addr
	Domain   uint32
	// Time is when the datagram was received.
	Time time.Time
	// Sequence is the counter sample's sequence number.
	Sequence uint32
	IfIndex  uint32
	IfType   uint32
	// Speed is the interface speed in bits per second.
	Speed uint64
	// Direction is 0 unknown, 1 full duplex, 2 half duplex, 3 in, 4 out.
	Direction uint32
	// Status bit 0 is admin up, bit 1 operationally up.
	Status                                                                   uint32
	InOctets                                                                 uint64
	InUcastPkts, InMulticastPkts, InBroadcastPkts                            uint32
	InDiscards, InErrors, InUnknownProtos                                    uint32
	OutOctets                                                                uint64
	OutUcastPkts, OutMulticastPkts, OutBroadcastPkts, OutDiscards, OutErrors uint32
	Promiscuous                                                              uint32
}

// CounterSource is implemented by decoders that also decode interface
// counters (sFlow counter samples).
type CounterSource interface {
	// DrainCounters appends the counters decoded since the last call to
	// dst and forgets them.
	DrainCounters(dst []IfCounters) []IfCounters
}

// DrainCounters collects the counters every decoder of the Mux decoded
// since the last call.
func (m *Mux) DrainCounters(dst []IfCounters) []IfCounters {
	for _, d := range m.decoders {
		if cs, ok := d.(CounterSource); ok {
			dst = cs.DrainCounters(dst)
		}
	}
	return dst
}
