package decode_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/decode"
	_ "github.com/flowscan/flowscan/internal/decode/ipfix"
	_ "github.com/flowscan/flowscan/internal/decode/netflow5"
	_ "github.com/flowscan/flowscan/internal/decode/netflow9"
	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/gen"
)

// generated returns datagrams of `flowscan gen`'s traffic mix (20 % IPv6
// except for v5) as the collector receives them, and their flow count.
func generated(tb testing.TB, format string, datagrams int) ([][]byte, int) {
	tb.Helper()
	now := time.Now()
	v6 := 0.2
	if format == "v5" {
		v6 = 0
	}
	mix := gen.NewMix(1, gen.MixOptions{IPv6Share: v6})
	v9 := &gen.V9Encoder{SamplingInterval: 100}
	ipfix := &gen.IPFIXEncoder{SamplingInterval: 100}
	var per int
	switch format {
	case "v5":
		per = gen.V5MaxRecordsFor(gen.DefaultMaxDatagram)
	case "v9":
		per = v9.MaxRecords()
	case "ipfix":
		per = ipfix.MaxRecords()
	default:
		tb.Fatalf("unknown format %q", format)
	}
	recs := make([]flow.Record, per)
	var out [][]byte
	flows := 0
	for i := 0; i < datagrams; i++ {
		for j := range recs {
			mix.Next(&recs[j], now)
		}
		var d []byte
		switch format {
		case "v5":
			d = gen.AppendNetFlow5(nil, gen.NewV5Header(now, now.Add(-time.Hour), uint32(flows)), recs)
		case "v9":
			d = v9.Append(nil, now, recs)
		case "ipfix":
			d = ipfix.Append(nil, now, recs)
		}
		out = append(out, d)
		flows += len(recs)
	}
	return out, flows
}

// BenchmarkMuxGenerated decodes the generator's datagrams through the
// Mux, as the collector's pipeline does, and reports ns per flow.
func BenchmarkMuxGenerated(b *testing.B) {
	for _, format := range []string{"v5", "v9", "ipfix"} {
		b.Run(format, func(b *testing.B) {
			data, flows := generated(b, format, 64)
			m := decode.NewMux(decode.Options{})
			src := netip.MustParseAddrPort("192.0.2.1:2055")
			dst := make([]flow.Record, 0, 1024)
			pkt := decode.Packet{Src: src, Received: time.Now()}
			decodeAll := func() int {
				n := 0
				for _, d := range data {
					pkt.Data = d
					var err error
					dst, _, err = m.Decode(dst[:0], &pkt)
					if err != nil {
						b.Fatal(err)
					}
					n += len(dst)
				}
				return n
			}
			if n := decodeAll(); n != flows { // learns the templates
				b.Fatalf("decoded %d flows, want %d", n, flows)
			}
			var bytes int
			for _, d := range data {
				bytes += len(d)
			}
			b.SetBytes(int64(bytes))
			b.ReportAllocs()
			for b.Loop() {
				decodeAll()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*flows), "ns/flow")
		})
	}
}
