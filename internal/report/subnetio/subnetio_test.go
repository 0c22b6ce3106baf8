package subnetio

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
	"github.com/flowscan/flowscan/internal/report/campusio"
	"github.com/flowscan/flowscan/internal/rrd"
)

const step = 300 * time.Second

var t0 = time.Unix(1_800_000_000, 0).Truncate(step)

func decoder(src string) report.Decoder {
	return func(v any) error {
		d := yaml.NewDecoder(strings.NewReader(src))
		d.KnownFields(true)
		if err := d.Decode(v); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		return nil
	}
}

func build(src string, dir string) (report.Module, error) {
	f, err := report.Lookup("subnetio")
	if err != nil {
		return nil, err
	}
	return f(&report.Env{RRD: rrd.New(""), Interval: step, OutputDir: dir}, decoder(src))
}

func newModule(t testing.TB, src string) (report.Module, string) {
	t.Helper()
	dir := t.TempDir()
	m, err := build(src, dir)
	if err != nil {
		t.Fatal(err)
	}
	return m, dir
}

func fl(src, dst string, proto uint8, bytes, pkts uint64) flow.Record {
	return flow.Record{SrcAddr: netip.MustParseAddr(src), DstAddr: netip.MustParseAddr(dst), Proto: proto,
		SrcPort: 1000, DstPort: 2000, Bytes: bytes, Packets: pkts}
}

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

// checkRRD compares the row of the file starting at `at` (the step ending
// one step later), times the step (the per-file counts), with want.
func checkRRD(t *testing.T, path string, at time.Time, want []float64) {
	t.Helper()
	// A file is stored in the step that ends when the file ends.
	at = at.Add(step)
	s, err := rrd.New("").Fetch(path, "AVERAGE", at.Add(-step), at, step)
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range s.Rows {
		if !s.Time(i).Equal(at) {
			continue
		}
		for j := range want {
			if math.IsNaN(row[j]) || math.Abs(row[j]*step.Seconds()-want[j]) > 1e-6 {
				t.Errorf("%s at %d: %v (x300), want %v", filepath.Base(path), at.Unix(), row, want)
				return
			}
		}
		return
	}
	t.Fatalf("%s: no row at %v", path, at)
}

const goldenConfig = `
local_subnets: [10.0.0.0/8, "2001:db8::/32"]
multicast: true
top_n: 5
report_prefix_format: "%Y%m%d-%H%M_"
subnets:
  - 10.1.0.0/16
  - {prefix: 10.2.0.0/16, name: physics}
  - prefix: "2001:db8::/48"
`

func goldenFlows() []flow.Record {
	return []flow.Record{
		/* 1 out of 10.1 */ fl("10.1.1.1", "192.0.2.1", 6, 1000, 10),
		/* 2 into 10.1 */ fl("192.0.2.1", "10.1.1.1", 6, 30000, 20),
		/* 3 into 10.2 */ fl("198.51.100.7", "10.2.0.5", 6, 6000, 6),
		/* 4 out of 10.2 */ fl("10.2.0.5", "203.0.113.9", 17, 300, 3),
		/* 5 into 10.1 */ fl("203.0.113.9", "10.1.1.1", 1, 600, 6),
		/* 6 internal: no subnet */ fl("10.1.1.1", "10.2.0.5", 6, 9000, 9),
		/* 7 into local 10.3, no subnet */ fl("192.0.2.1", "10.3.0.1", 6, 5000, 5),
		/* 8 out of 2001:db8::/48 */ fl("2001:db8::1", "2600::1", 6, 1500, 3),
		/* 9 into local 2001:db8:1::, no subnet */ fl("2600::1", "2001:db8:1::1", 6, 700, 7),
		/* 10 multicast: MCAST only */ fl("10.1.1.1", "239.1.1.1", 17, 3000, 30),
		/* 11 transit */ fl("192.0.2.1", "198.51.100.7", 17, 1200, 2),
		/* 12 out of 10.1 */ fl("10.1.2.2", "192.0.2.9", 6, 2000, 2),
	}
}

// TestGolden: per-subnet totals worked out by hand, read back from the
// RRD files.
func TestGolden(t *testing.T) {
	m, dir := newModule(t, goldenConfig)
	if m.Name() != "subnetio" {
		t.Errorf("name %q", m.Name())
	}
	f := &report.File{Path: "ft-v05.test", Start: t0, End: t0.Add(step)}
	if hits := scanFile(t, m, f, goldenFlows()); hits != 10 {
		t.Errorf("hits %d, want 10", hits)
	}
	// in_bytes out_bytes in_pkts out_pkts in_flows out_flows
	want := map[string][]float64{
		"10.1.0.0_16":   {30000 + 600, 1000 + 2000, 20 + 6, 10 + 2, 2, 2},
		"10.2.0.0_16":   {6000, 300, 6, 3, 1, 1},
		"2001-db8--_48": {0, 1500, 0, 3, 0, 1},
		// campusio's files are there too: in 2,3,5,7,9; out 1,4,8,12.
		"total": {30000 + 6000 + 600 + 5000 + 700, 1000 + 300 + 1500 + 2000, 20 + 6 + 6 + 5 + 7, 10 + 3 + 3 + 2, 5, 4},
		"MCAST": {0, 3000, 0, 30, 0, 1},
	}
	for name, w := range want {
		checkRRD(t, filepath.Join(dir, name+".rrd"), t0, w)
	}
	checkRRD(t, filepath.Join(dir, "internal.rrd"), t0, []float64{9000, 9, 1})

	var rep campusio.TopReport
	b, err := os.ReadFile(filepath.Join(dir, "top", campusio.ReportPrefix("%Y%m%d-%H%M_", t0)+"10.1.0.0_16.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.In) != 1 || rep.In[0].Host != "10.1.1.1" || rep.In[0].Bytes != 30600 ||
		len(rep.Out) != 2 || rep.Out[0].Host != "10.1.2.2" || rep.Out[0].Bytes != 2000 || rep.Out[1].Bytes != 1000 ||
		rep.Out[0].BitsPerSec != 2000*8/300.0 {
		t.Errorf("10.1.0.0/16 report %+v", rep)
	}
	h, err := os.ReadFile(filepath.Join(dir, "top", campusio.ReportPrefix("%Y%m%d-%H%M_", t0)+"10.2.0.0_16.html"))
	if err != nil || !strings.Contains(string(h), "top talkers of physics (10.2.0.0/16)") {
		t.Errorf("physics report: %v\n%s", err, h)
	}
}

// TestRRDToolFetch reads a subnet file with the rrdtool command.
func TestRRDToolFetch(t *testing.T) {
	if _, err := exec.LookPath("rrdtool"); err != nil {
		t.Skip("no rrdtool command")
	}
	m, dir := newModule(t, goldenConfig)
	scanFile(t, m, &report.File{Start: t0, End: t0.Add(step)}, goldenFlows())
	out, err := exec.Command("rrdtool", "fetch", filepath.Join(dir, "10.2.0.0_16.rrd"), "AVERAGE", "-r", "300",
		"-s", strconv.FormatInt(t0.Unix(), 10), "-e", strconv.FormatInt(t0.Add(step).Unix(), 10)).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// 6000 bytes in, 300 out, 6 and 3 packets, 1 and 1 flows per 300 s.
	want := "20 1 0.02 0.01 0.00333333 0.00333333"
	for _, l := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(l, strconv.FormatInt(t0.Add(step).Unix(), 10)+":"); ok {
			var got []string
			for _, s := range strings.Fields(rest) {
				v, _ := strconv.ParseFloat(s, 64)
				got = append(got, strconv.FormatFloat(v, 'g', 6, 64))
			}
			if strings.Join(got, " ") != want {
				t.Errorf("rrdtool fetch: %q, want %q", got, want)
			}
			return
		}
	}
	t.Errorf("no row at %d:\n%s", t0.Unix(), out)
}

func TestIdempotent(t *testing.T) {
	m, dir := newModule(t, "subnets: [10.1.0.0/16]\n")
	f := &report.File{Start: t0, End: t0.Add(step)}
	scanFile(t, m, f, []flow.Record{fl("192.0.2.1", "10.1.0.1", 6, 3000, 3)})
	scanFile(t, m, f, []flow.Record{fl("192.0.2.1", "10.1.0.1", 6, 1, 1)})
	scanFile(t, m, &report.File{Start: t0.Add(step), End: t0.Add(2 * step)}, []flow.Record{fl("10.1.0.1", "192.0.2.1", 6, 600, 6)})
	checkRRD(t, filepath.Join(dir, "10.1.0.0_16.rrd"), t0, []float64{3000, 0, 3, 0, 1, 0})
	checkRRD(t, filepath.Join(dir, "10.1.0.0_16.rrd"), t0.Add(step), []float64{0, 600, 0, 6, 0, 1})
	if _, err := os.Stat(filepath.Join(dir, "top")); err == nil {
		t.Error("top reports written with top_n 0")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"", "at least one subnet"},
		{"subnets: [10.1.0.0/33]", "subnets: bad prefix"},
		{"subnets: [10.1.0.0/16, 10.1.0.0/16]", "listed twice"},
		{"subnets: [10.1.0.0/16]\nlocal_subnets: [10.2.0.0/16]", "not inside local_subnets"},
		{"subnets:\n  - prefix: 10.1.0.0/16\n    nmae: x", "line 3: field nmae not found"},
		{"subnets: [10.1.0.0/16]\ntop: 3", "field top not found"},
		{"subnets: [10.1.0.0/16]\nreport_prefix_format: \"%Q\"", "bad format"},
	} {
		_, err := build(tc.src, t.TempDir())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.src, err, tc.want)
		}
	}
}

func BenchmarkWanted(b *testing.B) {
	m, _ := newModule(b, goldenConfig)
	fs := goldenFlows()
	for i := 0; i < 1000; i++ {
		r := fl("10.1.0.0", "192.0.2.1", 6, uint64(100+i), 2)
		r.SrcAddr = netip.AddrFrom4([4]byte{10, byte(1 + i%3), byte(i), 1})
		if i%2 == 1 {
			r.SrcAddr, r.DstAddr = r.DstAddr, r.SrcAddr
		}
		fs = append(fs, r)
	}
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
