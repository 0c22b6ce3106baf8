package gen

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
)

// Reference instants for the hand-computed layouts.
var (
	refNow  = time.Unix(1700000000, 123456789) // 0x6553f100, 0x075bcd15
	refMsec = refNow.UnixMilli()               // header clock as collectors compute it
)

// refRecord is an IPv4 flow exercising v5's truncations.
func refRecord() flow.Record {
	return flow.Record{
		SrcAddr:  netip.MustParseAddr("10.0.1.2"),
		DstAddr:  netip.MustParseAddr("192.0.2.33"),
		NextHop:  netip.MustParseAddr("192.0.2.1"),
		InIf:     70000, // 0x11170: v5 keeps 0x1170
		OutIf:    5,
		Packets:  10,
		Bytes:    5_000_000_000, // v5 saturates
		Start:    refMsec - 5000,
		End:      refMsec - 1000,
		SrcPort:  443,
		DstPort:  51234,
		TCPFlags: 0x1b,
		Proto:    6,
		TOS:      0xb8,
		SrcAS:    65001,
		DstAS:    4200000000, // v5: AS_TRANS
		SrcMask:  24,
		DstMask:  16,
		SrcVLAN:  100,
		SrcMAC:   [6]byte{2, 0, 0, 0, 0, 1},
		DstMAC:   [6]byte{2, 0, 0, 0, 0, 2},
	}
}

// unhex decodes hex with spaces.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppendNetFlow5Layout(t *testing.T) {
	hdr := V5Header{SysUptime: 3_600_000, UnixSecs: uint32(refNow.Unix()), UnixNsecs: uint32(refNow.Nanosecond()),
		FlowSequence: 7, EngineType: 1, EngineID: 2, SamplingMode: V5SamplingDeterministic, SamplingInterval: 100}
	ref := refRecord()
	v6 := ref
	v6.SrcAddr = netip.MustParseAddr("2001:db8::1")
	v6.NextHop = netip.Addr{}
	many := make([]flow.Record, 31)
	for i := range many {
		many[i] = ref
	}
	const refHex = "0a000102 c0000221 c0000201 1170 0005 0000000a ffffffff 0036daf8 0036ea98 01bb c822 00 1b 06 b8 fde9 5ba0 18 10 0000"
	tests := []struct {
		name   string
		hdr    V5Header
		recs   []flow.Record
		header string
		rec0   string
		n      int
	}{
		{"one record", hdr, []flow.Record{ref},
			"0005 0001 0036ee80 6553f100 075bcd15 00000007 01 02 4064", refHex, 1},
		{"empty", V5Header{}, nil,
			"0005 0000 00000000 00000000 00000000 00000000 00 00 0000", "", 0},
		{"ipv6 and zero next hop become zeros", hdr, []flow.Record{v6},
			"0005 0001 0036ee80 6553f100 075bcd15 00000007 01 02 4064",
			"00000000 c0000221 00000000 1170 0005 0000000a ffffffff 0036daf8 0036ea98 01bb c822 00 1b 06 b8 fde9 5ba0 18 10 0000", 1},
		{"random sampling, 31 records truncated to 30",
			V5Header{SysUptime: 3_600_000, UnixSecs: uint32(refNow.Unix()), UnixNsecs: uint32(refNow.Nanosecond()), SamplingMode: V5SamplingRandom, SamplingInterval: 0x3fff},
			many, "0005 001e 0036ee80 6553f100 075bcd15 00000000 00 00 bfff", refHex, 30},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("xyz")
			b := AppendNetFlow5(prefix, tc.hdr, tc.recs)
			if string(b[:3]) != "xyz" {
				t.Fatal("prefix clobbered")
			}
			b = b[3:]
			if len(b) != V5Datagram(tc.n) {
				t.Fatalf("len %d, want %d", len(b), V5Datagram(tc.n))
			}
			if got, want := hex.EncodeToString(b[:V5HeaderLen]), hex.EncodeToString(unhex(t, tc.header)); got != want {
				t.Errorf("header\n got %s\nwant %s", got, want)
			}
			if tc.n > 0 {
				if got, want := hex.EncodeToString(b[V5HeaderLen:V5HeaderLen+V5RecordLen]), hex.EncodeToString(unhex(t, tc.rec0)); got != want {
					t.Errorf("record\n got %s\nwant %s", got, want)
				}
			}
		})
	}
}

func TestV5MaxRecordsFor(t *testing.T) {
	for _, tc := range []struct{ budget, want int }{{1400, 28}, {1500, 30}, {65507, 30}, {72, 1}, {71, 0}, {0, 0}} {
		if got := V5MaxRecordsFor(tc.budget); got != tc.want {
			t.Errorf("V5MaxRecordsFor(%d) = %d, want %d", tc.budget, got, tc.want)
		}
	}
}

func TestV9Layout(t *testing.T) {
	e := &V9Encoder{SourceID: 42, Boot: time.Unix(refNow.Unix()-3600, 0)}
	ref := refRecord()
	b := e.Append(nil, refNow, []flow.Record{ref})
	// Header: version 9, count 3 (2 templates + 1 record), uptime 3600000,
	// secs, sequence 0, source 42.
	want := unhex(t, "0009 0003 0036ee80 6553f100 00000000 0000002a")
	if got := b[:V9HeaderLen]; string(got) != string(want) {
		t.Errorf("header\n got %x\nwant %x", got, want)
	}
	// Template flowset: id 0, length 4 + (4+22*4) + (4+22*4) = 188, then the
	// IPv4 template.
	want = unhex(t, "0000 00bc 0100 0016 0008 0004 000c 0004 000f 0004 000a 0004 000e 0004 0001 0008 0002 0008 0016 0004 0015 0004 "+
		"0007 0002 000b 0002 0004 0001 0005 0001 0006 0001 0010 0004 0011 0004 0009 0001 000d 0001 003a 0002 003b 0002 0038 0006 0050 0006 "+
		"0101 0016 001b 0010 001c 0010 003e 0010")
	if got := b[V9HeaderLen : V9HeaderLen+len(want)]; string(got) != string(want) {
		t.Errorf("templates\n got %x\nwant %x", got, want)
	}
	// Data flowset: id 256, length pad4(4+77) = 84, the record, 3 bytes pad.
	// Times relative to the header second: 3600000-4877 and 3600000-877.
	off := V9HeaderLen + 188
	want = unhex(t, "0100 0054 0a000102 c0000221 c0000201 00011170 00000005 000000012a05f200 000000000000000a "+
		"0036db73 0036eb13 01bb c822 06 b8 1b 0000fde9 fa56ea00 18 10 0064 0000 020000000001 020000000002 000000")
	if got := b[off:]; string(got) != string(want) {
		t.Errorf("data\n got %x\nwant %x", got, want)
	}
	if len(b) != 20+188+84 {
		t.Errorf("len %d", len(b))
	}
	// Second packet: no templates, sequence 1, count 1.
	b = e.Append(b[:0], refNow, []flow.Record{ref})
	want = unhex(t, "0009 0001 0036ee80 6553f100 00000001 0000002a 0100 0054")
	if got := b[:len(want)]; string(got) != string(want) {
		t.Errorf("second header\n got %x\nwant %x", got, want)
	}
}

func TestIPFIXLayout(t *testing.T) {
	e := &IPFIXEncoder{ObservationDomain: 7, SamplingInterval: 100}
	ref := refRecord()
	b := e.Append(nil, refNow, []flow.Record{ref, ref})
	if got := int(binary.BigEndian.Uint16(b[2:])); got != len(b) {
		t.Fatalf("length field %d, datagram %d", got, len(b))
	}
	want := unhex(t, "000a")
	want = binary.BigEndian.AppendUint16(want, uint16(len(b)))
	want = append(want, unhex(t, "6553f100 00000000 00000007")...)
	if got := b[:IPFIXHeaderLen]; string(got) != string(want) {
		t.Errorf("header\n got %x\nwant %x", got, want)
	}
	// Template set id 2, the IPv4 template with 152/153 in place of 22/21.
	want = unhex(t, "0002 00bc 0100 0016 0008 0004 000c 0004 000f 0004 000a 0004 000e 0004 0001 0008 0002 0008 0098 0008 0099 0008")
	if got := b[IPFIXHeaderLen : IPFIXHeaderLen+len(want)]; string(got) != string(want) {
		t.Errorf("templates\n got %x\nwant %x", got, want)
	}
	// Options template set 3 and its data record (scope domain 7, 34=100,
	// 305=1, 306=99).
	off := IPFIXHeaderLen + 188
	want = unhex(t, "0003 001a 0102 0004 0001 0095 0004 0022 0004 0131 0004 0132 0004 "+
		"0102 0014 00000007 00000064 00000001 00000063 "+
		"0100 00ae 0a000102 c0000221 c0000201 00011170 00000005 000000012a05f200 000000000000000a "+
		"0000018bcfe554f3 0000018bcfe56493 01bb c822 06 b8 1b 0000fde9 fa56ea00 18 10 0064 0000 020000000001 020000000002")
	if got := b[off : off+len(want)]; string(got) != string(want) {
		t.Errorf("options and data\n got %x\nwant %x", got, want)
	}
	if len(b) != off+len(want)+ipfixRec4 {
		t.Errorf("len %d, want %d", len(b), off+len(want)+ipfixRec4)
	}
	// Next message: sequence = 1 options record + 2 flows.
	b = e.Append(b[:0], refNow, []flow.Record{ref})
	if got := binary.BigEndian.Uint32(b[8:]); got != 3 {
		t.Errorf("second sequence %d, want 3", got)
	}
	if got := binary.BigEndian.Uint16(b[16:]); got != TemplateIPv4 {
		t.Errorf("second message starts with set %d, want data", got)
	}
}

func TestMaxRecords(t *testing.T) {
	tests := []struct {
		name   string
		budget int
		enc    func(budget int) (max int, appendN func(n int) []byte)
		want   int
	}{
		{"v9 1400", 1400, v9Max, 10},
		{"v9 9000", 9000, v9Max, 77},
		{"ipfix 1400", 1400, ipfixMax, 9},
		{"ipfix 9000", 9000, ipfixMax, 72},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, appendN := tc.enc(tc.budget)
			if n != tc.want {
				t.Errorf("MaxRecords = %d, want %d", n, tc.want)
			}
			// The worst case (first datagram: templates, sampling options,
			// all IPv6) fits, one more record would not.
			if got := len(appendN(n)); got > tc.budget {
				t.Errorf("%d records take %d bytes > %d", n, got, tc.budget)
			}
			if got := len(appendN(n + 1)); got <= tc.budget {
				t.Errorf("%d records take only %d bytes ≤ %d: MaxRecords is not tight", n+1, got, tc.budget)
			}
		})
	}
}

// v6Records returns n IPv6 copies of refRecord.
func v6Records(n int) []flow.Record {
	r := refRecord()
	r.SrcAddr = netip.MustParseAddr("2001:db8::1")
	r.DstAddr = netip.MustParseAddr("2001:db8::2")
	recs := make([]flow.Record, n)
	for i := range recs {
		recs[i] = r
	}
	return recs
}

func v9Max(budget int) (int, func(int) []byte) {
	e := &V9Encoder{MaxDatagram: budget, SamplingInterval: 10}
	return e.MaxRecords(), func(n int) []byte {
		return (&V9Encoder{SamplingInterval: 10}).Append(nil, refNow, v6Records(n))
	}
}

func ipfixMax(budget int) (int, func(int) []byte) {
	e := &IPFIXEncoder{MaxDatagram: budget, SamplingInterval: 10}
	return e.MaxRecords(), func(n int) []byte {
		return (&IPFIXEncoder{SamplingInterval: 10}).Append(nil, refNow, v6Records(n))
	}
}
