package jkflow

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
)

// benchConfig has 20 top-level directions (site pairs, prefixes and
// router groups) sharing a define set with services and DSCP, plus all
// and other.
func benchConfig() string {
	var b strings.Builder
	b.WriteString(`
sites:
`)
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&b, "  s%d: [10.%d.0.0/16, 10.%d.128.0/17, 2001:db8:%x::/48]\n", i, i, 100+i, i)
	}
	b.WriteString(`router_groups:
  edge:
    - exporter: 192.0.2.1
      interfaces: [1, 2, 3]
define_sets:
  std:
    total: true
    protocols: [tcp, udp, icmp]
    other_protocols: true
    applications:
      web: [80/tcp, 443/tcp, 8080/tcp]
      mail: [25/tcp, 110/tcp, 143/tcp, 993/tcp]
    services: [22-23/tcp, 53/udp, 123/udp, 6000-6063/tcp]
    other_services: true
    multicast: true
    dscp: true
all:
  local_subnets: [10.0.0.0/8, 2001:db8::/32]
  set: std
directions:
`)
	for i := 0; i < 18; i++ {
		fmt.Fprintf(&b, "  - {name: d%d, from: [s%d], to: [s%d], set: std}\n", i, i%10, (i+1+i/10)%10)
	}
	b.WriteString("  - {name: inet, from: [10.0.0.0/8], no_to: [10.0.0.0/8], set: std, scoreboard: {hosts: true, ports: true}}\n")
	b.WriteString("  - {name: uplink, router_group: edge, set: std}\n")
	b.WriteString("  - {name: other, set: std}\n")
	return b.String()
}

func benchFlows(n int) []flow.Record {
	rng := rand.New(rand.NewPCG(1, 2))
	addr := func() netip.Addr {
		if rng.IntN(5) == 0 {
			return netip.AddrFrom4([4]byte{byte(rng.IntN(223) + 1), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))})
		}
		return netip.AddrFrom4([4]byte{10, byte(rng.IntN(12)), byte(rng.IntN(256)), byte(rng.IntN(256))})
	}
	ports := []uint16{80, 443, 22, 53, 25, 6001, 12345, 40000}
	out := make([]flow.Record, n)
	for i := range out {
		out[i] = flow.Record{
			Exporter: netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + rng.IntN(2))}),
			SrcAddr:  addr(), DstAddr: addr(),
			SrcPort: ports[rng.IntN(len(ports))], DstPort: uint16(rng.IntN(65536)),
			Proto: []uint8{6, 6, 6, 17, 17, 1, 47}[rng.IntN(7)], TOS: uint8(rng.IntN(256)),
			Bytes: uint64(rng.IntN(100000)), Packets: uint64(rng.IntN(100) + 1),
			InIf: uint32(rng.IntN(5)), OutIf: uint32(rng.IntN(5)),
		}
	}
	return out
}

func BenchmarkWanted20Directions(b *testing.B) {
	mod := newModule(b, benchConfig(), b.TempDir())
	flows := benchFlows(1 << 14)
	if err := mod.PerFile(nil); err != nil {
		b.Fatal(err)
	}
	// Warm the scoreboard maps, as a real file would after its first flows.
	for i := range flows {
		mod.Wanted(&flows[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		mod.Wanted(&flows[i&(len(flows)-1)])
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "flows/s")
}

// TestWantedNoAlloc checks the hot path allocates nothing once the
// scoreboard maps have seen the file's hosts and ports.
func TestWantedNoAlloc(t *testing.T) {
	mod := newModule(t, benchConfig(), t.TempDir())
	flows := benchFlows(4096)
	mod.PerFile(nil)
	for i := range flows {
		mod.Wanted(&flows[i])
	}
	i := 0
	allocs := testing.AllocsPerRun(20000, func() {
		mod.Wanted(&flows[i%len(flows)])
		i++
	})
	if allocs != 0 {
		t.Errorf("Wanted: %v allocations per flow", allocs)
	}
}
