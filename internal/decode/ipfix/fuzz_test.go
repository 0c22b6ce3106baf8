package ipfix

import (
	"bytes"
	"testing"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/decode/template/templatetest"
	"github.com/flowscan/flowscan/internal/flow"
)

func fuzzSeeds() [][]byte {
	return [][]byte{
		message(100, 7, v4Template(), set(256, v4Record("10.0.0.1", 1000, 1<<40, 5))),
		message(1, 0,
			set(2, tmpl(260, field{8, 4, 0}, field{82, varLen, 0}, field{12, 4, 0}, field{1, 4, 29305}, field{2, varLen, 9})),
			set(260, (&templatetest.Buf{}).Addr("10.0.0.1").U8(4).Raw([]byte("eth0")...).Addr("10.0.0.2").U32(999).U8(255).U16(2).U16(7).B)),
		message(1, 0,
			set(3, optTmpl(302, 1, field{48, 1, 0}, field{49, 1, 0}, field{50, 4, 0}), optTmpl(303, 1, field{302, 8, 0}, field{305, 4, 0}, field{306, 4, 0})),
			set(302, (&templatetest.Buf{}).U8(1).U8(2).U32(10).B),
			set(303, (&templatetest.Buf{}).U64(77).U32(3).U32(997).B)),
		message(1, 0,
			set(2, tmpl(266, field{8, 4, 0}, field{160, 8, 0}, field{22, 4, 0}, field{21, 4, 0}, field{154, 8, 0}, field{159, 4, 0})),
			set(266, (&templatetest.Buf{}).Addr("10.0.0.5").U64(1).U32(10_000).U32(25_000).U64(ntp(exportMs)).U32(5).B)),
		message(5, 0, set(2, withdrawal(2), withdrawal(256)), set(3, withdrawal(3))),
		samplingIntervalOptions(64).data,
		benchMessage(),
	}
}

// FuzzDecode feeds arbitrary messages to a decoder that already knows the
// test templates, twice each so that templates in the input get used.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := New(decode.Options{MaxTemplates: 16})
		for _, s := range fuzzSeeds() {
			d.Decode(nil, &decode.Packet{Data: s, Src: exporter})
		}
		for range 2 {
			dst := make([]flow.Record, 1, 4)
			got, res, err := d.Decode(dst, &decode.Packet{Data: data, Src: exporter, Received: received})
			if err != nil {
				if len(got) != 1 {
					t.Fatalf("error %v but dst grew to %d", err, len(got))
				}
				if _, ok := err.(*decode.Error); !ok {
					t.Fatalf("error %T is not a *decode.Error", err)
				}
				continue
			}
			if res.Flows != len(got)-1 || int(res.SeqAdvance) < res.Flows {
				t.Fatalf("Flows %d, SeqAdvance %d, appended %d", res.Flows, res.SeqAdvance, len(got)-1)
			}
			for _, r := range got[1:] {
				if r.Exporter != exporter.Addr() {
					t.Fatalf("record exporter %v", r.Exporter)
				}
			}
		}
		var buf bytes.Buffer
		if err := d.SaveState(&buf); err != nil {
			t.Fatal(err)
		}
		if err := New(decode.Options{MaxTemplates: 16}).LoadState(&buf); err != nil {
			t.Fatalf("saved state does not load: %v", err)
		}
	})
}
