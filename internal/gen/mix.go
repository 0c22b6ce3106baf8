package gen

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
)

// MixOptions configure a traffic Mix. Zero fields take defaults.
type MixOptions struct {
	// IPv6Share is the fraction of flows that are IPv6, in [0, 1]. Use 0
	// for NetFlow v5, which cannot carry IPv6.
	IPv6Share float64
	// Inside4 and Inside6 are the local networks (defaults 10.0.0.0/16 and
	// 2001:db8::/48). Inside4 lengths are clamped to 8..24 and Inside6
	// lengths to 16..56.
	Inside4, Inside6 netip.Prefix
	// InsideHosts is the number of distinct local hosts (default 2000).
	InsideHosts int
	// OutsideHosts is the number of distinct remote hosts, picked with a
	// Zipf skew (default 100000).
	OutsideHosts int
	// Interval is the window before now in which flows start and end
	// (default 60 s).
	Interval time.Duration
}

// service is one weighted destination service.
type service struct {
	port   uint16
	proto  uint8
	weight float64
	// inbound is the share of connections to this service initiated
	// from outside (to an inside server).
	inbound float64
}

// Protocol numbers used by the mix.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// services is the service mix by connection count. Port 0 with proto 0
// means "high port to high port" (peer-to-peer, games, ...); proto ICMP
// means ICMP (or ICMPv6 for IPv6 flows).
var services = []service{
	{443, protoTCP, 34, 0.05},
	{443, protoUDP, 8, 0},
	{80, protoTCP, 12, 0.05},
	{53, protoUDP, 10, 0.02},
	{53, protoTCP, 0.5, 0.02},
	{22, protoTCP, 3, 0.4},
	{25, protoTCP, 2, 0.6},
	{587, protoTCP, 1, 0},
	{993, protoTCP, 2, 0},
	{143, protoTCP, 0.4, 0},
	{110, protoTCP, 0.2, 0},
	{123, protoUDP, 3, 0.1},
	{3389, protoTCP, 1.5, 0.5},
	{445, protoTCP, 0.8, 0.3},
	{8080, protoTCP, 1.5, 0.2},
	{8443, protoTCP, 1, 0.1},
	{853, protoTCP, 0.5, 0},
	{5060, protoUDP, 1, 0.5},
	{4500, protoUDP, 1, 0.3},
	{1194, protoUDP, 0.5, 0.3},
	{3306, protoTCP, 0.3, 0.5},
	{0, protoICMP, 3, 0.4},
	{0, 0, 8, 0.5},
}

// serviceCum is the cumulative weight table of services, scaled to 2^32.
var serviceCum = func() []uint32 {
	total := 0.0
	for _, s := range services {
		total += s.weight
	}
	c := make([]uint32, len(services))
	acc := 0.0
	for i, s := range services {
		acc += s.weight
		c[i] = uint32(math.Min(acc/total*(1<<32), math.MaxUint32))
	}
	c[len(c)-1] = math.MaxUint32
	return c
}()

// tosValues are DSCP/ECN bytes with cumulative weights out of 1000.
var tosValues = []struct {
	tos uint8
	cum uint16
}{{0, 850}, {0x02, 900}, {0xb8, 930}, {0x28, 960}, {0x48, 980}, {0x20, 1000}}

// bigASes are the origin ASes of the most popular remote hosts.
var bigASes = []uint32{15169, 13335, 16509, 32934, 8075, 20940, 2906, 54113, 14618, 396982}

// Mix generates a realistic, deterministic stream of flow records: local
// hosts in Inside4/Inside6 talking to Zipf-skewed remote hosts over a
// weighted service mix, with log-normal packet counts and packet sizes.
// A Mix is not safe for concurrent use.
type Mix struct {
	opts    MixOptions
	rng     *rand.Rand
	outside *rand.Zipf
	inside  *rand.Zipf
	salt    uint64
	v6cut   uint64 // IPv6 if rng.Uint64() < v6cut
	in4     [4]byte
	in4bits int
	in6     [16]byte
	in6bits int
	window  int64 // Interval in ms
}

// NewMix returns a Mix whose output depends only on seed, opts and the
// times passed to Next.
func NewMix(seed int64, opts MixOptions) *Mix {
	if !opts.Inside4.IsValid() || !opts.Inside4.Addr().Is4() {
		opts.Inside4 = netip.MustParsePrefix("10.0.0.0/16")
	}
	if !opts.Inside6.IsValid() || opts.Inside6.Addr().Is4() {
		opts.Inside6 = netip.MustParsePrefix("2001:db8::/48")
	}
	opts.Inside4 = opts.Inside4.Masked()
	opts.Inside6 = opts.Inside6.Masked()
	if opts.InsideHosts <= 0 {
		opts.InsideHosts = 2000
	}
	if opts.OutsideHosts <= 0 {
		opts.OutsideHosts = 100000
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Minute
	}
	opts.IPv6Share = math.Max(0, math.Min(1, opts.IPv6Share))
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6a09e667f3bcc908))
	m := &Mix{
		opts:    opts,
		rng:     rng,
		outside: rand.NewZipf(rng, 1.1, 4, uint64(opts.OutsideHosts-1)),
		inside:  rand.NewZipf(rng, 1.3, 30, uint64(opts.InsideHosts-1)),
		salt:    splitmix(uint64(seed) ^ 0xbb67ae8584caa73b),
		in4:     opts.Inside4.Addr().As4(),
		in4bits: min(max(opts.Inside4.Bits(), 8), 24),
		in6:     opts.Inside6.Addr().As16(),
		in6bits: min(max(opts.Inside6.Bits(), 16), 56),
		window:  opts.Interval.Milliseconds(),
	}
	if opts.IPv6Share >= 1 {
		m.v6cut = math.MaxUint64
	} else {
		m.v6cut = uint64(opts.IPv6Share * (1 << 64))
	}
	return m
}

// splitmix is a 64-bit mixing function (SplitMix64 finaliser).
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// logNormal returns exp(mu + sigma*N(0,1)) clamped to [lo, hi].
func (m *Mix) logNormal(mu, sigma, lo, hi float64) float64 {
	v := math.Exp(mu + sigma*m.rng.NormFloat64())
	return math.Max(lo, math.Min(hi, v))
}

// insideAddr returns local host number k's address, its LAN index (0..3)
// and the prefix length of its subnet.
func (m *Mix) insideAddr(k uint64, v6 bool) (netip.Addr, int, uint8) {
	h := splitmix(k ^ m.salt)
	if v6 {
		a := m.in6
		// subnet: 64 subnets inside the prefix, /64 each.
		sub := h % 64
		pos := m.in6bits
		bits := uint64(0)
		for i := 0; i < 8; i++ {
			bits = bits<<8 | uint64(a[i])
		}
		bits |= sub << (64 - 6 - uint(pos))
		for i := 7; i >= 0; i-- {
			a[i] = byte(bits)
			bits >>= 8
		}
		iid := splitmix(h) &^ (1 << 57) // clear the universal/local bit
		for i := 15; i >= 8; i-- {
			a[i] = byte(iid)
			iid >>= 8
		}
		return netip.AddrFrom16(a), int(sub % 4), 64
	}
	a := m.in4
	host := uint32(h) & (1<<(32-uint(m.in4bits)) - 1)
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= host
	if v&0xff == 0 {
		v |= 1
	} else if v&0xff == 0xff {
		v ^= 1
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), int(v>>8) % 4, 24
}

// outsideAddr returns remote host number k's address, route prefix length
// and origin AS.
func (m *Mix) outsideAddr(k uint64, v6 bool) (netip.Addr, uint8, uint32) {
	h := splitmix(k*0x9e3779b97f4a7c15 ^ m.salt ^ 0x3c6ef372fe94f82b)
	var as uint32
	switch {
	case k < 40:
		as = bigASes[k%uint64(len(bigASes))]
	case h>>60 == 0: // 1/16 of the rest have 32-bit AS numbers
		as = 131072 + uint32(h>>20)%300000
	default:
		as = 1000 + uint32(h>>20)%63000
		if as == asTrans {
			as++
		}
	}
	masks4 := [8]uint8{24, 24, 24, 24, 22, 20, 16, 19}
	masks6 := [8]uint8{48, 48, 32, 32, 40, 44, 36, 29}
	if v6 {
		var a [16]byte
		g := splitmix(h)
		hi := 0x2000_0000_0000_0000 | h&0x0fff_ffff_ffff_ffff
		if hi>>32 == 0x20010db8 {
			hi ^= 1 << 40
		}
		for i := 7; i >= 0; i-- {
			a[i] = byte(hi)
			hi >>= 8
		}
		for i := 15; i >= 8; i-- {
			a[i] = byte(g)
			g >>= 8
		}
		return netip.AddrFrom16(a), masks6[h>>61], as
	}
	v := uint32(h)
	o := 1 + (v>>24)%223
	switch o {
	case 10, 127, 100:
		o++
	}
	v = o<<24 | v&0xffffff
	if v&0xff == 0 || v&0xff == 0xff {
		v ^= 0x80
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), masks4[h>>61], as
}

// macFor derives a locally administered unicast MAC address from x.
func macFor(x uint64) [6]byte {
	x = splitmix(x)
	return [6]byte{0x02, byte(x >> 32), byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)}
}

// Next overwrites r with the next flow. End lies in (now-Interval, now]
// and Start in [now-Interval, End]. Exporter, Domain and SamplingRate are
// left zero (the encoders and decoders own them). Next does not allocate.
func (m *Mix) Next(r *flow.Record, now time.Time) {
	*r = flow.Record{}
	rng := m.rng
	v6 := rng.Uint64() < m.v6cut

	// Service.
	u := rng.Uint32()
	si := 0
	for si < len(serviceCum)-1 && u > serviceCum[si] {
		si++
	}
	svc := &services[si]
	proto := svc.proto
	if proto == 0 {
		proto = protoTCP
		if rng.Uint32()&3 == 0 {
			proto = protoUDP
		}
	}
	if proto == protoICMP && v6 {
		proto = protoICMPv6
	}

	// Hosts and direction. A connection has a client and a server; the
	// flow is either client->server (request) or server->client (reply).
	ko := m.outside.Uint64()
	ki := m.inside.Uint64()
	in, lan, inMask := m.insideAddr(ki, v6)
	out, outMask, outAS := m.outsideAddr(ko, v6)
	insideServer := rng.Float64() < svc.inbound
	reply := rng.Uint32()&1 == 1
	// fromInside: the flow's source is the local host.
	fromInside := insideServer == reply

	clientPort := uint16(32768 + rng.Uint32N(28232))
	serverPort := svc.port
	if svc.proto == 0 {
		serverPort = uint16(1024 + rng.Uint32N(64512))
	}
	sport, dport := clientPort, serverPort
	if reply {
		sport, dport = serverPort, clientPort
	}

	// Counters.
	var pkts, bpp float64
	switch {
	case proto == protoICMP || proto == protoICMPv6:
		pkts = m.logNormal(0.5, 1.0, 1, 1e4)
		bpp = 84
		if v6 {
			bpp = 104
		}
	case proto == protoUDP && (svc.port == 53 || svc.port == 123):
		pkts = m.logNormal(0, 0.4, 1, 100)
		if reply {
			bpp = m.logNormal(math.Log(180), 0.5, 60, 1232)
		} else {
			bpp = m.logNormal(math.Log(75), 0.2, 60, 300)
		}
	case proto == protoUDP && svc.port == 443:
		pkts = m.logNormal(2.5, 1.6, 1, 1e6)
		bpp = m.logNormal(math.Log(1200), 0.15, 60, 1500)
		if !reply {
			bpp = m.logNormal(math.Log(150), 0.6, 60, 1500)
		}
	default:
		pkts = m.logNormal(1.6, 1.7, 1, 1e6)
		if reply {
			bpp = m.logNormal(math.Log(900), 0.5, 40, 1500)
		} else {
			bpp = m.logNormal(math.Log(120), 0.6, 40, 1500)
		}
	}
	r.Packets = uint64(pkts + 0.5)
	r.Bytes = uint64(float64(r.Packets)*bpp + 0.5)

	// ICMP carries type<<8|code in the destination port.
	if proto == protoICMP || proto == protoICMPv6 {
		sport = 0
		switch {
		case proto == protoICMP && reply:
			dport = 0x0000 // echo reply
		case proto == protoICMP && rng.Uint32N(10) == 0:
			dport = 0x0303 // port unreachable
		case proto == protoICMP:
			dport = 0x0800 // echo request
		case reply:
			dport = 129 << 8
		case rng.Uint32N(10) == 0:
			dport = 1<<8 | 4
		default:
			dport = 128 << 8
		}
	}

	// TCP flags.
	if proto == protoTCP {
		x := rng.Uint32N(100)
		if r.Packets == 1 {
			switch {
			case x < 45:
				r.TCPFlags = 0x02 // SYN (scan or lost handshake)
				if reply {
					r.TCPFlags = 0x12 // SYN-ACK
				}
			case x < 65:
				r.TCPFlags = 0x14 // RST-ACK
			default:
				r.TCPFlags = 0x10 // ACK
			}
		} else {
			switch {
			case x < 55:
				r.TCPFlags = 0x1b // FIN PSH ACK SYN: complete flow
			case x < 75:
				r.TCPFlags = 0x1a // still open
			case x < 90:
				r.TCPFlags = 0x18 // long-lived, mid-export
			case x < 95:
				r.TCPFlags = 0x1e // reset
			default:
				r.TCPFlags = 0x10
			}
		}
	}

	// TOS.
	t := uint16(rng.Uint32N(1000))
	for _, tv := range tosValues {
		if t < tv.cum {
			r.TOS = tv.tos
			break
		}
	}

	// Times: End in (now-window, now], duration grows with packets.
	nowMs := now.UnixMilli()
	end := nowMs - int64(rng.Uint64N(uint64(m.window)))
	var dur int64
	if r.Packets > 1 {
		dur = int64(float64(r.Packets) * 30 * rng.ExpFloat64())
	}
	if lim := end - (nowMs - m.window); dur > lim {
		dur = lim
	}
	r.Start, r.End = end-dur, end

	// Topology: two uplinks (ifIndex 1, 2), four LAN interfaces (10..13)
	// with VLANs 100..103.
	uplink := uint32(1 + ko&1)
	lanIf := uint32(10 + lan)
	vlan := uint16(100 + lan)
	hostMAC := macFor(ki ^ m.salt)
	gwMAC := macFor(uint64(lan) ^ 0xfeed)
	upMAC := macFor(uint64(uplink) ^ 0xbeef)
	r.Proto = proto
	r.SrcPort, r.DstPort = sport, dport
	if fromInside {
		r.SrcAddr, r.DstAddr = in, out
		r.SrcMask, r.DstMask = inMask, outMask
		r.DstAS = outAS
		r.InIf, r.OutIf = lanIf, uplink
		r.SrcVLAN = vlan
		r.SrcMAC, r.DstMAC = hostMAC, gwMAC
		r.NextHop = m.upstream(uplink, v6)
	} else {
		r.SrcAddr, r.DstAddr = out, in
		r.SrcMask, r.DstMask = outMask, inMask
		r.SrcAS = outAS
		r.InIf, r.OutIf = uplink, lanIf
		r.DstVLAN = vlan
		r.SrcMAC, r.DstMAC = upMAC, hostMAC
	}
}

// upstream returns the upstream router behind an uplink.
func (m *Mix) upstream(uplink uint32, v6 bool) netip.Addr {
	if v6 {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 15: byte(uplink)})
	}
	return netip.AddrFrom4([4]byte{192, 0, 2, byte(4*uplink - 3)})
}
