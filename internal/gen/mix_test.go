package gen

import (
	"net/netip"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
)

func TestMixDeterministic(t *testing.T) {
	now := time.Unix(1700000000, 0)
	tests := []struct {
		name      string
		seedA     int64
		seedB     int64
		wantEqual bool
	}{
		{"same seed", 42, 42, true},
		{"different seed", 42, 43, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := NewMix(tc.seedA, MixOptions{IPv6Share: 0.2})
			b := NewMix(tc.seedB, MixOptions{IPv6Share: 0.2})
			equal := true
			var ra, rb flow.Record
			for i := 0; i < 2000; i++ {
				a.Next(&ra, now)
				b.Next(&rb, now)
				if ra != rb {
					equal = false
				}
			}
			if equal != tc.wantEqual {
				t.Errorf("streams equal = %v, want %v", equal, tc.wantEqual)
			}
		})
	}
}

func TestMixDistribution(t *testing.T) {
	now := time.Unix(1700000000, 0)
	tests := []struct {
		name   string
		share  float64
		window time.Duration
	}{
		{"v4 only", 0, 0},
		{"30% v6", 0.3, 0},
		{"v6 only, 5 min", 1, 5 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMix(1, MixOptions{IPv6Share: tc.share, Interval: tc.window})
			in4 := netip.MustParsePrefix("10.0.0.0/16")
			in6 := netip.MustParsePrefix("2001:db8::/48")
			window := tc.window
			if window == 0 {
				window = time.Minute
			}
			const n = 100000
			var v6, tcp, udp, icmp, https, dns int
			remote := map[netip.Addr]int{}
			var r flow.Record
			for i := 0; i < n; i++ {
				m.Next(&r, now)
				if r.IsIPv6() {
					v6++
				}
				local, far := r.SrcAddr, r.DstAddr
				if !in4.Contains(local) && !in6.Contains(local) {
					local, far = far, local
				}
				if !in4.Contains(local) && !in6.Contains(local) || in4.Contains(far) || in6.Contains(far) {
					t.Fatalf("flow %d: want exactly one inside address: %v -> %v", i, r.SrcAddr, r.DstAddr)
				}
				remote[far]++
				switch r.Proto {
				case protoTCP:
					tcp++
					if r.TCPFlags == 0 {
						t.Fatalf("flow %d: TCP without flags", i)
					}
				case protoUDP:
					udp++
				case protoICMP, protoICMPv6:
					icmp++
				default:
					t.Fatalf("flow %d: proto %d", i, r.Proto)
				}
				if r.SrcPort == 443 || r.DstPort == 443 {
					https++
				}
				if r.SrcPort == 53 || r.DstPort == 53 {
					dns++
				}
				if r.Packets < 1 || r.Bytes < r.Packets*28 || r.Bytes > r.Packets*1500 {
					t.Fatalf("flow %d: %d bytes in %d packets", i, r.Bytes, r.Packets)
				}
				if r.Start > r.End || r.End > now.UnixMilli() || r.Start < now.Add(-window).UnixMilli() {
					t.Fatalf("flow %d: times %d..%d outside the window", i, r.Start, r.End)
				}
				if r.InIf == 0 || r.OutIf == 0 || r.InIf == r.OutIf {
					t.Fatalf("flow %d: interfaces %d -> %d", i, r.InIf, r.OutIf)
				}
				if r.SrcAS == 0 && r.DstAS == 0 {
					t.Fatalf("flow %d: no remote AS", i)
				}
			}
			if got := float64(v6) / n; got < tc.share-0.01 || got > tc.share+0.01 {
				t.Errorf("IPv6 share %.3f, want %.2f±0.01", got, tc.share)
			}
			share := func(k int) float64 { return float64(k) / n }
			t.Logf("v6 %.3f tcp %.3f udp %.3f icmp %.3f 443 %.3f 53 %.3f top10 %.3f remotes %d",
				share(v6), share(tcp), share(udp), share(icmp), share(https), share(dns), share(topCounts(remote, 10)), len(remote))
			for _, c := range []struct {
				what   string
				got    float64
				lo, hi float64
			}{
				{"TCP", share(tcp), 0.55, 0.80},
				{"UDP", share(udp), 0.18, 0.40},
				{"ICMP", share(icmp), 0.01, 0.06},
				{"port 443", share(https), 0.35, 0.55},
				{"port 53", share(dns), 0.06, 0.15},
			} {
				if c.got < c.lo || c.got > c.hi {
					t.Errorf("%s share %.3f outside [%.2f, %.2f]", c.what, c.got, c.lo, c.hi)
				}
			}
			// Zipf: the ten busiest remote hosts carry a large share, and
			// there is still a long tail.
			top := topCounts(remote, 10)
			if s := share(top); s < 0.10 {
				t.Errorf("top 10 remote hosts carry %.3f of flows, want skew ≥ 0.10", s)
			}
			if len(remote) < 5000 {
				t.Errorf("only %d distinct remote hosts", len(remote))
			}
		})
	}
}

// topCounts sums the k largest values of m.
func topCounts(m map[netip.Addr]int, k int) int {
	best := make([]int, k)
	for _, v := range m {
		for i := range best {
			if v > best[i] {
				copy(best[i+1:], best[i:k-1])
				best[i] = v
				break
			}
		}
	}
	sum := 0
	for _, v := range best {
		sum += v
	}
	return sum
}

func TestMixNoAlloc(t *testing.T) {
	m := NewMix(1, MixOptions{IPv6Share: 0.5})
	now := time.Now()
	var r flow.Record
	if a := testing.AllocsPerRun(1000, func() { m.Next(&r, now) }); a != 0 {
		t.Errorf("Mix.Next allocates %.1f times", a)
	}
}

func TestEncodersNoAlloc(t *testing.T) {
	m := NewMix(1, MixOptions{IPv6Share: 0.2})
	now := time.Now()
	recs := make([]flow.Record, 10)
	for i := range recs {
		m.Next(&recs[i], now)
	}
	v4 := make([]flow.Record, 0, 10)
	for _, r := range recs {
		if !r.IsIPv6() {
			v4 = append(v4, r)
		}
	}
	buf := make([]byte, 0, 2048)
	v9 := &V9Encoder{SamplingInterval: 10}
	ipfix := &IPFIXEncoder{SamplingInterval: 10}
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"v5", func() { buf = AppendNetFlow5(buf[:0], V5Header{}, v4) }},
		{"v9", func() { buf = v9.Append(buf[:0], now, recs) }},
		{"ipfix", func() { buf = ipfix.Append(buf[:0], now, recs) }},
	} {
		if a := testing.AllocsPerRun(100, tc.f); a != 0 {
			t.Errorf("%s: %.1f allocations per datagram", tc.name, a)
		}
	}
}
