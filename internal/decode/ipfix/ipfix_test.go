package ipfix

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
	exportMs   = int64(exportSecs) * 1000
)

var (
	exporter = netip.MustParseAddrPort("[2001:db8::99]:4739")
	received = time.Unix(exportSecs, 500_000_000)
)

// field is a field specifier; pen != 0 sets the enterprise bit.
type field struct {
	id, length uint16
	pen        uint32
}

const varLen = 0xFFFF

// message builds an IPFIX message from sets.
func message(seq, domain uint32, sets ...[]byte) []byte {
	b := &templatetest.Buf{}
	b.U16(10).U16(0).U32(exportSecs).U32(seq).U32(domain)
	for _, s := range sets {
		b.Raw(s...)
	}
	b.PutU16(2, uint16(b.Len()))
	return b.B
}

func set(id uint16, body ...[]byte) []byte {
	b := &templatetest.Buf{}
	b.U16(id).U16(0).Raw(bytes.Join(body, nil)...)
	b.PutU16(2, uint16(b.Len()))
	return b.B
}

func specs(b *templatetest.Buf, fields []field) {
	for _, f := range fields {
		if f.pen != 0 {
			b.U16(f.id | 0x8000).U16(f.length).U32(f.pen)
		} else {
			b.U16(f.id).U16(f.length)
		}
	}
}

func tmpl(id uint16, fields ...field) []byte {
	b := &templatetest.Buf{}
	b.U16(id).U16(uint16(len(fields)))
	specs(b, fields)
	return b.B
}

func optTmpl(id uint16, scope int, fields ...field) []byte {
	b := &templatetest.Buf{}
	b.U16(id).U16(uint16(len(fields))).U16(uint16(scope))
	specs(b, fields)
	return b.B
}

func withdrawal(id uint16) []byte { return (&templatetest.Buf{}).U16(id).U16(0).B }

// v4Fields are 18 common IEs.
var v4Fields = []field{
	{8, 4, 0}, {12, 4, 0}, {15, 4, 0}, {7, 2, 0}, {11, 2, 0}, {4, 1, 0}, {5, 1, 0}, {6, 2, 0},
	{10, 4, 0}, {14, 4, 0}, {1, 8, 0}, {2, 8, 0}, {152, 8, 0}, {153, 8, 0}, {16, 4, 0}, {17, 4, 0},
	{9, 1, 0}, {13, 1, 0},
}

func v4Record(src string, sport uint16, bytes, packets uint64) []byte {
	b := &templatetest.Buf{}
	b.Addr(src).Addr("10.9.9.9").Addr("192.0.2.254").U16(sport).U16(443).U8(6).U8(0xb8).U16(0x0012)
	b.U32(5).U32(6).U64(bytes).U64(packets).U64(uint64(exportMs - 30_000)).U64(uint64(exportMs - 1_000))
	b.U32(65000).U32(65001).U8(8).U8(32)
	return b.B
}

func v4Template() []byte { return set(2, tmpl(256, v4Fields...)) }

type step struct{ data []byte }

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
		got, res, err := d.Decode(nil, &decode.Packet{Data: s.data, Src: exporter, Received: received})
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

func ntp(unixMs int64) uint64 {
	sec := uint64(unixMs/1000) + 2208988800
	frac := (uint64(unixMs%1000) << 32) / 1000
	return sec<<32 | frac + 1 // +1 so that truncation, not rounding, is tested
}

func samplingIntervalOptions(rate uint32) step {
	return step{message(1, 0,
		set(3, optTmpl(300, 1, field{149, 4, 0}, field{34, 4, 0}, field{35, 1, 0})),
		set(300, (&templatetest.Buf{}).U32(0).U32(rate).U8(2).B))}
}

func TestGolden(t *testing.T) {
	flows := func(seq uint32, recs ...[]byte) step { return step{message(seq, 0, set(256, recs...))} }
	cases := []struct {
		name  string
		opts  decode.Options
		steps []step
		check func(t *testing.T, recs [][]flow.Record, res []goldenStep)
	}{
		{
			name:  "template_and_data",
			steps: []step{{message(100, 7, v4Template(), set(256, v4Record("10.0.0.1", 1000, 1<<40, 5), v4Record("10.0.0.2", 1001, 64, 1)))}},
			check: func(t *testing.T, recs [][]flow.Record, res []goldenStep) {
				r := recs[0][0]
				if r.Bytes != 1<<40 || r.Start != exportMs-30_000 || r.End != exportMs-1_000 || r.TCPFlags != 0x12 || r.DstMask != 32 || r.Domain != 7 {
					t.Errorf("record %+v", r)
				}
				if r.Exporter != exporter.Addr() {
					t.Errorf("exporter %v", r.Exporter)
				}
				if g := res[0].Result; g.SeqUnit != decode.SeqFlows || g.SeqAdvance != 2 || !g.SeqExact || g.Sequence != 100 || g.Templates != 1 || g.Flows != 2 {
					t.Errorf("result %+v", g)
				}
			},
		},
		{
			name: "unknown_template_and_withdrawal",
			steps: []step{
				flows(1, v4Record("10.0.0.1", 1, 1, 1)),
				{message(2, 0, v4Template(), set(256, v4Record("10.0.0.1", 2, 1, 1)))},
				{message(3, 0, set(2, withdrawal(256)), set(256, v4Record("10.0.0.1", 3, 1, 1)))},
				{message(4, 0, v4Template(), set(2, tmpl(257, v4Fields[:4]...)), set(3, optTmpl(300, 1, field{149, 4, 0}, field{34, 4, 0})))},
				{message(5, 0, set(2, withdrawal(2)), set(257, make([]byte, 14)), set(256, v4Record("10.0.0.1", 5, 1, 1)))},
			},
			check: func(t *testing.T, recs [][]flow.Record, res []goldenStep) {
				if g := res[0].Result; g.SeqExact || g.Skipped != 1 || g.SeqAdvance != 0 {
					t.Errorf("unknown template result %+v", g)
				}
				if g := res[2].Result; g.SeqExact || g.Flows != 0 || g.Templates != 1 {
					t.Errorf("withdrawn template result %+v", g)
				}
				if g := res[4].Result; g.SeqExact || g.Skipped != 2 || g.Templates != 1 {
					t.Errorf("withdraw all result %+v", g)
				}
			},
		},
		{
			name: "variable_length_and_enterprise",
			steps: []step{{message(1, 0,
				set(2, tmpl(260, field{8, 4, 0}, field{82, varLen, 0}, field{12, 4, 0}, field{1, 4, 29305}, field{2, varLen, 9}, field{2, 4, 0}, field{1, 4, 0})),
				set(260,
					(&templatetest.Buf{}).Addr("10.0.0.1").U8(4).Raw([]byte("eth0")...).Addr("10.0.0.2").U32(999).U8(2).U16(7).U32(3).U32(300).B,
					(&templatetest.Buf{}).Addr("10.0.0.3").U8(255).U16(300).Raw(make([]byte, 300)...).Addr("10.0.0.4").U32(999).U8(255).U16(0).U32(4).U32(400).B,
				))}},
			check: func(t *testing.T, recs [][]flow.Record, res []goldenStep) {
				if len(recs[0]) != 2 {
					t.Fatalf("%d records", len(recs[0]))
				}
				a, b := recs[0][0], recs[0][1]
				if a.DstAddr != netip.MustParseAddr("10.0.0.2") || a.Packets != 3 || a.Bytes != 300 {
					t.Errorf("first %+v", a)
				}
				if b.DstAddr != netip.MustParseAddr("10.0.0.4") || b.Packets != 4 || b.Bytes != 400 {
					t.Errorf("second %+v", b)
				}
				if a.Start != received.UnixMilli() {
					t.Errorf("no times: start %d, want arrival", a.Start)
				}
			},
		},
		{
			name: "ipv6_reduced_size_l2",
			steps: []step{{message(1, 0,
				set(2, tmpl(261, field{27, 16, 0}, field{28, 16, 0}, field{29, 1, 0}, field{30, 1, 0}, field{63, 16, 0},
					field{10, 2, 0}, field{14, 1, 0}, field{85, 3, 0}, field{86, 2, 0}, field{243, 2, 0}, field{254, 2, 0},
					field{81, 6, 0}, field{80, 6, 0}, field{56, 6, 0}, field{57, 6, 0}, field{150, 4, 0}, field{151, 4, 0})),
				set(261, (&templatetest.Buf{}).Addr("2001:db8::1").Addr("2001:db8::2").U8(56).U8(64).Addr("2001:db8::fe").
					U16(1000).U8(2).Raw(1, 0, 0).U16(300).U16(100).U16(200).
					MAC("02:00:00:00:00:01").MAC("02:00:00:00:00:02").MAC("02:00:00:00:00:03").MAC("02:00:00:00:00:04").
					U32(exportSecs-60).U32(exportSecs-59).B))}},
			check: func(t *testing.T, recs [][]flow.Record, res []goldenStep) {
				r := recs[0][0]
				if !r.IsIPv6() || r.NextHop != netip.MustParseAddr("2001:db8::fe") || r.InIf != 1000 || r.OutIf != 2 || r.Bytes != 1<<16 || r.Packets != 300 {
					t.Errorf("record %+v", r)
				}
				if r.SrcVLAN != 100 || r.DstVLAN != 200 || r.DstMAC[5] != 2 || r.SrcMAC[5] != 3 {
					t.Errorf("l2 %+v", r)
				}
				if r.Start != exportMs-60_000 || r.End != exportMs-59_000 {
					t.Errorf("times %d %d", r.Start, r.End)
				}
			},
		},
		{
			name: "time_encodings",
			steps: []step{{message(1, 0,
				set(2, tmpl(262, field{8, 4, 0}, field{154, 8, 0}, field{155, 8, 0}),
					tmpl(263, field{8, 4, 0}, field{156, 8, 0}, field{157, 8, 0}),
					tmpl(264, field{8, 4, 0}, field{158, 4, 0}, field{159, 4, 0}),
					tmpl(265, field{8, 4, 0}, field{22, 4, 0}, field{21, 4, 0}),
					tmpl(266, field{8, 4, 0}, field{160, 8, 0}, field{22, 4, 0}, field{21, 4, 0})),
				set(262, (&templatetest.Buf{}).Addr("10.0.0.1").U64(ntp(exportMs-5_250)).U64(ntp(exportMs-1_125)).B),
				set(263, (&templatetest.Buf{}).Addr("10.0.0.2").U64(ntp(exportMs-4_000)).U64(ntp(exportMs-3_999)).B),
				set(264, (&templatetest.Buf{}).Addr("10.0.0.3").U32(9_000_500).U32(2_000_000).B),
				set(265, (&templatetest.Buf{}).Addr("10.0.0.4").U32(10_000).U32(25_000).B),
				set(266, (&templatetest.Buf{}).Addr("10.0.0.5").U64(uint64(exportMs-3_600_000)).U32(10_000).U32(25_000).B),
			)}},
			check: func(t *testing.T, recs [][]flow.Record, res []goldenStep) {
				want := [][2]int64{
					{exportMs - 5_250, exportMs - 1_125},
					{exportMs - 4_000, exportMs - 3_999},
					{exportMs - 9_000, exportMs - 2_000},
					{exportMs - 15_000, exportMs},
					{exportMs - 3_600_000 + 10_000, exportMs - 3_600_000 + 25_000},
				}
				for i, r := range recs[0] {
					if r.Start != want[i][0] || r.End != want[i][1] {
						t.Errorf("record %d times %d..%d, want %d..%d", i, r.Start-exportMs, r.End-exportMs, want[i][0]-exportMs, want[i][1]-exportMs)
					}
				}
			},
		},
		{
			name: "system_init_time_from_options",
			steps: []step{{message(1, 0,
				set(3, optTmpl(301, 1, field{149, 4, 0}, field{160, 8, 0})),
				set(301, (&templatetest.Buf{}).U32(0).U64(uint64(exportMs-7_200_000)).B),
				set(2, tmpl(265, field{8, 4, 0}, field{22, 4, 0}, field{21, 4, 0})),
				set(265, (&templatetest.Buf{}).Addr("10.0.0.4").U32(10_000).U32(25_000).B),
			)}},
			check: func(t *testing.T, recs [][]flow.Record, res []goldenStep) {
				if r := recs[0][0]; r.Start != exportMs-7_200_000+10_000 || r.End != exportMs-7_200_000+25_000 {
					t.Errorf("times %d..%d", r.Start, r.End)
				}
				if g := res[0].Result; g.SeqAdvance != 2 || g.Flows != 1 {
					t.Errorf("options records count in the sequence: %+v", g)
				}
			},
		},
		{
			name:  "sampling_interval",
			steps: []step{samplingIntervalOptions(64), {message(2, 0, v4Template(), set(256, v4Record("10.0.0.1", 1, 100, 2)))}},
			check: func(t *testing.T, recs [][]flow.Record, res []goldenStep) {
				if r := recs[1][0]; r.SamplingRate != 64 || r.Bytes != 6400 || r.Packets != 128 {
					t.Errorf("record %+v", r)
				}
				if res[0].Result.Flows != 0 || res[0].Result.SeqAdvance != 1 {
					t.Errorf("options result %+v", res[0].Result)
				}
			},
		},
		{
			name: "sampler_and_selector",
			steps: []step{
				{message(1, 0,
					set(3, optTmpl(302, 1, field{48, 1, 0}, field{49, 1, 0}, field{50, 4, 0}),
						optTmpl(303, 1, field{302, 8, 0}, field{305, 4, 0}, field{306, 4, 0})),
					set(302, (&templatetest.Buf{}).U8(1).U8(2).U32(10).B, (&templatetest.Buf{}).U8(2).U8(2).U32(20).B),
					set(303, (&templatetest.Buf{}).U64(77).U32(3).U32(997).B),
				)},
				{message(5, 0,
					set(2, tmpl(270, field{8, 4, 0}, field{2, 4, 0}, field{48, 1, 0}), tmpl(271, field{8, 4, 0}, field{2, 4, 0}, field{302, 4, 0})),
					set(270, (&templatetest.Buf{}).Addr("10.0.0.1").U32(1).U8(1).B, (&templatetest.Buf{}).Addr("10.0.0.2").U32(1).U8(2).B),
					set(271, (&templatetest.Buf{}).Addr("10.0.0.3").U32(1).U32(77).B),
				)},
			},
			check: func(t *testing.T, recs [][]flow.Record, res []goldenStep) {
				rs := recs[1]
				if len(rs) != 3 || rs[0].SamplingRate != 10 || rs[1].SamplingRate != 20 || rs[2].SamplingRate != 333 || rs[2].Packets != 333 {
					t.Errorf("records %+v", rs)
				}
			},
		},
		{
			name:  "sampling_override",
			opts:  decode.Options{SamplingOverride: func(netip.Addr) (uint32, bool) { return 1, true }},
			steps: []step{samplingIntervalOptions(64), {message(2, 0, v4Template(), set(256, v4Record("10.0.0.1", 1, 100, 2)))}},
			check: func(t *testing.T, recs [][]flow.Record, res []goldenStep) {
				if r := recs[1][0]; r.SamplingRate != 1 || r.Bytes != 100 {
					t.Errorf("record %+v", r)
				}
			},
		},
		{
			name: "padding",
			steps: []step{{message(1, 0,
				set(2, tmpl(280, field{8, 4, 0}, field{12, 4, 0}, field{1, 2, 0}), []byte{0, 0}),
				set(280, (&templatetest.Buf{}).Addr("10.0.0.1").Addr("10.0.0.2").U16(77).B, []byte{0, 0, 0}))}},
			check: func(t *testing.T, recs [][]flow.Record, res []goldenStep) {
				if len(recs[0]) != 1 || recs[0][0].Bytes != 77 {
					t.Errorf("records %+v", recs[0])
				}
			},
		},
	}
	all := map[string][]goldenStep{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, recs, errs := run(t, New(c.opts), c.steps...)
			for i, err := range errs {
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			c.check(t, recs, res)
			all[c.name] = res
		})
	}
	templatetest.CheckGolden(t, "decode", all, *update)
}

func TestErrors(t *testing.T) {
	tooMany := make([]field, 600)
	for i := range tooMany {
		tooMany[i] = field{1, 4, 0}
	}
	known := tmpl(290, field{8, 4, 0}, field{82, varLen, 0})
	trunc := func(b []byte, n int) []byte { return b[:len(b)-n] }
	cases := []struct {
		name   string
		data   []byte
		reason decode.Reason
	}{
		{"empty", nil, decode.ReasonShort},
		{"short_header", message(0, 0)[:15], decode.ReasonShort},
		{"version", append([]byte{0, 9}, message(0, 0)[2:]...), decode.ReasonVersion},
		{"length_beyond_datagram", trunc(message(0, 0, v4Template()), 1), decode.ReasonShort},
		{"length_below_header", func() []byte { b := message(0, 0); b[3] = 8; return b }(), decode.ReasonLength},
		{"set_length_below_4", func() []byte { b := message(0, 0, set(2)); b[19] = 2; return b }(), decode.ReasonLength},
		{"trailing_octets", func() []byte { b := append(message(0, 0, v4Template()), 0, 0); b[3] += 2; return b }(), decode.ReasonLength},
		{"too_many_fields", message(0, 0, set(2, tmpl(256, tooMany...))), decode.ReasonTemplate},
		{"zero_length_record", message(0, 0, set(2, tmpl(256, field{8, 0, 0}))), decode.ReasonTemplate},
		{"template_id_below_256", message(0, 0, set(2, tmpl(100, field{8, 4, 0}))), decode.ReasonTemplate},
		{"fields_overrun", message(0, 0, set(2, trunc(tmpl(256, field{8, 4, 0}, field{12, 4, 0}), 2))), decode.ReasonTemplate},
		{"enterprise_overrun", message(0, 0, set(2, trunc(tmpl(256, field{8, 4, 1}), 2))), decode.ReasonTemplate},
		{"scope_count_zero", message(0, 0, set(3, optTmpl(300, 0, field{34, 4, 0}))), decode.ReasonTemplate},
		{"scope_count_too_big", message(0, 0, set(3, optTmpl(300, 2, field{34, 4, 0}))), decode.ReasonTemplate},
		{"withdraw_bad_id", message(0, 0, set(2, withdrawal(5))), decode.ReasonTemplate},
		{"varlen_overrun", message(0, 0, set(2, known), set(290, (&templatetest.Buf{}).Addr("10.0.0.1").U8(200).U16(0).B)), decode.ReasonFieldLength},
		{"varlen_long_overrun", message(0, 0, set(2, known), set(290, (&templatetest.Buf{}).Addr("10.0.0.1").U8(255).U16(9).B)), decode.ReasonFieldLength},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := New(decode.Options{})
			dst := make([]flow.Record, 1)
			got, _, err := d.Decode(dst, &decode.Packet{Data: c.data, Src: exporter})
			var de *decode.Error
			if !errors.As(err, &de) || de.Reason != c.reason || de.Format != decode.FormatIPFIX {
				t.Fatalf("error %v, want reason %s", err, c.reason)
			}
			if len(got) != 1 {
				t.Errorf("dst length %d after error, want 1", len(got))
			}
		})
	}
}

func TestTemplateFlood(t *testing.T) {
	d := New(decode.Options{MaxTemplates: 10})
	var lastErr error
	for id := 256; id < 256+50; id++ {
		_, _, lastErr = d.Decode(nil, &decode.Packet{Data: message(0, 1, set(2, tmpl(uint16(id), v4Fields...))), Src: exporter})
	}
	if decode.ReasonOf(lastErr) != decode.ReasonTooMany {
		t.Errorf("error %v, want template_limit", lastErr)
	}
	if n := d.TemplateCount(); n != 10 {
		t.Errorf("TemplateCount %d, want 10", n)
	}
	// Domains flooding: the total limit holds across domains.
	for dom := uint32(2); dom < 100; dom++ {
		for id := 256; id < 266; id++ {
			d.Decode(nil, &decode.Packet{Data: message(0, dom, set(2, tmpl(uint16(id), v4Fields...))), Src: exporter})
		}
	}
	if n := d.TemplateCount(); n > 10*16 {
		t.Errorf("TemplateCount %d beyond the total limit", n)
	}
}

func TestStateRoundTrip(t *testing.T) {
	d := New(decode.Options{})
	setup := []step{
		samplingIntervalOptions(32),
		{message(2, 0, set(3, optTmpl(301, 1, field{149, 4, 0}, field{160, 8, 0})), set(301, (&templatetest.Buf{}).U32(0).U64(uint64(exportMs-7_200_000)).B))},
		{message(3, 0, set(2, tmpl(256, field{8, 4, 0}, field{82, varLen, 0}, field{1, 4, 1234}, field{2, 4, 0}, field{22, 4, 0})))},
	}
	for _, s := range setup {
		if _, _, err := d.Decode(nil, &decode.Packet{Data: s.data, Src: exporter}); err != nil {
			t.Fatal(err)
		}
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
	if e.TemplateCount() != 3 {
		t.Errorf("TemplateCount %d, want 3", e.TemplateCount())
	}
	got, res, err := e.Decode(nil, &decode.Packet{Data: message(4, 0, set(256, (&templatetest.Buf{}).Addr("10.0.0.1").U8(1).U8('x').U32(1).U32(3).U32(5000).B)), Src: exporter})
	if err != nil || len(got) != 1 || !res.SeqExact {
		t.Fatalf("decode after load: %v %+v", err, res)
	}
	if r := got[0]; r.SamplingRate != 32 || r.Packets != 96 || r.Start != exportMs-7_200_000+5000 {
		t.Errorf("record after load %+v", r)
	}
	var again bytes.Buffer
	e.SaveState(&again)
	if again.String() != saved {
		t.Errorf("state changed across save/load:\n%s\n%s", saved, again.String())
	}
	// The netflow9 state is refused.
	if err := e.LoadState(bytes.NewReader([]byte(`{"version":1,"format":"netflow9","domains":[]}`))); err == nil {
		t.Error("loaded another format's state")
	}
}

func TestMatchAndRegistry(t *testing.T) {
	if !Match(message(0, 0)) || Match([]byte{0, 10, 0, 4}) || Match([]byte{0, 9, 0, 20}) || Match(nil) {
		t.Error("Match")
	}
	if decode.NewMux(decode.Options{}).Decoder(decode.FormatIPFIX) == nil {
		t.Fatal("ipfix not registered")
	}
}

const benchRecords = 20

func benchMessage() []byte {
	recs := make([][]byte, benchRecords)
	for i := range recs {
		recs[i] = v4Record("10.0.0.1", uint16(1000+i), 1500, 3)
	}
	return message(1, 0, set(256, recs...))
}

func TestZeroAllocs(t *testing.T) {
	d := New(decode.Options{})
	if _, _, err := d.Decode(nil, &decode.Packet{Data: message(0, 0, v4Template()), Src: exporter}); err != nil {
		t.Fatal(err)
	}
	dst := make([]flow.Record, 0, 64)
	for _, data := range [][]byte{benchMessage(), message(0, 0, v4Template(), set(256, v4Record("10.0.0.1", 1, 1, 1)))} {
		pkt := &decode.Packet{Data: data, Src: exporter, Received: received}
		allocs := testing.AllocsPerRun(100, func() {
			var err error
			if dst, _, err = d.Decode(dst[:0], pkt); err != nil || len(dst) == 0 {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v allocs per message, want 0", allocs)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	d := New(decode.Options{})
	if _, _, err := d.Decode(nil, &decode.Packet{Data: message(0, 0, v4Template()), Src: exporter}); err != nil {
		b.Fatal(err)
	}
	pkt := &decode.Packet{Data: benchMessage(), Src: exporter, Received: received}
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

func TestConcurrentSaveState(t *testing.T) {
	d := New(decode.Options{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			var buf bytes.Buffer
			if err := d.SaveState(&buf); err != nil {
				t.Error(err)
				return
			}
			_ = d.TemplateCount()
			_ = d.StateGeneration()
		}
	}()
	for i := range 200 {
		d.Decode(nil, &decode.Packet{Data: message(uint32(i), uint32(i%3), v4Template(), set(256, v4Record("10.0.0.1", 1, 1, 1))), Src: exporter})
	}
	<-done
}
