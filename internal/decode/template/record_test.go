package template

import (
	"math/rand"
	"net/netip"
	"testing"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/flow"
)

// TestNextHopPreference: the IP next hop before the BGP one, the flow's
// family first, unspecified addresses skipped, the last of repeated fields
// wins.
func TestNextHopPreference(t *testing.T) {
	v4 := func(s string) []byte { a := netip.MustParseAddr(s).As4(); return a[:] }
	v6 := func(s string) []byte { a := netip.MustParseAddr(s).As16(); return a[:] }
	src4, src6 := v4("192.0.2.1"), v6("2001:db8::1")
	for _, tc := range []struct {
		name   string
		fields []Field
		values [][]byte
		want   string // "" for none
	}{
		{"none", []Field{{ID: 8, Length: 4}}, [][]byte{src4}, ""},
		{"ip v4", []Field{{ID: 8, Length: 4}, {ID: 15, Length: 4}}, [][]byte{src4, v4("198.51.100.1")}, "198.51.100.1"},
		{"ip before bgp", []Field{{ID: 8, Length: 4}, {ID: 18, Length: 4}, {ID: 15, Length: 4}}, [][]byte{src4, v4("198.51.100.2"), v4("198.51.100.1")}, "198.51.100.1"},
		{"unspecified ip, bgp", []Field{{ID: 8, Length: 4}, {ID: 15, Length: 4}, {ID: 18, Length: 4}}, [][]byte{src4, v4("0.0.0.0"), v4("198.51.100.2")}, "198.51.100.2"},
		{"all unspecified", []Field{{ID: 8, Length: 4}, {ID: 15, Length: 4}, {ID: 18, Length: 4}}, [][]byte{src4, v4("0.0.0.0"), v4("0.0.0.0")}, ""},
		{"v4 flow, v4 first", []Field{{ID: 8, Length: 4}, {ID: 62, Length: 16}, {ID: 15, Length: 4}}, [][]byte{src4, v6("fe80::1"), v4("198.51.100.1")}, "198.51.100.1"},
		{"v6 flow, v6 first", []Field{{ID: 27, Length: 16}, {ID: 15, Length: 4}, {ID: 62, Length: 16}}, [][]byte{src6, v4("198.51.100.1"), v6("fe80::1")}, "fe80::1"},
		{"v6 flow, only v4 ip", []Field{{ID: 27, Length: 16}, {ID: 63, Length: 16}, {ID: 15, Length: 4}}, [][]byte{src6, v6("2001:db8::fe"), v4("198.51.100.1")}, "198.51.100.1"},
		{"v6 flow, bgp v6 before bgp v4", []Field{{ID: 27, Length: 16}, {ID: 18, Length: 4}, {ID: 63, Length: 16}}, [][]byte{src6, v4("198.51.100.2"), v6("2001:db8::fe")}, "2001:db8::fe"},
		{"v4 flow, only bgp v6", []Field{{ID: 8, Length: 4}, {ID: 63, Length: 16}}, [][]byte{src4, v6("2001:db8::fe")}, "2001:db8::fe"},
		{"unspecified v6", []Field{{ID: 27, Length: 16}, {ID: 62, Length: 16}, {ID: 18, Length: 4}}, [][]byte{src6, v6("::"), v4("198.51.100.2")}, "198.51.100.2"},
		{"last repeat wins", []Field{{ID: 8, Length: 4}, {ID: 15, Length: 4}, {ID: 15, Length: 4}}, [][]byte{src4, v4("198.51.100.1"), v4("0.0.0.0")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm, err := Compile(decode.FormatIPFIX, DialectIPFIX, 256, false, 0, tc.fields)
			if err != nil {
				t.Fatal(err)
			}
			var body []byte
			for _, v := range tc.values {
				body = append(body, v...)
			}
			recs, n, err := tm.DecodeSet(nil, body, &Context{Format: decode.FormatIPFIX})
			if err != nil || n != 1 || len(recs) != 1 {
				t.Fatalf("DecodeSet: %d records, %v", n, err)
			}
			var want netip.Addr
			if tc.want != "" {
				want = netip.MustParseAddr(tc.want)
			}
			if got := recs[0].NextHop; got != want {
				t.Errorf("next hop %v, want %v", got, want)
			}
		})
	}
}

// TestFixedPathMatchesWalk decodes random records of random fixed-length
// templates with the precomputed-offset path and with the field walk used
// for variable-length templates, and wants the same flows.
func TestFixedPathMatchesWalk(t *testing.T) {
	ids := []uint16{1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 21, 22, 27, 28, 29, 30, 32, 56, 57, 58, 59, 62, 63, 80, 81, 85, 86, 150, 151, 152, 153, 154, 155, 156, 157, 158, 159, 160, 176, 177, 243, 254, 999}
	lengths := []uint16{0, 1, 2, 3, 4, 6, 8, 16}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 500; i++ {
		fields := make([]Field, 1+rng.Intn(30))
		for j := range fields {
			fields[j] = Field{ID: ids[rng.Intn(len(ids))], Length: lengths[rng.Intn(len(lengths))]}
			if rng.Intn(10) == 0 {
				fields[j].Enterprise = 9
			}
		}
		tm, err := Compile(decode.FormatIPFIX, DialectIPFIX, 256, false, 0, fields)
		if decode.ReasonOf(err) == decode.ReasonTemplate && recordLenOf(fields) == 0 {
			continue // only zero-length fields: rejected, rightly
		}
		if err != nil {
			t.Fatal(err)
		}
		if !tm.fixed {
			t.Fatalf("template %v not fixed", fields)
		}
		walk := *tm
		walk.fixed = false
		records := 1 + rng.Intn(3*decodeChunk) // whole and partial chunks
		body := make([]byte, tm.minLen*records+rng.Intn(tm.minLen))
		rng.Read(body)
		ctx := &Context{Format: decode.FormatIPFIX, ExportMilli: 1700000000000, ReceivedMilli: 1700000000500}
		got, n1, err1 := tm.DecodeSet(nil, body, ctx)
		want, n2, err2 := walk.DecodeSet(nil, body, ctx)
		if err1 != nil || err2 != nil || n1 != records || n2 != records || len(got) != records || len(want) != records {
			t.Fatalf("template %v: %d records (%v), walk %d (%v)", fields, n1, err1, n2, err2)
		}
		for j := range want {
			if got[j] != want[j] {
				t.Fatalf("template %v record %d:\nfixed %+v\nwalk  %+v", fields, j, got[j], want[j])
			}
		}
	}
}

func recordLenOf(fields []Field) int {
	n := 0
	for _, f := range fields {
		n += int(f.Length)
	}
	return n
}

// BenchmarkDecodeSet decodes a set of the generator's IPv4 v9 layout.
func BenchmarkDecodeSet(b *testing.B) {
	fields := []Field{{8, 0, 4}, {12, 0, 4}, {15, 0, 4}, {10, 0, 4}, {14, 0, 4}, {1, 0, 8}, {2, 0, 8}, {22, 0, 4}, {21, 0, 4},
		{7, 0, 2}, {11, 0, 2}, {4, 0, 1}, {5, 0, 1}, {6, 0, 1}, {16, 0, 4}, {17, 0, 4}, {9, 0, 1}, {13, 0, 1}, {58, 0, 2}, {59, 0, 2}, {56, 0, 6}, {80, 0, 6}}
	tm, err := Compile(decode.FormatNetFlow9, DialectNetFlow9, 256, false, 0, fields)
	if err != nil {
		b.Fatal(err)
	}
	const records = 20
	body := make([]byte, records*tm.minLen)
	rand.New(rand.NewSource(1)).Read(body)
	ctx := &Context{Format: decode.FormatNetFlow9, HasSysUptime: true, SysUptime: 1 << 30, ExportMilli: 1700000000000}
	dst := make([]flow.Record, 0, records)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		dst, _, _ = tm.DecodeSet(dst[:0], body, ctx)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*records), "ns/record")
}
