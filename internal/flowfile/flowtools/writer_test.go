package flowtools

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
)

// testFlows returns n deterministic IPv4 flows starting at base (Unix ms),
// with every 10th one IPv6.
func testFlows(n int, base int64) []flow.Record {
	out := make([]flow.Record, n)
	for i := range out {
		r := &out[i]
		*r = flow.Record{
			Exporter: netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + i%3)}),
			SrcAddr:  netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}),
			DstAddr:  netip.AddrFrom4([4]byte{198, 51, 100, byte(i * 7)}),
			Start:    base + int64(i)*37,
			End:      base + int64(i)*37 + int64(i%50)*1013,
			Bytes:    uint64(40 + i*13),
			Packets:  uint64(1 + i%17),
			Domain:   uint32(i%2)<<8 | uint32(i%5),
			InIf:     uint32(i % 40),
			OutIf:    uint32(i % 41),
			SrcAS:    uint32(64512 + i%100),
			DstAS:    uint32(i % 700),
			SrcPort:  uint16(1024 + i),
			DstPort:  uint16([]int{80, 443, 53, 22}[i%4]),
			Proto:    []uint8{6, 17, 1}[i%3],
			TOS:      uint8(i % 4 * 8),
			TCPFlags: uint8(i % 64),
			SrcMask:  uint8(8 + i%25),
			DstMask:  uint8(i % 33),
		}
		if i%4 == 1 {
			r.NextHop = netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})
		}
		if i%10 == 9 {
			r.SrcAddr = netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i))
			r.DstAddr = netip.MustParseAddr("2001:db8::1")
		}
	}
	return out
}

func ipv4Only(recs []flow.Record) []flow.Record {
	var out []flow.Record
	for _, r := range recs {
		if !r.IsIPv6() {
			out = append(out, r)
		}
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	base := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC).UnixMilli()
	recs := testFlows(3000, base)
	want := ipv4Only(recs)
	h := Header{
		Exporter:     netip.MustParseAddr("192.0.2.1"),
		CaptureStart: time.Unix(base/1000, 0).UTC(),
		CaptureEnd:   time.Unix(base/1000+300, 0).UTC(),
		Rotation:     287, LostFlows: 480, MisorderedFlows: 2, CorruptPackets: 3, SequenceResets: 4,
		Hostname: "collector.example", Comments: "flowscan test",
		InterfaceNames: []InterfaceName{{Device: netip.MustParseAddr("192.0.2.1"), IfIndex: 3, Name: "ge-0/0/3"}},
	}
	for _, tt := range []struct {
		name string
		opts WriteOptions
		bo   ByteOrder
	}{
		{"little", WriteOptions{}, LittleEndian},
		{"big", WriteOptions{ByteOrder: BigEndian}, BigEndian},
		{"little-zlib", WriteOptions{Compress: true}, LittleEndian},
		{"big-zlib-9", WriteOptions{ByteOrder: BigEndian, Compress: true, Level: 9}, BigEndian},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var skipped int
			tt.opts.Skipped = &skipped
			var buf bytes.Buffer
			if err := Write(&buf, h, recs, tt.opts); err != nil {
				t.Fatal(err)
			}
			if skipped != len(recs)-len(want) {
				t.Errorf("skipped %d, want %d", skipped, len(recs)-len(want))
			}
			if !tt.opts.Compress && buf.Len() != buf.Len()/4*4 {
				t.Errorf("uncompressed length %d", buf.Len())
			}
			r, err := NewReader(&buf)
			if err != nil {
				t.Fatal(err)
			}
			got := r.Header()
			if got.ByteOrder != tt.bo || got.Compressed() != tt.opts.Compress || !got.Done() ||
				got.ExportVersion != 5 || got.Flows != uint32(len(want)) || got.Size%4 != 0 {
				t.Errorf("header %+v", got)
			}
			wh := h
			wh.ByteOrder, wh.StreamVersion, wh.Size, wh.Fields = got.ByteOrder, 3, got.Size, got.Fields
			wh.ExportVersion, wh.Flags, wh.Flows = 5, got.Flags, uint32(len(want))
			if !reflect.DeepEqual(*got, wh) {
				t.Errorf("header\n got %+v\nwant %+v", *got, wh)
			}
			recs, err := readAll(t, r)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != len(want) {
				t.Fatalf("%d records, want %d", len(recs), len(want))
			}
			for i := range want {
				if recs[i] != want[i] {
					t.Fatalf("record %d\n got %+v\nwant %+v", i, recs[i], want[i])
				}
			}
		})
	}
}

// TestWriteNarrowing checks what happens to values v5 cannot hold.
func TestWriteNarrowing(t *testing.T) {
	base := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC).UnixMilli()
	in := []flow.Record{{
		SrcAddr: netip.MustParseAddr("::ffff:10.0.0.1"), DstAddr: netip.MustParseAddr("10.0.0.2"),
		Start: base, End: base + 1,
		Bytes: 1 << 40, Packets: 1 << 33, InIf: 70000, OutIf: 65535,
		SrcAS: 4200000000, DstAS: 65535, Domain: 0xABCDE, SamplingRate: 100,
		SrcVLAN: 5, SrcMAC: [6]byte{1, 2, 3, 4, 5, 6},
	}}
	var buf bytes.Buffer
	if err := Write(&buf, Header{}, in, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, r)
	if err != nil || len(got) != 1 {
		t.Fatal(err, len(got))
	}
	want := flow.Record{
		SrcAddr: netip.MustParseAddr("10.0.0.1"), DstAddr: netip.MustParseAddr("10.0.0.2"),
		Exporter: netip.MustParseAddr("0.0.0.0"),
		Start:    base, End: base + 1,
		Bytes: 1<<32 - 1, Packets: 1<<32 - 1, InIf: 65535, OutIf: 65535,
		SrcAS: asTrans, DstAS: 65535, Domain: 0xBCDE,
	}
	if got[0] != want {
		t.Errorf("got  %+v\nwant %+v", got[0], want)
	}
	if h := r.Header(); h.Has(FieldExporter) || h.Has(FieldHostname) || !h.Has(FieldFlows|FieldLostFlows) {
		t.Errorf("header fields %#x", h.Fields)
	}
}

// TestGoldenFile decodes the committed
// testdata/ft-v05.2026-11-23.120000+0000 (written by Write from
// goldenFlows) and compares the records with the committed JSON. With
// -update both are regenerated.
func TestGoldenFile(t *testing.T) {
	path := filepath.Join("testdata", "ft-v05.2026-11-23.120000+0000")
	jsonPath := path + ".json"
	start, ok := ParseName(filepath.Base(path))
	if !ok {
		t.Fatal("golden name does not parse")
	}
	h := Header{
		Exporter: netip.MustParseAddr("192.0.2.1"), CaptureStart: start, CaptureEnd: start.Add(5 * time.Minute),
		Rotation: 287, LostFlows: 7, Hostname: "golden", Comments: "flowscan golden file",
	}
	var fresh bytes.Buffer
	if err := Write(&fresh, h, testFlows(40, start.UnixMilli()), WriteOptions{Compress: true, Level: 9}); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(path, fresh.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	decodeJSON := func(r *Reader) ([]byte, []flow.Record) {
		recs, err := readAll(t, r)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.MarshalIndent(struct {
			Header  *Header
			Records []flow.Record
		}{r.Header(), recs}, "", "\t")
		if err != nil {
			t.Fatal(err)
		}
		return append(b, '\n'), recs
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, recs := decodeJSON(r)
	// The writer's current output must still decode to the same thing
	// (its compressed bytes may differ between Go releases).
	fr, err := NewReader(&fresh)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := decodeJSON(fr); !bytes.Equal(again, got) {
		t.Error("Write's current output decodes differently from the committed golden file")
	}
	if *update {
		if err := os.WriteFile(jsonPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("decoded %s differs from %s (run with -update after checking)", path, jsonPath)
	}
	if len(recs) != 36 || r.Header().Flows != 36 {
		t.Errorf("%d records, header says %d; want 36", len(recs), r.Header().Flows)
	}
	entries, err := List("testdata")
	if err != nil || len(entries) != 1 || !entries[0].Start.Equal(start) {
		t.Errorf("List(testdata) = %v, %v", entries, err)
	}
}
