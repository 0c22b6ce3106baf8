package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

const good = `# flowscan.yaml
collect:
  listen: [":2055", "[::]:9995"]
  dir: flows
  interval: 5m
  sampling:
    192.0.2.1: 100
scan:
  rrd_dir: rrd
  after: save
  report_classes: [cuflow, jkflow]
modules:
  cuflow:
    subnets: [10.0.0.0/8]
    scoreboard:
      top_n: 10
web:
  listen: 127.0.0.1:8080
`

type moduleConfig struct {
	Subnets    []string `yaml:"subnets"`
	Scoreboard struct {
		TopN int `yaml:"top_n"`
	} `yaml:"scoreboard"`
}

func TestParseGood(t *testing.T) {
	c, err := Parse("/etc/flowscan/flowscan.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(c.Collect.Interval) != 5*time.Minute || len(c.Collect.Listen) != 2 || c.Collect.Sampling["192.0.2.1"] != 100 {
		t.Errorf("collect: %+v", c.Collect)
	}
	if c.Scan.After != "save" || strings.Join(c.Scan.ReportClasses, ",") != "cuflow,jkflow" || c.Web.Listen != "127.0.0.1:8080" {
		t.Errorf("scan/web: %+v %+v", c.Scan, c.Web)
	}
	if got := c.Resolve("rrd"); got != "/etc/flowscan/rrd" {
		t.Errorf("Resolve: %s", got)
	}
	var m moduleConfig
	if err := c.ModuleDecoder("cuflow")(&m); err != nil {
		t.Fatal(err)
	}
	if len(m.Subnets) != 1 || m.Scoreboard.TopN != 10 {
		t.Errorf("module: %+v", m)
	}
	var none moduleConfig
	if err := c.ModuleDecoder("jkflow")(&none); err != nil || none.Subnets != nil {
		t.Errorf("absent module section: %v %+v", err, none)
	}
}

func TestParseErrors(t *testing.T) {
	f := func(name, text, want string) {
		t.Helper()
		_, err := Parse("f.yaml", []byte(text))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to contain %q", name, err, want)
		}
	}
	f("unknown top-level key", "collect:\n  dir: x\nscna:\n  after: keep\n", `f.yaml:3: unknown key "scna"`)
	f("unknown nested key", "collect:\n  dir: x\n  intervall: 5m\n", `f.yaml:3: unknown key "intervall"`)
	f("wrong type", "collect:\n  nest: deep\n", "f.yaml:2:")
	f("bad duration", "collect:\n  interval: soon\n", `f.yaml:2: "soon" is not a duration`)
	f("bad after", "scan:\n  after: shred\n", `f.yaml:2: scan.after "shred"`)
	f("bad nest", "collect:\n  nest: 9\n", "f.yaml:2: collect.nest 9")
	f("duplicate module", "scan:\n  report_classes:\n    - cuflow\n    - cuflow\n", `f.yaml:4: scan.report_classes: "cuflow" listed twice`)
	f("syntax", "collect: [unclosed\n", "f.yaml:")
}

func TestModuleDecoderErrors(t *testing.T) {
	c, err := Parse("f.yaml", []byte("modules:\n  cuflow:\n    subnets: [a]\n    scorebord:\n      top_n: 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	var m moduleConfig
	err = c.ModuleDecoder("cuflow")(&m)
	if err == nil || !strings.HasPrefix(err.Error(), `f.yaml:4: unknown key "scorebord"`) {
		t.Errorf("got %v", err)
	}
	c, _ = Parse("f.yaml", []byte("modules:\n  cuflow:\n    scoreboard:\n      top_n: many\n"))
	if err := c.ModuleDecoder("cuflow")(&m); err == nil || !strings.HasPrefix(err.Error(), "f.yaml:4:") {
		t.Errorf("type error: %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"5m": 5 * time.Minute, "2d": 48 * time.Hour, "1w": 168 * time.Hour, "90s": 90 * time.Second} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "0s", "-1m", "xd", "3xd", "1.5.2d"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestLocateModuleError(t *testing.T) {
	c, err := Parse("f.yaml", []byte("modules:\n  m:\n    nets:\n      - 10.0.0.0/8\n      - 10.0.0.0/33\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := c.LocateModuleError("m", fmt.Errorf("bad prefix %q", "10.0.0.0/33"))
	if !strings.HasPrefix(got.Error(), "f.yaml:5: bad prefix") {
		t.Errorf("got %v", got)
	}
	got = c.LocateModuleError("m", fmt.Errorf("no nets at all"))
	if got.Error() != "f.yaml: modules.m: no nets at all" {
		t.Errorf("got %v", got)
	}
}
