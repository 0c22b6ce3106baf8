package gen

import (
	"encoding/binary"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
)

// IPFIXHeaderLen is the size of the IPFIX message header.
const IPFIXHeaderLen = 16

// ipfixTemplates is the template Set (IPv4 and IPv6 data templates).
var ipfixTemplates = func() []byte {
	t4, t6 := dataTemplate(false, true), dataTemplate(true, true)
	b := make([]byte, 0, 64)
	b = binary.BigEndian.AppendUint16(b, ipfixTemplateSetID)
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

// IPFIX options template: scope observationDomainId, then samplingInterval
// (34, deprecated but widely read), samplingPacketInterval (305) = 1 and
// samplingPacketSpace (306) = N-1, which together say "1 in N" in PSAMP
// terms (RFC 5477).
var (
	ipfixOptScope  = []field{{ieObservationDomainID, 4}}
	ipfixOptFields = []field{{ieSamplingInterval, 4}, {ieSamplingPacketInterval, 4}, {ieSamplingPacketSpace, 4}}
	ipfixOptRecLen = recordLen(ipfixOptScope) + recordLen(ipfixOptFields)
	// ipfixOptTemplate is the options template Set.
	ipfixOptTemplate = func() []byte {
		n := len(ipfixOptScope) + len(ipfixOptFields)
		b := make([]byte, 0, 4+6+4*n)
		b = binary.BigEndian.AppendUint16(b, ipfixOptionsTemplateSetID)
		b = binary.BigEndian.AppendUint16(b, uint16(4+6+4*n))
		b = binary.BigEndian.AppendUint16(b, TemplateOptions)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
		b = binary.BigEndian.AppendUint16(b, uint16(len(ipfixOptScope)))
		b = putFields(b, ipfixOptScope)
		return putFields(b, ipfixOptFields)
	}()
	ipfixOptDataLen = 4 + ipfixOptRecLen
)

// IPFIXEncoder builds IPFIX (RFC 7011) messages. The template Set (one
// IPv4 and one IPv6 data template, with flowStartMilliseconds and
// flowEndMilliseconds) goes in the first message and then every
// TemplateEvery messages; when SamplingInterval > 1 an options template
// and an options data record announcing it go along. The sequence number
// counts the data records (flows and options records) sent before the
// message. The zero value is ready to use.
type IPFIXEncoder struct {
	// ObservationDomain is the observation domain ID.
	ObservationDomain uint32
	// TemplateEvery is the template refresh period in messages
	// (0 means DefaultTemplateEvery).
	TemplateEvery int
	// SamplingInterval is the announced 1-in-N packet sampling rate
	// (0 or 1: none announced).
	SamplingInterval uint32
	// MaxDatagram is the payload budget used by MaxRecords
	// (0 means DefaultMaxDatagram).
	MaxDatagram int

	messages uint64 // messages built so far
	seq      uint32 // data records sent so far
}

// Sequence returns the sequence number the next message will carry.
func (e *IPFIXEncoder) Sequence() uint32 { return e.seq }

// templatesDue reports whether the next message carries templates.
func (e *IPFIXEncoder) templatesDue() bool {
	every := e.TemplateEvery
	if every <= 0 {
		every = DefaultTemplateEvery
	}
	return e.messages%uint64(every) == 0
}

// Size returns the length of the next message if it held n4 IPv4 and n6
// IPv6 records.
func (e *IPFIXEncoder) Size(n4, n6 int) int {
	n := IPFIXHeaderLen
	if e.templatesDue() {
		n += len(ipfixTemplates)
		if e.SamplingInterval > 1 {
			n += len(ipfixOptTemplate) + ipfixOptDataLen
		}
	}
	if n4 > 0 {
		n += 4 + n4*ipfixRec4
	}
	if n6 > 0 {
		n += 4 + n6*ipfixRec6
	}
	return n
}

// MaxRecords returns how many records always fit in MaxDatagram, whatever
// their address family and whether templates are due.
func (e *IPFIXEncoder) MaxRecords() int {
	budget := e.MaxDatagram
	if budget <= 0 {
		budget = DefaultMaxDatagram
	}
	fixed := IPFIXHeaderLen + len(ipfixTemplates) + len(ipfixOptTemplate) + ipfixOptDataLen + 4 + 4
	return max(0, (budget-fixed)/ipfixRec6)
}

// Append appends one IPFIX message holding recs (IPv4 records in one data
// Set, then IPv6 records in another) to dst. The caller keeps the message
// within its budget with Size or MaxRecords.
func (e *IPFIXEncoder) Append(dst []byte, now time.Time, recs []flow.Record) []byte {
	n4, n6 := countFamilies(recs)
	size := e.Size(n4, n6)
	start := len(dst)
	dst = growBytes(dst, size)
	b := dst[start:]
	be := binary.BigEndian
	be.PutUint16(b[0:], 10)
	be.PutUint16(b[2:], uint16(size))
	be.PutUint32(b[4:], uint32(now.Unix()))
	be.PutUint32(b[8:], e.seq)
	be.PutUint32(b[12:], e.ObservationDomain)
	off := IPFIXHeaderLen
	if e.templatesDue() {
		off += copy(b[off:], ipfixTemplates)
		if e.SamplingInterval > 1 {
			off += copy(b[off:], ipfixOptTemplate)
			be.PutUint16(b[off:], TemplateOptions)
			be.PutUint16(b[off+2:], uint16(ipfixOptDataLen))
			be.PutUint32(b[off+4:], e.ObservationDomain)
			be.PutUint32(b[off+8:], e.SamplingInterval)
			be.PutUint32(b[off+12:], 1)
			be.PutUint32(b[off+16:], e.SamplingInterval-1)
			off += ipfixOptDataLen
			e.seq++
		}
	}
	for _, fam := range [2]struct {
		n   int
		v6  bool
		id  uint16
		rec int
	}{{n4, false, TemplateIPv4, ipfixRec4}, {n6, true, TemplateIPv6, ipfixRec6}} {
		if fam.n == 0 {
			continue
		}
		setLen := 4 + fam.n*fam.rec
		be.PutUint16(b[off:], fam.id)
		be.PutUint16(b[off+2:], uint16(setLen))
		p := off + 4
		for i := range recs {
			if recs[i].IsIPv6() != fam.v6 {
				continue
			}
			putRecord(b[p:p+fam.rec], &recs[i], fam.v6, true, 0, 0)
			p += fam.rec
		}
		off += setLen
	}
	e.seq += uint32(n4 + n6)
	e.messages++
	return dst
}
