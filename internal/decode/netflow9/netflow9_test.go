package netflow9

import (
	"bytes"
	"errors"
	"flag"
	"net/netip"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/decode/template/templatetest"
	"github.com/flowscan/flowscan/internal/flow"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

const (
	exportSecs = 1700000000 // 2023-11-14T22:13:20Z
	sysUptime  = 3_600_000  // one hour
)

var (
	exporter = netip.MustParseAddrPort("192.0.2.1:2055")
	received = time.Unix(exportSecs, 500_000_000)
)

type field struct{ id, length uint16 }

// datagram builds a v9 packet from flowsets.
func datagram(count uint16, seq, source uint32, flowsets ...[]byte) []byte {
	return datagramAt(count, sysUptime, exportSecs, seq, source, flowsets...)
}

func datagramAt(count uint16, uptime, secs, seq, source uint32, flowsets ...[]byte) []byte {
	b := &templatetest.Buf{}
	b.U16(9).U16(count).U32(uptime).U32(secs).U32(seq).U32(source)
	for _, fs := range flowsets {
		b.Raw(fs...)
	}
	return b.B
}

// flowset wraps a body into a flowset, padded to a multiple of 4.
func flowset(id uint16, body []byte) []byte {
	b := &templatetest.Buf{}
	b.U16(id).U16(0).Raw(body...)
	for b.Len()%4 != 0 {
		b.U8(0)
	}
	b.PutU16(2, uint16(b.Len()))
	return b.B
}

func templateRecord(id uint16, fields ...field) []byte {
	b := &templatetest.Buf{}
	b.U16(id).U16(uint16(len(fields)))
	for _, f := range fields {
		b.U16(f.id).U16(f.length)
	}
	return b.B
}

func optionsTemplateRecord(id uint16, scope []field, opts ...field) []byte {
	b := &templatetest.Buf{}
	b.U16(id).U16(uint16(4 * len(scope))).U16(uint16(4 * len(opts)))
	for _, f := range append(scope, opts...) {
		b.U16(f.id).U16(f.length)
	}
	return b.B
}

var v4Fields = []field{
	{8, 4}, {12, 4}, {15, 4}, {7, 2}, {11, 2}, {4, 1}, {5, 1}, {6, 1},
	{10, 2}, {14, 2}, {1, 4}, {2, 4}, {22, 4}, {21, 4}, {16, 2}, {17, 2},
	{9, 1}, {13, 1}, {56, 6}, {80, 6}, {58, 2}, {59, 2},
}

func v4Record(src, dst string, sport, dport uint16, bytes, packets uint32) []byte {
	b := &templatetest.Buf{}
	b.Addr(src).Addr(dst).Addr("192.0.2.254").U16(sport).U16(dport).U8(6).U8(0x10).U8(0x1b)
	b.U16(3).U16(7).U32(bytes).U32(packets).U32(sysUptime - 10_000).U32(sysUptime - 2_000)
	b.U16(64500).U16(64501).U8(24).U8(16).MAC("00:11:22:33:44:55").MAC("66:77:88:99:aa:bb").U16(10).U16(20)
	return b.B
}

func v4Template() []byte { return flowset(0, templateRecord(256, v4Fields...)) }

func v4Data(recs ...[]byte) []byte { return flowset(256, bytes.Join(recs, nil)) }

var v6Fields = []field{
	{27, 16}, {28, 16}, {62, 16}, {7, 2}, {11, 2}, {4, 1}, {29, 1}, {30, 1},
	{10, 4}, {14, 4}, {1, 8}, {2, 8}, {22, 4}, {21, 4},
}

func v6Record() []byte {
	b := &templatetest.Buf{}
	b.Addr("2001:db8::1").Addr("2001:db8:1::2").Addr("fe80::1").U16(443).U16(50000).U8(6).U8(48).U8(64)
	b.U32(100000).U32(200000).U64(1 << 33).U64(1 << 20).U32(sysUptime - 60_000).U32(sysUptime)
	return b.B
}

type step struct {
	data []byte
	src  netip.AddrPort // zero means exporter
}

type goldenStep struct {
	Result  decode.Result               `json:"result"`
	Error   string                      `json:"error,omitempty"`
	Records []templatetest.GoldenRecord `json:"records"`
}

func run(t *testing.T, d *Decoder, steps ...step) ([]goldenStep, [][]flow.Record, []error) {
	t.Helper()
	var out []goldenStep
	var recs [][]flow.Record
	var errs []error
	for _, s := range steps {
		src := s.src
		if !src.IsValid() {
			src = exporter
		}
		got, res, err := d.Decode(nil, &decode.Packet{Data: s.data, Src: src, Received: received})
		g := goldenStep{Result: res, Records: templatetest.Golden(got)}
		if err != nil {
			g.Error = err.Error()
		}
		out = append(out, g)
		recs = append(recs, got)
		errs = append(errs, err)
	}
	return out, recs, errs
}

func samplingOptions(rate uint32) []step {
	tmpl := flowset(1, optionsTemplateRecord(300, []field{{1, 4}}, field{34, 4}, field{35, 1}))
	data := flowset(300, (&templatetest.Buf{}).U32(0).U32(rate).U8(2).B)
	return []step{{data: datagram(2, 1, 0, tmpl, data)}}
}

func samplerOptions() []byte {
	tmpl := flowset(1, optionsTemplateRecord(301, []field{{1, 4}}, field{48, 1}, field{49, 1}, field{50, 4}))
	data := flowset(301, (&templatetest.Buf{}).
		U32(0).U8(1).U8(2).U32(100).
		U32(0).U8(2).U8(2).U32(1000).B)
	return datagram(3, 2, 0, tmpl, data)
}

func TestGolden(t *testing.T) {
	samplerFields := append(append([]field{}, v4Fields...), field{48, 1})
	withSampler := func(id uint8) []byte {
		return append(v4Record("10.0.0.1", "10.0.0.2", 1, 2, 1000, 10), id)
	}
	cases := []struct {
		name  string
		opts  decode.Options
		steps []step
		check func(t *testing.T, recs [][]flow.Record, res []goldenStep, errs []error)
	}{
		{
			name: "template_and_data",
			steps: []step{{data: datagram(3, 7, 42, v4Template(),
				v4Data(v4Record("10.0.0.1", "10.0.0.2", 12345, 80, 1500, 3), v4Record("10.0.0.3", "198.51.100.7", 53, 5353, 80, 1)))}},
			check: func(t *testing.T, recs [][]flow.Record, res []goldenStep, errs []error) {
				r := recs[0][0]
				if r.SrcAddr != netip.MustParseAddr("10.0.0.1") || r.DstPort != 80 || r.Bytes != 1500 || r.Packets != 3 {
					t.Errorf("record %+v", r)
				}
				if want := int64(exportSecs)*1000 - 10_000; r.Start != want || r.End != want+8_000 {
					t.Errorf("times %d..%d, want %d..%d", r.Start, r.End, want, want+8000)
				}
				if r.Domain != 42 || r.Exporter != exporter.Addr() || r.SrcAS != 64500 || r.InIf != 3 || r.OutIf != 7 {
					t.Errorf("ids %+v", r)
				}
				if r.SrcMAC != [6]byte{0, 0x11, 0x22, 0x33, 0x44, 0x55} || r.DstMAC[0] != 0x66 || r.SrcVLAN != 10 || r.DstVLAN != 20 {
					t.Errorf("l2 %+v", r)
				}
				if r.NextHop != netip.MustParseAddr("192.0.2.254") || r.TCPFlags != 0x1b || r.SrcMask != 24 {
					t.Errorf("misc %+v", r)
				}
				if g := res[0].Result; g.Templates != 1 || g.Flows != 2 || g.Sequence != 7 || g.SeqUnit != decode.SeqDatagrams || g.SeqAdvance != 1 || !g.SeqExact {
					t.Errorf("result %+v", g)
				}
			},
		},
		{
			name: "data_before_template",
			steps: []step{
				{data: datagram(2, 1, 0, v4Data(v4Record("10.0.0.1", "10.0.0.2", 1, 2, 3, 4), v4Record("10.0.0.1", "10.0.0.2", 1, 2, 3, 4)))},
				{data: datagram(1, 2, 0, v4Template())},
				{data: datagram(1, 3, 0, v4Data(v4Record("10.0.0.1", "10.0.0.2", 1, 2, 3, 4)))},
			},
			check: func(t *testing.T, recs [][]flow.Record, res []goldenStep, errs []error) {
				if g := res[0].Result; g.SeqExact || g.Skipped != 2 || g.Flows != 0 {
					t.Errorf("first result %+v", g)
				}
				if g := res[2].Result; !g.SeqExact || g.Flows != 1 {
					t.Errorf("third result %+v", g)
				}
			},
		},
		{
			name:  "other_source_id_needs_own_template",
			steps: []step{{data: datagram(1, 1, 0, v4Template())}, {data: datagram(1, 2, 1, v4Data(v4Record("10.0.0.1", "10.0.0.2", 1, 2, 3, 4)))}},
			check: func(t *testing.T, recs [][]flow.Record, res []goldenStep, errs []error) {
				if g := res[1].Result; g.Flows != 0 || g.SeqExact {
					t.Errorf("result %+v", g)
				}
			},
		},
		{
			name:  "ipv6",
			steps: []step{{data: datagram(2, 1, 0, flowset(0, templateRecord(260, v6Fields...)), flowset(260, v6Record()))}},
			check: func(t *testing.T, recs [][]flow.Record, res []goldenStep, errs []error) {
				r := recs[0][0]
				if !r.IsIPv6() || r.DstAddr != netip.MustParseAddr("2001:db8:1::2") || r.Bytes != 1<<33 || r.SrcMask != 48 || r.DstMask != 64 || r.NextHop != netip.MustParseAddr("fe80::1") || r.InIf != 100000 {
					t.Errorf("record %+v", r)
				}
			},
		},
		{
			name: "reduced_size",
			steps: []step{{data: datagram(2, 1, 0,
				flowset(0, templateRecord(270, field{8, 4}, field{12, 4}, field{10, 1}, field{14, 3}, field{1, 3}, field{2, 1}, field{16, 4}, field{18, 4})),
				flowset(270, (&templatetest.Buf{}).Addr("10.1.1.1").Addr("10.2.2.2").U8(9).Raw(0x01, 0x00, 0x00).Raw(0x01, 0x02, 0x03).U8(7).U32(4200000000).Addr("203.0.113.9").B))}},
			check: func(t *testing.T, recs [][]flow.Record, res []goldenStep, errs []error) {
				r := recs[0][0]
				if r.InIf != 9 || r.OutIf != 0x10000 || r.Bytes != 0x010203 || r.Packets != 7 || r.SrcAS != 4200000000 || r.NextHop != netip.MustParseAddr("203.0.113.9") {
					t.Errorf("record %+v", r)
				}
				if r.Start != received.UnixMilli() || r.End != r.Start {
					t.Errorf("no flow times should mean arrival time, got %d..%d", r.Start, r.End)
				}
			},
		},
		{
			name: "uptime_wrap",
			steps: []step{{data: datagramAt(2, 5_000, exportSecs, 1, 0,
				flowset(0, templateRecord(280, field{8, 4}, field{12, 4}, field{22, 4}, field{21, 4})),
				flowset(280, (&templatetest.Buf{}).Addr("10.1.1.1").Addr("10.2.2.2").U32(0xFFFFFFFF-4_999).U32(1_000).B))}},
			check: func(t *testing.T, recs [][]flow.Record, res []goldenStep, errs []error) {
				r := recs[0][0]
				if want := int64(exportSecs)*1000 - 10_000; r.Start != want || r.End != int64(exportSecs)*1000-4_000 {
					t.Errorf("times %d..%d, want start %d", r.Start, r.End, want)
				}
			},
		},
		{
			name:  "sampling_interval_options",
			steps: append(samplingOptions(100), step{data: datagram(2, 2, 0, v4Template(), v4Data(v4Record("10.0.0.1", "10.0.0.2", 1, 2, 1000, 10)))}),
			check: func(t *testing.T, recs [][]flow.Record, res []goldenStep, errs []error) {
				if res[0].Result.Flows != 0 || res[0].Result.Templates != 1 {
					t.Errorf("options datagram %+v", res[0].Result)
				}
				r := recs[1][0]
				if r.SamplingRate != 100 || r.Bytes != 100_000 || r.Packets != 1000 {
					t.Errorf("record %+v", r)
				}
			},
		},
		{
			name: "sampler_id",
			steps: []step{
				{data: samplerOptions()},
				{data: datagram(3, 3, 0, flowset(0, templateRecord(257, samplerFields...)), flowset(257, bytes.Join([][]byte{withSampler(1), withSampler(2), withSampler(9)}, nil)))},
			},
			check: func(t *testing.T, recs [][]flow.Record, res []goldenStep, errs []error) {
				rs := recs[1]
				if len(rs) != 3 || rs[0].SamplingRate != 100 || rs[1].SamplingRate != 1000 || rs[1].Bytes != 1_000_000 {
					t.Errorf("records %+v", rs)
				}
				// Unknown sampler: the last announced rate.
				if rs[2].SamplingRate != 1000 {
					t.Errorf("unknown sampler rate %d", rs[2].SamplingRate)
				}
			},
		},
		{
			name:  "sampling_override",
			opts:  decode.Options{SamplingOverride: func(netip.Addr) (uint32, bool) { return 7, true }},
			steps: append(samplingOptions(100), step{data: datagram(2, 2, 0, v4Template(), v4Data(v4Record("10.0.0.1", "10.0.0.2", 1, 2, 1000, 10)))}),
			check: func(t *testing.T, recs [][]flow.Record, res []goldenStep, errs []error) {
				if r := recs[1][0]; r.SamplingRate != 7 || r.Bytes != 7000 {
					t.Errorf("record %+v", r)
				}
			},
		},
		{
			name: "sampling_interval_in_record",
			steps: []step{{data: datagram(2, 1, 0,
				flowset(0, templateRecord(290, field{8, 4}, field{12, 4}, field{1, 4}, field{2, 4}, field{34, 4})),
				flowset(290, (&templatetest.Buf{}).Addr("10.1.1.1").Addr("10.2.2.2").U32(10).U32(1).U32(512).B))}},
			check: func(t *testing.T, recs [][]flow.Record, res []goldenStep, errs []error) {
				if r := recs[0][0]; r.SamplingRate != 512 || r.Bytes != 5120 {
					t.Errorf("record %+v", r)
				}
			},
		},
		{
			name: "bad_flowset_length",
			steps: []step{{data: func() []byte {
				b := datagram(1, 1, 0, v4Template())
				b[20+3] = 200
				return b
			}()}},
			check: func(t *testing.T, recs [][]flow.Record, res []goldenStep, errs []error) {
				if decode.ReasonOf(errs[0]) != decode.ReasonLength {
					t.Errorf("error %v", errs[0])
				}
			},
		},
	}
	all := map[string][]goldenStep{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := New(c.opts)
			res, recs, errs := run(t, d, c.steps...)
			for i, err := range errs {
				if err != nil && c.name != "bad_flowset_length" {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			c.check(t, recs, res, errs)
			all[c.name] = res
		})
	}
	templatetest.CheckGolden(t, "decode", all, *update)
}

func TestErrors(t *testing.T) {
	tooMany := make([]field, 600)
	for i := range tooMany {
		tooMany[i] = field{1, 4}
	}
	cases := []struct {
		name   string
		data   []byte
		reason decode.Reason
	}{
		{"empty", nil, decode.ReasonShort},
		{"short_header", datagram(0, 0, 0)[:19], decode.ReasonShort},
		{"version", append([]byte{0, 5}, datagram(0, 0, 0)[2:]...), decode.ReasonVersion},
		{"flowset_length_below_4", append(datagram(0, 0, 0), 1, 0, 0, 2), decode.ReasonLength},
		{"too_many_fields", datagram(1, 0, 0, flowset(0, templateRecord(256, tooMany...))), decode.ReasonTemplate},
		{"zero_fields", datagram(1, 0, 0, flowset(0, templateRecord(256))), decode.ReasonTemplate},
		{"zero_length_record", datagram(1, 0, 0, flowset(0, templateRecord(256, field{8, 0}, field{12, 0}))), decode.ReasonTemplate},
		{"template_id_below_256", datagram(1, 0, 0, flowset(0, templateRecord(5, field{8, 4}))), decode.ReasonTemplate},
		{"fields_overrun", datagram(1, 0, 0, flowset(0, templateRecord(256, field{8, 4})[:6])), decode.ReasonTemplate},
		{"options_odd_length", datagram(1, 0, 0, flowset(1, (&templatetest.Buf{}).U16(300).U16(3).U16(4).U32(0).U32(0).B)), decode.ReasonTemplate},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := New(decode.Options{})
			dst := make([]flow.Record, 1)
			got, _, err := d.Decode(dst, &decode.Packet{Data: c.data, Src: exporter})
			var de *decode.Error
			if !errors.As(err, &de) || de.Reason != c.reason || de.Format != decode.FormatNetFlow9 {
				t.Fatalf("error %v, want reason %s", err, c.reason)
			}
			if len(got) != 1 {
				t.Errorf("dst length %d after error, want 1", len(got))
			}
		})
	}
}

func TestTemplateLimit(t *testing.T) {
	d := New(decode.Options{MaxTemplates: 2})
	for id := uint16(256); id < 258; id++ {
		if _, _, err := d.Decode(nil, &decode.Packet{Data: datagram(1, 0, 0, flowset(0, templateRecord(id, v4Fields...))), Src: exporter}); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := d.Decode(nil, &decode.Packet{Data: datagram(1, 0, 0, flowset(0, templateRecord(999, v4Fields...))), Src: exporter})
	if decode.ReasonOf(err) != decode.ReasonTooMany {
		t.Fatalf("error %v, want template_limit", err)
	}
	// Refreshing a known template is still fine, and another exporter has
	// its own budget.
	if _, _, err := d.Decode(nil, &decode.Packet{Data: datagram(1, 0, 0, flowset(0, templateRecord(256, v4Fields[:3]...))), Src: exporter}); err != nil {
		t.Fatal(err)
	}
	other := netip.MustParseAddrPort("192.0.2.2:2055")
	if _, _, err := d.Decode(nil, &decode.Packet{Data: datagram(1, 0, 0, flowset(0, templateRecord(999, v4Fields...))), Src: other}); err != nil {
		t.Fatal(err)
	}
	if n := d.TemplateCount(); n != 3 {
		t.Errorf("TemplateCount %d, want 3", n)
	}
}

func TestStateRoundTrip(t *testing.T) {
	d := New(decode.Options{})
	steps := append(samplingOptions(50), step{data: datagram(1, 2, 0, v4Template())})
	if _, _, errs := run(t, d, steps...); errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	gen := d.StateGeneration()
	if gen == 0 {
		t.Error("generation did not move")
	}
	// A template refresh changes nothing.
	run(t, d, step{data: datagram(1, 3, 0, v4Template())})
	if d.StateGeneration() != gen {
		t.Error("identical template refresh changed the generation")
	}
	var buf bytes.Buffer
	if err := d.SaveState(&buf); err != nil {
		t.Fatal(err)
	}
	saved := buf.String()

	e := New(decode.Options{})
	if err := e.LoadState(&buf); err != nil {
		t.Fatal(err)
	}
	if e.TemplateCount() != 2 {
		t.Errorf("TemplateCount %d after load, want 2", e.TemplateCount())
	}
	_, recs, errs := run(t, e, step{data: datagram(1, 4, 0, v4Data(v4Record("10.0.0.1", "10.0.0.2", 1, 2, 1000, 10)))})
	if errs[0] != nil || len(recs[0]) != 1 {
		t.Fatalf("decode after load: %v, %d records", errs[0], len(recs[0]))
	}
	if r := recs[0][0]; r.SamplingRate != 50 || r.Bytes != 50_000 || r.SrcPort != 1 {
		t.Errorf("record after load %+v", r)
	}
	var again bytes.Buffer
	if err := e.SaveState(&again); err != nil {
		t.Fatal(err)
	}
	if again.String() != saved {
		t.Errorf("state changed across save/load:\n%s\n%s", saved, again.String())
	}
	if err := e.LoadState(bytes.NewReader([]byte(`{"version":99}`))); err == nil {
		t.Error("loaded an unknown state version")
	}
	if e.TemplateCount() != 2 {
		t.Error("a failed load changed the state")
	}
}

func TestMatchAndRegistry(t *testing.T) {
	if !Match(datagram(0, 0, 0)) || Match([]byte{0, 10}) || Match(nil) {
		t.Error("Match")
	}
	m := decode.NewMux(decode.Options{})
	if m.Decoder(decode.FormatNetFlow9) == nil {
		t.Fatal("netflow9 not registered")
	}
}

func TestZeroAllocs(t *testing.T) {
	d := New(decode.Options{})
	pkt := &decode.Packet{Data: datagram(1, 0, 0, v4Template()), Src: exporter}
	if _, _, err := d.Decode(nil, pkt); err != nil {
		t.Fatal(err)
	}
	data := benchDatagram()
	pkt = &decode.Packet{Data: data, Src: exporter, Received: received}
	dst := make([]flow.Record, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if dst, _, err = d.Decode(dst[:0], pkt); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocs per datagram, want 0", allocs)
	}
	// Template refreshes allocate nothing either.
	refresh := &decode.Packet{Data: datagram(21, 0, 0, v4Template(), data[20:]), Src: exporter}
	allocs = testing.AllocsPerRun(100, func() { dst, _, _ = d.Decode(dst[:0], refresh) })
	if allocs != 0 {
		t.Errorf("%v allocs per datagram with template refresh, want 0", allocs)
	}
}

const benchRecords = 20

func benchDatagram() []byte {
	recs := make([][]byte, benchRecords)
	for i := range recs {
		recs[i] = v4Record("10.0.0.1", "10.0.0.2", uint16(1000+i), 443, 1500, 3)
	}
	return datagram(benchRecords, 1, 0, v4Data(recs...))
}

func BenchmarkDecode(b *testing.B) {
	d := New(decode.Options{})
	if _, _, err := d.Decode(nil, &decode.Packet{Data: datagram(1, 0, 0, v4Template()), Src: exporter}); err != nil {
		b.Fatal(err)
	}
	pkt := &decode.Packet{Data: benchDatagram(), Src: exporter, Received: received}
	dst := make([]flow.Record, 0, benchRecords)
	b.SetBytes(int64(len(pkt.Data)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		dst, _, err = d.Decode(dst[:0], pkt)
		if err != nil || len(dst) != benchRecords {
			b.Fatal(err, len(dst))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchRecords), "ns/record")
}
