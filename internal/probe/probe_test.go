package probe

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/testutil"
)

var (
	v4a = netip.MustParseAddr("192.0.2.1")
	v4b = netip.MustParseAddr("198.51.100.2")
	v6a = netip.MustParseAddr("2001:db8::1")
	v6b = netip.MustParseAddr("2001:db8::2")
)

func TestParseFrame(t *testing.T) {
	type want struct {
		err          error
		ipLen        uint32
		sport, dport uint16
		proto, tos   uint8
		flags        uint8
		vlan         uint16
		frag, v6     bool
	}
	tests := []struct {
		name string
		link uint32
		data []byte
		want want
	}{
		{"ipv4 tcp", LinkEthernet, frameSpec{src: v4a, dst: v4b, proto: protoTCP, sport: 1234, dport: 80, tcpFlags: 0x12, tos: 0x10, payload: 100}.ethernet(),
			want{ipLen: 140, sport: 1234, dport: 80, proto: 6, tos: 0x10, flags: 0x12}},
		{"ipv4 udp vlan", LinkEthernet, frameSpec{src: v4a, dst: v4b, proto: protoUDP, sport: 53, dport: 5353, payload: 10, vlan: 42}.ethernet(),
			want{ipLen: 38, sport: 53, dport: 5353, proto: 17, vlan: 42}},
		{"ipv4 icmp echo", LinkEthernet, frameSpec{src: v4a, dst: v4b, proto: protoICMP, dport: 8 << 8, payload: 56}.ethernet(),
			want{ipLen: 84, dport: 0x0800, proto: 1}},
		{"ipv4 fragment", LinkEthernet, frameSpec{src: v4a, dst: v4b, proto: protoUDP, sport: 1, dport: 2, fragOffset: 185}.ethernet(),
			want{ipLen: 28, proto: 17, frag: true}},
		{"ipv6 udp ext headers", LinkEthernet, frameSpec{src: v6a, dst: v6b, proto: protoUDP, sport: 500, dport: 4500, payload: 20, ext6: true, tos: 0xb8}.ethernet(),
			want{ipLen: 40 + 24 + 28, sport: 500, dport: 4500, proto: 17, tos: 0xb8, v6: true}},
		{"ipv6 icmp", LinkEthernet, frameSpec{src: v6a, dst: v6b, proto: protoICMPv6, dport: 128 << 8}.ethernet(),
			want{ipLen: 48, dport: 128 << 8, proto: 58, v6: true}},
		{"raw ipv4", LinkRaw, frameSpec{src: v4a, dst: v4b, proto: protoTCP, sport: 1, dport: 2}.ip(),
			want{ipLen: 40, sport: 1, dport: 2, proto: 6}},
		{"linux sll", LinkLinuxSLL, append([]byte{0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x86, 0xdd}, frameSpec{src: v6a, dst: v6b, proto: protoTCP, sport: 22, dport: 999}.ip()...),
			want{ipLen: 60, sport: 22, dport: 999, proto: 6, v6: true}},
		{"null loopback", LinkNull, append([]byte{2, 0, 0, 0}, frameSpec{src: v4a, dst: v4b, proto: protoUDP, sport: 7, dport: 9}.ip()...),
			want{ipLen: 28, sport: 7, dport: 9, proto: 17}},
		{"arp", LinkEthernet, append(make([]byte, 12), 0x08, 0x06, 0, 1), want{err: ErrNotIP}},
		{"short ethernet", LinkEthernet, make([]byte, 10), want{err: ErrTruncated}},
		{"short ipv4", LinkEthernet, append(make([]byte, 12), 0x08, 0x00, 0x45, 0), want{err: ErrTruncated}},
		{"ipv6 ext cut", LinkEthernet, frameSpec{src: v6a, dst: v6b, proto: protoUDP, ext6: true}.ethernet()[:14+40+4], want{err: ErrTruncated}},
		{"snap cut transport", LinkEthernet, frameSpec{src: v4a, dst: v4b, proto: protoTCP, sport: 5, dport: 6, payload: 1000}.ethernet()[:14+20+4],
			want{ipLen: 1040, sport: 5, dport: 6, proto: 6}},
		{"unknown link", 9999, []byte{1, 2, 3}, want{err: ErrLinkType}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p Packet
			err := ParseFrame(&p, tc.link, tc.data)
			if err != tc.want.err {
				t.Fatalf("err = %v, want %v", err, tc.want.err)
			}
			if err != nil {
				return
			}
			got := want{ipLen: p.IPLen, sport: p.SrcPort, dport: p.DstPort, proto: p.Proto, tos: p.TOS, flags: p.TCPFlags, vlan: p.VLAN, frag: p.Fragment, v6: p.IPv6}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			src, dst := addr16(p.Src), addr16(p.Dst)
			if !(src == v4a && dst == v4b || src == v6a && dst == v6b) {
				t.Errorf("addresses %v -> %v", src, dst)
			}
		})
	}
}

// TestParseMatchesTestutil checks the parser against testutil's
// independent one on every packet of the shared capture.
func TestParseMatchesTestutil(t *testing.T) {
	lt, recs, err := testutil.ReadFile(trafficPcap)
	if err != nil {
		t.Fatal(err)
	}
	var p Packet
	for i, rec := range recs {
		ref, err := testutil.ParseFrame(lt, rec.Data)
		if err != nil {
			t.Fatalf("packet %d: testutil: %v", i, err)
		}
		if err := ParseFrame(&p, lt, rec.Data); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		sport, dport := ref.SrcPort, ref.DstPort
		if ref.Proto == protoICMP || ref.Proto == protoICMPv6 {
			sport, dport = 0, uint16(rec.Data[len(rec.Data)-len(ref.Payload)-4])<<8|uint16(rec.Data[len(rec.Data)-len(ref.Payload)-3])
		}
		if addr16(p.Src) != ref.Src || addr16(p.Dst) != ref.Dst || int(p.IPLen) != ref.IPLen || p.Proto != ref.Proto || p.SrcPort != sport || p.DstPort != dport {
			t.Fatalf("packet %d: got %+v, testutil %+v", i, p, ref)
		}
	}
}

// collector gathers emitted flows.
type collector struct{ recs []flow.Record }

func (c *collector) emit(recs []flow.Record) { c.recs = append(c.recs, recs...) }

func newTestProbe(t *testing.T, cfg Config) (*Probe, *collector) {
	t.Helper()
	c := &collector{}
	cfg.Emit = c.emit
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p, c
}

// sec converts seconds to the probe's Unix nanoseconds, from a fixed base.
func sec(s float64) int64 {
	return time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano() + int64(s*1e9)
}

func TestExpiryRules(t *testing.T) {
	tcp := func(sport uint16, flags uint8) []byte {
		return frameSpec{src: v4a, dst: v4b, proto: protoTCP, sport: sport, dport: 443, tcpFlags: flags}.ethernet()
	}
	udp := frameSpec{src: v6a, dst: v6b, proto: protoUDP, sport: 1000, dport: 53, payload: 12}.ethernet()
	type pkt struct {
		at    float64
		frame []byte
	}
	tests := []struct {
		name     string
		cfg      Config
		pkts     []pkt
		advance  float64 // Advance to this time before Flush (0: none)
		wantPkts []uint64
		check    func(t *testing.T, s Stats)
	}{
		{"idle splits", Config{IdleTimeout: 10 * time.Second},
			[]pkt{{0, udp}, {9, udp}, {19.5, udp}, {20, udp}}, 0, []uint64{2, 2},
			func(t *testing.T, s Stats) {
				if s.ExpiredIdle != 1 || s.Active != 1 {
					t.Errorf("stats %+v", s)
				}
			}},
		{"idle expires on advance", Config{IdleTimeout: 10 * time.Second},
			[]pkt{{0, udp}}, 10, []uint64{1},
			func(t *testing.T, s Stats) {
				if s.ExpiredIdle != 1 || s.Active != 0 {
					t.Errorf("stats %+v", s)
				}
			}},
		{"active splits busy flow", Config{IdleTimeout: 10 * time.Second, ActiveTimeout: 30 * time.Second},
			[]pkt{{0, udp}, {8, udp}, {16, udp}, {24, udp}, {32, udp}, {40, udp}}, 0, []uint64{4, 2},
			func(t *testing.T, s Stats) {
				if s.ExpiredActive != 1 {
					t.Errorf("stats %+v", s)
				}
			}},
		{"fin linger keeps final ack", Config{FinTimeout: 2 * time.Second},
			[]pkt{{0, tcp(5000, 0x02)}, {0.1, tcp(5000, 0x10)}, {1, tcp(5000, 0x11)}, {1.5, tcp(5000, 0x10)}, {4, tcp(5000, 0x02)}}, 0, []uint64{4, 1},
			func(t *testing.T, s Stats) {
				if s.ExpiredFin != 1 {
					t.Errorf("stats %+v", s)
				}
			}},
		{"rst expires", Config{FinTimeout: time.Second},
			[]pkt{{0, tcp(6000, 0x02)}, {0.5, tcp(6000, 0x04)}}, 2, []uint64{2},
			func(t *testing.T, s Stats) {
				if s.ExpiredFin != 1 {
					t.Errorf("stats %+v", s)
				}
			}},
		{"fin rule off", Config{FinTimeout: -1, IdleTimeout: time.Hour},
			[]pkt{{0, tcp(5000, 0x01)}, {10, tcp(5000, 0x10)}}, 0, []uint64{2}, nil},
		{"memory bound evicts least recent", Config{MaxFlows: 2},
			[]pkt{{0, tcp(1, 0x02)}, {0.1, tcp(2, 0x02)}, {0.2, tcp(1, 0x10)}, {0.3, tcp(3, 0x02)}}, 0, []uint64{1, 2, 1},
			func(t *testing.T, s Stats) {
				if s.Evicted != 1 || s.FlowsCreated != 3 {
					t.Errorf("stats %+v", s)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, c := newTestProbe(t, tc.cfg)
			for _, k := range tc.pkts {
				p.Packet(LinkEthernet, k.frame, sec(k.at))
			}
			if tc.advance != 0 {
				p.Advance(sec(tc.advance))
			}
			st := p.Stats()
			p.Flush()
			var got []uint64
			for _, r := range c.recs {
				got = append(got, r.Packets)
			}
			if len(got) != len(tc.wantPkts) {
				t.Fatalf("flows with packets %v, want %v", got, tc.wantPkts)
			}
			for i := range got {
				if got[i] != tc.wantPkts[i] {
					t.Fatalf("flows with packets %v, want %v", got, tc.wantPkts)
				}
			}
			if tc.check != nil {
				tc.check(t, st)
			}
		})
	}
}

func TestRecordFields(t *testing.T) {
	p, c := newTestProbe(t, Config{Domain: 9, InIf: 3})
	f1 := frameSpec{src: v4a, dst: v4b, proto: protoTCP, sport: 40000, dport: 22, tcpFlags: 0x02, tos: 0x10, vlan: 7}.ethernet()
	f2 := frameSpec{src: v4a, dst: v4b, proto: protoTCP, sport: 40000, dport: 22, tcpFlags: 0x18, tos: 0x00, payload: 60, vlan: 7}.ethernet()
	p.Packet(LinkEthernet, f1, sec(1.5))
	p.Packet(LinkEthernet, f2, sec(2.25))
	p.Flush()
	if len(c.recs) != 1 {
		t.Fatalf("%d records", len(c.recs))
	}
	r := c.recs[0]
	want := flow.Record{
		SrcAddr: v4a, DstAddr: v4b, Start: sec(1.5) / 1e6, End: sec(2.25) / 1e6, Bytes: 40 + 100, Packets: 2,
		Domain: 9, InIf: 3, SrcPort: 40000, DstPort: 22, SrcVLAN: 7, Proto: 6, TOS: 0x10, TCPFlags: 0x1a,
		SrcMAC: [6]byte{2, 0, 0, 0, 0, 1}, DstMAC: [6]byte{2, 0, 0, 0, 0, 2},
	}
	if r != want {
		t.Errorf("record\n got %+v\nwant %+v", r, want)
	}
	if !r.SrcAddr.Is4() {
		t.Errorf("IPv4 address not unmapped: %v", r.SrcAddr)
	}
}

// TestTableChurn inserts and expires many flows through a small table and
// checks that every flow is found again while alive (backward-shift
// deletion keeps probe chains intact).
func TestTableChurn(t *testing.T) {
	p, c := newTestProbe(t, Config{MaxFlows: 64, IdleTimeout: 5 * time.Second, FinTimeout: -1})
	var sent uint64
	for i := range 5000 {
		port := uint16(i % 300)
		f := frameSpec{src: v4a, dst: v4b, proto: protoUDP, sport: port, dport: 53}.ethernet()
		p.Packet(LinkEthernet, f, sec(float64(i)*0.01))
		sent++
	}
	p.Flush()
	var pk uint64
	for _, r := range c.recs {
		pk += r.Packets
	}
	st := p.Stats()
	if pk != sent || st.Exported() != uint64(len(c.recs)) || st.Active != 0 {
		t.Fatalf("packets %d of %d, stats %+v, %d records", pk, sent, st, len(c.recs))
	}
	if st.Evicted == 0 {
		t.Errorf("300 concurrent keys in a 64-flow table evicted nothing: %+v", st)
	}
}

func TestPcapReaderMatchesTestutil(t *testing.T) {
	var buf bytes.Buffer
	w, err := testutil.NewWriter(&buf, testutil.LinkTypeEthernet, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := frameSpec{src: v4a, dst: v4b, proto: protoUDP, sport: 1, dport: 2, payload: 30}.ethernet()
	ts := time.Date(2024, 1, 2, 3, 4, 5, 678000, time.UTC)
	for i := range 3 {
		if err := w.WritePacket(ts.Add(time.Duration(i)*time.Second), f, 0); err != nil {
			t.Fatal(err)
		}
	}
	r, err := NewPcapReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		got, at, err := r.Next()
		if err != nil || !bytes.Equal(got, f) || at != ts.Add(time.Duration(i)*time.Second).UnixNano() {
			t.Fatalf("record %d: %v %x %d", i, err, got, at)
		}
	}
	if _, _, err := r.Next(); err == nil {
		t.Fatal("no EOF")
	}
}
