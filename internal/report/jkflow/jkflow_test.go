package jkflow

import (
	"bytes"
	"encoding/json"
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

const goldenConfig = `
sites:
  campus: [10.0.0.0/8, 2001:db8::/32]
  partner: [192.168.0.0/16]
router_groups:
  edge:
    - exporter: 192.0.2.1
      interfaces: [1, 2]
define_sets:
  basic:
    total: true
    protocols: [tcp, udp, icmp]
    other_protocols: true
    applications:
      web: [80/tcp, 443/tcp, 8080/tcp]
    services: [22-23/tcp, 53/udp]
    other_services: true
    multicast: true
    dscp: true
all:
  local_subnets: [10.0.0.0/8, 2001:db8::/32]
  total: true
  protocols: [tcp, udp]
  other_protocols: true
directions:
  - name: campus_partner
    from: [campus]
    to: [partner]
    set: basic
    scoreboard: {hosts: true, ports: true, top_n: 2}
  - name: campus_inet
    from: [campus]
    no_to: [campus, partner]
    sample_rate: 10
    total: true
    tos: true
    directions:
      - name: web6
        from: [2001:db8::/32]
        total: true
      - name: other
        total: true
  - name: uplink
    router_group: edge
    total: true
    protocols: [tcp]
  - name: other
    total: true
    multicast: true
`

func parseYAML(t testing.TB, text string) *Config {
	t.Helper()
	var cfg Config
	d := yaml.NewDecoder(strings.NewReader(text))
	d.KnownFields(true)
	if err := d.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

func rec(exp, src string, sport uint16, dst string, dport uint16, proto uint8, b, p uint64, tos uint8, in, out uint32) flow.Record {
	return flow.Record{
		Exporter: netip.MustParseAddr(exp),
		SrcAddr:  netip.MustParseAddr(src), DstAddr: netip.MustParseAddr(dst),
		SrcPort: sport, DstPort: dport, Proto: proto, Bytes: b, Packets: p, TOS: tos, InIf: in, OutIf: out,
	}
}

const edge, core = "192.0.2.1", "192.0.2.9"

// goldenFlows are the crafted flows; the comments give what they count
// for, and want below is worked out from them by hand.
var goldenFlows = []flow.Record{
	// F1 campus→partner web, out everywhere; uplink out by OutIf 1.
	rec(edge, "10.1.1.1", 40000, "192.168.1.1", 80, 6, 1000, 10, 0, 3, 1),
	// F2 partner→campus web reply (EF), in; uplink in by InIf 1.
	rec(edge, "192.168.1.1", 80, "10.1.1.1", 40000, 6, 5000, 20, 0xb8, 1, 3),
	// F3 DNS 53→53 (AF11): service 53_udp once, as dst.
	rec(core, "10.2.2.2", 53, "192.168.5.5", 53, 17, 200, 2, 0x28, 0, 0),
	// F4 campus→Internet ssh, TOS 1 (ECN only: BE); campus_inet ×10, nested other.
	rec(core, "10.3.3.3", 1234, "8.8.8.8", 22, 6, 300, 3, 0x01, 0, 0),
	// F5 IPv6 campus→Internet (AF12: tos_other); campus_inet ×10 and web6.
	rec(core, "2001:db8::1", 5000, "2600::1", 5001, 17, 1111, 1, 0x30, 0, 0),
	// F6 transit multicast: not local for all, no direction: top other.
	rec(core, "172.16.0.1", 1000, "239.1.1.1", 2000, 17, 400, 4, 0, 0, 0),
	// F7 Internet→campus https: campus_inet in ×10; uplink in by InIf 2.
	rec(edge, "8.8.8.8", 443, "10.1.1.1", 50000, 6, 700, 7, 0, 2, 3),
	// F8 partner→campus ICMP: in.
	rec(core, "192.168.9.9", 0, "10.9.9.9", 0, 1, 64, 1, 0, 0, 0),
	// F9 campus→partner GRE: protocol_other.
	rec(core, "10.1.1.1", 0, "192.168.1.2", 0, 47, 100, 1, 0, 0, 0),
	// F10 campus→partner tcp/9999: service_other.
	rec(core, "10.1.1.1", 40001, "192.168.1.1", 9999, 6, 50, 1, 0, 0, 0),
	// F11 partner:23→campus:22: both ports in 22-23/tcp, once as dst, in.
	rec(core, "192.168.1.1", 23, "10.1.1.1", 22, 6, 60, 1, 0, 0, 0),
}

// c builds a counter from in/out (bytes, pkts, flows).
func c(ib, ip, iflows, ob, op, oflows uint64) counter {
	return counter{ib, ob, ip, op, iflows, oflows}
}

var goldenWant = map[string]counter{
	"all/total_total":    c(5824, 29, 4, 2761, 18, 6),
	"all/protocol_tcp":   c(5760, 28, 3, 1350, 14, 3),
	"all/protocol_udp":   c(0, 0, 0, 1311, 3, 2),
	"all/protocol_other": c(64, 1, 1, 100, 1, 1),

	"campus_partner/total_total":           c(5124, 22, 3, 1350, 14, 4),
	"campus_partner/protocol_tcp":          c(5060, 21, 2, 1050, 11, 2),
	"campus_partner/protocol_udp":          c(0, 0, 0, 200, 2, 1),
	"campus_partner/protocol_icmp":         c(64, 1, 1, 0, 0, 0),
	"campus_partner/protocol_other":        c(0, 0, 0, 100, 1, 1),
	"campus_partner/protocol_multicast":    {},
	"campus_partner/tos_BE":                c(124, 2, 2, 1150, 12, 3),
	"campus_partner/tos_EF":                c(5000, 20, 1, 0, 0, 0),
	"campus_partner/tos_AF11":              c(0, 0, 0, 200, 2, 1),
	"campus_partner/tos_AF12":              {},
	"campus_partner/tos_CS7":               {},
	"campus_partner/tos_other":             {},
	"campus_partner/service_web_src":       c(5000, 20, 1, 0, 0, 0),
	"campus_partner/service_web_dst":       c(0, 0, 0, 1000, 10, 1),
	"campus_partner/service_53_udp_src":    {},
	"campus_partner/service_53_udp_dst":    c(0, 0, 0, 200, 2, 1),
	"campus_partner/service_22-23_tcp_src": {},
	"campus_partner/service_22-23_tcp_dst": c(60, 1, 1, 0, 0, 0),
	"campus_partner/service_other":         c(0, 0, 0, 50, 1, 1),
	"campus_inet/total_total":              c(7000, 70, 10, 14110, 40, 20),
	"campus_inet/tos_BE":                   c(7000, 70, 10, 3000, 30, 10),
	"campus_inet/tos_other":                c(0, 0, 0, 11110, 10, 10),
	"campus_inet/web6/total_total":         c(0, 0, 0, 11110, 10, 10),
	"campus_inet/other/total_total":        c(7000, 70, 10, 3000, 30, 10),
	"uplink/total_total":                   c(5700, 27, 2, 1000, 10, 1),
	"uplink/protocol_tcp":                  c(5700, 27, 2, 1000, 10, 1),
	"other/total_total":                    c(0, 0, 0, 400, 4, 1),
	"other/protocol_multicast":             c(0, 0, 0, 400, 4, 1),
}

const step = 300 * time.Second

var t0 = time.Unix(1_800_000_000, 0).Truncate(step)

func newModule(t testing.TB, cfgText, dir string) *Module {
	t.Helper()
	env := &report.Env{RRD: rrd.New(""), Interval: step, OutputDir: dir}
	mod, err := New(env, parseYAML(t, cfgText))
	if err != nil {
		t.Fatal(err)
	}
	return mod
}

func runFile(t testing.TB, mod *Module, start time.Time, flows []flow.Record) {
	t.Helper()
	f := &report.File{Path: "ft-v05." + start.UTC().Format("2006-01-02.150405"), Start: start, End: start.Add(step)}
	if err := mod.PerFile(f); err != nil {
		t.Fatal(err)
	}
	for i := range flows {
		if !mod.Wanted(&flows[i]) {
			t.Errorf("flow %d not wanted", i+1)
		}
	}
	if err := mod.Report(); err != nil {
		t.Fatal(err)
	}
}

// fetchAt returns the six values stored for the file starting at `at` (the
// step ending one step later), times the step (ABSOLUTE stores
// count/seconds): the original counts.
func fetchAt(t *testing.T, path string, at time.Time) [6]float64 {
	t.Helper()
	// A file is stored in the step that ends when the file ends.
	at = at.Add(step)
	s, err := rrd.New("").Fetch(path, "AVERAGE", at.Add(-step), at, step)
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range s.Rows {
		if s.Time(i).Equal(at) {
			var out [6]float64
			for j := range out {
				out[j] = row[j] * step.Seconds()
			}
			return out
		}
	}
	t.Fatalf("%s: no row at %v in %+v", path, at, s)
	return [6]float64{}
}

func checkCounts(t *testing.T, dir string, at time.Time, want map[string]counter) {
	t.Helper()
	for name, w := range want {
		got := fetchAt(t, filepath.Join(dir, name+".rrd"), at)
		for j := range got {
			if math.Abs(got[j]-float64(w[j])) > 1e-6 {
				t.Errorf("%s %s = %v, want %d (row %v, want %v)", name, dsNames[j], got[j], w[j], got, w)
				break
			}
		}
	}
}

func TestGolden(t *testing.T) {
	dir := t.TempDir()
	mod := newModule(t, goldenConfig, dir)
	runFile(t, mod, t0, goldenFlows)
	checkCounts(t, dir, t0, goldenWant)

	// Every RRD the configuration implies exists, and no other.
	var files []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if strings.HasSuffix(p, ".rrd") {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, strings.TrimSuffix(rel, ".rrd"))
		}
		return nil
	})
	// campus_partner: total, 3 protocols, other, multicast, 22 DSCP
	// classes, 3 services × 2, service_other.
	if want := 4 + (1 + 3 + 1 + 1 + 22 + 6 + 1) + 3 + 1 + 1 + 2 + 2; len(files) != want {
		t.Errorf("%d RRD files, want %d: %v", len(files), want, files)
	}

	// Scoreboard: top 2 hosts and ports by bytes.
	js, err := os.ReadFile(filepath.Join(dir, "campus_partner", "scoreboard", "scoreboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sc Scores
	if err := json.Unmarshal(js, &sc); err != nil {
		t.Fatal(err)
	}
	if len(sc.Hosts) != 2 || sc.Hosts[0].Key != "10.1.1.1" || sc.Hosts[0].InBytes != 5060 || sc.Hosts[0].OutBytes != 1150 ||
		sc.Hosts[1].Key != "10.2.2.2" || sc.Hosts[1].OutBytes != 200 || sc.Seconds != 300 ||
		math.Abs(sc.Hosts[0].InBits-5060*8/300.0) > 1e-9 {
		t.Errorf("hosts: %+v", sc)
	}
	if len(sc.Ports) != 2 || sc.Ports[0].Key != "80/tcp" || sc.Ports[0].InBytes != 5000 || sc.Ports[0].OutBytes != 1000 ||
		sc.Ports[1].Key != "53/udp" {
		t.Errorf("ports: %+v", sc.Ports)
	}
	page, err := os.ReadFile(filepath.Join(dir, "campus_partner", "scoreboard", "scoreboard.html"))
	if err != nil || !bytes.Contains(page, []byte("<td>10.1.1.1</td>")) || !bytes.Contains(page, []byte("<td>80/tcp</td>")) {
		t.Errorf("scoreboard.html: %v\n%s", err, page)
	}

	// The rrdtool command reads the same values.
	if _, err := exec.LookPath("rrdtool"); err != nil {
		t.Log("rrdtool command not installed: skipping the command check")
		return
	}
	out, err := exec.Command("rrdtool", "fetch", filepath.Join(dir, "campus_partner", "total_total.rrd"), "AVERAGE",
		"--start", strconv.FormatInt(t0.Unix(), 10), "--end", strconv.FormatInt(t0.Add(step).Unix(), 10)).CombinedOutput()
	if err != nil {
		t.Fatalf("rrdtool fetch: %v\n%s", err, out)
	}
	found := false
	for _, line := range strings.Split(string(out), "\n") {
		ts, vals, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(ts) != strconv.FormatInt(t0.Add(step).Unix(), 10) {
			continue
		}
		found = true
		f := strings.Fields(vals)
		w := goldenWant["campus_partner/total_total"]
		for j := range w {
			v, err := strconv.ParseFloat(f[j], 64)
			if err != nil || math.Abs(v*300-float64(w[j])) > 1e-6 {
				t.Errorf("rrdtool fetch %s = %q, want %d/300", dsNames[j], f[j], w[j])
			}
		}
	}
	if !found {
		t.Errorf("rrdtool fetch: no row at %d:\n%s", t0.Unix(), out)
	}
}

// TestIdempotent reports files, then one again (as after a crash): the
// RRDs keep the first values.
func TestIdempotent(t *testing.T) {
	dir := t.TempDir()
	mod := newModule(t, goldenConfig, dir)
	runFile(t, mod, t0, goldenFlows)
	runFile(t, mod, t0, goldenFlows[:1]) // same file again, fewer flows
	second := goldenFlows[:2]
	runFile(t, mod, t0.Add(step), second)
	runFile(t, mod, t0, goldenFlows) // an old file rescanned
	checkCounts(t, dir, t0, goldenWant)
	checkCounts(t, dir, t0.Add(step), map[string]counter{
		"all/total_total":            c(5000, 20, 1, 1000, 10, 1),
		"campus_partner/tos_EF":      c(5000, 20, 1, 0, 0, 0),
		"campus_inet/total_total":    {},
		"uplink/protocol_tcp":        c(5000, 20, 1, 1000, 10, 1),
		"other/protocol_multicast":   {},
		"campus_partner/tos_BE":      c(0, 0, 0, 1000, 10, 1),
		"campus_partner/total_total": c(5000, 20, 1, 1000, 10, 1),
	})
}
