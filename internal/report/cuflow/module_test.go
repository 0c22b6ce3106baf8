package cuflow

import (
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/report"
	"github.com/flowscan/flowscan/internal/rrd"
)

const goldenYAML = `
subnets: [10.0.0.0/8, 2001:db8::/32]
routers: [{address: 192.0.2.1, name: gw}]
sample_rates: {192.0.2.2: 10}
networks:
  - {name: lan, prefixes: [10.1.0.0/16]}
  - {name: v6net, prefixes: ["2001:db8:1::/48"]}
services:
  - {name: web, ports: [80/tcp, https/tcp]}
  - {name: dns, ports: [domain/udp]}
protocols: [{number: tcp}, {number: 17, name: udp}]
tos: [{name: low, values: "0"}, {name: high, values: "1-255"}]
as_numbers: [{name: peer, asns: [65001]}]
multicast: true
`

// newTestModule builds the module from YAML text as the scanner would.
func newTestModule(t testing.TB, text string, interval time.Duration) (*Module, string) {
	t.Helper()
	dir := t.TempDir()
	env := &report.Env{RRD: rrd.New(""), Interval: interval, OutputDir: filepath.Join(dir, "rrd"), BaseDir: dir}
	factory, err := report.Lookup("cuflow")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := factory(env, func(v any) error { return yaml.Unmarshal([]byte(text), v) })
	if err != nil {
		t.Fatal(err)
	}
	return mod.(*Module), dir
}

func rec(exporter, src string, sport uint16, dst string, dport uint16, proto uint8, bytes, pkts uint64) flow.Record {
	return flow.Record{Exporter: netip.MustParseAddr(exporter), SrcAddr: netip.MustParseAddr(src), DstAddr: netip.MustParseAddr(dst),
		SrcPort: sport, DstPort: dport, Proto: proto, Bytes: bytes, Packets: pkts}
}

// goldenFlows are crafted so that every category's totals can be worked
// out by hand (see the expectations in TestGoldenRRD).
func goldenFlows() []flow.Record {
	f1 := rec("192.0.2.1", "198.51.100.1", 443, "10.1.2.3", 50000, 6, 3000, 3) // in, web src, lan
	f1.SrcAS = 65001
	f2 := rec("192.0.2.1", "10.1.2.3", 50001, "198.51.100.1", 80, 6, 600, 6) // out, web dst, lan
	f2.TOS, f2.DstAS = 8, 65001
	f3 := rec("192.0.2.9", "10.2.0.1", 53, "203.0.113.5", 53, 17, 900, 3)            // out, dns both ports: once
	f4 := rec("192.0.2.2", "203.0.113.7", 0, "10.1.0.5", 771, 1, 100, 1)             // in, SampleRate 10 applies
	f5 := rec("192.0.2.2", "203.0.113.8", 123, "2001:db8:1::5", 123, 17, 50000, 100) // in, already sampled 1:100
	f5.SamplingRate = 100
	f6 := rec("192.0.2.1", "10.1.0.1", 1000, "10.2.0.2", 2000, 6, 7000, 7)      // internal
	f7 := rec("192.0.2.1", "198.51.100.1", 1000, "203.0.113.1", 80, 6, 8000, 8) // transit
	f8 := rec("192.0.2.1", "10.1.0.9", 5000, "239.1.1.1", 5000, 17, 1200, 12)   // multicast out
	f9 := rec("192.0.2.9", "2001:db9::1", 5000, "ff0e::1", 5000, 17, 300, 3)    // multicast in
	return []flow.Record{f1, f2, f3, f4, f5, f6, f7, f8, f9}
}

// six is the expected in/out bytes, pkts, flows of one RRD.
type six struct{ inB, outB, inP, outP, inF, outF float64 }

func scan(t testing.TB, m *Module, file *report.File, flows []flow.Record) {
	t.Helper()
	if err := m.PerFile(file); err != nil {
		t.Fatal(err)
	}
	for i := range flows {
		if !m.Wanted(&flows[i]) {
			t.Errorf("flow %d not wanted", i)
		}
	}
	if err := m.Report(); err != nil {
		t.Fatal(err)
	}
}

// fetchRow returns the values stored for the file starting at `at`: the
// row of the step ending one step later.
func fetchRow(t *testing.T, path string, at time.Time, step time.Duration) map[string]float64 {
	t.Helper()
	at = at.Add(step)
	s, err := rrd.New("").Fetch(path, "AVERAGE", at.Add(-step), at, step)
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range s.Rows {
		if s.Time(i).Equal(at) {
			out := map[string]float64{}
			for j, n := range s.Names {
				out[n] = row[j]
			}
			return out
		}
	}
	t.Fatalf("%s: no row at %v in %+v", path, at, s)
	return nil
}

func checkRRD(t *testing.T, path string, at time.Time, step time.Duration, want six) {
	t.Helper()
	got := fetchRow(t, path, at, step)
	secs := step.Seconds()
	w := map[string]float64{"in_bytes": want.inB / secs, "out_bytes": want.outB / secs, "in_pkts": want.inP / secs,
		"out_pkts": want.outP / secs, "in_flows": want.inF / secs, "out_flows": want.outF / secs}
	for k, v := range w {
		if g, ok := got[k]; !ok || math.Abs(g-v) > 1e-9*math.Max(1, v) {
			t.Errorf("%s %s = %v, want %v (%v per file)", filepath.Base(path), k, got[k], v, v*secs)
		}
	}
}

var t0 = time.Unix(1_800_000_000, 0).Truncate(300 * time.Second)

func TestGoldenRRD(t *testing.T) {
	step := 300 * time.Second
	m, dir := newTestModule(t, goldenYAML, step)
	file := &report.File{Path: "ft-test", Start: t0, End: t0.Add(step)}
	scan(t, m, file, goldenFlows())
	out := filepath.Join(dir, "rrd")
	want := map[string]six{
		"total.rrd":              {54000, 1500, 113, 9, 111, 2},
		"protocol_tcp.rrd":       {3000, 600, 3, 6, 1, 1},
		"protocol_udp.rrd":       {50000, 900, 100, 3, 100, 1},
		"service_web_src.rrd":    {3000, 0, 3, 0, 1, 0},
		"service_web_dst.rrd":    {0, 600, 0, 6, 0, 1},
		"service_dns_src.rrd":    {},
		"service_dns_dst.rrd":    {0, 900, 0, 3, 0, 1},
		"tos_low.rrd":            {54000, 900, 113, 3, 111, 1},
		"tos_high.rrd":           {0, 600, 0, 6, 0, 1},
		"as_peer.rrd":            {3000, 600, 3, 6, 1, 1},
		"protocol_multicast.rrd": {300, 1200, 3, 12, 1, 1},
		"internal.rrd":           {7000, 0, 7, 0, 1, 0},
		"transit.rrd":            {8000, 0, 8, 0, 1, 0},
		"network_lan.rrd":        {4000, 600, 13, 6, 11, 1},
		"network_v6net.rrd":      {50000, 0, 100, 0, 100, 0},
		// The router's scope: flows 1, 2, 6, 7, 8 only.
		"gw/total.rrd":              {3000, 600, 3, 6, 1, 1},
		"gw/protocol_tcp.rrd":       {3000, 600, 3, 6, 1, 1},
		"gw/protocol_udp.rrd":       {},
		"gw/service_web_src.rrd":    {3000, 0, 3, 0, 1, 0},
		"gw/service_web_dst.rrd":    {0, 600, 0, 6, 0, 1},
		"gw/service_dns_dst.rrd":    {},
		"gw/tos_low.rrd":            {3000, 0, 3, 0, 1, 0},
		"gw/tos_high.rrd":           {0, 600, 0, 6, 0, 1},
		"gw/as_peer.rrd":            {3000, 600, 3, 6, 1, 1},
		"gw/protocol_multicast.rrd": {0, 1200, 0, 12, 0, 1},
		"gw/internal.rrd":           {7000, 0, 7, 0, 1, 0},
		"gw/transit.rrd":            {8000, 0, 8, 0, 1, 0},
	}
	for name, w := range want {
		checkRRD(t, filepath.Join(out, name), t0, step, w)
	}
	if _, err := os.Stat(filepath.Join(out, "gw", "network_lan.rrd")); err == nil {
		t.Error("network RRDs are not per router")
	}
	// network_*.rrd keeps CUFlow's DS order.
	s, err := rrd.New("").Fetch(filepath.Join(out, "network_lan.rrd"), "AVERAGE", t0.Add(-step), t0, step)
	if err != nil || strings.Join(s.Names, " ") != "in_bytes in_pkts in_flows out_bytes out_pkts out_flows" {
		t.Errorf("network DS order %v %v", s.Names, err)
	}
	s, err = rrd.New("").Fetch(filepath.Join(out, "total.rrd"), "AVERAGE", t0.Add(-step), t0, step)
	if err != nil || strings.Join(s.Names, " ") != "in_bytes out_bytes in_pkts out_pkts in_flows out_flows" {
		t.Errorf("total DS order %v %v", s.Names, err)
	}

	// Reporting the same file again (a crash, then a rescan) changes
	// nothing.
	scan(t, m, file, goldenFlows())
	checkRRD(t, filepath.Join(out, "total.rrd"), t0, step, want["total.rrd"])
	checkRRD(t, filepath.Join(out, "gw/internal.rrd"), t0, step, want["gw/internal.rrd"])

	// The next file lands in the next row.
	next := &report.File{Path: "ft-next", Start: t0.Add(step), End: t0.Add(2 * step)}
	scan(t, m, next, goldenFlows()[:1])
	checkRRD(t, filepath.Join(out, "total.rrd"), t0.Add(step), step, six{inB: 3000, inP: 3, inF: 1})
	checkRRD(t, filepath.Join(out, "total.rrd"), t0, step, want["total.rrd"])

	// The rrdtool command reads the same values.
	if _, err := exec.LookPath("rrdtool"); err != nil {
		t.Log("rrdtool command not installed; skipping its check")
		return
	}
	cmd := exec.Command("rrdtool", "fetch", filepath.Join(out, "total.rrd"), "AVERAGE", "-r", "300",
		"-s", strconv.FormatInt(t0.Unix(), 10), "-e", strconv.FormatInt(t0.Add(step).Unix(), 10))
	text, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("rrdtool fetch: %v\n%s", err, text)
	}
	prefix := strconv.FormatInt(t0.Add(step).Unix(), 10) + ":"
	found := false
	for _, line := range strings.Split(string(text), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		found = true
		fields := strings.Fields(strings.TrimPrefix(line, prefix))
		wantVals := []float64{54000, 1500, 113, 9, 111, 2}
		for i, f := range fields {
			v, err := strconv.ParseFloat(f, 64)
			if err != nil || math.Abs(v-wantVals[i]/300) > 1e-6 {
				t.Errorf("rrdtool fetch column %d = %q, want %v", i, f, wantVals[i]/300)
			}
		}
	}
	if !found {
		t.Errorf("rrdtool fetch has no row at %d:\n%s", t0.Unix(), text)
	}
}

// TestIntervalNot300 uses one-minute files: the step and the rates follow
// the interval.
func TestIntervalNot300(t *testing.T) {
	step := time.Minute
	m, dir := newTestModule(t, "subnets: [10.0.0.0/8]\n", step)
	file := &report.File{Start: t0, End: t0.Add(step)}
	flows := []flow.Record{rec("192.0.2.9", "10.0.0.1", 1, "192.0.2.50", 2, 6, 6000, 60)}
	scan(t, m, file, flows)
	checkRRD(t, filepath.Join(dir, "rrd", "total.rrd"), t0, step, six{outB: 6000, outP: 60, outF: 1})
}

// TestOutputDirAndCF reads a CUFlow.cf named by the YAML, with its
// OutputDir relative to the configuration's directory.
func TestOutputDirAndCF(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "CUFlow.cf"), []byte("Subnet 10.0.0.0/8\nOutputDir cfrrd\nService 22/tcp ssh\n"), 0o644)
	env := &report.Env{RRD: rrd.New(""), Interval: 300 * time.Second, OutputDir: filepath.Join(dir, "default"), BaseDir: dir}
	mod, err := New(env, func(v any) error { return yaml.Unmarshal([]byte("cf: CUFlow.cf\n"), v) })
	if err != nil {
		t.Fatal(err)
	}
	m := mod.(*Module)
	scan(t, m, &report.File{Start: t0, End: t0.Add(300 * time.Second)}, []flow.Record{rec("192.0.2.9", "192.0.2.50", 40000, "10.0.0.1", 22, 6, 300, 3)})
	checkRRD(t, filepath.Join(dir, "cfrrd", "service_ssh_dst.rrd"), t0, 300*time.Second, six{inB: 300, inP: 3, inF: 1})
	// A bad CUFlow.cf fails the factory with its position.
	os.WriteFile(filepath.Join(dir, "bad.cf"), []byte("Subnet 10.0.0.0/8\nSubnet nope\n"), 0o644)
	_, err = New(env, func(v any) error { return yaml.Unmarshal([]byte("cf: bad.cf\n"), v) })
	if err == nil || !strings.Contains(err.Error(), "bad.cf:2: ") {
		t.Errorf("bad CUFlow.cf: %v", err)
	}
}

// TestAddrTable checks inside/network classification at prefix edges,
// nested networks and IPv6.
func TestAddrTable(t *testing.T) {
	items := []tagged{
		{netip.MustParsePrefix("10.0.0.0/8"), -1},
		{netip.MustParsePrefix("10.1.0.0/16"), 0},
		{netip.MustParsePrefix("10.1.2.0/24"), 1},
		{netip.MustParsePrefix("255.255.255.0/24"), -1},
		{netip.MustParsePrefix("2001:db8::/32"), -1},
		{netip.MustParsePrefix("2001:db8:1::/48"), 2},
		{netip.MustParsePrefix("ffff::/16"), 3},
	}
	tab := buildAddrTable(items)
	for addr, want := range map[string]string{
		"9.255.255.255":                       "o",
		"10.0.0.0":                            "i",
		"10.0.255.255":                        "i",
		"10.1.0.0":                            "i0",
		"10.1.2.255":                          "i01",
		"10.1.3.0":                            "i0",
		"10.255.255.255":                      "i",
		"11.0.0.0":                            "o",
		"255.255.255.255":                     "i",
		"::ffff:10.1.2.3":                     "i01",
		"2001:db8::1":                         "i",
		"2001:db8:1:ffff:ffff:ffff:ffff:ffff": "i2",
		"2001:db8:2::":                        "i",
		"2001:db9::":                          "o",
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff": "o3",
		"::": "o",
	} {
		c := tab.classes[tab.lookup(netip.MustParseAddr(addr))]
		got := "o"
		if c.inside {
			got = "i"
		}
		for _, n := range c.networks {
			got += strconv.Itoa(int(n))
		}
		if got != want {
			t.Errorf("%s: %s, want %s", addr, got, want)
		}
	}
	if c := tab.lookup(netip.Addr{}); c != 0 {
		t.Errorf("zero address class %d", c)
	}
}

// TestServiceCountedOnce: a flow whose two ports both belong to a service
// counts once for it (as _dst), also when the ports differ and belong to
// different sets of services; another service matching only the source
// port still counts it as _src.
func TestServiceCountedOnce(t *testing.T) {
	step := 300 * time.Second
	m, dir := newTestModule(t, `
subnets: [10.0.0.0/8]
services:
  - {name: web, ports: [80/tcp, 443/tcp]}
  - {name: tls, ports: [443/tcp]}
`, step)
	flows := []flow.Record{
		rec("192.0.2.9", "192.0.2.50", 443, "10.0.0.1", 80, 6, 1000, 10),  // web both ports; tls src
		rec("192.0.2.9", "192.0.2.50", 443, "10.0.0.1", 443, 6, 2000, 20), // web and tls both ports
		rec("192.0.2.9", "192.0.2.50", 80, "10.0.0.1", 80, 6, 4000, 40),   // web both ports
	}
	scan(t, m, &report.File{Start: t0, End: t0.Add(step)}, flows)
	out := filepath.Join(dir, "rrd")
	checkRRD(t, filepath.Join(out, "service_web_dst.rrd"), t0, step, six{inB: 7000, inP: 70, inF: 3})
	checkRRD(t, filepath.Join(out, "service_web_src.rrd"), t0, step, six{})
	checkRRD(t, filepath.Join(out, "service_tls_dst.rrd"), t0, step, six{inB: 2000, inP: 20, inF: 1})
	checkRRD(t, filepath.Join(out, "service_tls_src.rrd"), t0, step, six{inB: 1000, inP: 10, inF: 1})
}
