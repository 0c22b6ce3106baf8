package ipfix

import (
	"net/netip"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/decode/template"
)

// TestFloodedStoreMakesRoom checks that a template flood from spoofed
// sources does not lock every later exporter out for good: while the
// flood is fresh a new exporter's templates are refused (the bound
// holds), but once the flooding domains have been silent for a while they
// are forgotten to make room, and a domain that kept sending keeps its
// templates.
func TestFloodedStoreMakesRoom(t *testing.T) {
	active := netip.MustParseAddrPort("192.0.2.50:4739")
	newcomer := netip.MustParseAddrPort("192.0.2.60:4739")
	cases := []struct {
		name  string
		opts  decode.Options
		flood func(d *Decoder, at time.Time)
	}{
		{"total template limit", decode.Options{MaxTemplates: 10}, func(d *Decoder, at time.Time) {
			spoofed := netip.MustParseAddrPort("198.51.100.7:4739")
			for dom := uint32(0); dom < template.TotalTemplateFactor; dom++ {
				for id := 256; id < 266; id++ {
					d.Decode(nil, &decode.Packet{Data: message(0, dom, set(2, tmpl(uint16(id), v4Fields...))), Src: spoofed, Received: at})
				}
			}
		}},
		{"domain limit", decode.Options{}, func(d *Decoder, at time.Time) {
			for i := range template.MaxDomains {
				spoofed := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 4739)
				d.Decode(nil, &decode.Packet{Data: message(0, 0, v4Template()), Src: spoofed, Received: at})
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := New(c.opts)
			t0 := received
			decodeAt := func(src netip.AddrPort, data []byte, at time.Time) (int, error) {
				recs, _, err := d.Decode(nil, &decode.Packet{Data: data, Src: src, Received: at})
				return len(recs), err
			}
			withTemplate := message(1, 0, v4Template(), set(256, v4Record("10.0.0.1", 1, 100, 1)))
			dataOnly := message(2, 0, set(256, v4Record("10.0.0.1", 2, 100, 1)))
			if _, err := decodeAt(active, withTemplate, t0); err != nil {
				t.Fatal(err)
			}
			c.flood(d, t0)
			if _, err := decodeAt(newcomer, withTemplate, t0.Add(time.Minute)); decode.ReasonOf(err) != decode.ReasonTooMany {
				t.Fatalf("new exporter during the flood: error %v, want template_limit", err)
			}
			// The active exporter goes on sending data only.
			for m := 10; m <= 120; m += 10 {
				if n, err := decodeAt(active, dataOnly, t0.Add(time.Duration(m)*time.Minute)); n != 1 || err != nil {
					t.Fatalf("active exporter after %d min: %d flows, %v", m, n, err)
				}
			}
			later := t0.Add(2*time.Hour + time.Minute)
			if n, err := decodeAt(newcomer, withTemplate, later); n != 1 || err != nil {
				t.Fatalf("new exporter two hours after the flood: %d flows, %v", n, err)
			}
			if n, err := decodeAt(active, dataOnly, later); n != 1 || err != nil {
				t.Errorf("active exporter lost its template: %d flows, %v", n, err)
			}
		})
	}
}
