package netflow9

import (
	"net/netip"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/decode/template"
)

// TestFloodedStoreMakesRoom checks that templates from spoofed source IDs
// that filled the total template budget are forgotten once they have been
// silent for a while, so a new exporter can be decoded again, while an
// exporter that kept sending data keeps its template.
func TestFloodedStoreMakesRoom(t *testing.T) {
	d := New(decode.Options{MaxTemplates: 1})
	active := netip.MustParseAddrPort("192.0.2.50:2055")
	newcomer := netip.MustParseAddrPort("192.0.2.60:2055")
	spoofed := netip.MustParseAddrPort("198.51.100.7:2055")
	t0 := received
	decodeAt := func(src netip.AddrPort, data []byte, at time.Time) (int, error) {
		recs, _, err := d.Decode(nil, &decode.Packet{Data: data, Src: src, Received: at})
		return len(recs), err
	}
	rec := v4Record("10.0.0.1", "10.0.0.2", 1, 2, 100, 1)
	withTemplate := datagram(2, 1, 0, v4Template(), v4Data(rec))
	dataOnly := datagram(1, 2, 0, v4Data(rec))
	if _, err := decodeAt(active, withTemplate, t0); err != nil {
		t.Fatal(err)
	}
	for source := uint32(1); source < template.TotalTemplateFactor; source++ {
		decodeAt(spoofed, datagram(1, 0, source, v4Template()), t0)
	}
	if _, err := decodeAt(newcomer, withTemplate, t0.Add(time.Minute)); decode.ReasonOf(err) != decode.ReasonTooMany {
		t.Fatalf("new exporter during the flood: error %v, want template_limit", err)
	}
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
	if n := d.TemplateCount(); n != 2 {
		t.Errorf("TemplateCount %d, want 2 (the spoofed ones forgotten)", n)
	}
}
