package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/config"
	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/flowfile"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func TestNormalizeListen(t *testing.T) {
	f := func(in, want string, ok bool) {
		t.Helper()
		got, err := normalizeListen(in, 2055)
		if (err == nil) != ok || got != want {
			t.Errorf("normalizeListen(%q) = %q, %v; want %q ok=%v", in, got, err, want, ok)
		}
	}
	f("127.0.0.1:9995", "127.0.0.1:9995", true)
	f("[::1]:2055", "[::1]:2055", true)
	f(":2055", ":2055", true)
	f("9995", ":9995", true)
	f("::1", "[::1]:2055", true)
	f("192.0.2.1", "192.0.2.1:2055", true)
	f("127.0.0.1:0", "127.0.0.1:0", true)
	f("127.0.0.1:99999", "", false)
	f("not an address", "", false)
	f("host:port", "", false)
}

func TestParseSizeAndAge(t *testing.T) {
	sizes := map[string]int64{"4MiB": 4 << 20, "10G": 10 << 30, "1.5gib": 3 << 29, "1000": 1000, "2kb": 2000, "512k": 512 << 10}
	for in, want := range sizes {
		if got, err := config.ParseSize(in); err != nil || got != want {
			t.Errorf("config.ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "lots", "-1G", "4XB"} {
		if _, err := config.ParseSize(bad); err == nil {
			t.Errorf("config.ParseSize(%q) accepted", bad)
		}
	}
	ages := map[string]time.Duration{"30d": 30 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "12h": 12 * time.Hour, "90m": 90 * time.Minute}
	for in, want := range ages {
		if got, err := config.ParseDuration(in); err != nil || got != want {
			t.Errorf("config.ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0d", "-1h", "soon"} {
		if _, err := config.ParseDuration(bad); err == nil {
			t.Errorf("config.ParseDuration(%q) accepted", bad)
		}
	}
}

func TestFlagLists(t *testing.T) {
	var p prefixList
	if err := p.Set("192.0.2.1, 198.51.100.0/24,2001:db8::/32"); err != nil {
		t.Fatal(err)
	}
	if got := p.String(); got != "192.0.2.1/32,198.51.100.0/24,2001:db8::/32" {
		t.Errorf("prefixes %s", got)
	}
	if err := p.Set("10.0.0.0/33"); err == nil {
		t.Error("bad prefix accepted")
	}
	s := samplingOverrides{}
	if err := s.Set("192.0.2.1=100,::ffff:192.0.2.2=10"); err != nil {
		t.Fatal(err)
	}
	if r, ok := s.lookup(netip.MustParseAddr("192.0.2.2")); !ok || r != 10 {
		t.Errorf("mapped address override: %d %v", r, ok)
	}
	for _, bad := range []string{"192.0.2.1", "192.0.2.1=0", "x=5", "192.0.2.1=-3"} {
		if err := (samplingOverrides{}).Set(bad); err == nil {
			t.Errorf("--sampling %q accepted", bad)
		}
	}
}

func TestUnknownCommandAndHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Errorf("unknown command: exit %d, stderr %q", code, errb.String())
	}
	out.Reset()
	if code := Main(nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "collect") {
		t.Errorf("help: exit %d, %q", code, out.String())
	}
	errb.Reset()
	if code := Main([]string{"collect", "--help"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "--interval") {
		t.Errorf("collect --help: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := Main([]string{"collect", "--interval", "soon"}, &out, &errb); code != 2 {
		t.Errorf("bad flag: exit %d", code)
	}
	errb.Reset()
	if code := Main([]string{"collect", "--nest", "7", "--metrics", ""}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "--nest 7") {
		t.Errorf("bad nest: exit %d, %q", code, errb.String())
	}
}

// writeTestFile writes a small flow file with hand-picked flows.
func writeTestFile(t *testing.T, dir string) {
	t.Helper()
	start := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	clock := start.Add(10 * time.Second)
	w, err := flowfile.NewWriter(flowfile.Config{Dir: dir, Interval: 5 * time.Minute, Location: time.UTC,
		Hostname: "collector1", Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	exp := netip.MustParseAddr("192.0.2.1")
	recs := []flow.Record{
		{Exporter: exp, SrcAddr: netip.MustParseAddr("10.0.0.1"), DstAddr: netip.MustParseAddr("198.51.100.7"), NextHop: netip.MustParseAddr("10.0.0.254"),
			Start: start.Add(-time.Second).UnixMilli(), End: start.Add(1500 * time.Millisecond).UnixMilli(), Bytes: 4000, Packets: 10,
			InIf: 3, OutIf: 4, SrcAS: 64512, DstAS: 15169, SrcPort: 51000, DstPort: 443, Proto: 6, TOS: 0x20, TCPFlags: 0x1b, SrcMask: 24, DstMask: 16},
		{Exporter: exp, SrcAddr: netip.MustParseAddr("2001:db8::53"), DstAddr: netip.MustParseAddr("2001:db8:ffff::1"),
			Start: start.Add(2 * time.Second).UnixMilli(), End: start.Add(2 * time.Second).UnixMilli(), Bytes: 76000, Packets: 1000, SamplingRate: 1000,
			SrcPort: 53, DstPort: 40000, Proto: 17},
	}
	if err := w.Write(recs); err != nil {
		t.Fatal(err)
	}
	w.Account(flowfile.ExporterKey{Addr: exp, Domain: 258, Format: 9}, flowfile.ExporterStats{Datagrams: 2, Flows: 2, LostFlows: 5, LostDatagrams: 1, SamplingRate: 1000})
	clock = start.Add(5 * time.Minute)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDumpGolden checks dump's three formats and --meta against golden
// files (regenerate with go test ./internal/cli -update).
func TestDumpGolden(t *testing.T) {
	dir := t.TempDir()
	writeTestFile(t, dir)
	for _, c := range []struct {
		golden string
		args   []string
	}{
		{"dump.txt", []string{"dump", dir}},
		{"dump.csv", []string{"dump", "--format", "csv", dir}},
		{"dump.json", []string{"dump", "--format", "json", dir}},
		{"dump-meta.json", []string{"dump", "--meta", "--format", "json", dir}},
	} {
		var out, errb bytes.Buffer
		if code := Main(c.args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d: %s", c.args, code, errb.String())
		}
		got := strings.ReplaceAll(out.String(), dir, "DIR")
		path := filepath.Join("testdata", c.golden)
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("%v:\n got:\n%s\nwant:\n%s", c.args, got, want)
		}
	}
}

// TestDumpJSONFields checks the JSON field names the issue promises.
func TestDumpJSONFields(t *testing.T) {
	dir := t.TempDir()
	writeTestFile(t, dir)
	var out, errb bytes.Buffer
	if code := Main([]string{"dump", "--format", "json", dir}, &out, &errb); code != 0 {
		t.Fatal(errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range strings.Split("exporter src_addr dst_addr next_hop src_port dst_port proto tos tcp_flags in_if out_if src_as dst_as src_mask dst_mask bytes packets start end sampling_rate", " ") {
		if _, ok := m[k]; !ok {
			t.Errorf("field %s missing in %s", k, lines[0])
		}
	}
	if _, err := time.Parse(time.RFC3339, m["start"].(string)); err != nil {
		t.Errorf("start is not RFC 3339: %v", err)
	}
}

func TestDumpErrors(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"dump", "--format", "xml", "x"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "--format") {
		t.Errorf("bad format: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := Main([]string{"dump", filepath.Join(t.TempDir(), "missing.fsf")}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "no such file") {
		t.Errorf("missing file: %d %q", code, errb.String())
	}
	garbage := filepath.Join(t.TempDir(), "flows.2026-11-23.120000+0000.fsf")
	os.WriteFile(garbage, []byte("this is not a flow file at all"), 0o644)
	errb.Reset()
	if code := Main([]string{"dump", garbage}, &out, &errb); code != 1 || !strings.Contains(errb.String(), garbage) {
		t.Errorf("garbage file: %d %q", code, errb.String())
	}
}

// TestMergePrecedence: flags given on the command line win over the
// configuration file; run's --listen (the web server) leaves the
// collector's collect.listen alone.
func TestMergePrecedence(t *testing.T) {
	cfg, err := config.Parse("f.yaml", []byte("collect:\n  listen: [\"127.0.0.1:9995\"]\n  dir: /var/flows\n  interval: 1m\n"))
	if err != nil {
		t.Fatal(err)
	}
	fs := newFlagSet("run", "", "", io.Discard)
	var cf collectFlags
	cf.register(fs, "flow-listen")
	var wf webFlags
	wf.register(fs)
	if err := fs.Parse([]string{"--listen", "0.0.0.0:8080", "--interval", "10m"}); err != nil {
		t.Fatal(err)
	}
	if err := cf.merge(fs, cfg); err != nil {
		t.Fatal(err)
	}
	if strings.Join(cf.listen, ",") != "127.0.0.1:9995" || cf.dir != "/var/flows" || cf.interval != 10*time.Minute {
		t.Errorf("merged: listen %v dir %s interval %v", cf.listen, cf.dir, cf.interval)
	}
}
