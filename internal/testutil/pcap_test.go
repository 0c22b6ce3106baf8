package testutil

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// udp4Frame builds an IPv4/UDP packet (no link header).
func udp4Frame(src, dst netip.AddrPort, payload []byte) []byte {
	b := make([]byte, 28+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8], b[9] = 64, 17
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	binary.BigEndian.PutUint16(b[20:], src.Port())
	binary.BigEndian.PutUint16(b[22:], dst.Port())
	binary.BigEndian.PutUint16(b[24:], uint16(8+len(payload)))
	copy(b[28:], payload)
	return b
}

// udp6Frame builds an IPv6/UDP packet, optionally behind a hop-by-hop
// extension header.
func udp6Frame(src, dst netip.AddrPort, payload []byte, hopByHop bool) []byte {
	ext := 0
	if hopByHop {
		ext = 8
	}
	b := make([]byte, 40+ext+8+len(payload))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(ext+8+len(payload)))
	b[6], b[7] = 17, 64
	s, d := src.Addr().As16(), dst.Addr().As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	u := b[40:]
	if hopByHop {
		b[6] = 0
		u[0], u[1] = 17, 0
		u = u[8:]
	}
	binary.BigEndian.PutUint16(u[0:], src.Port())
	binary.BigEndian.PutUint16(u[2:], dst.Port())
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	copy(u[8:], payload)
	return b
}

func TestParseFrameLinkTypes(t *testing.T) {
	src4 := netip.MustParseAddrPort("192.0.2.1:40000")
	dst4 := netip.MustParseAddrPort("127.0.0.1:2055")
	src6 := netip.MustParseAddrPort("[2001:db8::1]:40001")
	dst6 := netip.MustParseAddrPort("[::1]:4739")
	payload := []byte("export datagram")
	ip4 := udp4Frame(src4, dst4, payload)
	ip6 := udp6Frame(src6, dst6, payload, false)
	ip6ext := udp6Frame(src6, dst6, payload, true)

	eth := func(etherType uint16, vlan bool, ip []byte) []byte {
		b := make([]byte, 12, 18+len(ip))
		if vlan {
			b = binary.BigEndian.AppendUint16(b, 0x8100)
			b = binary.BigEndian.AppendUint16(b, 42)
		}
		b = binary.BigEndian.AppendUint16(b, etherType)
		return append(b, ip...)
	}
	sll := func(etherType uint16, ip []byte) []byte {
		b := make([]byte, 14, 16+len(ip))
		return append(binary.BigEndian.AppendUint16(b, etherType), ip...)
	}
	sll2 := func(etherType uint16, ip []byte) []byte {
		b := binary.BigEndian.AppendUint16(nil, etherType)
		return append(append(b, make([]byte, 18)...), ip...)
	}
	null := func(fam uint32, ip []byte) []byte {
		return append(binary.LittleEndian.AppendUint32(nil, fam), ip...)
	}

	f := func(name string, linkType uint32, frame []byte, src, dst netip.AddrPort) {
		t.Helper()
		p, err := ParseFrame(linkType, frame)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := netip.AddrPortFrom(p.Src, p.SrcPort); got != src {
			t.Errorf("%s: src %v, want %v", name, got, src)
		}
		if got := netip.AddrPortFrom(p.Dst, p.DstPort); got != dst {
			t.Errorf("%s: dst %v, want %v", name, got, dst)
		}
		if p.Proto != 17 || !bytes.Equal(p.Payload, payload) || p.Truncated {
			t.Errorf("%s: proto %d payload %q truncated %v", name, p.Proto, p.Payload, p.Truncated)
		}
	}
	f("ethernet v4", LinkTypeEthernet, eth(0x0800, false, ip4), src4, dst4)
	f("ethernet vlan v6", LinkTypeEthernet, eth(0x86dd, true, ip6), src6, dst6)
	f("ethernet v6 hop-by-hop", LinkTypeEthernet, eth(0x86dd, false, ip6ext), src6, dst6)
	f("sll v4", LinkTypeLinuxSLL, sll(0x0800, ip4), src4, dst4)
	f("sll v6", LinkTypeLinuxSLL, sll(0x86dd, ip6), src6, dst6)
	f("sll2 v4", LinkTypeLinuxSL2, sll2(0x0800, ip4), src4, dst4)
	f("null v4", LinkTypeNull, null(2, ip4), src4, dst4)
	f("null v6 linux", LinkTypeNull, null(10, ip6), src6, dst6)
	f("null v6 bsd big endian", LinkTypeNull, append(binary.BigEndian.AppendUint32(nil, 24), ip6...), src6, dst6)
	f("raw v4", LinkTypeRaw, ip4, src4, dst4)

	// Failures.
	bad := func(name string, linkType uint32, frame []byte) {
		t.Helper()
		if _, err := ParseFrame(linkType, frame); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	bad("arp", LinkTypeEthernet, eth(0x0806, false, make([]byte, 28)))
	bad("short ethernet", LinkTypeEthernet, make([]byte, 10))
	bad("short ipv4", LinkTypeRaw, ip4[:12])
	bad("short ipv6", LinkTypeRaw, ip6[:30])
	bad("unknown link", 9999, ip4)
	bad("null unknown family", LinkTypeNull, null(7, ip4))
}

func TestParseFrameTruncatedUDP(t *testing.T) {
	ip := udp4Frame(netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:2"), make([]byte, 100))
	p, err := ParseFrame(LinkTypeRaw, ip[:60])
	if err != nil {
		t.Fatal(err)
	}
	if !p.Truncated || len(p.Payload) != 32 || p.IPLen != 128 {
		t.Errorf("truncated %v payload %d iplen %d", p.Truncated, len(p.Payload), p.IPLen)
	}
}

func TestPcapRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, LinkTypeRaw, 50)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2024, 3, 1, 12, 0, 0, 123456000, time.UTC)
	frames := [][]byte{
		udp4Frame(netip.MustParseAddrPort("10.0.0.1:1000"), netip.MustParseAddrPort("10.0.0.2:2055"), []byte("a")),
		udp4Frame(netip.MustParseAddrPort("10.0.0.1:1000"), netip.MustParseAddrPort("10.0.0.2:2055"), make([]byte, 100)),
	}
	for i, f := range frames {
		if err := w.WritePacket(ts.Add(time.Duration(i)*time.Second), f, 0); err != nil {
			t.Fatal(err)
		}
	}
	r, err := NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != LinkTypeRaw || r.SnapLen() != 50 {
		t.Errorf("link type %d snaplen %d", r.LinkType(), r.SnapLen())
	}
	for i, f := range frames {
		rec, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !rec.Time.Equal(ts.Add(time.Duration(i) * time.Second)) {
			t.Errorf("record %d time %v", i, rec.Time)
		}
		want := f[:min(len(f), 50)]
		if !bytes.Equal(rec.Data, want) || rec.OrigLen != len(f) {
			t.Errorf("record %d: %d bytes (orig %d), want %d (orig %d)", i, len(rec.Data), rec.OrigLen, len(want), len(f))
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after last record: %v, want io.EOF", err)
	}

	// A file cut inside a record is an error, not a clean end.
	r, _ = NewReader(bytes.NewReader(buf.Bytes()[:buf.Len()-5]))
	r.Next()
	if _, err := r.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut file: %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestReaderVariants(t *testing.T) {
	// Big-endian nanosecond file with one record, and a pcapng header.
	var b []byte
	b = binary.BigEndian.AppendUint32(b, magicNano)
	b = binary.BigEndian.AppendUint16(b, 2)
	b = binary.BigEndian.AppendUint16(b, 4)
	b = append(b, make([]byte, 8)...)
	b = binary.BigEndian.AppendUint32(b, 65535)
	b = binary.BigEndian.AppendUint32(b, LinkTypeEthernet)
	b = binary.BigEndian.AppendUint32(b, 1709294400)
	b = binary.BigEndian.AppendUint32(b, 999999999)
	b = binary.BigEndian.AppendUint32(b, 3)
	b = binary.BigEndian.AppendUint32(b, 3)
	b = append(b, 1, 2, 3)
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if rec.Time.Nanosecond() != 999999999 || rec.Time.Unix() != 1709294400 || len(rec.Data) != 3 {
		t.Errorf("got %v %v", rec.Time, rec.Data)
	}
	ng := binary.LittleEndian.AppendUint32(nil, pcapngMagic)
	ng = append(ng, make([]byte, 20)...)
	if _, err := NewReader(bytes.NewReader(ng)); !errors.Is(err, ErrPcapNG) {
		t.Errorf("pcapng: %v", err)
	}
}

func TestGenerateTraffic(t *testing.T) {
	var a, b bytes.Buffer
	sum, err := GenerateTraffic(&a, TrafficConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := GenerateTraffic(&b, TrafficConfig{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("generator is not deterministic")
	}
	if sum.Packets < 2000 || sum.IPv4Packets == 0 || sum.IPv6Packets == 0 || sum.Flows < 100 {
		t.Errorf("summary %+v", sum)
	}
	if d := sum.Last.Sub(sum.First); d < 45*time.Second || d > 60*time.Second {
		t.Errorf("time span %v", d)
	}

	// Read it back: every frame parses, IP lengths add up, timestamps are
	// ordered, and several protocols and conversations are present.
	r, err := NewReader(bytes.NewReader(a.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var n, v6 int
	var ipBytes uint64
	protos := map[uint8]int{}
	hosts := map[netip.Addr]bool{}
	var last time.Time
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p, err := ParseFrame(r.LinkType(), rec.Data)
		if err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		if rec.Time.Before(last) {
			t.Fatalf("frame %d: time goes backwards", n)
		}
		if want := max(60, 14+p.IPLen); rec.OrigLen != want {
			t.Fatalf("frame %d: orig len %d, want %d", n, rec.OrigLen, want)
		}
		if p.Src.Is4() && ipv4Checksum(rec.Data[14:34]) != 0 {
			t.Fatalf("frame %d: bad IPv4 header checksum", n)
		}
		last = rec.Time
		n++
		ipBytes += uint64(p.IPLen)
		protos[p.Proto]++
		hosts[p.Src] = true
		if p.Src.Is6() {
			v6++
		}
	}
	if n != sum.Packets || v6 != sum.IPv6Packets || ipBytes != sum.IPBytes {
		t.Errorf("read back %d packets (%d v6, %d bytes), summary %+v", n, v6, ipBytes, sum)
	}
	for _, p := range []uint8{1, 6, 17, 58} {
		if protos[p] == 0 {
			t.Errorf("no packets of protocol %d", p)
		}
	}
	if len(hosts) < 30 {
		t.Errorf("only %d distinct source hosts", len(hosts))
	}
}

// TestTrafficPcapUpToDate checks that testdata/traffic.pcap is what the
// generator produces, so the captures derived from it stay reproducible.
func TestTrafficPcapUpToDate(t *testing.T) {
	path := filepath.Join("..", "..", "testdata", "traffic.pcap")
	want, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("no committed traffic capture: %v", err)
	}
	var got bytes.Buffer
	if _, err := GenerateTraffic(&got, TrafficConfig{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("%s differs from the generator's output; regenerate it with go generate ./internal/testutil and rerun testdata/captures/regen.sh", path)
	}
}

// TestCapturesMatchOracles checks the committed softflowd captures against
// their committed tshark oracles: datagram counts without tshark, and the
// full reduction when tshark is installed.
func TestCapturesMatchOracles(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "captures")
	cases := []struct {
		name    string
		port    int
		version int
	}{
		{"softflowd-v5", 39005, 5},
		{"softflowd-v9", 39009, 9},
		{"softflowd-ipfix", 39010, 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			golden, err := ReadOracle(filepath.Join(dir, c.name+".tshark.json"))
			if err != nil {
				t.Skipf("no oracle: %v", err)
			}
			dgs, err := UDPDatagrams(filepath.Join(dir, c.name+".pcap"), uint16(c.port))
			if err != nil {
				t.Fatal(err)
			}
			if len(dgs) != golden.Datagrams || golden.Version != c.version {
				t.Errorf("%d datagrams in capture, oracle says %d (version %d)", len(dgs), golden.Datagrams, golden.Version)
			}
			for i, d := range dgs {
				if d.Truncated || len(d.Payload) < 16 {
					t.Errorf("datagram %d truncated (%d bytes)", i, len(d.Payload))
				}
				if v := int(binary.BigEndian.Uint16(d.Payload)); v != c.version {
					t.Errorf("datagram %d: version %d", i, v)
				}
			}
			if golden.Flows != len(golden.Records) || golden.Flows != golden.FlowsIPv4+golden.FlowsIPv6 {
				t.Errorf("oracle inconsistent: %d flows, %d records", golden.Flows, len(golden.Records))
			}
			if c.version == 5 && golden.FlowsIPv6 != 0 {
				t.Errorf("v5 oracle has %d IPv6 flows", golden.FlowsIPv6)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			o, err := TsharkDecode(ctx, filepath.Join(dir, c.name+".pcap"), c.port)
			if errors.Is(err, ErrNoTshark) {
				t.Skip("tshark not installed; skipping re-decode")
			}
			if err != nil {
				t.Fatal(err)
			}
			gb, _ := MarshalOracle(golden)
			ob, _ := MarshalOracle(o)
			if !bytes.Equal(gb, ob) {
				t.Errorf("tshark's decoding differs from %s.tshark.json (tshark version change?)", c.name)
			}
		})
	}
}

func TestParseTsharkJSONEpochStart(t *testing.T) {
	// tshark prints an uptime offset of zero as an absolute epoch time.
	const in = `[{"_source":{"layers":{"frame":{"frame.number":"1"},"cflow":{
	  "cflow.version":"9","cflow.count":"1","cflow.sysuptime":"10.000000000",
	  "cflow.timestamp_tree":{"cflow.unix_secs":"1709294410"},"cflow.sequence":"7",
	  "FlowSet 1 [id=1024] (1 flows)":{"cflow.flowset_id":"1024","Flow 1":{
	    "cflow.srcaddr":"10.0.0.1","cflow.dstaddr":"10.0.0.2",
	    "cflow.timedelta_tree":{"cflow.abstimestart":"Jan  1, 1970 00:00:00.000000000 UTC","cflow.timeend":"2.500000000"},
	    "cflow.octets":"100","cflow.packets":"2","cflow.srcport":"1","cflow.dstport":"2","cflow.protocol":"17","cflow.tos":"0x10"}}}}}}]`
	o, err := ParseTsharkJSON(bytes.NewReader([]byte(in)))
	if err != nil {
		t.Fatal(err)
	}
	if o.Flows != 1 || o.Datagrams != 1 || o.Bytes != 100 || o.DatagramInfo[0].Sequence != 7 {
		t.Fatalf("%+v", o)
	}
	f := o.Records[0]
	if f.Start != "2024-03-01T12:00:00.000Z" || f.End != "2024-03-01T12:00:02.500Z" || f.TOS != 0x10 {
		t.Errorf("%+v", f)
	}
}
