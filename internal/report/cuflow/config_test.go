package cuflow

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestParseCFGolden converts the example CUFlow.cf and compares the YAML
// with the golden conversion; the YAML read back gives the same Config.
func TestParseCFGolden(t *testing.T) {
	c, err := ParseCF("testdata/CUFlow.cf")
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	golden := "testdata/CUFlow.yaml"
	if *update {
		os.WriteFile(golden, got, 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("YAML of CUFlow.cf:\n%s\nwant:\n%s", got, want)
	}
	var back Config
	if err := yaml.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.validate(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stripPositions(&back), stripPositions(c)) {
		t.Errorf("YAML round trip:\n%+v\nwant\n%+v", back, *c)
	}
	// Spot checks of the meaning.
	if len(c.Subnets) != 3 || c.Subnets[2] != "2001:db8::/32" || c.OutputDir != "rrds" || !c.Multicast {
		t.Errorf("subnets/outputdir/multicast: %+v", c)
	}
	if c.Routers[0].Dir() != "core-gw" || c.Routers[1].Dir() != "128.59.1.2" {
		t.Errorf("routers %+v", c.Routers)
	}
	if c.SampleRates[0].Rate != 100 || c.Scoreboard.TopN != 10 || c.AggregateScore.OutFile != "scoreboard/agg.html" {
		t.Errorf("samplerate/scoreboard %+v %+v %+v", c.SampleRates, c.Scoreboard, c.AggregateScore)
	}
}

// stripPositions returns a copy without the unexported source positions.
func stripPositions(c *Config) Config {
	out, _ := yaml.Marshal(c)
	var back Config
	yaml.Unmarshal(out, &back)
	return back
}

func TestParseCFErrors(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"unknown directive", "Subnet 10.0.0.0/8\nFrobnicate 1\n", ":2: unknown directive \"Frobnicate\""},
		{"bad prefix", "Subnet 10.0.0.0/33\n", ":1: bad prefix \"10.0.0.0/33\""},
		{"host bits", "Subnet 10.0.0.1/8\n", ":1: bad prefix \"10.0.0.1/8\": host bits set"},
		{"bad subnet text", "Subnet tenslashate\n", ":1: bad prefix"},
		{"subnet without value", "Subnet\n", ":1: Subnet: want"},
		{"bad network prefix", "# c\n\nNetwork 10.0.0.0/8,10.1.0.0/x lab\n", ":3: Network lab: bad prefix \"10.1.0.0/x\""},
		{"network without label", "Network 10.0.0.0/8\n", ":1: Network: want"},
		{"duplicate network", "Network 10.0.0.0/8 a\nNetwork 10.1.0.0/16 a\n", ":2: Network: duplicate label \"a\" (first at "},
		{"duplicate service", "Service 80/tcp web\nService 443/tcp web\n", ":2: Service: duplicate label \"web\""},
		{"duplicate protocol", "Protocol 6\nProtocol tcp\n", ":2: Protocol: duplicate label \"tcp\""},
		{"duplicate tos", "TOS 0 a\nTOS 1 a\n", ":2: TOS: duplicate label"},
		{"duplicate as", "ASNumber 1 a\nASNumber 2 a\n", ":2: ASNumber: duplicate label"},
		{"duplicate router", "Router 10.0.0.1 gw\nRouter 10.0.0.2 gw\n", ":2: Router: duplicate label \"gw\""},
		{"bad router", "Router 10.0.0.300\n", ":1: Router: bad address"},
		{"bad service port", "Service 99999/tcp x\n", ":1: Service x: bad service port \"99999/tcp\""},
		{"unknown service name", "Service nosuchsvc/tcp x\n", ":1: Service x: bad service port \"nosuchsvc/tcp\": unknown port or service name"},
		{"unknown service protocol", "Service 80/xyz x\n", ":1: Service x: bad service port \"80/xyz\": unknown protocol"},
		{"service without protocol", "Service 80 x\n", ":1: Service x: bad service port \"80\""},
		{"reversed range", "Service 90-80/tcp x\n", "range ends before it starts"},
		{"unknown protocol", "Protocol foo\n", ":1: Protocol: unknown protocol \"foo\""},
		{"protocol out of range", "Protocol 256 big\n", ":1: Protocol: unknown protocol \"256\""},
		{"bad tos", "TOS 0-300 x\n", ":1: TOS x: bad TOS"},
		{"bad as", "ASNumber 70x1 x\n", ":1: ASNumber x: bad AS number \"70x1\""},
		{"samplerate without number", "SampleRate 10.0.0.1\n", ":1: SampleRate: want"},
		{"samplerate not a number", "SampleRate 10.0.0.1 lots\n", ":1: SampleRate: \"lots\" is not a positive number"},
		{"samplerate zero", "SampleRate 10.0.0.1 0\n", "is not a positive number"},
		{"samplerate bad exporter", "SampleRate router1 10\n", ":1: SampleRate: bad exporter address"},
		{"duplicate samplerate", "SampleRate 10.0.0.1 10\nSampleRate 10.0.0.1 20\n", ":2: SampleRate: duplicate label"},
		{"multicast with argument", "Multicast yes\n", ":1: Multicast: want"},
		{"scoreboard arguments", "Scoreboard 10 dir\n", ":1: Scoreboard: want"},
		{"scoreboard count", "Scoreboard ten dir link\n", ":1: Scoreboard: \"ten\" is not a positive number"},
		{"aggregate count", "AggregateScore 0 a b\n", ":1: AggregateScore: \"0\" is not a positive number"},
		{"outputdir twice on a line", "OutputDir a b\n", ":1: OutputDir: want"},
		{"bad label", "Network 10.0.0.0/8 a/b\n", ":1: Network: bad label \"a/b\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "CUFlow.cf")
			os.WriteFile(path, []byte(tt.text), 0o644)
			_, err := ParseCF(path)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.HasPrefix(err.Error(), path+":") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want %s...%q", err, path, tt.want)
			}
		})
	}
}

func TestParseCFMissingFile(t *testing.T) {
	if _, err := ParseCF(filepath.Join(t.TempDir(), "none.cf")); err == nil {
		t.Error("missing file parsed")
	}
}

// TestConfigYAMLAndMerge decodes the YAML form (both sample_rates forms)
// and merges it over a CUFlow.cf.
func TestConfigYAMLAndMerge(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "CUFlow.cf"), []byte("Subnet 10.0.0.0/8\nService 80/tcp web\nOutputDir old\nSampleRate 10.9.9.9 10\n"), 0o644)
	text := `
cf: CUFlow.cf
output_dir: new
subnets: [192.168.0.0/16]
routers: [{address: 10.0.0.1, name: gw}]
sample_rates: {10.9.9.9: 50, 10.0.0.1: 20}
services:
  - {name: web, ports: ["443/tcp"]}
  - {name: dns, ports: ["domain/udp"]}
as_numbers: [{name: big, asns: [701, "702-703"]}]
protocols: [{number: tcp}, {number: 17, name: udp}]
tos: [{name: low, values: "0-7,32"}]
scoreboard: {top_n: 5, dir: sb, dns_timeout: 500ms}
`
	var y Config
	if err := yaml.Unmarshal([]byte(text), &y); err != nil {
		t.Fatal(err)
	}
	if y.Scoreboard.DNSTimeout != 500*time.Millisecond || y.ASNumbers[0].ASNs[0] != "701" {
		t.Fatalf("decoded %+v %+v", y.Scoreboard, y.ASNumbers)
	}
	c, err := ParseCF(filepath.Join(dir, y.CF))
	if err != nil {
		t.Fatal(err)
	}
	c.merge(&y)
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.OutputDir != "new" || len(c.Subnets) != 2 || len(c.Services) != 2 || c.Services[0].Ports[0] != "443/tcp" {
		t.Errorf("merged %+v", c)
	}
	if len(c.SampleRates) != 2 || c.SampleRates[0].Rate != 50 {
		t.Errorf("sample rates %+v", c.SampleRates)
	}
	var list Config
	if err := yaml.Unmarshal([]byte("sample_rates: [{exporter: 10.0.0.1, rate: 7}]"), &list); err != nil || list.SampleRates[0].Rate != 7 {
		t.Errorf("list form: %v %+v", err, list.SampleRates)
	}
	// Validation of YAML values names the list and index.
	bad := Config{Services: []Service{{Name: "x", Ports: []string{"80/tcp"}}, {Name: "x", Ports: []string{"81/tcp"}}},
		Networks: []Network{{Name: "n", Prefixes: []string{"10.0.0.0/99"}}}}
	err = bad.validate()
	if err == nil || !strings.Contains(err.Error(), "cuflow services[1]: duplicate label \"x\"") || !strings.Contains(err.Error(), "cuflow networks[0]: Network n: bad prefix") {
		t.Errorf("validate: %v", err)
	}
}

func TestParsePortSpec(t *testing.T) {
	for spec, want := range map[string]portRange{
		"80/tcp":        {proto: 6, lo: 80, hi: 80},
		"8000-8080/tcp": {proto: 6, lo: 8000, hi: 8080},
		"domain/udp":    {proto: 17, lo: 53, hi: 53},
		"https/tcp":     {proto: 6, lo: 443, hi: 443},
		"5/132":         {proto: 132, lo: 5, hi: 5},
	} {
		got, err := parsePortSpec(spec)
		got.protoTxt = ""
		if err != nil || got != want {
			t.Errorf("%s: %+v %v, want %+v", spec, got, err, want)
		}
	}
}
