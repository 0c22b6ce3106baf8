package testutil

import (
	"bufio"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net/netip"
	"sort"
	"time"
)

//go:generate go run ./cmd/mktraffic -o ../../testdata/traffic.pcap

// TrafficConfig parameterises GenerateTraffic. The zero value of every
// field selects a default.
type TrafficConfig struct {
	// Seed makes the output deterministic (default 1).
	Seed uint64
	// Start is the timestamp of the capture's first possible packet
	// (default 2024-03-01T12:00:00Z).
	Start time.Time
	// Duration is the span of packet timestamps (default 60 s).
	Duration time.Duration
	// Packets is the approximate number of packets to generate; whole
	// conversations are added until it is reached (default 2500).
	Packets int
	// SnapLen truncates written frames, like tcpdump -s (default 80, which
	// keeps every header; original lengths stay correct).
	SnapLen uint32
	// IPv6Share is the fraction of conversations over IPv6 (default 0.3).
	IPv6Share float64
}

// TrafficSummary describes a generated capture, for tests to compare flow
// exporter output against.
type TrafficSummary struct {
	// Packets, IPv4Packets and IPv6Packets count frames.
	Packets, IPv4Packets, IPv6Packets int
	// IPBytes sums the IP lengths (IPv4 total length, IPv6 payload length
	// plus 40) of all packets; IPv4Bytes and IPv6Bytes split it.
	IPBytes, IPv4Bytes, IPv6Bytes uint64
	// Conversations is the number of generated conversations; Flows is the
	// number of distinct unidirectional 5-tuples.
	Conversations, Flows int
	// First and Last are the first and last packet timestamps.
	First, Last time.Time
}

// genPacket is one packet before serialisation.
type genPacket struct {
	t              time.Time
	src, dst       netip.Addr
	srcMAC, dstMAC [6]byte
	proto          uint8
	sport, dport   uint16
	tcpFlags       uint8
	icmpType       uint8
	seq, ack       uint32
	payload        int // transport payload length
	tos            uint8
	ipID           uint16
	order          int // tie-breaker keeping generation order stable
}

// TCP flag bits.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpPSH = 0x08
	tcpACK = 0x10
)

// host is one endpoint of the synthetic network.
type host struct {
	addr netip.Addr
	mac  [6]byte
}

// trafficGen holds the generator state.
type trafficGen struct {
	cfg      TrafficConfig
	rng      *rand.Rand
	pkts     []genPacket
	ipID     uint16
	router   [6]byte
	in4, in6 []host // inside hosts
	out4     []netip.Addr
	out6     []netip.Addr
	dns4     netip.Addr
	dns6     netip.Addr
}

// GenerateTraffic writes a deterministic synthetic Ethernet capture to w:
// a few dozen inside hosts (IPv4 and IPv6) talking to outside servers with
// TCP sessions (handshake, request, bulk response, FIN), DNS and NTP over
// UDP, UDP streams and ICMP/ICMPv6 echo, spread over cfg.Duration. IP
// lengths are correct; IP header checksums are computed; TCP, UDP and ICMP
// checksums are zero.
func GenerateTraffic(w io.Writer, cfg TrafficConfig) (TrafficSummary, error) {
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 60 * time.Second
	}
	if cfg.Packets <= 0 {
		cfg.Packets = 2500
	}
	if cfg.SnapLen == 0 {
		cfg.SnapLen = 80
	}
	if cfg.IPv6Share == 0 {
		cfg.IPv6Share = 0.3
	}
	g := &trafficGen{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x666c6f7773636e))}
	g.router = [6]byte{0x02, 0x00, 0x5e, 0x00, 0x00, 0x01}
	for i := range 24 {
		g.in4 = append(g.in4, host{
			addr: netip.AddrFrom4([4]byte{10, 1, byte(i / 12), byte(10 + i)}),
			mac:  [6]byte{0x02, 0x42, 0x0a, 0x01, byte(i / 12), byte(10 + i)},
		})
	}
	for i := range 12 {
		a := netip.MustParseAddr("2001:db8:1::").As16()
		a[15] = byte(0x10 + i)
		g.in6 = append(g.in6, host{addr: netip.AddrFrom16(a), mac: [6]byte{0x02, 0x42, 0x20, 0x01, 0, byte(0x10 + i)}})
	}
	for i := range 10 {
		g.out4 = append(g.out4, netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + 7*i)}))
		g.out4 = append(g.out4, netip.AddrFrom4([4]byte{203, 0, 113, byte(20 + 9*i)}))
		a := netip.MustParseAddr("2001:db8:beef::").As16()
		a[13], a[15] = byte(i), byte(0x80+i)
		g.out6 = append(g.out6, netip.AddrFrom16(a))
	}
	g.dns4 = netip.MustParseAddr("192.0.2.53")
	g.dns6 = netip.MustParseAddr("2001:db8:53::53")

	conversations := 0
	for len(g.pkts) < cfg.Packets && conversations < 10*cfg.Packets {
		g.conversation()
		conversations++
	}
	end := cfg.Start.Add(cfg.Duration)
	kept := g.pkts[:0]
	for _, p := range g.pkts {
		if p.t.Before(end) {
			kept = append(kept, p)
		}
	}
	g.pkts = kept
	sort.SliceStable(g.pkts, func(i, j int) bool {
		if !g.pkts[i].t.Equal(g.pkts[j].t) {
			return g.pkts[i].t.Before(g.pkts[j].t)
		}
		return g.pkts[i].order < g.pkts[j].order
	})

	sum := TrafficSummary{Conversations: conversations}
	bw := bufio.NewWriter(w)
	pw, err := NewWriter(bw, LinkTypeEthernet, cfg.SnapLen)
	if err != nil {
		return sum, err
	}
	type key struct {
		src, dst     netip.Addr
		sport, dport uint16
		proto        uint8
	}
	flows := map[key]bool{}
	buf := make([]byte, 0, 2048)
	for i := range g.pkts {
		p := &g.pkts[i]
		frame, ipLen := p.serialize(buf[:0], int(cfg.SnapLen))
		origLen := 14 + ipLen
		if origLen < 60 {
			origLen = 60 // Ethernet minimum frame (without FCS)
			for len(frame) < 60 && len(frame) < int(cfg.SnapLen) {
				frame = append(frame, 0)
			}
		}
		if err := pw.WritePacket(p.t, frame, origLen); err != nil {
			return sum, err
		}
		sum.Packets++
		sum.IPBytes += uint64(ipLen)
		if p.src.Is4() {
			sum.IPv4Packets++
			sum.IPv4Bytes += uint64(ipLen)
		} else {
			sum.IPv6Packets++
			sum.IPv6Bytes += uint64(ipLen)
		}
		k := key{p.src, p.dst, p.sport, p.dport, p.proto}
		if p.proto == 1 || p.proto == 58 {
			k.sport, k.dport = 0, 0
		}
		flows[k] = true
		if i == 0 {
			sum.First = p.t
		}
		sum.Last = p.t
	}
	sum.Flows = len(flows)
	return sum, bw.Flush()
}

// conversation appends the packets of one randomly chosen conversation.
func (g *trafficGen) conversation() {
	r := g.rng
	v6 := r.Float64() < g.cfg.IPv6Share
	var client host
	var server netip.Addr
	if v6 {
		client = g.in6[r.IntN(len(g.in6))]
		server = g.out6[r.IntN(len(g.out6))]
	} else {
		client = g.in4[r.IntN(len(g.in4))]
		server = g.out4[r.IntN(len(g.out4))]
	}
	// Start anywhere in the first 90% of the window.
	start := g.cfg.Start.Add(time.Duration(r.Int64N(int64(g.cfg.Duration) * 9 / 10)))
	rtt := time.Duration(2+r.IntN(80)) * time.Millisecond
	switch k := r.IntN(100); {
	case k < 45:
		ports := []uint16{443, 443, 443, 80, 22, 993, 8080}
		g.tcpSession(client, server, ports[r.IntN(len(ports))], start, rtt)
	case k < 70:
		dns := g.dns4
		if v6 {
			dns = g.dns6
		}
		g.dnsLookups(client, dns, start, rtt)
	case k < 78:
		g.ntp(client, server, start, rtt)
	case k < 88:
		g.udpStream(client, server, start, rtt)
	default:
		g.ping(client, server, start, rtt)
	}
}

// ephemeral returns a random client port.
func (g *trafficGen) ephemeral() uint16 { return uint16(32768 + g.rng.IntN(28232)) }

// add appends a packet from a to b; out says whether a is the inside host.
func (g *trafficGen) add(p genPacket, fromInside bool, mac [6]byte) {
	if fromInside {
		p.srcMAC, p.dstMAC = mac, g.router
	} else {
		p.srcMAC, p.dstMAC = g.router, mac
	}
	g.ipID++
	p.ipID = g.ipID
	p.order = len(g.pkts)
	g.pkts = append(g.pkts, p)
}

// tcpSession models a client opening a TCP connection, sending a few
// requests, receiving bulk responses and closing with FIN.
func (g *trafficGen) tcpSession(c host, srv netip.Addr, port uint16, t time.Time, rtt time.Duration) {
	r := g.rng
	sp := g.ephemeral()
	cseq, sseq := r.Uint32(), r.Uint32()
	tos := uint8(0)
	if port == 22 {
		tos = 0x10
	}
	out := func(flags uint8, n int) {
		g.add(genPacket{t: t, src: c.addr, dst: srv, proto: 6, sport: sp, dport: port, tcpFlags: flags, seq: cseq, ack: sseq, payload: n, tos: tos}, true, c.mac)
		cseq += uint32(n)
	}
	in := func(flags uint8, n int) {
		g.add(genPacket{t: t, src: srv, dst: c.addr, proto: 6, sport: port, dport: sp, tcpFlags: flags, seq: sseq, ack: cseq, payload: n, tos: tos}, false, c.mac)
		sseq += uint32(n)
	}
	out(tcpSYN, 0)
	cseq++
	t = t.Add(rtt / 2)
	in(tcpSYN|tcpACK, 0)
	sseq++
	t = t.Add(rtt / 2)
	out(tcpACK, 0)
	for range 1 + r.IntN(4) {
		t = t.Add(time.Duration(r.IntN(2000)) * time.Millisecond)
		out(tcpPSH|tcpACK, 80+r.IntN(600))
		t = t.Add(rtt / 2)
		segs := 1 + r.IntN(10)
		for s := range segs {
			n := 1448
			if s == segs-1 {
				n = 1 + r.IntN(1448)
			}
			in(tcpACK, n)
			t = t.Add(time.Duration(50+r.IntN(400)) * time.Microsecond)
			if s%2 == 1 {
				out(tcpACK, 0)
			}
		}
		t = t.Add(rtt / 2)
		out(tcpACK, 0)
	}
	if r.IntN(10) == 0 {
		in(tcpRST|tcpACK, 0)
		return
	}
	t = t.Add(time.Duration(r.IntN(500)) * time.Millisecond)
	out(tcpFIN|tcpACK, 0)
	cseq++
	t = t.Add(rtt / 2)
	in(tcpFIN|tcpACK, 0)
	sseq++
	t = t.Add(rtt / 2)
	out(tcpACK, 0)
}

// dnsLookups models one to four DNS queries from one source port each.
func (g *trafficGen) dnsLookups(c host, dns netip.Addr, t time.Time, rtt time.Duration) {
	r := g.rng
	for range 1 + r.IntN(4) {
		sp := g.ephemeral()
		g.add(genPacket{t: t, src: c.addr, dst: dns, proto: 17, sport: sp, dport: 53, payload: 28 + r.IntN(40)}, true, c.mac)
		t = t.Add(rtt)
		g.add(genPacket{t: t, src: dns, dst: c.addr, proto: 17, sport: 53, dport: sp, payload: 60 + r.IntN(400)}, false, c.mac)
		t = t.Add(time.Duration(r.IntN(300)) * time.Millisecond)
	}
}

// ntp models an NTP client polling a server a few times.
func (g *trafficGen) ntp(c host, srv netip.Addr, t time.Time, rtt time.Duration) {
	for range 1 + g.rng.IntN(3) {
		g.add(genPacket{t: t, src: c.addr, dst: srv, proto: 17, sport: 123, dport: 123, payload: 48}, true, c.mac)
		g.add(genPacket{t: t.Add(rtt), src: srv, dst: c.addr, proto: 17, sport: 123, dport: 123, payload: 48}, false, c.mac)
		t = t.Add(time.Duration(4+g.rng.IntN(8)) * time.Second)
	}
}

// udpStream models a media stream: many server-to-client datagrams with
// occasional client feedback.
func (g *trafficGen) udpStream(c host, srv netip.Addr, t time.Time, rtt time.Duration) {
	r := g.rng
	sp, dp := g.ephemeral(), uint16(10000+2*r.IntN(5000))
	n := 20 + r.IntN(60)
	g.add(genPacket{t: t, src: c.addr, dst: srv, proto: 17, sport: sp, dport: dp, payload: 120, tos: 0xb8}, true, c.mac)
	t = t.Add(rtt)
	for i := range n {
		g.add(genPacket{t: t, src: srv, dst: c.addr, proto: 17, sport: dp, dport: sp, payload: 160 + r.IntN(1000), tos: 0xb8}, false, c.mac)
		if i%20 == 19 {
			g.add(genPacket{t: t, src: c.addr, dst: srv, proto: 17, sport: sp, dport: dp, payload: 64, tos: 0xb8}, true, c.mac)
		}
		t = t.Add(20 * time.Millisecond)
	}
}

// ping models an echo request/reply sequence at one-second intervals.
func (g *trafficGen) ping(c host, srv netip.Addr, t time.Time, rtt time.Duration) {
	proto, req, rep := uint8(1), uint8(8), uint8(0)
	if c.addr.Is6() {
		proto, req, rep = 58, 128, 129
	}
	id := uint16(g.rng.IntN(65536))
	for i := range 2 + g.rng.IntN(8) {
		g.add(genPacket{t: t, src: c.addr, dst: srv, proto: proto, icmpType: req, sport: id, seq: uint32(i), payload: 56}, true, c.mac)
		g.add(genPacket{t: t.Add(rtt), src: srv, dst: c.addr, proto: proto, icmpType: rep, sport: id, seq: uint32(i), payload: 56}, false, c.mac)
		t = t.Add(time.Second)
	}
}

// serialize appends the Ethernet frame of p to b, stopping once snapLen
// bytes are present (payload bytes beyond the snap length are never
// built), and returns the frame and the packet's IP length.
func (p *genPacket) serialize(b []byte, snapLen int) ([]byte, int) {
	var l4 []byte
	switch p.proto {
	case 6:
		l4 = make([]byte, 20)
		binary.BigEndian.PutUint16(l4[0:], p.sport)
		binary.BigEndian.PutUint16(l4[2:], p.dport)
		binary.BigEndian.PutUint32(l4[4:], p.seq)
		if p.tcpFlags&tcpACK != 0 {
			binary.BigEndian.PutUint32(l4[8:], p.ack)
		}
		l4[12] = 5 << 4
		l4[13] = p.tcpFlags
		binary.BigEndian.PutUint16(l4[14:], 64240)
	case 17:
		l4 = make([]byte, 8)
		binary.BigEndian.PutUint16(l4[0:], p.sport)
		binary.BigEndian.PutUint16(l4[2:], p.dport)
		binary.BigEndian.PutUint16(l4[4:], uint16(8+p.payload))
	default: // ICMP / ICMPv6 echo
		l4 = make([]byte, 8)
		l4[0] = p.icmpType
		binary.BigEndian.PutUint16(l4[4:], p.sport)
		binary.BigEndian.PutUint16(l4[6:], uint16(p.seq))
	}
	l4Len := len(l4) + p.payload

	b = append(b, p.dstMAC[:]...)
	b = append(b, p.srcMAC[:]...)
	var ipLen int
	if p.src.Is4() {
		ipLen = 20 + l4Len
		b = binary.BigEndian.AppendUint16(b, 0x0800)
		h := make([]byte, 20)
		h[0] = 0x45
		h[1] = p.tos
		binary.BigEndian.PutUint16(h[2:], uint16(ipLen))
		binary.BigEndian.PutUint16(h[4:], p.ipID)
		h[6] = 0x40 // don't fragment
		h[8] = 64
		h[9] = p.proto
		s, d := p.src.As4(), p.dst.As4()
		copy(h[12:], s[:])
		copy(h[16:], d[:])
		binary.BigEndian.PutUint16(h[10:], ipv4Checksum(h))
		b = append(b, h...)
	} else {
		ipLen = 40 + l4Len
		b = binary.BigEndian.AppendUint16(b, 0x86dd)
		h := make([]byte, 40)
		binary.BigEndian.PutUint32(h[0:], 6<<28|uint32(p.tos)<<20|uint32(p.sport^p.dport)&0xfffff)
		binary.BigEndian.PutUint16(h[4:], uint16(l4Len))
		h[6] = p.proto
		h[7] = 64
		s, d := p.src.As16(), p.dst.As16()
		copy(h[8:], s[:])
		copy(h[24:], d[:])
		b = append(b, h...)
	}
	b = append(b, l4...)
	for n := 0; n < p.payload && len(b) < snapLen; n++ {
		b = append(b, 0)
	}
	return b, ipLen
}

// ipv4Checksum returns the Internet checksum of an IPv4 header whose
// checksum field is zero.
func ipv4Checksum(h []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(h); i += 2 {
		s += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}
