package cuflow

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/report"
	"github.com/flowscan/flowscan/internal/rrd"
)

// benchConfig has 50 networks, 30 services, 10 routers, protocols, TOS and
// AS groups, IPv4 and IPv6 subnets.
func benchConfig(scoreboard bool) *Config {
	c := &Config{Subnets: []string{"10.0.0.0/8", "172.16.0.0/12", "2001:db8::/32"}, Multicast: true}
	for i := 0; i < 10; i++ {
		c.Routers = append(c.Routers, Router{Address: fmt.Sprintf("192.0.2.%d", i+1), Name: fmt.Sprintf("r%d", i)})
	}
	c.SampleRates = SampleRates{{Exporter: "192.0.2.10", Rate: 100}}
	for i := 0; i < 50; i++ {
		c.Networks = append(c.Networks, Network{Name: fmt.Sprintf("net%d", i), Prefixes: []string{fmt.Sprintf("10.%d.0.0/16", i), fmt.Sprintf("2001:db8:%x::/48", i)}})
	}
	for i := 0; i < 30; i++ {
		c.Services = append(c.Services, Service{Name: fmt.Sprintf("svc%d", i), Ports: []string{fmt.Sprintf("%d/tcp", 1000+i), fmt.Sprintf("%d/udp", 1000+i), fmt.Sprintf("%d-%d/tcp", 2000+10*i, 2009+10*i)}})
	}
	c.Services[0].Ports = append(c.Services[0].Ports, "80/tcp", "443/tcp")
	c.Protocols = []Protocol{{Number: "tcp"}, {Number: "udp"}, {Number: "icmp"}}
	c.TOS = []TOSGroup{{Name: "be", Values: "0"}, {Name: "other", Values: "1-255"}}
	c.ASNumbers = []ASGroup{{Name: "a", ASNs: []string{"65001", "65002"}}, {Name: "b", ASNs: []string{"65003-65010"}}}
	if scoreboard {
		c.Scoreboard = &Scoreboard{TopN: 10, Dir: "sb"}
	}
	return c
}

// benchFlows returns n flows: mostly in/out border traffic over the
// routers, some internal, transit and multicast, a tenth IPv6.
func benchFlows(n int) []flow.Record {
	rng := rand.New(rand.NewPCG(1, 2))
	inside := func() netip.Addr {
		if rng.IntN(10) == 0 {
			return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(rng.IntN(60)), 0, 0, 0, 0, 0, 0, 0, 0, byte(rng.IntN(256)), byte(rng.IntN(256))})
		}
		return netip.AddrFrom4([4]byte{10, byte(rng.IntN(60)), byte(rng.IntN(256)), byte(rng.IntN(256))})
	}
	outside := func(v6 bool) netip.Addr {
		if v6 {
			return netip.AddrFrom16([16]byte{0x2a, 0x00, byte(rng.IntN(256)), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(rng.IntN(256))})
		}
		return netip.AddrFrom4([4]byte{byte(11 + rng.IntN(150)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))})
	}
	out := make([]flow.Record, n)
	var exporter netip.Addr
	for i := range out {
		r := &out[i]
		// Flows come in runs of one export datagram's 30 records.
		if i%30 == 0 {
			exporter = netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + rng.IntN(12))})
		}
		r.Exporter = exporter
		in := inside()
		ext := outside(in.Is6())
		switch k := rng.IntN(100); {
		case k < 45:
			r.SrcAddr, r.DstAddr = ext, in
		case k < 90:
			r.SrcAddr, r.DstAddr = in, ext
		case k < 95:
			r.SrcAddr, r.DstAddr = in, inside()
		case k < 98:
			r.SrcAddr, r.DstAddr = ext, outside(in.Is6())
		default:
			r.SrcAddr, r.DstAddr = in, netip.AddrFrom4([4]byte{239, 1, 1, byte(rng.IntN(256))})
		}
		if r.SrcAddr.Is6() != r.DstAddr.Is6() {
			r.DstAddr = ext
		}
		r.Proto = []uint8{6, 6, 6, 17, 17, 1, 47}[rng.IntN(7)]
		ports := []uint16{80, 443, 53, 1005, 2015, 2291, 40000, 51234}
		r.SrcPort, r.DstPort = ports[rng.IntN(len(ports))], uint16(1024+rng.IntN(60000))
		if rng.IntN(2) == 0 {
			r.SrcPort, r.DstPort = r.DstPort, r.SrcPort
		}
		r.Bytes = uint64(40 + rng.IntN(1500*20))
		r.Packets = 1 + r.Bytes/800
		r.TOS = []uint8{0, 0, 0, 8, 46 << 2}[rng.IntN(5)]
		r.SrcAS, r.DstAS = uint32(65000+rng.IntN(12)), uint32(65000+rng.IntN(12))
	}
	return out
}

func benchModule(b *testing.B, scoreboard bool) *Module {
	dir := b.TempDir()
	env := &report.Env{RRD: rrd.New(""), Interval: 300 * time.Second, OutputDir: filepath.Join(dir, "rrd"), BaseDir: dir}
	m, err := newModule(env, benchConfig(scoreboard))
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkWanted measures the hot path: 50 networks, 30 services, 10
// routers. It must not allocate.
func BenchmarkWanted(b *testing.B) {
	for _, sb := range []bool{false, true} {
		b.Run(fmt.Sprintf("scoreboard=%v", sb), func(b *testing.B) {
			m := benchModule(b, sb)
			flows := benchFlows(1 << 16)
			m.PerFile(&report.File{Start: t0, End: t0.Add(300 * time.Second)})
			for i := range flows { // warm the scoreboard's host table
				m.Wanted(&flows[i])
			}
			b.ReportAllocs()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			cpu0 := threadCPU()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m.Wanted(&flows[i&(len(flows)-1)])
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "flows/s")
			// CPU time of this thread, which other processes on a busy
			// machine do not inflate as they do the wall clock.
			b.ReportMetric(float64(b.N)/(threadCPU()-cpu0).Seconds(), "flows/cpu-s")
		})
	}
}

// BenchmarkFile scans a whole 5-minute file of 1 M flows: PerFile, Wanted
// for every flow, Report with all RRD updates (about 800 RRD files) and
// the scoreboard.
func BenchmarkFile(b *testing.B) {
	m := benchModule(b, true)
	flows := benchFlows(1_000_000)
	step := 300 * time.Second
	// Create the RRD files first (once per RRD's life, ~290 kB each).
	m.PerFile(&report.File{Start: t0.Add(-step), End: t0})
	if err := m.Report(); err != nil {
		b.Fatal(err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := t0.Add(time.Duration(i) * step)
		if err := m.PerFile(&report.File{Start: start, End: start.Add(step)}); err != nil {
			b.Fatal(err)
		}
		for j := range flows {
			m.Wanted(&flows[j])
		}
		if err := m.Report(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(len(m.targets)), "rrds")
	b.ReportMetric((threadCPU()-cpu0).Seconds()/float64(b.N), "cpu-s/file")
}

// threadCPU returns the calling thread's CPU time (user and system).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(rusageThread, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rusageThread is Linux's RUSAGE_THREAD.
const rusageThread = 1

// BenchmarkReport measures Report alone: about 800 RRD updates and the
// scoreboard of 1 M flows' hosts.
func BenchmarkReport(b *testing.B) {
	m := benchModule(b, false)
	flows := benchFlows(1 << 16)
	step := 300 * time.Second
	for i := 0; i < b.N+1; i++ {
		if i == 1 {
			b.ResetTimer() // the first report creates the files
		}
		start := t0.Add(time.Duration(i) * step)
		m.PerFile(&report.File{Start: start, End: start.Add(step)})
		b.StopTimer()
		for j := range flows {
			m.Wanted(&flows[j])
		}
		b.StartTimer()
		if err := m.Report(); err != nil {
			b.Fatal(err)
		}
	}
}
