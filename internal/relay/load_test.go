package relay

import (
	"context"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// loadResult is the outcome of one load run.
type loadResult struct {
	sent                 int
	elapsed              time.Duration // first send to last arrival (or timeout)
	relayed              uint64        // datagrams the relay's receiver got
	arrived              [2]uint64     // per destination
	relayDrops, sockDrop uint64        // relay queue drops, kernel drops on the relay socket
	backlogDrops         uint64        // the kernel's per-CPU input backlog drops (loopback too), all processes
}

// softnetDrops sums the "dropped" column of /proc/net/softnet_stat: packets
// the kernel dropped because a CPU's input backlog (net.core.netdev_max_backlog)
// was full. Loopback traffic passes through it too.
func softnetDrops() uint64 {
	data, err := os.ReadFile("/proc/net/softnet_stat")
	if err != nil {
		return 0
	}
	var total uint64
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 {
			v, _ := strconv.ParseUint(f[1], 16, 64)
			total += v
		}
	}
	return total
}

// runLoad sends n datagrams of size bytes through a relay (Receiver and
// Forwarder, as `flowscan relay` wires them) to two loopback receivers. A
// rate above 0 paces the sender (datagrams per second, in 1 ms bursts);
// 0 sends as fast as the generator's own queue drains. Everything is
// bounded: the run gives up 10 s after the last send.
func runLoad(tb testing.TB, n, size int, rate float64) loadResult {
	tb.Helper()
	ctx := context.Background()
	var counts [2]atomic.Uint64
	var sinks []*Receiver
	for i := range counts {
		r, err := Listen(ctx, "127.0.0.1:0", 16<<20)
		if err != nil {
			tb.Fatal(err)
		}
		sinks = append(sinks, r)
		go r.Run(func(_ netip.AddrPort, data []byte) {
			if len(data) == size {
				counts[i].Add(1)
			}
		})
	}
	in, err := Listen(ctx, "127.0.0.1:0", 16<<20)
	if err != nil {
		tb.Fatal(err)
	}
	fwd, err := NewForwarder([]Destination{{Addr: sinks[0].Addr(), Queue: 32768}, {Addr: sinks[1].Addr(), Queue: 32768}}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	relayDone := make(chan struct{})
	go func() {
		defer close(relayDone)
		in.Run(fwd.Datagram)
	}()
	// The load generator is a Forwarder too: sendmmsg in batches of 64.
	genFwd, err := NewForwarder([]Destination{{Addr: in.Addr(), Queue: 32768}}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer func() {
		genFwd.Close()
		in.Close()
		<-relayDone
		fwd.Close()
		for _, s := range sinks {
			s.Close()
		}
	}()
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i)
	}
	src := netip.MustParseAddrPort("192.0.2.1:2055")
	backlogBefore := softnetDrops()
	start := time.Now()
	for i := 0; i < n; i++ {
		if rate > 0 && i%200 == 0 {
			// Pace: datagram i is due at start + i/rate.
			if d := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		for genFwd.backlog() > 16384 {
			time.Sleep(50 * time.Microsecond)
		}
		genFwd.Datagram(src, payload)
	}
	deadline := time.Now().Add(10 * time.Second)
	res := loadResult{sent: n}
	last := time.Now()
	for time.Now().Before(deadline) {
		a, b := counts[0].Load(), counts[1].Load()
		if a != res.arrived[0] || b != res.arrived[1] {
			res.arrived = [2]uint64{a, b}
			last = time.Now()
		}
		if a == uint64(n) && b == uint64(n) {
			break
		}
		if time.Since(last) > time.Second && genFwd.backlog() == 0 && fwd.backlog() == 0 {
			break // nothing more is coming
		}
		time.Sleep(time.Millisecond)
	}
	res.elapsed = last.Sub(start)
	res.backlogDrops = softnetDrops() - backlogBefore
	res.relayed = in.Received()
	res.sockDrop = in.KernelDrops()
	for _, s := range fwd.Stats() {
		res.relayDrops += s.Dropped
	}
	return res
}

func (r loadResult) report(tb testing.TB) {
	tb.Logf("relay load: %d datagrams in %v = %.0f datagrams/s to each of 2 destinations; relay received %d (socket drops %d, queue drops %d); destinations got %d and %d (lost %d and %d); kernel input-backlog drops meanwhile (whole machine) %d",
		r.sent, r.elapsed.Round(time.Millisecond), float64(r.sent)/r.elapsed.Seconds(),
		r.relayed, r.sockDrop, r.relayDrops, r.arrived[0], r.arrived[1],
		uint64(r.sent)-r.arrived[0], uint64(r.sent)-r.arrived[1], r.backlogDrops)
}

// TestRelayLoad offers 200 k datagrams/s (512 bytes each) for one second
// and reports the rate reached and any loss. It reports rather than
// asserts: the machine is shared, and a timing assertion would be noise.
// It fails only if the relay lost most of the traffic, which no load
// explains.
func TestRelayLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test (-short)")
	}
	n, rate := 200_000, 200_000.0
	if raceEnabled {
		n, rate = 40_000, 20_000
	}
	res := runLoad(t, n, 512, rate)
	res.report(t)
	if res.arrived[0] < uint64(res.sent)/2 || res.arrived[1] < uint64(res.sent)/2 {
		t.Errorf("more than half the datagrams lost")
	}
}

// BenchmarkRelayTwoDestinations pushes b.N datagrams of 512 bytes through
// the relay to two destinations as fast as it forwards them and reports
// the rate and the loss per destination.
func BenchmarkRelayTwoDestinations(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(512 * 2)
	n := max(b.N, 1000)
	b.ResetTimer()
	res := runLoad(b, n, 512, 0)
	b.StopTimer()
	b.ReportMetric(float64(n)/res.elapsed.Seconds(), "datagrams/s")
	b.ReportMetric(float64(2*uint64(n)-res.arrived[0]-res.arrived[1])/2, "lost/dest")
}

// BenchmarkDatagram measures the cost of queueing one datagram for two
// destinations (the collector's pipeline pays this per datagram).
func BenchmarkDatagram(b *testing.B) {
	bs := &countingSender{}
	orig := newSender
	newSender = func(Destination) (sender, error) { return bs, nil }
	defer func() { newSender = orig }()
	f, err := NewForwarder([]Destination{{Addr: netip.MustParseAddrPort("127.0.0.1:9")}, {Addr: netip.MustParseAddrPort("127.0.0.1:10"), Formats: nil}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	payload := make([]byte, 1400)
	src := netip.MustParseAddrPort("192.0.2.1:2055")
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for i := 0; b.Loop(); i++ {
		for f.backlog() > DefaultQueue/2 {
			time.Sleep(10 * time.Microsecond)
		}
		f.Datagram(src, payload)
	}
}

// countingSender accepts everything.
type countingSender struct{ n atomic.Uint64 }

func (s *countingSender) send(batch []*packet) sendResult {
	s.n.Add(uint64(len(batch)))
	return sendResult{sent: len(batch)}
}
func (s *countingSender) interrupt()   {}
func (s *countingSender) close() error { return nil }
