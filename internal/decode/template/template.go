// Package template holds the machinery shared by the template-based export
// formats, NetFlow v9 (RFC 3954) and IPFIX (RFC 7011): field specifiers,
// templates compiled into flat lists of field operations, the per-exporter
// and per-domain template and sampling store with its limits, the record
// decoder that fills flow.Records without allocating, and state persistence.
//
// The format packages (netflow9, ipfix) parse their own headers and set
// framing and hand set bodies to a compiled Template.
package template

import (
	"github.com/flowscan/flowscan/internal/decode"
)

// VariableLength is the field length that marks an IPFIX variable-length
// field (RFC 7011 §7).
const VariableLength = 0xFFFF

// MaxFields is the largest field count accepted in one template; anything
// larger is treated as malformed.
const MaxFields = 512

// Field is one field specifier of a template.
type Field struct {
	// ID is the information element identifier (IPFIX, without the
	// enterprise bit) or the NetFlow v9 field type.
	ID uint16 `json:"id"`
	// Enterprise is the private enterprise number, 0 for IANA elements.
	Enterprise uint32 `json:"pen,omitempty"`
	// Length is the field length in octets, or VariableLength.
	Length uint16 `json:"len"`
}

// Dialect selects how field specifiers are interpreted.
type Dialect uint8

// Dialects.
const (
	// DialectIPFIX: scope fields are ordinary information elements and
	// length 0xFFFF marks a variable-length field.
	DialectIPFIX Dialect = iota
	// DialectNetFlow9: scope fields have their own type numbering and are
	// skipped; there are no variable-length fields.
	DialectNetFlow9
)

// Template is a compiled (options) template.
type Template struct {
	// ID is the template ID (>= 256).
	ID uint16
	// Options is true for options templates.
	Options bool
	// ScopeCount is the number of leading scope fields of an options
	// template.
	ScopeCount int
	// Fields are the field specifiers as received.
	Fields []Field

	dialect Dialect
	ops     []op
	// minLen is the smallest possible record length (fixed lengths plus
	// one octet per variable-length field); it is at least 1.
	minLen int
	// fixed is true when no field has a variable length; then every
	// record is exactly minLen octets.
	fixed bool
	// fixedOps are, for fixed templates, the operations that store
	// something (no kindSkip), each with its offset in the record.
	fixedOps []op
}

// op is one compiled field operation: read length octets (or a
// variable-length prefix when variable) and store them as kind. off is
// the field's offset in the record, set in fixedOps only.
type op struct {
	kind     kind
	variable bool
	length   uint16
	off      uint16
}

// Compile checks a template and compiles it into field operations. It
// returns a *decode.Error with ReasonTemplate for templates that are empty,
// too large or describe zero-length records.
func Compile(format decode.Format, dialect Dialect, id uint16, options bool, scopeCount int, fields []Field) (*Template, error) {
	if id < 256 {
		return nil, decode.Errorf(format, decode.ReasonTemplate, "template id %d below 256", id)
	}
	if len(fields) == 0 || len(fields) > MaxFields {
		return nil, decode.Errorf(format, decode.ReasonTemplate, "template %d has %d fields", id, len(fields))
	}
	if scopeCount < 0 || scopeCount > len(fields) {
		return nil, decode.Errorf(format, decode.ReasonTemplate, "template %d: scope count %d of %d fields", id, scopeCount, len(fields))
	}
	t := &Template{
		ID:         id,
		Options:    options,
		ScopeCount: scopeCount,
		Fields:     append([]Field(nil), fields...),
		dialect:    dialect,
		ops:        make([]op, len(fields)),
		fixed:      true,
	}
	for i, f := range fields {
		o := op{length: f.Length}
		if dialect == DialectIPFIX && f.Length == VariableLength {
			o.variable = true
			o.length = 0
			t.fixed = false
			t.minLen++
		} else {
			t.minLen += int(f.Length)
		}
		switch {
		case f.Enterprise != 0:
			o.kind = kindSkip
		case dialect == DialectNetFlow9 && i < scopeCount:
			o.kind = kindSkip
		default:
			o.kind = kindOf(f.ID, options)
		}
		t.ops[i] = o
	}
	if t.minLen == 0 {
		return nil, decode.Errorf(format, decode.ReasonTemplate, "template %d describes zero-length records", id)
	}
	if t.minLen > 0xFFFF {
		return nil, decode.Errorf(format, decode.ReasonTemplate, "template %d records longer than a datagram", id)
	}
	if t.fixed {
		off := 0
		for _, o := range t.ops {
			if o.kind != kindSkip {
				o.off = uint16(off)
				t.fixedOps = append(t.fixedOps, o)
			}
			off += int(o.length)
		}
	}
	return t, nil
}

// MinRecordLength returns the smallest length a record of t can have.
func (t *Template) MinRecordLength() int { return t.minLen }

// Same reports whether t and u describe the same template, so that a
// periodic template refresh does not count as a state change.
func (t *Template) Same(u *Template) bool {
	return t.ID == u.ID && t.sameAs(u.Options, u.ScopeCount, u.Fields)
}

func (t *Template) sameAs(options bool, scopeCount int, fields []Field) bool {
	if t.Options != options || t.ScopeCount != scopeCount || len(t.Fields) != len(fields) {
		return false
	}
	for i := range t.Fields {
		if t.Fields[i] != fields[i] {
			return false
		}
	}
	return true
}
