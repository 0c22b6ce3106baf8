package gen

import (
	"encoding/binary"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
)

// V9HeaderLen is the size of the NetFlow v9 packet header.
const V9HeaderLen = 20

// v9Templates is the template FlowSet (IPv4 and IPv6 data templates).
var v9Templates = func() []byte {
	t4, t6 := dataTemplate(false, false), dataTemplate(true, false)
	b := make([]byte, 0, 64)
	b = binary.BigEndian.AppendUint16(b, v9TemplateFlowSetID)
	b = binary.BigEndian.AppendUint16(b, uint16(4+4+4*len(t4)+4+4*len(t6)))
	for _, t := range []struct {
		id uint16
		f  []field
	}{{TemplateIPv4, t4}, {TemplateIPv6, t6}} {
		b = binary.BigEndian.AppendUint16(b, t.id)
		b = binary.BigEndian.AppendUint16(b, uint16(len(t.f)))
		b = putFields(b, t.f)
	}
	return b
}()

// v9 options template: scope System (4 bytes), SAMPLING_INTERVAL (4),
// SAMPLING_ALGORITHM (1).
var (
	v9OptScope  = []field{{v9ScopeSystem, 4}}
	v9OptFields = []field{{ieSamplingInterval, 4}, {ieSamplingAlgorithm, 1}}
	v9OptRecLen = recordLen(v9OptScope) + recordLen(v9OptFields)
	// v9OptTemplate is the options template FlowSet, padded to 4 bytes.
	v9OptTemplate = func() []byte {
		body := 4 + 6 + 4*len(v9OptScope) + 4*len(v9OptFields)
		b := make([]byte, 0, pad4(body))
		b = binary.BigEndian.AppendUint16(b, v9OptionsFlowSetID)
		b = binary.BigEndian.AppendUint16(b, uint16(pad4(body)))
		b = binary.BigEndian.AppendUint16(b, TemplateOptions)
		b = binary.BigEndian.AppendUint16(b, uint16(4*len(v9OptScope)))
		b = binary.BigEndian.AppendUint16(b, uint16(4*len(v9OptFields)))
		b = putFields(b, v9OptScope)
		b = putFields(b, v9OptFields)
		return append(b, make([]byte, pad4(body)-body)...)
	}()
	v9OptDataLen = pad4(4 + v9OptRecLen)
)

// V9Encoder builds NetFlow v9 (RFC 3954) export packets. The template
// FlowSet (one IPv4 and one IPv6 data template) goes in the first packet
// and then every TemplateEvery packets; when SamplingInterval > 1 an
// options template and an options data record announcing it go along.
// The zero value is ready to use; set fields before the first Append.
type V9Encoder struct {
	// SourceID is the exporter's source ID (observation domain).
	SourceID uint32
	// TemplateEvery is the template refresh period in packets
	// (0 means DefaultTemplateEvery).
	TemplateEvery int
	// SamplingInterval is the announced 1-in-N packet sampling rate
	// (0 or 1: none announced).
	SamplingInterval uint32
	// MaxDatagram is the payload budget used by Size checks and
	// MaxRecords (0 means DefaultMaxDatagram).
	MaxDatagram int
	// Boot is the exporter's boot time; zero means one day before the
	// first Append.
	Boot time.Time

	packets uint32 // packets built so far; also the next sequence number
}

// Sequence returns the sequence number the next packet will carry.
func (e *V9Encoder) Sequence() uint32 { return e.packets }

// templatesDue reports whether the next packet carries templates.
func (e *V9Encoder) templatesDue() bool {
	every := e.TemplateEvery
	if every <= 0 {
		every = DefaultTemplateEvery
	}
	return e.packets%uint32(every) == 0
}

// Size returns the length of the next packet if it held n4 IPv4 and n6
// IPv6 records.
func (e *V9Encoder) Size(n4, n6 int) int {
	n := V9HeaderLen
	if e.templatesDue() {
		n += len(v9Templates)
		if e.SamplingInterval > 1 {
			n += len(v9OptTemplate) + v9OptDataLen
		}
	}
	if n4 > 0 {
		n += pad4(4 + n4*v9Rec4)
	}
	if n6 > 0 {
		n += pad4(4 + n6*v9Rec6)
	}
	return n
}

// MaxRecords returns how many records always fit in MaxDatagram, whatever
// their address family and whether templates are due.
func (e *V9Encoder) MaxRecords() int {
	budget := e.MaxDatagram
	if budget <= 0 {
		budget = DefaultMaxDatagram
	}
	fixed := V9HeaderLen + len(v9Templates) + len(v9OptTemplate) + v9OptDataLen + 4 + 4 + 3 + 3
	return max(0, (budget-fixed)/v9Rec6)
}

// Append appends one export packet holding recs (IPv4 records in one data
// FlowSet, then IPv6 records in another) to dst. The caller keeps the
// packet within its budget with Size or MaxRecords.
func (e *V9Encoder) Append(dst []byte, now time.Time, recs []flow.Record) []byte {
	if e.Boot.IsZero() {
		e.Boot = now.Add(-24 * time.Hour)
	}
	n4, n6 := countFamilies(recs)
	size := e.Size(n4, n6)
	start := len(dst)
	dst = growBytes(dst, size)
	b := dst[start:]
	be := binary.BigEndian
	secs := now.Unix()
	uptime := uint32(time.Unix(secs, 0).Sub(e.Boot).Milliseconds())
	hdrMilli := secs * 1000
	count := n4 + n6
	off := V9HeaderLen
	if e.templatesDue() {
		off += copy(b[off:], v9Templates)
		count += 2
		if e.SamplingInterval > 1 {
			off += copy(b[off:], v9OptTemplate)
			be.PutUint16(b[off:], TemplateOptions)
			be.PutUint16(b[off+2:], uint16(v9OptDataLen))
			be.PutUint32(b[off+4:], e.SourceID)
			be.PutUint32(b[off+8:], e.SamplingInterval)
			b[off+12] = v9SamplingDeterministic
			clear(b[off+4+v9OptRecLen : off+v9OptDataLen])
			off += v9OptDataLen
			count += 2
		}
	}
	for _, fam := range [2]struct {
		n   int
		v6  bool
		id  uint16
		rec int
	}{{n4, false, TemplateIPv4, v9Rec4}, {n6, true, TemplateIPv6, v9Rec6}} {
		if fam.n == 0 {
			continue
		}
		setLen := pad4(4 + fam.n*fam.rec)
		be.PutUint16(b[off:], fam.id)
		be.PutUint16(b[off+2:], uint16(setLen))
		p := off + 4
		for i := range recs {
			if recs[i].IsIPv6() != fam.v6 {
				continue
			}
			putRecord(b[p:p+fam.rec], &recs[i], fam.v6, false, uptime, hdrMilli)
			p += fam.rec
		}
		clear(b[p : off+setLen])
		off += setLen
	}
	be.PutUint16(b[0:], 9)
	be.PutUint16(b[2:], uint16(count))
	be.PutUint32(b[4:], uptime)
	be.PutUint32(b[8:], uint32(secs))
	be.PutUint32(b[12:], e.packets)
	be.PutUint32(b[16:], e.SourceID)
	e.packets++
	return dst
}
