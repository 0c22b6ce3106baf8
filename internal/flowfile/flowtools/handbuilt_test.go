package flowtools

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"flag"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// This file builds flow-tools streams byte by byte from the documented
// layout (ftlib.h / ftio.c: generic header, 32-bit header length, TLVs,
// fts3rec_v5 records), independently of Write, and checks what the Reader
// makes of them.

// handOrder appends integers in one byte order, like flow-tools' writer
// on a host of that order.
type handOrder struct{ big bool }

func (o handOrder) u16(b []byte, v uint16) []byte {
	if o.big {
		return append(b, byte(v>>8), byte(v))
	}
	return append(b, byte(v), byte(v>>8))
}

func (o handOrder) u32(b []byte, v uint32) []byte {
	if o.big {
		return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}

func (o handOrder) tlv(b []byte, t uint16, v []byte) []byte {
	b = o.u16(b, t)
	b = o.u16(b, uint16(len(v)))
	return append(b, v...)
}

// handHeader is the header of the hand-built streams: every documented
// TLV, plus an unknown one that must be skipped.
func handHeader(o handOrder, flags uint32) []byte {
	bo := byte(1)
	if o.big {
		bo = 2
	}
	b := []byte{0xCF, 0x10, bo, 3, 0, 0, 0, 0}
	b = o.tlv(b, 0x1, []byte{1})                   // vendor (u8 as written by flow-tools)
	b = o.tlv(b, 0x2, o.u16(nil, 5))               // export version
	b = o.tlv(b, 0x5, o.u32(nil, 0xC0000201))      // exporter IP (numeric 0xC0000201)
	b = o.tlv(b, 0x6, o.u32(nil, 1297981500))      // capture start
	b = o.tlv(b, 0x7, o.u32(nil, 1297981800))      // capture end
	b = o.tlv(b, 0x8, o.u32(nil, flags))           // header flags
	b = o.tlv(b, 0x9, o.u32(nil, 287))             // rotation
	b = o.tlv(b, 0xA, o.u32(nil, 2))               // flow count
	b = o.tlv(b, 0xB, o.u32(nil, 480))             // lost flows
	b = o.tlv(b, 0xC, o.u32(nil, 0))               // misordered
	b = o.tlv(b, 0xD, o.u32(nil, 3))               // corrupt packets
	b = o.tlv(b, 0xE, o.u32(nil, 1))               // sequence resets
	b = o.tlv(b, 0x7777, []byte("abc"))            // unknown type, odd length
	b = o.tlv(b, 0xF, []byte("collector\x00"))     // hostname
	b = o.tlv(b, 0x10, []byte("lucas -n 287\x00")) // comments
	ifn := append(o.u16(o.u32(nil, 0xC0000201), 3), "ge-0/0/3\x00"...)
	b = o.tlv(b, 0x11, ifn) // interface name
	ifa := o.u16(o.u16(o.u16(o.u32(nil, 0xC0000201), 2), 3), 7)
	b = o.tlv(b, 0x12, append(ifa, "uplinks\x00"...)) // interface alias
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	if o.big {
		binary.BigEndian.PutUint32(b[4:], uint32(len(b)))
	} else {
		binary.LittleEndian.PutUint32(b[4:], uint32(len(b)))
	}
	return b
}

// handRecords are two fts3rec_v5 records: the second one's First is
// before the uptime counter wrapped.
func handRecords(o handOrder) []byte {
	rec := func(secs, nsecs, up, ex, src, dst, nh uint32, in, out uint16, pkts, octets, first, last uint32,
		sport, dport uint16, prot, tos, flags, etype, eid, smask, dmask byte, sas, das uint16) []byte {
		b := o.u32(nil, secs)
		b = o.u32(b, nsecs)
		b = o.u32(b, up)
		b = o.u32(b, ex)
		b = o.u32(b, src)
		b = o.u32(b, dst)
		b = o.u32(b, nh)
		b = o.u16(b, in)
		b = o.u16(b, out)
		b = o.u32(b, pkts)
		b = o.u32(b, octets)
		b = o.u32(b, first)
		b = o.u32(b, last)
		b = o.u16(b, sport)
		b = o.u16(b, dport)
		b = append(b, prot, tos, flags, 0xEE /* pad, ignored */, etype, eid, smask, dmask)
		b = o.u16(b, sas)
		b = o.u16(b, das)
		if len(b) != 64 {
			panic("record length")
		}
		return b
	}
	b := rec(1297981501, 250_000_000, 100000, 0xC0000201, 0x0A010203, 0xC6336407, 0,
		3, 7, 12, 3456, 40000, 99000, 51234, 443, 6, 0x10, 0x1b, 1, 2, 24, 22, 64512, 15169)
	return append(b, rec(1297981501, 250_000_000, 5000, 0xC0000201, 0xC6336408, 0x0A010204, 0x0A0000FE,
		7, 3, 1, 76, 0xFFFFF000, 4000, 53, 33000, 17, 0, 0, 0, 0, 0, 0, 0, 0)...)
}

var (
	handWall = int64(1297981501250)
	handWant = []flow.Record{{
		Exporter: netip.MustParseAddr("192.0.2.1"),
		SrcAddr:  netip.MustParseAddr("10.1.2.3"),
		DstAddr:  netip.MustParseAddr("198.51.100.7"),
		Start:    handWall - 60000, End: handWall - 1000,
		Bytes: 3456, Packets: 12,
		Domain: 0x0102, InIf: 3, OutIf: 7, SrcAS: 64512, DstAS: 15169,
		SrcPort: 51234, DstPort: 443, Proto: 6, TOS: 0x10, TCPFlags: 0x1b, SrcMask: 24, DstMask: 22,
	}, {
		Exporter: netip.MustParseAddr("192.0.2.1"),
		SrcAddr:  netip.MustParseAddr("198.51.100.8"),
		DstAddr:  netip.MustParseAddr("10.1.2.4"),
		NextHop:  netip.MustParseAddr("10.0.0.254"),
		Start:    handWall - 9096, End: handWall - 1000,
		Bytes: 76, Packets: 1, InIf: 7, OutIf: 3, SrcPort: 53, DstPort: 33000, Proto: 17,
	}}
	handHeaderWant = Header{
		StreamVersion: 3,
		Fields: FieldVendor | FieldExportVersion | FieldExporter | FieldCaptureStart | FieldCaptureEnd |
			FieldFlags | FieldRotation | FieldFlows | FieldLostFlows | FieldMisordered | FieldCorruptPackets |
			FieldSequenceResets | FieldHostname | FieldComments | FieldInterfaceNames | FieldInterfaceAlias,
		Vendor: 1, ExportVersion: 5, Exporter: netip.MustParseAddr("192.0.2.1"),
		CaptureStart: time.Unix(1297981500, 0).UTC(), CaptureEnd: time.Unix(1297981800, 0).UTC(),
		Rotation: 287, Flows: 2, LostFlows: 480, CorruptPackets: 3, SequenceResets: 1,
		Hostname: "collector", Comments: "lucas -n 287",
		InterfaceNames:   []InterfaceName{{Device: netip.MustParseAddr("192.0.2.1"), IfIndex: 3, Name: "ge-0/0/3"}},
		InterfaceAliases: []InterfaceAlias{{Device: netip.MustParseAddr("192.0.2.1"), IfIndexes: []uint16{3, 7}, Name: "uplinks"}},
	}
)

func readAll(t testing.TB, r *Reader) ([]flow.Record, error) {
	t.Helper()
	var out []flow.Record
	for {
		var err error
		out, err = r.Next(out)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// TestHandBuiltGolden decodes testdata/handbuilt-be.ft, a big-endian
// uncompressed stream built byte by byte here (and compared with the
// committed copy).
func TestHandBuiltGolden(t *testing.T) {
	o := handOrder{big: true}
	data := append(handHeader(o, FlagDone), handRecords(o)...)
	path := filepath.Join("testdata", "handbuilt-be.ft")
	if *update {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	committed, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed, data) {
		t.Fatalf("%s differs from the bytes built by the test (run with -update?)", path)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := handHeaderWant
	want.ByteOrder, want.Flags, want.Size = BigEndian, FlagDone, len(handHeader(o, FlagDone))
	if got := *r.Header(); !reflect.DeepEqual(got, want) {
		t.Errorf("header\n got %+v\nwant %+v", got, want)
	}
	recs, err := readAll(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(recs, handWant) {
		t.Errorf("records\n got %+v\nwant %+v", recs, handWant)
	}
}

// TestHandBuiltVariants decodes the same content in both byte orders,
// compressed (zlib) and not.
func TestHandBuiltVariants(t *testing.T) {
	for _, tt := range []struct {
		name     string
		big, z   bool
		wantBO   ByteOrder
		wantFlag uint32
	}{
		{"little", false, false, LittleEndian, FlagDone},
		{"big", true, false, BigEndian, FlagDone},
		{"little-zlib", false, true, LittleEndian, FlagDone | FlagCompress},
		{"big-zlib", true, true, BigEndian, FlagDone | FlagCompress},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := handOrder{big: tt.big}
			hdr := handHeader(o, tt.wantFlag)
			body := handRecords(o)
			if tt.z {
				var zb bytes.Buffer
				zw := zlib.NewWriter(&zb)
				zw.Write(body)
				zw.Close()
				body = zb.Bytes()
			}
			r, err := NewReader(bytes.NewReader(append(hdr, body...)))
			if err != nil {
				t.Fatal(err)
			}
			want := handHeaderWant
			want.ByteOrder, want.Flags, want.Size = tt.wantBO, tt.wantFlag, len(hdr)
			if got := *r.Header(); !reflect.DeepEqual(got, want) {
				t.Errorf("header\n got %+v\nwant %+v", got, want)
			}
			recs, err := readAll(t, r)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(recs, handWant) {
				t.Errorf("records\n got %+v\nwant %+v", recs, handWant)
			}
		})
	}
}

// TestV6V7Records checks that the longer v6 (72 bytes) and v7 (68 bytes)
// records, which start with the v5 layout, are read.
func TestV6V7Records(t *testing.T) {
	for _, v := range []struct {
		ver   uint16
		extra int
	}{{6, 8}, {7, 4}} {
		o := handOrder{big: true}
		b := []byte{0xCF, 0x10, 2, 3, 0, 0, 0, 16}
		b = o.tlv(b, 0x2, o.u16(nil, v.ver))
		b = append(b, 0, 0)
		rec := handRecords(o)
		for i := 0; i < 2; i++ {
			b = append(b, rec[i*64:(i+1)*64]...)
			b = append(b, make([]byte, v.extra)...)
		}
		r, err := NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("v%d: %v", v.ver, err)
		}
		recs, err := readAll(t, r)
		if err != nil || !reflect.DeepEqual(recs, handWant) {
			t.Errorf("v%d: %v\n got %+v\nwant %+v", v.ver, err, recs, handWant)
		}
	}
}

func TestBadStreams(t *testing.T) {
	o := handOrder{big: true}
	good := append(handHeader(o, FlagDone), handRecords(o)...)
	hlen := len(handHeader(o, FlagDone))
	var zb bytes.Buffer
	zw := zlib.NewWriter(&zb)
	zw.Write(handRecords(o))
	zw.Close()
	zgood := append(handHeader(o, FlagDone|FlagCompress), zb.Bytes()...)
	mod := func(b []byte, f func([]byte) []byte) []byte { return f(bytes.Clone(b)) }

	tests := []struct {
		name    string
		data    []byte
		openErr error
		recs    int   // complete records before nextErr; -1: any
		nextErr error // nil: clean io.EOF
	}{
		{"empty", nil, ErrCorrupt, 0, nil},
		{"one byte", []byte{0xCF}, ErrCorrupt, 0, nil},
		{"bad magic", mod(good, func(b []byte) []byte { b[1] = 0x11; return b }), ErrNotFlowTools, 0, nil},
		{"bad byte order", mod(good, func(b []byte) []byte { b[2] = 3; return b }), ErrCorrupt, 0, nil},
		{"stream version 1", mod(good, func(b []byte) []byte { b[3] = 1; return b }), ErrUnsupported, 0, nil},
		{"header too short", mod(good, func(b []byte) []byte { binary.BigEndian.PutUint32(b[4:], 4); return b }), ErrCorrupt, 0, nil},
		{"header too long", mod(good, func(b []byte) []byte { binary.BigEndian.PutUint32(b[4:], 1<<31); return b }), ErrCorrupt, 0, nil},
		{"header truncated", good[:hlen-1], ErrCorrupt, 0, nil},
		{"export version 8", mod(good, func(b []byte) []byte { b[8+5+4+1] = 8; return b }), ErrUnsupported, 0, nil},
		{"no records", good[:hlen], nil, 0, nil},
		{"partial record", good[:len(good)-10], nil, 1, ErrTruncated},
		{"zlib truncated", zgood[:len(zgood)-20], nil, -1, ErrTruncated},
		{"zlib checksum", mod(zgood, func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), nil, 2, ErrCorrupt},
		{"zlib garbage", append(handHeader(o, FlagDone|FlagCompress), bytes.Repeat([]byte{0xFF}, 100)...), ErrCorrupt, 0, nil},
		{"zlib empty, in progress", handHeader(o, FlagCompress), nil, 0, nil},
		{"zlib empty, done", handHeader(o, FlagDone|FlagCompress), nil, 0, ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(tt.data))
			if tt.openErr != nil {
				if !errors.Is(err, tt.openErr) {
					t.Fatalf("NewReader error %v, want %v", err, tt.openErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			recs, err := readAll(t, r)
			if tt.recs >= 0 && len(recs) != tt.recs {
				t.Errorf("%d records, want %d", len(recs), tt.recs)
			}
			if tt.nextErr == nil && err != nil || tt.nextErr != nil && !errors.Is(err, tt.nextErr) {
				t.Errorf("error %v, want %v", err, tt.nextErr)
			}
			if _, err2 := r.Next(nil); err != nil && err2 == nil {
				t.Error("error is not sticky")
			}
		})
	}
}

// TestTLVOverrun checks that a TLV claiming more bytes than the header
// holds ends header decoding (keeping earlier values) without failing.
func TestTLVOverrun(t *testing.T) {
	o := handOrder{big: true}
	b := []byte{0xCF, 0x10, 2, 3, 0, 0, 0, 0}
	b = o.tlv(b, 0x2, o.u16(nil, 5))
	b = o.tlv(b, 0xB, o.u32(nil, 9))
	b = o.u16(b, 0xF)
	b = o.u16(b, 500) // hostname "longer" than the header
	b = append(b, "host"...)
	binary.BigEndian.PutUint32(b[4:], uint32(len(b)))
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if h := r.Header(); h.LostFlows != 9 || h.Hostname != "" || h.Has(FieldHostname) {
		t.Errorf("header %+v", h)
	}
}
