package probe

import (
	"bytes"
	"io"
	"net/netip"
	"os"
	"testing"

	"github.com/flowscan/flowscan/internal/flow"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// BenchmarkPacket measures the per-packet path (parse, lookup or insert,
// update, expiry) on a mix of 4096 concurrent flows in a steady state.
func BenchmarkPacket(b *testing.B) {
	var frames [][]byte
	for i := range 4096 {
		src := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		s := frameSpec{src: src, dst: v4b, proto: protoTCP, sport: uint16(1024 + i), dport: 443, tcpFlags: 0x10, payload: 1200}
		if i%4 == 0 {
			s = frameSpec{src: v6a, dst: v6b, proto: protoUDP, sport: uint16(i), dport: 53, payload: 60}
		}
		frames = append(frames, s.ethernet())
	}
	p, err := New(Config{MaxFlows: 8192, Emit: func([]flow.Record) {}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(frames[1])))
	t := sec(0)
	for i := 0; b.Loop(); i++ {
		t += 1000 // 1 µs per packet: flows keep expiring on the active timeout
		p.Packet(LinkEthernet, frames[i%len(frames)], t)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}

// BenchmarkPcap reads the shared capture from memory through the probe.
func BenchmarkPcap(b *testing.B) {
	data, err := os.ReadFile(trafficPcap)
	if err != nil {
		b.Fatal(err)
	}
	p, err := New(Config{MaxFlows: 4096, Emit: func([]flow.Record) {}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	var pkts uint64
	for b.Loop() {
		before := p.Stats().Packets
		if err := ReadPcap(p, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		p.Flush()
		pkts += p.Stats().Packets - before
	}
	b.ReportMetric(float64(pkts)/b.Elapsed().Seconds(), "packets/s")
}
