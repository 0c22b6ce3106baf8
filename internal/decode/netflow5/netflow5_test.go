package netflow5

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/flow"
)

// v5rec is the wire content of one test record.
type v5rec struct {
	src, dst, nh      [4]byte
	in, out           uint16
	pkts, octets      uint32
	first, last       uint32
	sport, dport      uint16
	flags, proto, tos uint8
	srcAS, dstAS      uint16
	srcMask, dstMask  uint8
}

func buildV5(uptime, secs, nsecs, seq uint32, engType, engID uint8, sampling uint16, recs []v5rec) []byte {
	b := make([]byte, HeaderLen+len(recs)*RecordLen)
	be := binary.BigEndian
	be.PutUint16(b[0:], 5)
	be.PutUint16(b[2:], uint16(len(recs)))
	be.PutUint32(b[4:], uptime)
	be.PutUint32(b[8:], secs)
	be.PutUint32(b[12:], nsecs)
	be.PutUint32(b[16:], seq)
	b[20], b[21] = engType, engID
	be.PutUint16(b[22:], sampling)
	for i, r := range recs {
		p := b[HeaderLen+i*RecordLen:]
		copy(p[0:], r.src[:])
		copy(p[4:], r.dst[:])
		copy(p[8:], r.nh[:])
		be.PutUint16(p[12:], r.in)
		be.PutUint16(p[14:], r.out)
		be.PutUint32(p[16:], r.pkts)
		be.PutUint32(p[20:], r.octets)
		be.PutUint32(p[24:], r.first)
		be.PutUint32(p[28:], r.last)
		be.PutUint16(p[32:], r.sport)
		be.PutUint16(p[34:], r.dport)
		p[37], p[38], p[39] = r.flags, r.proto, r.tos
		be.PutUint16(p[40:], r.srcAS)
		be.PutUint16(p[42:], r.dstAS)
		p[44], p[45] = r.srcMask, r.dstMask
	}
	return b
}

var exporter = netip.MustParseAddrPort("192.0.2.1:50000")

func TestDecode(t *testing.T) {
	export := time.Date(2026, 11, 23, 12, 0, 0, 500_000_000, time.UTC)
	recs := []v5rec{
		{src: [4]byte{10, 0, 0, 1}, dst: [4]byte{198, 51, 100, 7}, nh: [4]byte{10, 0, 0, 254},
			in: 3, out: 65535, pkts: 10, octets: 4000, first: 90_000, last: 99_000,
			sport: 51000, dport: 443, flags: 0x1b, proto: 6, tos: 0x20, srcAS: 64512, dstAS: 15169, srcMask: 24, dstMask: 16},
		{src: [4]byte{10, 0, 0, 2}, dst: [4]byte{8, 8, 8, 8}, pkts: 1, octets: 76, first: 100_000, last: 100_000,
			sport: 5353, dport: 53, proto: 17},
	}
	data := buildV5(100_000, uint32(export.Unix()), 500_000_000, 4242, 1, 2, 0, recs)
	d := New(decode.Options{})
	out, res, err := d.Decode(nil, &decode.Packet{Data: data, Src: exporter})
	if err != nil {
		t.Fatal(err)
	}
	wantRes := decode.Result{Format: decode.FormatNetFlow5, Exporter: exporter.Addr(), Domain: 0x0102,
		Sequence: 4242, SeqUnit: decode.SeqFlows, SeqAdvance: 2, SeqExact: true, Flows: 2}
	if res != wantRes {
		t.Errorf("result\n got %+v\nwant %+v", res, wantRes)
	}
	ms := export.UnixMilli()
	want := []flow.Record{
		{Exporter: exporter.Addr(), Domain: 0x0102,
			SrcAddr: netip.MustParseAddr("10.0.0.1"), DstAddr: netip.MustParseAddr("198.51.100.7"), NextHop: netip.MustParseAddr("10.0.0.254"),
			InIf: 3, OutIf: 65535, Packets: 10, Bytes: 4000, Start: ms - 10_000, End: ms - 1_000,
			SrcPort: 51000, DstPort: 443, TCPFlags: 0x1b, Proto: 6, TOS: 0x20, SrcAS: 64512, DstAS: 15169, SrcMask: 24, DstMask: 16},
		{Exporter: exporter.Addr(), Domain: 0x0102,
			SrcAddr: netip.MustParseAddr("10.0.0.2"), DstAddr: netip.MustParseAddr("8.8.8.8"),
			Packets: 1, Bytes: 76, Start: ms, End: ms, SrcPort: 5353, DstPort: 53, Proto: 17},
	}
	if len(out) != len(want) {
		t.Fatalf("got %d records, want %d", len(out), len(want))
	}
	for i := range want {
		if out[i] != want[i] {
			t.Errorf("record %d\n got %+v\nwant %+v", i, out[i], want[i])
		}
	}
}

func TestDecodeUptimeWrap(t *testing.T) {
	// The router's uptime counter wrapped 5 s ago; the flow started 10 s
	// ago, before the wrap, so First is close to 2^32.
	export := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	first := uint32(1<<32 - 5_000)
	data := buildV5(5_000, uint32(export.Unix()), 0, 1, 0, 0, 0, []v5rec{{pkts: 1, octets: 40, first: first, last: 4_000}})
	out, _, err := New(decode.Options{}).Decode(nil, &decode.Packet{Data: data, Src: exporter})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := out[0].StartTime(), export.Add(-10*time.Second); !got.Equal(want) {
		t.Errorf("start %v, want %v", got, want)
	}
	if got, want := out[0].EndTime(), export.Add(-1*time.Second); !got.Equal(want) {
		t.Errorf("end %v, want %v", got, want)
	}
}

func TestDecodeSampling(t *testing.T) {
	rec := []v5rec{{pkts: 3, octets: 300}}
	f := func(header uint16, override func(netip.Addr) (uint32, bool), wantRate uint32, wantPkts, wantBytes uint64) {
		t.Helper()
		data := buildV5(0, 0, 0, 0, 0, 0, header, rec)
		out, _, err := New(decode.Options{SamplingOverride: override}).Decode(nil, &decode.Packet{Data: data, Src: exporter})
		if err != nil {
			t.Fatal(err)
		}
		if out[0].SamplingRate != wantRate || out[0].Packets != wantPkts || out[0].Bytes != wantBytes {
			t.Errorf("header %#x: rate %d pkts %d bytes %d, want %d %d %d", header, out[0].SamplingRate, out[0].Packets, out[0].Bytes, wantRate, wantPkts, wantBytes)
		}
	}
	f(0, nil, 0, 3, 300)
	f(0x4000|100, nil, 100, 300, 30000) // mode bits are ignored, interval is the low 14 bits
	f(1, nil, 1, 3, 300)
	only := func(a netip.Addr) (uint32, bool) { return 10, a == exporter.Addr() }
	f(0x4000|100, only, 10, 30, 3000)
	other := func(a netip.Addr) (uint32, bool) { return 10, false }
	f(64, other, 64, 192, 19200)
}

func TestDecodeErrors(t *testing.T) {
	good := buildV5(0, 0, 0, 0, 0, 0, 0, []v5rec{{}, {}})
	f := func(name string, data []byte, want decode.Reason) {
		t.Helper()
		out, _, err := New(decode.Options{}).Decode(make([]flow.Record, 0, 4), &decode.Packet{Data: data, Src: exporter})
		var de *decode.Error
		if !errors.As(err, &de) || de.Reason != want {
			t.Errorf("%s: error %v, want reason %s", name, err, want)
		}
		if len(out) != 0 {
			t.Errorf("%s: %d records appended on error", name, len(out))
		}
	}
	f("empty", nil, decode.ReasonShort)
	f("header only part", good[:10], decode.ReasonShort)
	f("truncated record", good[:len(good)-1], decode.ReasonLength)
	zero := append([]byte(nil), good...)
	zero[3] = 0
	f("zero count", zero, decode.ReasonCount)
	absurd := append([]byte(nil), good...)
	binary.BigEndian.PutUint16(absurd[2:], 65535)
	f("absurd count", absurd, decode.ReasonCount)
	v9 := append([]byte(nil), good...)
	v9[1] = 9
	f("wrong version", v9, decode.ReasonVersion)
}

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		data []byte
		want bool
	}{{[]byte{0, 5}, true}, {[]byte{0, 9}, false}, {[]byte{0, 0, 0, 5}, false}, {[]byte{0}, false}, {nil, false}} {
		if got := Match(c.data); got != c.want {
			t.Errorf("Match(%v) = %v", c.data, got)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(buildV5(1000, 1, 2, 3, 4, 5, 6, []v5rec{{pkts: 1}, {octets: 9}}))
	f.Add([]byte{0, 5, 0, 1})
	d := New(decode.Options{})
	buf := make([]flow.Record, 0, MaxRecords)
	f.Fuzz(func(t *testing.T, data []byte) {
		out, res, err := d.Decode(buf[:0], &decode.Packet{Data: data, Src: exporter})
		if err != nil && len(out) != 0 {
			t.Fatalf("records returned with error %v", err)
		}
		if err == nil && (len(out) != res.Flows || len(out) > MaxRecords || len(data) < HeaderLen+len(out)*RecordLen) {
			t.Fatalf("inconsistent result: %d records, %+v, %d bytes", len(out), res, len(data))
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	recs := make([]v5rec, MaxRecords)
	for i := range recs {
		recs[i] = v5rec{src: [4]byte{10, 0, byte(i), 1}, dst: [4]byte{192, 0, 2, byte(i)}, pkts: uint32(i + 1), octets: uint32(100 * (i + 1)), sport: 1024, dport: 443, proto: 6}
	}
	data := buildV5(100_000, 1_700_000_000, 0, 0, 0, 0, 0, recs)
	d := New(decode.Options{})
	buf := make([]flow.Record, 0, MaxRecords)
	pkt := &decode.Packet{Data: data, Src: exporter}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		out, _, err := d.Decode(buf[:0], pkt)
		if err != nil || len(out) != MaxRecords {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*MaxRecords), "ns/record")
}
