package campusio

import (
	"encoding/json"
	"errors"
	"io"
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

const step = 300 * time.Second

var t0 = time.Unix(1_800_000_000, 0).Truncate(step)

// Decoder returns a report.Decoder reading src the way the configuration
// loader does: unknown keys are errors with line numbers.
func Decoder(src string) report.Decoder {
	return func(v any) error {
		d := yaml.NewDecoder(strings.NewReader(src))
		d.KnownFields(true)
		if err := d.Decode(v); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		return nil
	}
}

func newModule(t testing.TB, name, src string) (report.Module, string) {
	t.Helper()
	dir := t.TempDir()
	f, err := report.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	env := &report.Env{RRD: rrd.New(""), Interval: step, OutputDir: dir}
	m, err := f(env, Decoder(src))
	if err != nil {
		t.Fatal(err)
	}
	return m, dir
}

func fl(src, dst string, proto uint8, sport, dport uint16, bytes, pkts uint64) flow.Record {
	return flow.Record{SrcAddr: netip.MustParseAddr(src), DstAddr: netip.MustParseAddr(dst), Proto: proto,
		SrcPort: sport, DstPort: dport, Bytes: bytes, Packets: pkts}
}

// scanFile runs one file through m the way the scanner does.
func scanFile(t testing.TB, m report.Module, f *report.File, flows []flow.Record) (hits int) {
	t.Helper()
	if err := m.PerFile(f); err != nil {
		t.Fatal(err)
	}
	for i := range flows {
		if m.Wanted(&flows[i]) {
			hits++
		}
	}
	if err := m.Report(); err != nil {
		t.Fatal(err)
	}
	return hits
}

// counts is what an in/out RRD row should hold, as counts per file (the
// RRD holds them divided by the 300 s since the previous update).
type counts [6]float64 // in_bytes out_bytes in_pkts out_pkts in_flows out_flows

// fetchAt returns the values stored for the file starting at `at` (the step
// ending one step later), times the step, so they compare with the
// per-file counts.
func fetchAt(t *testing.T, path string, at time.Time) []float64 {
	t.Helper()
	// A file is stored in the step that ends when the file ends.
	at = at.Add(step)
	s, err := rrd.New("").Fetch(path, "AVERAGE", at.Add(-step), at, step)
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range s.Rows {
		if s.Time(i).Equal(at) {
			out := make([]float64, len(row))
			for j, v := range row {
				out[j] = v * step.Seconds()
			}
			return out
		}
	}
	t.Fatalf("%s: no row at %v in %+v", path, at, s)
	return nil
}

func checkRRD(t *testing.T, path string, at time.Time, want []float64) {
	t.Helper()
	got := fetchAt(t, path, at)
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", filepath.Base(path), len(got), len(want))
	}
	for i := range want {
		if math.IsNaN(got[i]) || math.Abs(got[i]-want[i]) > 1e-6 {
			t.Errorf("%s at %v: %v, want %v", filepath.Base(path), at.Unix(), got, want)
			return
		}
	}
}

const goldenConfig = `
local_subnets: [10.0.0.0/8, "2001:db8::/32"]
tcp_services: [http, https]
udp_services: [domain]
multicast: true
top_n: 3
report_prefix_format: "%Y%m%d/%H%M_"
`

// goldenFlows are crafted so that every category's total is worked out by
// hand in TestGolden.
func goldenFlows() []flow.Record {
	return []flow.Record{
		/* 1 out */ fl("10.1.1.1", "192.0.2.1", 6, 40000, 80, 1000, 10),
		/* 2 in */ fl("192.0.2.1", "10.1.1.1", 6, 80, 40000, 30000, 20),
		/* 3 in */ fl("198.51.100.7", "10.2.0.5", 6, 443, 5555, 6000, 6),
		/* 4 out */ fl("10.2.0.5", "203.0.113.9", 17, 53, 53, 300, 3),
		/* 5 in */ fl("203.0.113.9", "10.1.1.1", 1, 0, 0x0800, 600, 6),
		/* 6 internal */ fl("10.1.1.1", "10.2.0.5", 6, 33000, 80, 9000, 9),
		/* 7 transit */ fl("192.0.2.1", "198.51.100.7", 17, 1000, 2000, 1200, 2),
		/* 8 out */ fl("2001:db8::1", "2600::1", 6, 443, 50000, 1500, 3),
		/* 9 mcast out */ fl("10.1.1.1", "239.1.1.1", 17, 5000, 5000, 3000, 30),
		/* 10 mcast in */ fl("192.0.2.1", "224.0.0.251", 17, 5353, 5353, 900, 9),
		/* 11 out, GRE */ fl("10.2.0.5", "192.0.2.1", 47, 0, 0, 12000, 12),
	}
}

func TestGolden(t *testing.T) {
	m, dir := newModule(t, "campusio", goldenConfig)
	// One step long: the RRD stores the file's counts in the step that
	// ends when the file ends; rates in the top report use the file's
	// duration.
	f := &report.File{Path: "/flows/ft-test", Start: t0, End: t0.Add(step)}
	if hits := scanFile(t, m, f, goldenFlows()); hits != 9 {
		t.Errorf("hits %d, want 9 (all but internal and transit)", hits)
	}
	zero := counts{}
	want := map[string]counts{
		// in: flows 2,3,5; out: 1,4,8,11.
		"total": {30000 + 6000 + 600, 1000 + 300 + 1500 + 12000, 20 + 6 + 6, 10 + 3 + 3 + 12, 3, 4},
		"tcp":   {36000, 2500, 26, 13, 2, 2},
		"udp":   {0, 300, 0, 3, 0, 1},
		"icmp":  {600, 0, 6, 0, 1, 0},
		"MCAST": {900, 3000, 9, 30, 1, 1},
		// Service files: _src by source port, _dst by destination port.
		"http_src":   {30000, 0, 20, 0, 1, 0},
		"http_dst":   {0, 1000, 0, 10, 0, 1},
		"https_src":  {6000, 1500, 6, 3, 1, 1},
		"https_dst":  zero,
		"domain_src": {0, 300, 0, 3, 0, 1},
		"domain_dst": {0, 300, 0, 3, 0, 1},
	}
	for name, w := range want {
		checkRRD(t, filepath.Join(dir, name+".rrd"), t0, w[:])
	}
	checkRRD(t, filepath.Join(dir, "internal.rrd"), t0, []float64{9000, 9, 1})
	checkRRD(t, filepath.Join(dir, "transit.rrd"), t0, []float64{1200, 2, 1})
	if _, err := os.Stat(filepath.Join(dir, "gre.rrd")); err == nil {
		t.Error("gre.rrd written though gre is not configured")
	}

	// Top talkers: local hosts, in by destination, out by source.
	base := filepath.Join(dir, "top", ReportPrefix("%Y%m%d/%H%M_", t0)+"top")
	var rep TopReport
	b, err := os.ReadFile(base + ".json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	wantIn := []Talker{{"10.1.1.1", 30600, 26, 2, 30600 * 8 / 300.0}, {"10.2.0.5", 6000, 6, 1, 6000 * 8 / 300.0}}
	wantOut := []Talker{{"10.2.0.5", 12300, 15, 2, 12300 * 8 / 300.0}, {"2001:db8::1", 1500, 3, 1, 1500 * 8 / 300.0}, {"10.1.1.1", 1000, 10, 1, 1000 * 8 / 300.0}}
	if !talkersEqual(rep.In, wantIn) || !talkersEqual(rep.Out, wantOut) {
		t.Errorf("top report in %+v\nout %+v\nwant %+v\n%+v", rep.In, rep.Out, wantIn, wantOut)
	}
	if rep.Seconds != 300 || rep.InTotal.Bytes != 36600 || rep.OutTotal.Bytes != 14800 {
		t.Errorf("report header %+v", rep)
	}
	html, err := os.ReadFile(base + ".html")
	if err != nil || !strings.Contains(string(html), "<td>2001:db8::1</td>") || !strings.Contains(string(html), "816 b/s") {
		t.Errorf("html report: %v\n%s", err, html)
	}
}

func talkersEqual(a, b []Talker) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Host != b[i].Host || a[i].Bytes != b[i].Bytes || a[i].Packets != b[i].Packets ||
			a[i].Flows != b[i].Flows || math.Abs(a[i].BitsPerSec-b[i].BitsPerSec) > 1e-9 {
			return false
		}
	}
	return true
}

// TestRRDToolFetch checks the stored values with the rrdtool command.
func TestRRDToolFetch(t *testing.T) {
	if _, err := exec.LookPath("rrdtool"); err != nil {
		t.Skip("no rrdtool command")
	}
	m, dir := newModule(t, "campusio", goldenConfig)
	scanFile(t, m, &report.File{Start: t0, End: t0.Add(step)}, goldenFlows())
	out, err := exec.Command("rrdtool", "fetch", filepath.Join(dir, "total.rrd"), "AVERAGE",
		"-r", "300", "-s", strconv.FormatInt(t0.Unix(), 10), "-e", strconv.FormatInt(t0.Add(step).Unix(), 10)).CombinedOutput()
	if err != nil {
		t.Fatalf("rrdtool fetch: %v\n%s", err, out)
	}
	lines := strings.Split(string(out), "\n")
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != strings.Join(DSNames, " ") {
		t.Errorf("header %q", lines[0])
	}
	prefix := strconv.FormatInt(t0.Add(step).Unix(), 10) + ":"
	want := counts{36600, 14800, 32, 28, 3, 4}
	found := false
	for _, l := range lines {
		if !strings.HasPrefix(l, prefix) {
			continue
		}
		found = true
		f := strings.Fields(strings.TrimPrefix(l, prefix))
		for i, s := range f {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || math.Abs(v*300-want[i]) > 1e-4 {
				t.Errorf("rrdtool fetch column %s = %q, want %v/300", DSNames[i], s, want[i])
			}
		}
	}
	if !found {
		t.Errorf("no row at %d in\n%s", t0.Unix(), out)
	}
}

// TestIdempotent reports a file, then the same file again with other
// counts (as a rescan after a crash would): nothing changes. The next
// file is stored at its own time.
func TestIdempotent(t *testing.T) {
	m, dir := newModule(t, "campusio", "local_subnets: [10.0.0.0/8]\n")
	f := &report.File{Start: t0, End: t0.Add(step)}
	scanFile(t, m, f, []flow.Record{fl("10.0.0.1", "192.0.2.1", 6, 1, 2, 3000, 3)})
	scanFile(t, m, f, []flow.Record{fl("10.0.0.1", "192.0.2.1", 6, 1, 2, 9999, 9)})
	scanFile(t, m, &report.File{Start: t0.Add(step), End: t0.Add(2 * step)},
		[]flow.Record{fl("192.0.2.1", "10.0.0.1", 17, 1, 2, 600, 6)})
	checkRRD(t, filepath.Join(dir, "total.rrd"), t0, []float64{0, 3000, 0, 3, 0, 1})
	checkRRD(t, filepath.Join(dir, "tcp.rrd"), t0, []float64{0, 3000, 0, 3, 0, 1})
	checkRRD(t, filepath.Join(dir, "total.rrd"), t0.Add(step), []float64{600, 0, 6, 0, 1, 0})
	checkRRD(t, filepath.Join(dir, "tcp.rrd"), t0.Add(step), []float64{0, 0, 0, 0, 0, 0})
	checkRRD(t, filepath.Join(dir, "udp.rrd"), t0.Add(step), []float64{600, 0, 6, 0, 1, 0})
}

func TestASPairs(t *testing.T) {
	m, dir := newModule(t, "campusio", "local_subnets: [10.0.0.0/8]\nas_pairs: true\nas_pairs_top: 2\nprotocols: []\n")
	a := fl("10.0.0.1", "192.0.2.1", 6, 1, 2, 5000, 5)
	a.SrcAS, a.DstAS = 64512, 3356
	b := fl("192.0.2.1", "10.0.0.1", 6, 2, 1, 7000, 7)
	b.SrcAS, b.DstAS = 3356, 64512
	c := fl("10.0.0.2", "198.51.100.1", 6, 1, 2, 100, 1)
	c.SrcAS, c.DstAS = 64512, 174
	a2 := a
	a2.Bytes, a2.Packets = 4000, 4
	scanFile(t, m, &report.File{Start: t0, End: t0.Add(step)}, []flow.Record{a, b, c, a2})
	checkRRD(t, filepath.Join(dir, "as_64512_3356.rrd"), t0, []float64{0, 9000, 0, 9, 0, 2})
	checkRRD(t, filepath.Join(dir, "as_3356_64512.rrd"), t0, []float64{7000, 0, 7, 0, 1, 0})
	if _, err := os.Stat(filepath.Join(dir, "as_64512_174.rrd")); err == nil {
		t.Error("third AS pair written beyond as_pairs_top")
	}
	if _, err := os.Stat(filepath.Join(dir, "tcp.rrd")); err == nil {
		t.Error("protocols: [] still wrote tcp.rrd")
	}
}

func TestClassifyInterfaces(t *testing.T) {
	c, err := NewClassifier(nil, nil, []uint32{7, 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in, out uint32
		want    Direction
	}{{1, 3, Out}, {7, 1, In}, {3, 7, Transit}, {1, 2, Internal}, {3, 3, Transit}} {
		r := fl("10.0.0.1", "10.0.0.2", 6, 1, 2, 1, 1)
		r.InIf, r.OutIf = tc.in, tc.out
		if got := c.Classify(&r); got != tc.want {
			t.Errorf("in %d out %d: %v, want %v", tc.in, tc.out, got, tc.want)
		}
	}
}

func TestClassifyNextHops(t *testing.T) {
	local, _ := ParsePrefixes("", []string{"10.0.0.0/8"})
	hops, _ := ParsePrefixes("", []string{"192.0.2.254", "2001:db8::fe"})
	c, err := NewClassifier(local, hops, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		src, dst, hop string
		want          Direction
	}{
		{"10.0.0.1", "198.51.100.1", "192.0.2.254", Out},
		{"10.0.0.1", "2600::1", "2001:db8::fe", Out},
		{"198.51.100.1", "10.0.0.1", "10.9.9.9", In},
		{"10.0.0.1", "10.0.0.2", "10.9.9.9", Internal},
		{"198.51.100.1", "198.51.100.2", "10.9.9.9", Transit},
		{"198.51.100.1", "10.0.0.2", "192.0.2.254", Transit}, // in and out at once
		{"10.0.0.1", "198.51.100.1", "", Internal},           // leaves, but not across the border
	} {
		r := fl(tc.src, tc.dst, 6, 1, 2, 1, 1)
		if tc.hop != "" {
			r.NextHop = netip.MustParseAddr(tc.hop)
		}
		if got := c.Classify(&r); got != tc.want {
			t.Errorf("%+v: %v", tc, got)
		}
	}
}

func TestPrefixTable(t *testing.T) {
	ps, err := ParsePrefixes("x", []string{"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "2001:db8::/32", "0.0.0.0/0", "192.0.2.7", "::ffff:198.51.100.0/120"})
	if err != nil {
		t.Fatal(err)
	}
	tb, err := NewPrefixTable(ps)
	if err != nil {
		t.Fatal(err)
	}
	for a, want := range map[string]int{
		"10.0.0.1": 0, "10.1.0.0": 1, "10.1.2.255": 2, "10.1.3.0": 1, "10.2.0.0": 0, "11.0.0.0": 4,
		"2001:db8:1::": 3, "2001:db9::": -1, "::": -1, "192.0.2.7": 5, "192.0.2.8": 4, "::ffff:10.1.2.3": 2,
		"198.51.100.200": 6, "255.255.255.255": 4,
	} {
		if got := tb.Lookup(netip.MustParseAddr(a)); got != want {
			t.Errorf("Lookup(%s) = %d, want %d", a, got, want)
		}
	}
	if !tb.Covers(netip.MustParsePrefix("10.1.0.0/16")) || tb.Covers(netip.MustParsePrefix("2001:db8::/31")) {
		t.Error("Covers")
	}
	if _, err := NewPrefixTable(append(ps, netip.MustParsePrefix("10.1.0.0/16"))); err == nil {
		t.Error("duplicate prefix accepted")
	}
}

func TestReportPrefix(t *testing.T) {
	tm := time.Date(2024, 3, 7, 9, 5, 0, 0, time.Local)
	if got := ReportPrefix("%Y/%m%d_%H%M%%-", tm); got != "2024/0307_0905%-" {
		t.Errorf("got %q", got)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"local_subnets: [10.0.0.0/33]", "local_subnets: bad prefix"},
		{"local_subnets: [10.0.0.1/8]", "host bits"},
		{"local_subnets: [10.0.0.0/8]\nlocal_subnet: [10.0.0.0/8]", "line 2: field local_subnet not found"},
		{"next_hops: [192.0.2.1]", "needs local_subnets"},
		{"next_hops: [192.0.2.0/24]\nlocal_subnets: [10.0.0.0/8]", "not an address"},
		{"protocols: [tcp, bogus]", "unknown protocol"},
		{"protocols: [tcp, 6]", "listed twice"},
		{"tcp_services: [nosuchservice-xyz]", "unknown service"},
		{"tcp_services: [http, www=80]", "port 80 listed twice"},
		{"tcp_services: [\"bad name=80\"]", "must be letters"},
		{"output_if_indexes: [1, 1]", "listed twice"},
		{"top_n: -1", "negative"},
		{"report_prefix_format: \"%s\"", "bad format"},
		{"report_prefix_format: \"../x\"", "bad format"},
	} {
		f, _ := report.Lookup("campusio")
		_, err := f(&report.Env{RRD: rrd.New(""), Interval: step, OutputDir: t.TempDir()}, Decoder(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.src, err, tc.want)
		}
	}
}

func TestServiceNames(t *testing.T) {
	svcs, err := parseServices([]string{"http", "8443", "web=8080", "domain"}, []string{"53", "domain"})
	if err == nil {
		t.Fatalf("udp 53 twice accepted: %+v", svcs)
	}
	svcs, err = parseServices([]string{"http", "8443", "web=8080", "domain"}, []string{"domain", "ntp"})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, s := range svcs {
		got = append(got, s.Name+":"+strconv.Itoa(len(s.TCPPorts))+strconv.Itoa(len(s.UDPPorts)))
	}
	if strings.Join(got, " ") != "http:10 tcp_8443:10 web:10 domain:11 ntp:01" {
		t.Errorf("services %v", got)
	}
}

func benchFlows() []flow.Record {
	fs := goldenFlows()
	for i := 0; i < 1000; i++ {
		r := fl("10.0.0.0", "192.0.2.1", 6, uint16(1024+i), 443, uint64(100+i), 2)
		r.SrcAddr = netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1})
		if i%2 == 1 {
			r.SrcAddr, r.DstAddr = r.DstAddr, r.SrcAddr
			r.SrcPort, r.DstPort = r.DstPort, r.SrcPort
		}
		r.SrcAS, r.DstAS = uint32(i%50), 3356
		fs = append(fs, r)
	}
	return fs
}

func BenchmarkWanted(b *testing.B) {
	m, _ := newModule(b, "campusio", goldenConfig+"as_pairs: true\n")
	fs := benchFlows()
	if err := m.PerFile(&report.File{Start: t0, End: t0.Add(step)}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Wanted(&fs[i%len(fs)])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "flows/s")
}

func TestWantedAllocs(t *testing.T) {
	m, _ := newModule(t, "campusio", goldenConfig+"as_pairs: true\n")
	fs := benchFlows()
	if err := m.PerFile(&report.File{Start: t0, End: t0.Add(step)}); err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(10, func() {
		for i := range fs {
			m.Wanted(&fs[i])
		}
	}); a != 0 {
		t.Errorf("Wanted allocates: %v per %d flows", a, len(fs))
	}
}
