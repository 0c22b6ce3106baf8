// Package templatetest holds helpers for the NetFlow v9 and IPFIX decoder
// tests: a big-endian datagram builder, a golden-file comparison of decoded
// records, and a check of a decoder against a real capture and its tshark
// oracle.
package templatetest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/testutil"
)

// Buf builds a datagram from big-endian integers and raw octets.
type Buf struct{ B []byte }

// U8 appends one octet.
func (b *Buf) U8(v uint8) *Buf { b.B = append(b.B, v); return b }

// U16 appends a big-endian uint16.
func (b *Buf) U16(v uint16) *Buf { b.B = binary.BigEndian.AppendUint16(b.B, v); return b }

// U32 appends a big-endian uint32.
func (b *Buf) U32(v uint32) *Buf { b.B = binary.BigEndian.AppendUint32(b.B, v); return b }

// U64 appends a big-endian uint64.
func (b *Buf) U64(v uint64) *Buf { b.B = binary.BigEndian.AppendUint64(b.B, v); return b }

// Raw appends octets.
func (b *Buf) Raw(p ...byte) *Buf { b.B = append(b.B, p...); return b }

// Addr appends the 4 or 16 octets of an address.
func (b *Buf) Addr(s string) *Buf { b.B = append(b.B, netip.MustParseAddr(s).AsSlice()...); return b }

// MAC appends a 6-octet Ethernet address.
func (b *Buf) MAC(s string) *Buf {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		panic("bad MAC " + s)
	}
	b.B = append(b.B, hw...)
	return b
}

// Len returns the current length.
func (b *Buf) Len() int { return len(b.B) }

// PutU16 overwrites a big-endian uint16 at off (to patch lengths).
func (b *Buf) PutU16(off int, v uint16) { binary.BigEndian.PutUint16(b.B[off:], v) }

// GoldenRecord is the JSON form of a flow.Record in golden files.
type GoldenRecord struct {
	Exporter string `json:"exporter"`
	Domain   uint32 `json:"domain"`
	Src      string `json:"src"`
	Dst      string `json:"dst"`
	NextHop  string `json:"next_hop,omitempty"`
	Start    string `json:"start"`
	End      string `json:"end"`
	Bytes    uint64 `json:"bytes"`
	Packets  uint64 `json:"packets"`
	Rate     uint32 `json:"rate,omitempty"`
	InIf     uint32 `json:"in_if,omitempty"`
	OutIf    uint32 `json:"out_if,omitempty"`
	SrcAS    uint32 `json:"src_as,omitempty"`
	DstAS    uint32 `json:"dst_as,omitempty"`
	SrcPort  uint16 `json:"src_port"`
	DstPort  uint16 `json:"dst_port"`
	SrcVLAN  uint16 `json:"src_vlan,omitempty"`
	DstVLAN  uint16 `json:"dst_vlan,omitempty"`
	Proto    uint8  `json:"proto"`
	TOS      uint8  `json:"tos,omitempty"`
	TCPFlags uint8  `json:"tcp_flags,omitempty"`
	SrcMask  uint8  `json:"src_mask,omitempty"`
	DstMask  uint8  `json:"dst_mask,omitempty"`
	SrcMAC   string `json:"src_mac,omitempty"`
	DstMAC   string `json:"dst_mac,omitempty"`
}

func macString(m [6]byte) string {
	if m == ([6]byte{}) {
		return ""
	}
	return net.HardwareAddr(m[:]).String()
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// Golden converts records to their golden form.
func Golden(recs []flow.Record) []GoldenRecord {
	out := make([]GoldenRecord, len(recs))
	for i, r := range recs {
		out[i] = GoldenRecord{
			Exporter: addrString(r.Exporter), Domain: r.Domain,
			Src: addrString(r.SrcAddr), Dst: addrString(r.DstAddr), NextHop: addrString(r.NextHop),
			Start: r.StartTime().Format(time.RFC3339Nano), End: r.EndTime().Format(time.RFC3339Nano),
			Bytes: r.Bytes, Packets: r.Packets, Rate: r.SamplingRate,
			InIf: r.InIf, OutIf: r.OutIf, SrcAS: r.SrcAS, DstAS: r.DstAS,
			SrcPort: r.SrcPort, DstPort: r.DstPort, SrcVLAN: r.SrcVLAN, DstVLAN: r.DstVLAN,
			Proto: r.Proto, TOS: r.TOS, TCPFlags: r.TCPFlags, SrcMask: r.SrcMask, DstMask: r.DstMask,
			SrcMAC: macString(r.SrcMAC), DstMAC: macString(r.DstMAC),
		}
	}
	return out
}

// CheckGolden compares v, marshalled as indented JSON, with
// testdata/<name>.golden.json, or rewrites that file when update is set.
func CheckGolden(t testing.TB, name string, v any, update bool) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name+".golden.json")
	if update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from decoded output (run with -update if intended)\ngot:\n%s", path, got)
	}
}

// CheckCapture decodes testdata/captures/<name>.pcap from the repository
// root (rootRel is the relative path to it) with dec and compares every
// datagram's sequence, flow and template counts, the totals, and every
// record with <name>.tshark.json. ICMP type and code, which flowscan keeps
// in DstPort as NetFlow v5 does, are compared with the oracle's
// icmp_type_code.
func CheckCapture(t *testing.T, dec decode.Decoder, rootRel, name string) {
	t.Helper()
	dir := filepath.Join(rootRel, "testdata", "captures")
	oracle, err := testutil.ReadOracle(filepath.Join(dir, name+".tshark.json"))
	if err != nil {
		t.Skipf("no capture oracle: %v", err)
	}
	dgrams, err := testutil.UDPDatagrams(filepath.Join(dir, name+".pcap"), uint16(oracle.Port))
	if err != nil {
		t.Fatal(err)
	}
	if len(dgrams) != oracle.Datagrams || len(oracle.DatagramInfo) != len(dgrams) {
		t.Fatalf("%d datagrams in capture, oracle says %d", len(dgrams), oracle.Datagrams)
	}
	var recs []flow.Record
	templates := 0
	for i, dg := range dgrams {
		before := len(recs)
		var res decode.Result
		recs, res, err = dec.Decode(recs, &decode.Packet{Data: dg.Payload, Src: dg.Src, Received: dg.Time})
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		want := oracle.DatagramInfo[i]
		if res.Sequence != want.Sequence || res.Flows != want.Flows || len(recs)-before != want.Flows || res.Templates != want.Templates || !res.SeqExact || res.Skipped != 0 {
			t.Errorf("datagram %d: %+v; tshark: %+v", i, res, want)
		}
		templates += res.Templates
	}
	var pkts, octets uint64
	v4, v6 := 0, 0
	got := make([]testutil.OracleFlow, 0, len(recs))
	for _, r := range recs {
		pkts += r.Packets
		octets += r.Bytes
		if r.IsIPv6() {
			v6++
		} else {
			v4++
		}
		f := testutil.OracleFlow{
			Src: r.SrcAddr.String(), Dst: r.DstAddr.String(), SrcPort: r.SrcPort, DstPort: r.DstPort,
			Proto: r.Proto, TOS: r.TOS, TCPFlags: r.TCPFlags, Packets: r.Packets, Bytes: r.Bytes,
			Start: string(flow.AppendTime(nil, r.Start)), End: string(flow.AppendTime(nil, r.End)),
		}
		if r.Proto == 1 || r.Proto == 58 {
			f.ICMPTypeCode, f.DstPort = f.DstPort, 0
		}
		got = append(got, f)
	}
	if len(recs) != oracle.Flows || pkts != oracle.Packets || octets != oracle.Bytes || v4 != oracle.FlowsIPv4 || v6 != oracle.FlowsIPv6 || templates != oracle.Templates {
		t.Errorf("totals: %d flows (%d v4, %d v6) %d packets %d bytes %d templates; tshark: %d flows (%d v4, %d v6) %d packets %d bytes %d templates",
			len(recs), v4, v6, pkts, octets, templates, oracle.Flows, oracle.FlowsIPv4, oracle.FlowsIPv6, oracle.Packets, oracle.Bytes, oracle.Templates)
	}
	testutil.SortOracleFlows(got)
	want := append([]testutil.OracleFlow(nil), oracle.Records...)
	testutil.SortOracleFlows(want)
	if len(got) != len(want) {
		t.Fatalf("%d records, oracle has %d", len(got), len(want))
	}
	bad := 0
	for i := range want {
		if got[i] != want[i] {
			if bad++; bad <= 10 {
				t.Errorf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
			}
		}
	}
	if bad > 10 {
		t.Errorf("%d records differ in all", bad)
	}
}
