// Package ipfix decodes IPFIX messages (RFC 7011).
//
// Templates (set 2) and options templates (set 3) are learned per exporter
// address and observation domain, including template withdrawals (a
// template record with field count 0; template ID 2 or 3 withdraws all
// templates of that set). Enterprise-specific fields are skipped by
// length; variable-length fields are supported. Data sets whose template
// is not known are skipped and reported through decode.Result. Options
// data records announce sampling (samplingInterval, samplerId with
// samplerRandomInterval, selectorId with samplingPacketInterval and
// samplingPacketSpace) and systemInitTimeMilliseconds; they never produce
// flows.
//
// flowStartSysUpTime/flowEndSysUpTime (IE 22/21) are converted with
// systemInitTimeMilliseconds (IE 160) from the record itself or from an
// options record of the same domain. Without it the flow is taken to have
// ended at the message's export time, and its start lies the flow's
// uptime duration before that.
//
// A Decoder is safe for concurrent use: Decode, SaveState, LoadState and
// the other decode.Stateful methods synchronise on one mutex.
package ipfix

import (
	"encoding/binary"
	"io"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/decode/template"
	"github.com/flowscan/flowscan/internal/flow"
)

// headerLength is the length of the IPFIX message header.
const headerLength = 16

// Set IDs.
const (
	templateSet        = 2
	optionsTemplateSet = 3
	firstDataSet       = 256
)

// enterpriseBit marks a field specifier followed by an enterprise number.
const enterpriseBit = 0x8000

func init() {
	decode.Register(decode.Factory{
		Format: decode.FormatIPFIX,
		Match:  Match,
		New:    func(opts decode.Options) decode.Decoder { return New(opts) },
	})
}

// Match reports whether data starts with an IPFIX message header: version
// 10 and a message length of at least a header.
func Match(data []byte) bool {
	return len(data) >= 4 && binary.BigEndian.Uint16(data) == 10 &&
		binary.BigEndian.Uint16(data[2:]) >= headerLength
}

// Decoder decodes IPFIX messages and keeps their templates.
type Decoder struct {
	opts   decode.Options
	store  *template.Store
	fields []template.Field // scratch for parsing templates, under the store lock
}

// New returns a Decoder configured by opts.
func New(opts decode.Options) *Decoder {
	return &Decoder{
		opts:  opts,
		store: template.NewStore(decode.FormatIPFIX, template.DialectIPFIX, opts.MaxTemplates),
	}
}

// Format returns decode.FormatIPFIX.
func (d *Decoder) Format() decode.Format { return decode.FormatIPFIX }

func errorf(r decode.Reason, format string, args ...any) error {
	return decode.Errorf(decode.FormatIPFIX, r, format, args...)
}

// Decode appends the flows of one IPFIX message to dst. Octets after the
// message length are ignored.
func (d *Decoder) Decode(dst []flow.Record, pkt *decode.Packet) ([]flow.Record, decode.Result, error) {
	data := pkt.Data
	res := decode.Result{
		Format:   decode.FormatIPFIX,
		Exporter: pkt.Src.Addr().Unmap(),
		SeqUnit:  decode.SeqFlows,
		SeqExact: true,
	}
	if len(data) < headerLength {
		return dst, res, errorf(decode.ReasonShort, "%d octets, header needs %d", len(data), headerLength)
	}
	if v := binary.BigEndian.Uint16(data); v != 10 {
		return dst, res, errorf(decode.ReasonVersion, "version %d", v)
	}
	length := int(binary.BigEndian.Uint16(data[2:]))
	if length < headerLength {
		return dst, res, errorf(decode.ReasonLength, "message length %d", length)
	}
	if length > len(data) {
		return dst, res, errorf(decode.ReasonShort, "message length %d, datagram %d", length, len(data))
	}
	data = data[:length]
	res.Sequence = binary.BigEndian.Uint32(data[8:])
	res.Domain = binary.BigEndian.Uint32(data[12:])

	ctx := template.Context{
		Format:        decode.FormatIPFIX,
		Exporter:      res.Exporter,
		Domain:        res.Domain,
		ExportMilli:   int64(binary.BigEndian.Uint32(data[4:])) * 1000,
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
	records := 0
	body := data[headerLength:]
	for len(body) > 0 {
		if len(body) < 4 {
			return dst[:start], res, errorf(decode.ReasonLength, "%d octets after the last set", len(body))
		}
		id := binary.BigEndian.Uint16(body)
		setLength := int(binary.BigEndian.Uint16(body[2:]))
		if setLength < 4 || setLength > len(body) {
			return dst[:start], res, errorf(decode.ReasonLength, "set %d length %d with %d octets left", id, setLength, len(body))
		}
		set := body[4:setLength]
		body = body[setLength:]
		switch {
		case id == templateSet || id == optionsTemplateSet:
			n, err := d.learn(key, &ctx, set, id == optionsTemplateSet)
			res.Templates += n
			if err != nil {
				return dst[:start], res, err
			}
		case id < firstDataSet:
			// Reserved set IDs: skip.
		default:
			t := ctx.Dom.Template(id)
			if t == nil {
				res.Skipped++
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
	res.SeqAdvance = uint32(records)
	return dst, res, nil
}

// learn parses a template set (options false) or an options template set
// and returns the number of template and withdrawal records in it.
func (d *Decoder) learn(key template.DomainKey, ctx *template.Context, set []byte, options bool) (int, error) {
	n := 0
	setID := uint16(templateSet)
	if options {
		setID = optionsTemplateSet
	}
	for len(set) >= 4 {
		id := binary.BigEndian.Uint16(set)
		fieldCount := int(binary.BigEndian.Uint16(set[2:]))
		if id == 0 && fieldCount == 0 {
			break // padding
		}
		if fieldCount == 0 {
			if err := d.withdraw(key, ctx, id, setID, options); err != nil {
				return n, err
			}
			set = set[4:]
			n++
			continue
		}
		if id < firstDataSet {
			return n, errorf(decode.ReasonTemplate, "template id %d", id)
		}
		if fieldCount > template.MaxFields {
			return n, errorf(decode.ReasonTemplate, "template %d: %d fields", id, fieldCount)
		}
		p := 4
		scopeCount := 0
		if options {
			if len(set) < 6 {
				return n, errorf(decode.ReasonTemplate, "options template %d truncated", id)
			}
			scopeCount = int(binary.BigEndian.Uint16(set[4:]))
			if scopeCount == 0 || scopeCount > fieldCount {
				return n, errorf(decode.ReasonTemplate, "options template %d: scope count %d of %d fields", id, scopeCount, fieldCount)
			}
			p = 6
		}
		d.fields = d.fields[:0]
		for range fieldCount {
			if p+4 > len(set) {
				return n, errorf(decode.ReasonTemplate, "template %d: fields overrun the set", id)
			}
			f := template.Field{
				ID:     binary.BigEndian.Uint16(set[p:]),
				Length: binary.BigEndian.Uint16(set[p+2:]),
			}
			p += 4
			if f.ID&enterpriseBit != 0 {
				if p+4 > len(set) {
					return n, errorf(decode.ReasonTemplate, "template %d: enterprise number overruns the set", id)
				}
				f.ID &^= enterpriseBit
				f.Enterprise = binary.BigEndian.Uint32(set[p:])
				p += 4
			}
			d.fields = append(d.fields, f)
		}
		set = set[p:]
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

// withdraw handles a withdrawal record: template ID equal to the set ID
// withdraws all templates of that kind, otherwise one template.
func (d *Decoder) withdraw(key template.DomainKey, ctx *template.Context, id, setID uint16, options bool) error {
	if id != setID && id < firstDataSet {
		return errorf(decode.ReasonTemplate, "withdrawal of template id %d", id)
	}
	dom := d.store.Domain(key)
	if dom == nil {
		return nil
	}
	if id == setID {
		d.store.WithdrawAll(dom, options)
	} else {
		d.store.Withdraw(dom, id)
	}
	ctx.Dom = dom
	return nil
}

// SaveState writes the learned templates and sampling state as JSON.
func (d *Decoder) SaveState(w io.Writer) error { return d.store.Save(w) }

// LoadState replaces the decoder's state with one written by SaveState.
func (d *Decoder) LoadState(r io.Reader) error { return d.store.Load(r) }

// StateGeneration increases whenever templates or sampling state change.
func (d *Decoder) StateGeneration() uint64 { return d.store.Generation() }

// TemplateCount returns the number of (options) templates known.
func (d *Decoder) TemplateCount() int { return d.store.TemplateCount() }

var (
	_ decode.Decoder  = (*Decoder)(nil)
	_ decode.Stateful = (*Decoder)(nil)
)
