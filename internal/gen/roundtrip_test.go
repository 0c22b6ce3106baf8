package gen

import (
	"net/netip"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/decode"
	_ "github.com/flowscan/flowscan/internal/decode/ipfix"
	_ "github.com/flowscan/flowscan/internal/decode/netflow5"
	_ "github.com/flowscan/flowscan/internal/decode/netflow9"
	"github.com/flowscan/flowscan/internal/flow"
)

var rtExporter = netip.MustParseAddrPort("192.0.2.200:40000")

// decodeOne decodes one datagram and fails the test on error.
func decodeOne(t *testing.T, m *decode.Mux, b []byte, now time.Time) ([]flow.Record, decode.Result) {
	t.Helper()
	got, res, err := m.Decode(nil, &decode.Packet{Data: b, Src: rtExporter, Received: now})
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return got, res
}

// compare reports the first differing records.
func compare(t *testing.T, label string, got, want []flow.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: decoded %d records, want %d", label, len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: record %d\n got %+v\nwant %+v", label, i, got[i], want[i])
		}
	}
}

// familyOrder returns recs with IPv4 records first, as the template
// encoders lay them out.
func familyOrder(recs []flow.Record) []flow.Record {
	var out []flow.Record
	for _, v6 := range []bool{false, true} {
		for _, r := range recs {
			if r.IsIPv6() == v6 {
				out = append(out, r)
			}
		}
	}
	return out
}

// edgeRecords returns records at the edges of field ranges.
func edgeRecords(now time.Time, v6 bool) []flow.Record {
	r := refRecord()
	r.Start, r.End = now.UnixMilli()-5000, now.UnixMilli()-1000
	big := r
	big.InIf, big.OutIf = 0xfffff, 0xffffffff
	big.Packets, big.Bytes = 1<<40, 1<<50
	big.SrcAS, big.DstAS = 0xffffffff, 65535
	big.SrcPort, big.DstPort = 0xffff, 0
	big.TCPFlags, big.TOS = 0xff, 0xff
	big.SrcMask, big.DstMask = 32, 0
	big.SrcVLAN, big.DstVLAN = 4095, 1
	zero := flow.Record{SrcAddr: netip.IPv4Unspecified(), DstAddr: netip.IPv4Unspecified(), NextHop: netip.IPv4Unspecified(),
		Start: now.UnixMilli(), End: now.UnixMilli()}
	old := r
	old.Start = now.UnixMilli() - 20*86400*1000 // 20 days
	out := []flow.Record{r, big, zero, old}
	if v6 {
		r6 := r
		r6.SrcAddr = netip.MustParseAddr("2001:db8:1::1")
		r6.DstAddr = netip.MustParseAddr("2a00:1450:4001::200e")
		r6.NextHop = netip.MustParseAddr("fe80::1")
		r6.SrcMask, r6.DstMask = 64, 128
		out = append(out, r6)
	}
	return out
}

func TestNetFlow5RoundTrip(t *testing.T) {
	now := time.Unix(1700000000, 987654321)
	mix := NewMix(1, MixOptions{})
	tests := []struct {
		name string
		rate uint16
		recs []flow.Record
	}{
		{"edges", 0, edgeRecords(now, false)},
		{"mix", 0, nil},
		{"mix sampled", 512, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs := tc.recs
			if recs == nil {
				recs = make([]flow.Record, V5MaxRecords)
				for i := range recs {
					mix.Next(&recs[i], now)
				}
			}
			h := NewV5Header(now, now.Add(-49*24*time.Hour), 12345) // uptime near the 2^32 wrap
			h.EngineType, h.EngineID = 3, 9
			if tc.rate > 0 {
				h.SamplingMode, h.SamplingInterval = V5SamplingDeterministic, tc.rate
			}
			b := AppendNetFlow5(nil, h, recs)
			got, res := decodeOne(t, decode.NewMux(decode.Options{}), b, now)
			if res.Sequence != 12345 || res.Domain != 3<<8|9 || res.Flows != len(recs) {
				t.Errorf("result %+v", res)
			}
			want := make([]flow.Record, len(recs))
			for i, r := range recs {
				w := flow.Record{
					Exporter: rtExporter.Addr(), Domain: 3<<8 | 9,
					SrcAddr: r.SrcAddr, DstAddr: r.DstAddr, NextHop: r.NextHop,
					Start: r.Start, End: r.End,
					Packets: uint64(sat32(r.Packets)), Bytes: uint64(sat32(r.Bytes)),
					InIf: r.InIf & 0xffff, OutIf: r.OutIf & 0xffff,
					SrcAS: uint32(as16(r.SrcAS)), DstAS: uint32(as16(r.DstAS)),
					SrcPort: r.SrcPort, DstPort: r.DstPort,
					Proto: r.Proto, TOS: r.TOS, TCPFlags: r.TCPFlags,
					SrcMask: r.SrcMask, DstMask: r.DstMask,
				}
				// Every decoder reports an all-zero next hop as unknown.
				if w.NextHop.IsUnspecified() {
					w.NextHop = netip.Addr{}
				}
				w.ApplySampling(uint32(tc.rate))
				want[i] = w
			}
			compare(t, tc.name, got, want)
		})
	}
}

// expectTemplated is what a v9 or IPFIX decoder should return for recs
// (IPv4 records first, as the encoders lay them out).
func expectTemplated(recs []flow.Record, domain, rate uint32) []flow.Record {
	want := familyOrder(recs)
	for i := range want {
		want[i].Exporter = rtExporter.Addr()
		want[i].Domain = domain
		// Every decoder reports an all-zero next hop as unknown.
		if want[i].NextHop.IsUnspecified() {
			want[i].NextHop = netip.Addr{}
		}
		want[i].ApplySampling(rate)
	}
	return want
}

func TestNetFlow9RoundTrip(t *testing.T) {
	testTemplatedRoundTrip(t, decode.FormatNetFlow9, func(domain, rate uint32, every int) func(time.Time, []flow.Record) []byte {
		e := &V9Encoder{SourceID: domain, SamplingInterval: rate, TemplateEvery: every}
		return func(now time.Time, recs []flow.Record) []byte { return e.Append(nil, now, recs) }
	})
}

func TestIPFIXRoundTrip(t *testing.T) {
	testTemplatedRoundTrip(t, decode.FormatIPFIX, func(domain, rate uint32, every int) func(time.Time, []flow.Record) []byte {
		e := &IPFIXEncoder{ObservationDomain: domain, SamplingInterval: rate, TemplateEvery: every}
		return func(now time.Time, recs []flow.Record) []byte { return e.Append(nil, now, recs) }
	})
}

// testTemplatedRoundTrip runs the shared v9/IPFIX round trip: several
// datagrams from two domains, with and without sampling, checking every
// field and the sequence numbers.
func testTemplatedRoundTrip(t *testing.T, format decode.Format, newEnc func(domain, rate uint32, every int) func(time.Time, []flow.Record) []byte) {
	now := time.Unix(1700000000, 250_000_000)
	tests := []struct {
		name string
		rate uint32
		v6   float64
	}{
		{"unsampled mixed", 0, 0.3},
		{"sampled 1:1000 v4", 1000, 0},
		{"sampled 1:64 v6 only", 64, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mux := decode.NewMux(decode.Options{})
			mix := NewMix(7, MixOptions{IPv6Share: tc.v6})
			encs := map[uint32]func(time.Time, []flow.Record) []byte{
				5: newEnc(5, tc.rate, 3),
				6: newEnc(6, tc.rate, 3),
			}
			lastSeq := map[uint32]uint32{}
			lastAdv := map[uint32]uint32{}
			for i := 0; i < 8; i++ {
				domain := uint32(5 + i%2)
				var recs []flow.Record
				if i == 0 {
					recs = edgeRecords(now, tc.v6 > 0)
				} else {
					recs = make([]flow.Record, 1+i)
					for j := range recs {
						mix.Next(&recs[j], now)
					}
				}
				b := encs[domain](now, recs)
				if len(b) > DefaultMaxDatagram {
					t.Fatalf("datagram %d bytes", len(b))
				}
				got, res := decodeOne(t, mux, b, now)
				if res.Format != format || res.Domain != domain || res.Skipped != 0 {
					t.Fatalf("datagram %d: result %+v", i, res)
				}
				// v9 counts datagrams; IPFIX counts data records, and
				// options data records are data records too (RFC 7011).
				if prev, ok := lastSeq[domain]; ok && res.Sequence != prev+lastAdv[domain] {
					t.Errorf("datagram %d: sequence %d after %d+%d", i, res.Sequence, prev, lastAdv[domain])
				}
				lastSeq[domain] = res.Sequence
				lastAdv[domain] = 1
				if format == decode.FormatIPFIX {
					lastAdv[domain] = uint32(len(recs))
					if tc.rate > 1 && i/2%3 == 0 {
						lastAdv[domain]++ // the options record went with the templates
					}
				}
				if !res.SeqExact || res.SeqAdvance != lastAdv[domain] {
					t.Errorf("datagram %d: sequence advance %d (exact %v), want %d", i, res.SeqAdvance, res.SeqExact, lastAdv[domain])
				}
				compare(t, tc.name, got, expectTemplated(recs, domain, tc.rate))
			}
		})
	}
}
