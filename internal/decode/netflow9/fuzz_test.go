package netflow9

import (
	"bytes"
	"testing"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/decode/template/templatetest"
	"github.com/flowscan/flowscan/internal/flow"
)

func fuzzSeeds() [][]byte {
	return [][]byte{
		datagram(3, 7, 42, v4Template(), v4Data(v4Record("10.0.0.1", "10.0.0.2", 12345, 80, 1500, 3))),
		datagram(2, 1, 0, flowset(0, templateRecord(260, v6Fields...)), flowset(260, v6Record())),
		samplingOptions(100)[0].data,
		samplerOptions(),
		datagram(2, 1, 0, flowset(0, templateRecord(270, field{8, 4}, field{10, 1}, field{1, 3})),
			flowset(270, (&templatetest.Buf{}).Addr("10.1.1.1").U8(9).Raw(1, 2, 3).B)),
		benchDatagram(),
	}
}

// FuzzDecode feeds arbitrary datagrams to a decoder that already knows the
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
			if res.Flows != len(got)-1 {
				t.Fatalf("Flows %d, appended %d", res.Flows, len(got)-1)
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
