package jkflow

import (
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flowscan/flowscan/internal/report"
	"github.com/flowscan/flowscan/internal/rrd"
)

// TestPrefixSet checks the range lookup against netip.Prefix.Contains on
// random addresses near the prefixes' edges.
func TestPrefixSet(t *testing.T) {
	specs := []string{"10.0.0.0/8", "10.1.0.0/16", "11.0.0.0/8", "192.168.1.0/24", "192.168.2.128/25",
		"255.255.255.255/32", "0.0.0.0/32", "2001:db8::/32", "2001:db8:1::/48", "2001:db9::/32",
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fff0/124", "::/128", "fe80::/10", "2001:db8:ffff:ffff:8000::/65"}
	ps, err := prefixes(specs)
	if err != nil {
		t.Fatal(err)
	}
	set := newPrefixSet(ps)
	if len(set.v4) != 5 { // 10/8+11/8 merge; 10.1/16 inside
		t.Errorf("v4 ranges %v", set.v4)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 200000; i++ {
		p := ps[rng.IntN(len(ps))]
		b := p.Addr().AsSlice()
		// Flip a few bits around the mask boundary.
		for j := 0; j < 3; j++ {
			bit := max(0, min(len(b)*8-1, p.Bits()-4+rng.IntN(8)))
			b[bit/8] ^= 0x80 >> (bit % 8)
		}
		a, _ := netip.AddrFromSlice(b)
		want := false
		for _, q := range ps {
			want = want || q.Contains(a)
		}
		if got := set.contains(a); got != want {
			t.Fatalf("contains(%v) = %v, want %v", a, got, want)
		}
	}
	if !set.contains(netip.MustParseAddr("::ffff:10.2.3.4")) {
		t.Error("IPv4-mapped address not found as IPv4")
	}
	all := newPrefixSet([]netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")})
	for _, a := range []string{"0.0.0.0", "255.255.255.255", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"} {
		if !all.contains(netip.MustParseAddr(a)) {
			t.Errorf("/0 does not contain %s", a)
		}
	}
	if all.contains(netip.Addr{}) {
		t.Error("zero Addr found")
	}
}

func TestConfigErrors(t *testing.T) {
	base := "sites:\n  a: [10.0.0.0/8]\n"
	tests := []struct{ name, yaml, want string }{
		{"bad site prefix", "sites:\n  a: [10.0.0/8]\n", `site "a": bad prefix "10.0.0/8"`},
		{"unknown site", base + "directions:\n  - {name: d, from: [b]}\n", `direction d: from: "b" is neither a site nor a prefix`},
		{"unknown set", base + "directions:\n  - {name: d, from: [a], set: x}\n", `direction d: undefined set "x"`},
		{"set cycle", "define_sets:\n  x: {set: y}\n  y: {set: x}\n", `includes itself`},
		{"unknown router group", "directions:\n  - {name: d, router_group: g}\n", `direction d: undefined router group "g"`},
		{"router group and from", base + "router_groups:\n  g: [{exporter: 192.0.2.1, interfaces: [1]}]\ndirections:\n  - {name: d, router_group: g, from: [a]}\n", `cannot be combined`},
		{"router without selector", "router_groups:\n  g: [{exporter: 192.0.2.1}]\ndirections:\n  - {name: d, router_group: g}\n", `needs interfaces or local_subnets`},
		{"duplicate direction", base + "directions:\n  - {name: d, from: [a]}\n  - {name: d, to: [a]}\n", `duplicate direction "d"`},
		{"direction named all", base + "all: {total: true}\ndirections:\n  - {name: all, from: [a]}\n", `duplicate direction "all"`},
		{"reserved name", base + "directions:\n  - {name: scoreboard, from: [a]}\n", `reserved`},
		{"bad name", base + "directions:\n  - {name: ../x, from: [a]}\n", `bad direction name`},
		{"bad port", "all: {services: [80]}\n", `bad port "80"`},
		{"duplicate protocol", "all: {protocols: [tcp, \"6\"]}\n", `protocol 6 listed twice`},
		{"reserved service", "all: {applications: {other: [1/tcp]}}\n", `reserved`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compile(parseYAML(t, tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestRegistered builds the module through the registry as the scanner
// does, and checks Wanted's verdict and the sample_time used by the
// scoreboard for a file that is not 300 s long.
func TestRegistered(t *testing.T) {
	f, err := report.Lookup("jkflow")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	text := "all: {local_subnets: [10.0.0.0/8], total: true}\ndirections:\n  - {name: d, from: [10.0.0.0/8], to: [192.168.0.0/16], scoreboard: {hosts: true}}\n"
	env := &report.Env{RRD: rrd.New(""), Interval: 60 * time.Second, OutputDir: dir}
	m, err := f(env, func(v any) error { return yaml.Unmarshal([]byte(text), v) })
	if err != nil {
		t.Fatal(err)
	}
	if m.Name() != "jkflow" {
		t.Error(m.Name())
	}
	start := time.Unix(1_800_000_000, 0).Truncate(time.Minute)
	if err := m.PerFile(&report.File{Path: "x", Start: start, End: start.Add(60 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	transit := rec(edge, "1.1.1.1", 1, "2.2.2.2", 2, 6, 10, 1, 0, 0, 0)
	if m.Wanted(&transit) {
		t.Error("transit flow wanted")
	}
	local := rec(edge, "10.0.0.1", 1, "192.168.0.1", 2, 6, 600, 1, 0, 0, 0)
	if !m.Wanted(&local) {
		t.Error("local flow not wanted")
	}
	if err := m.Report(); err != nil {
		t.Fatal(err)
	}
	s, err := rrd.New("").Fetch(dir+"/all/total_total.rrd", "AVERAGE", start, start.Add(time.Minute), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ok := false
	for i, row := range s.Rows {
		if s.Time(i).Equal(start.Add(time.Minute)) {
			ok = row[1] == 10 && row[0] == 0 // 600 bytes over a 60 s step
		}
	}
	if !ok || s.Step != time.Minute {
		t.Errorf("fetch %+v", s)
	}
	var sc Scores
	js, _ := os.ReadFile(dir + "/d/scoreboard/scoreboard.json")
	if err := json.Unmarshal(js, &sc); err != nil || sc.Seconds != 60 {
		t.Errorf("scoreboard seconds %v (%v), want the file's 60 s", sc.Seconds, err)
	}
}
