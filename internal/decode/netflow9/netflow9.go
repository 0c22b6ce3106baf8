// Package netflow9 decodes NetFlow version 9 export datagrams (RFC 3954).
//
// Templates (flowset 0) and options templates (flowset 1) are learned per
// exporter address and source ID; data flowsets whose template is not known
// yet are skipped and reported through decode.Result. Options data records
// announce sampling rates (SAMPLING_INTERVAL, FLOW_SAMPLER_ID with
// FLOW_SAMPLER_RANDOM_INTERVAL) and never produce flows. FIRST_SWITCHED and
// LAST_SWITCHED are converted to wall-clock time with the header's
// sysUptime and unix_secs.
//
// A Decoder is safe for concurrent use: Decode, SaveState, LoadState and
// the other decode.Stateful methods synchronise on one mutex.
package netflow9

import (
	"encoding/binary"
	"io"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/decode/template"
	"github.com/flowscan/flowscan/internal/flow"
)

// headerLength is the length of the NetFlow v9 packet header.
const headerLength = 20

// Flowset IDs below 256 that carry templates.
const (
	templateFlowset        = 0
	optionsTemplateFlowset = 1
	firstDataFlowset       = 256
)

func init() {
	decode.Register(decode.Factory{
		Format: decode.FormatNetFlow9,
		Match:  Match,
		New:    func(opts decode.Options) decode.Decoder { return New(opts) },
	})
}

// Match reports whether data starts with a NetFlow v9 header.
func Match(data []byte) bool {
	return len(data) >= 2 && binary.BigEndian.Uint16(data) == 9
}

// Decoder decodes NetFlow v9 datagrams and keeps their templates.
type Decoder struct {
	opts   decode.Options
	store  *template.Store
	fields []template.Field // scratch for parsing templates, under the store lock
}

// New returns a Decoder configured by opts.
func New(opts decode.Options) *Decoder {
	return &Decoder{
		opts:  opts,
		store: template.NewStore(decode.FormatNetFlow9, template.DialectNetFlow9, opts.MaxTemplates),
	}
}

// Format returns decode.FormatNetFlow9.
func (d *Decoder) Format() decode.Format { return decode.FormatNetFlow9 }

func errorf(r decode.Reason, format string, args ...any) error {
	return decode.Errorf(decode.FormatNetFlow9, r, format, args...)
}

// Decode appends the flows of one NetFlow v9 datagram to dst.
func (d *Decoder) Decode(dst []flow.Record, pkt *decode.Packet) ([]flow.Record, decode.Result, error) {
	data := pkt.Data
	res := decode.Result{
		Format:     decode.FormatNetFlow9,
		Exporter:   pkt.Src.Addr().Unmap(),
		SeqUnit:    decode.SeqDatagrams,
		SeqAdvance: 1,
		SeqExact:   true,
	}
	if len(data) < headerLength {
		return dst, res, errorf(decode.ReasonShort, "%d octets, header needs %d", len(data), headerLength)
	}
	if v := binary.BigEndian.Uint16(data); v != 9 {
		return dst, res, errorf(decode.ReasonVersion, "version %d", v)
	}
	count := int(binary.BigEndian.Uint16(data[2:]))
	res.Sequence = binary.BigEndian.Uint32(data[12:])
	res.Domain = binary.BigEndian.Uint32(data[16:])

	ctx := template.Context{
		Format:        decode.FormatNetFlow9,
		Exporter:      res.Exporter,
		Domain:        res.Domain,
		ExportMilli:   int64(binary.BigEndian.Uint32(data[8:])) * 1000,
		SysUptime:     binary.BigEndian.Uint32(data[4:]),
		HasSysUptime:  true,
		ReceivedMilli: pkt.Received.UnixMilli(),
	}
	if d.opts.SamplingOverride != nil {
		ctx.OverrideRate, ctx.HasOverride = d.opts.SamplingOverride(res.Exporter)
	}

	d.store.Lock()
	defer d.store.Unlock()
	key := template.DomainKey{Exporter: res.Exporter, Domain: res.Domain}
	ctx.Dom = d.store.Domain(key)
	d.store.Touch(ctx.Dom, ctx.ReceivedMilli)

	start := len(dst)
	records, skippedSets := 0, 0
	body := data[headerLength:]
	for len(body) >= 4 {
		id := binary.BigEndian.Uint16(body)
		length := int(binary.BigEndian.Uint16(body[2:]))
		if length < 4 || length > len(body) {
			return dst[:start], res, errorf(decode.ReasonLength, "flowset %d length %d with %d octets left", id, length, len(body))
		}
		set := body[4:length]
		body = body[length:]
		switch {
		case id == templateFlowset || id == optionsTemplateFlowset:
			n, err := d.learn(key, &ctx, set, id == optionsTemplateFlowset)
			res.Templates += n
			if err != nil {
				return dst[:start], res, err
			}
		case id < firstDataFlowset:
			// Reserved flowset IDs: skip.
		default:
			t := ctx.Dom.Template(id)
			if t == nil {
				skippedSets++
				res.SeqExact = false
				continue
			}
			var n int
			var err error
			dst, n, err = t.DecodeSet(dst, set, &ctx)
			records += n
			if err != nil {
				return dst[:start], res, err
			}
		}
	}
	res.Flows = len(dst) - start
	if skippedSets > 0 {
		// The header count covers template and data records; what it
		// holds beyond the records understood were in skipped flowsets.
		res.Skipped = skippedSets
		if rest := count - records - res.Templates; rest > skippedSets {
			res.Skipped = rest
		}
	}
	return dst, res, nil
}

// learn parses a template (options false) or options template flowset body
// and returns the number of template records in it.
func (d *Decoder) learn(key template.DomainKey, ctx *template.Context, set []byte, options bool) (int, error) {
	n := 0
	hdr := 4
	if options {
		hdr = 6
	}
	for len(set) >= hdr {
		id := binary.BigEndian.Uint16(set)
		if id == 0 {
			break // padding
		}
		var scopeCount, fieldCount int
		if options {
			scopeLen := int(binary.BigEndian.Uint16(set[2:]))
			optionLen := int(binary.BigEndian.Uint16(set[4:]))
			if scopeLen%4 != 0 || optionLen%4 != 0 {
				return n, errorf(decode.ReasonTemplate, "options template %d: scope length %d, option length %d", id, scopeLen, optionLen)
			}
			scopeCount, fieldCount = scopeLen/4, (scopeLen+optionLen)/4
		} else {
			fieldCount = int(binary.BigEndian.Uint16(set[2:]))
		}
		if fieldCount == 0 || fieldCount > template.MaxFields {
			return n, errorf(decode.ReasonTemplate, "template %d: %d fields", id, fieldCount)
		}
		end := hdr + 4*fieldCount
		if end > len(set) {
			return n, errorf(decode.ReasonTemplate, "template %d: %d fields overrun the flowset", id, fieldCount)
		}
		d.fields = d.fields[:0]
		for p := hdr; p < end; p += 4 {
			d.fields = append(d.fields, template.Field{
				ID:     binary.BigEndian.Uint16(set[p:]),
				Length: binary.BigEndian.Uint16(set[p+2:]),
			})
		}
		set = set[end:]
		dom, err := d.store.DomainFor(key)
		if err != nil {
			return n, err
		}
		ctx.Dom = dom
		if err := d.store.Learn(dom, id, options, scopeCount, d.fields); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// SaveState writes the learned templates and sampling rates as JSON.
func (d *Decoder) SaveState(w io.Writer) error { return d.store.Save(w) }

// LoadState replaces the decoder's state with one written by SaveState.
func (d *Decoder) LoadState(r io.Reader) error { return d.store.Load(r) }

// StateGeneration increases whenever templates or sampling rates change.
func (d *Decoder) StateGeneration() uint64 { return d.store.Generation() }

// TemplateCount returns the number of (options) templates known.
func (d *Decoder) TemplateCount() int { return d.store.TemplateCount() }

var (
	_ decode.Decoder  = (*Decoder)(nil)
	_ decode.Stateful = (*Decoder)(nil)
)
