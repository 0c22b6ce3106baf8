package gen

import (
	"encoding/binary"
	"net/netip"

	"github.com/flowscan/flowscan/internal/flow"
)

// Template IDs used by the v9 and IPFIX encoders.
const (
	TemplateIPv4    = 256 // data template for IPv4 flows
	TemplateIPv6    = 257 // data template for IPv6 flows
	TemplateOptions = 258 // options template announcing the sampling rate
)

// DefaultMaxDatagram is the default UDP payload budget of the encoders.
const DefaultMaxDatagram = 1400

// DefaultTemplateEvery is the default template refresh period in datagrams.
const DefaultTemplateEvery = 20

// Information element / field type numbers (IANA IPFIX registry; NetFlow v9
// uses the same numbers for these fields).
const (
	ieOctetDeltaCount         = 1
	iePacketDeltaCount        = 2
	ieProtocol                = 4
	ieTOS                     = 5
	ieTCPFlags                = 6
	ieSrcPort                 = 7
	ieSrcIPv4                 = 8
	ieSrcMaskV4               = 9
	ieInIf                    = 10
	ieDstPort                 = 11
	ieDstIPv4                 = 12
	ieDstMaskV4               = 13
	ieOutIf                   = 14
	ieNextHopIPv4             = 15
	ieSrcAS                   = 16
	ieDstAS                   = 17
	ieLastSwitched            = 21
	ieFirstSwitched           = 22
	ieSrcIPv6                 = 27
	ieDstIPv6                 = 28
	ieSrcMaskV6               = 29
	ieDstMaskV6               = 30
	ieSamplingInterval        = 34
	ieSamplingAlgorithm       = 35
	ieSrcMAC                  = 56
	ieSrcVLAN                 = 58
	ieDstVLAN                 = 59 // v9 DST_VLAN, IPFIX postVlanId
	ieNextHopIPv6             = 62
	ieDstMAC                  = 80
	ieObservationDomainID     = 149
	ieFlowStartMilliseconds   = 152
	ieFlowEndMilliseconds     = 153
	ieSamplingPacketInterval  = 305
	ieSamplingPacketSpace     = 306
	v9ScopeSystem             = 1
	v9SamplingDeterministic   = 1
	v9OptionsFlowSetID        = 1
	v9TemplateFlowSetID       = 0
	ipfixTemplateSetID        = 2
	ipfixOptionsTemplateSetID = 3
)

// field is one (type, length) template entry.
type field struct{ id, length uint16 }

// The data templates. Both formats share the layout; only the time fields
// differ (v9: 4-byte uptime FIRST/LAST_SWITCHED, IPFIX: 8-byte
// flowStart/EndMilliseconds). The order here is the order appendRecord
// writes.
func dataTemplate(v6, ipfix bool) []field {
	var f []field
	if v6 {
		f = append(f, field{ieSrcIPv6, 16}, field{ieDstIPv6, 16}, field{ieNextHopIPv6, 16})
	} else {
		f = append(f, field{ieSrcIPv4, 4}, field{ieDstIPv4, 4}, field{ieNextHopIPv4, 4})
	}
	f = append(f,
		field{ieInIf, 4}, field{ieOutIf, 4},
		field{ieOctetDeltaCount, 8}, field{iePacketDeltaCount, 8})
	if ipfix {
		f = append(f, field{ieFlowStartMilliseconds, 8}, field{ieFlowEndMilliseconds, 8})
	} else {
		f = append(f, field{ieFirstSwitched, 4}, field{ieLastSwitched, 4})
	}
	f = append(f,
		field{ieSrcPort, 2}, field{ieDstPort, 2},
		field{ieProtocol, 1}, field{ieTOS, 1}, field{ieTCPFlags, 1},
		field{ieSrcAS, 4}, field{ieDstAS, 4})
	if v6 {
		f = append(f, field{ieSrcMaskV6, 1}, field{ieDstMaskV6, 1})
	} else {
		f = append(f, field{ieSrcMaskV4, 1}, field{ieDstMaskV4, 1})
	}
	f = append(f,
		field{ieSrcVLAN, 2}, field{ieDstVLAN, 2},
		field{ieSrcMAC, 6}, field{ieDstMAC, 6})
	return f
}

// recordLen sums the field lengths of a template.
func recordLen(f []field) int {
	n := 0
	for _, x := range f {
		n += int(x.length)
	}
	return n
}

// Record sizes of the data templates.
var (
	v9Rec4    = recordLen(dataTemplate(false, false))
	v9Rec6    = recordLen(dataTemplate(true, false))
	ipfixRec4 = recordLen(dataTemplate(false, true))
	ipfixRec6 = recordLen(dataTemplate(true, true))
)

// putFields writes (type, length) pairs.
func putFields(b []byte, f []field) []byte {
	for _, x := range f {
		b = binary.BigEndian.AppendUint16(b, x.id)
		b = binary.BigEndian.AppendUint16(b, x.length)
	}
	return b
}

// putAddr writes a as 4 bytes (IPv4) or 16 bytes (IPv6); the zero Addr
// becomes all zeroes.
func putAddr(p []byte, a netip.Addr, v6 bool) []byte {
	if v6 {
		if a.IsValid() {
			v := a.As16()
			copy(p, v[:])
		} else {
			clear(p[:16])
		}
		return p[16:]
	}
	v4bytes(p[:4], a)
	return p[4:]
}

// putRecord writes one data record with the dataTemplate(v6, ipfix) layout
// into p (which must be long enough). For v9, uptime converts absolute
// Unix milliseconds to the exporter's uptime clock.
func putRecord(p []byte, r *flow.Record, v6, ipfix bool, hdrUptime uint32, hdrMilli int64) {
	be := binary.BigEndian
	p = putAddr(p, r.SrcAddr, v6)
	p = putAddr(p, r.DstAddr, v6)
	p = putAddr(p, r.NextHop, v6)
	be.PutUint32(p[0:], r.InIf)
	be.PutUint32(p[4:], r.OutIf)
	be.PutUint64(p[8:], r.Bytes)
	be.PutUint64(p[16:], r.Packets)
	if ipfix {
		be.PutUint64(p[24:], uint64(r.Start))
		be.PutUint64(p[32:], uint64(r.End))
		p = p[40:]
	} else {
		be.PutUint32(p[24:], uptimeAt(r.Start, hdrUptime, hdrMilli))
		be.PutUint32(p[28:], uptimeAt(r.End, hdrUptime, hdrMilli))
		p = p[32:]
	}
	be.PutUint16(p[0:], r.SrcPort)
	be.PutUint16(p[2:], r.DstPort)
	p[4] = r.Proto
	p[5] = r.TOS
	p[6] = r.TCPFlags
	be.PutUint32(p[7:], r.SrcAS)
	be.PutUint32(p[11:], r.DstAS)
	p[15] = r.SrcMask
	p[16] = r.DstMask
	be.PutUint16(p[17:], r.SrcVLAN)
	be.PutUint16(p[19:], r.DstVLAN)
	copy(p[21:27], r.SrcMAC[:])
	copy(p[27:33], r.DstMAC[:])
}

// countFamilies returns how many records are IPv4 and IPv6.
func countFamilies(recs []flow.Record) (n4, n6 int) {
	for i := range recs {
		if recs[i].IsIPv6() {
			n6++
		} else {
			n4++
		}
	}
	return n4, n6
}

// pad4 rounds n up to a multiple of 4.
func pad4(n int) int { return (n + 3) &^ 3 }
