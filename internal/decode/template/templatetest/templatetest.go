// Package templatetest holds helpers for the NetFlow v9 and IPFIX decoder
// tests: a big-endian datagram builder, a golden-file comparison of decoded
// records, and a minimal pcap reader for captured export datagrams.
package templatetest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
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

// Datagram is one UDP payload read from a capture.
type Datagram struct {
	Src  netip.AddrPort
	Dst  netip.AddrPort
	Time time.Time
	Data []byte
}

// Link types the pcap reader understands.
const (
	linkNull     = 0
	linkEthernet = 1
	linkRaw      = 101
	linkLinuxSLL = 113
	linkLoop     = 108
)

// ReadPcap reads the UDP datagrams of a classic pcap file (either byte
// order, micro- or nanosecond timestamps; Ethernet, Linux cooked, BSD
// loopback or raw IP links; IPv4 or IPv6). Fragments and non-UDP packets
// are skipped.
func ReadPcap(path string) ([]Datagram, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(raw) < 24 {
		return nil, fmt.Errorf("%s: short pcap header", path)
	}
	var order binary.ByteOrder
	nano := false
	switch binary.LittleEndian.Uint32(raw) {
	case 0xa1b2c3d4:
		order = binary.LittleEndian
	case 0xa1b23c4d:
		order, nano = binary.LittleEndian, true
	case 0xd4c3b2a1:
		order = binary.BigEndian
	case 0x4d3cb2a1:
		order, nano = binary.BigEndian, true
	default:
		return nil, fmt.Errorf("%s: not a pcap file", path)
	}
	link := order.Uint32(raw[20:]) & 0xFFFF
	var out []Datagram
	for p := 24; p+16 <= len(raw); {
		sec, sub := order.Uint32(raw[p:]), order.Uint32(raw[p+4:])
		incl := int(order.Uint32(raw[p+8:]))
		p += 16
		if incl > len(raw)-p {
			return out, fmt.Errorf("%s: truncated record", path)
		}
		frame := raw[p : p+incl]
		p += incl
		ts := time.Unix(int64(sec), int64(sub)*1000)
		if nano {
			ts = time.Unix(int64(sec), int64(sub))
		}
		ip, ok := stripLink(link, frame)
		if !ok {
			continue
		}
		d, ok := parseIPUDP(ip)
		if !ok {
			continue
		}
		d.Time = ts.UTC()
		out = append(out, d)
	}
	return out, nil
}

func stripLink(link uint32, f []byte) ([]byte, bool) {
	switch link {
	case linkEthernet:
		if len(f) < 14 {
			return nil, false
		}
		et, off := binary.BigEndian.Uint16(f[12:]), 14
		for (et == 0x8100 || et == 0x88a8) && len(f) >= off+4 {
			et, off = binary.BigEndian.Uint16(f[off+2:]), off+4
		}
		if et != 0x0800 && et != 0x86dd {
			return nil, false
		}
		return f[off:], true
	case linkLinuxSLL:
		if len(f) < 16 {
			return nil, false
		}
		return f[16:], true
	case linkNull, linkLoop:
		if len(f) < 4 {
			return nil, false
		}
		return f[4:], true
	case linkRaw:
		return f, true
	}
	return nil, false
}

func parseIPUDP(p []byte) (Datagram, bool) {
	var d Datagram
	if len(p) < 1 {
		return d, false
	}
	var src, dst netip.Addr
	var udp []byte
	switch p[0] >> 4 {
	case 4:
		if len(p) < 20 {
			return d, false
		}
		ihl := int(p[0]&0x0F) * 4
		total := int(binary.BigEndian.Uint16(p[2:]))
		if p[9] != 17 || ihl < 20 || total < ihl || total > len(p) || binary.BigEndian.Uint16(p[6:])&0x3FFF != 0 {
			return d, false
		}
		src, dst = netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20]))
		udp = p[ihl:total]
	case 6:
		if len(p) < 40 || p[6] != 17 {
			return d, false
		}
		plen := int(binary.BigEndian.Uint16(p[4:]))
		if 40+plen > len(p) {
			return d, false
		}
		src, dst = netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40]))
		udp = p[40 : 40+plen]
	default:
		return d, false
	}
	if len(udp) < 8 {
		return d, false
	}
	ulen := int(binary.BigEndian.Uint16(udp[4:]))
	if ulen < 8 || ulen > len(udp) {
		return d, false
	}
	d.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(udp))
	d.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(udp[2:]))
	d.Data = udp[8:ulen]
	return d, true
}
