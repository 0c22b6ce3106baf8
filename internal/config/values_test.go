package config

import (
	"fmt"
	"strings"
	"testing"
)

// TestValueErrors: values that collect, scan, web or run would refuse at
// start fail at Parse, naming file, line and key.
func TestValueErrors(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"rcvbuf", "collect:\n  rcvbuf: lots\n", `f.yaml:2: collect.rcvbuf: "lots" is not a size`},
		{"max_size", "collect:\n  dir: x\n  max_size: big\n", `f.yaml:3: collect.max_size: "big" is not a size`},
		{"max_age", "collect:\n  max_age: soon\n", `f.yaml:2: collect.max_age: "soon" is not a duration`},
		{"tz", "collect:\n  tz: Mars/Base\n", `f.yaml:2: collect.tz: "Mars/Base"`},
		{"allow item", "collect:\n  allow:\n    - 10.0.0.0/8\n    - 10.0.0.0/33\n", `f.yaml:4: collect.allow: "10.0.0.0/33" is not an address or prefix`},
		{"sampling address", "collect:\n  sampling:\n    router1: 100\n", `f.yaml:3: collect.sampling.router1: "router1" is not an exporter address`},
		{"sampling rate", "collect:\n  sampling:\n    192.0.2.1: 0\n", `f.yaml:3: collect.sampling.192.0.2.1: 192.0.2.1: rate 0`},
		{"listen item", "collect:\n  listen:\n    - \":2055\"\n    - \"x:y\"\n", `f.yaml:4: collect.listen: "x:y": bad port`},
		{"listen garbage", "collect:\n  listen: [\"not an address\"]\n", `f.yaml:2: collect.listen: "not an address": want ADDR:PORT`},
		{"sockets", "collect:\n  sockets: -3\n", `f.yaml:2: collect.sockets: -3: want 0`},
		{"interval", "collect:\n  interval: 500ms\n", `f.yaml:2: collect.interval: 500ms: must be at least 1s`},
		{"max_attempts", "scan:\n  max_attempts: -1\n", `f.yaml:2: scan.max_attempts: -1: want 0`},
		{"web listen", "web:\n  listen: garbage\n", `f.yaml:2: web.listen: "garbage": want ADDR:PORT`},
		{"web port", "web:\n  listen: 127.0.0.1:http\n", `f.yaml:2: web.listen: "127.0.0.1:http": bad port`},
		{"clickhouse scheme", "clickhouse:\n  url: \"ftp://x\"\n", `f.yaml:2: clickhouse.url: clickhouse URL "ftp://x": scheme must be http or https`},
		{"clickhouse database", "clickhouse:\n  url: http://h/no-dashes\n", `f.yaml:2: clickhouse.url: clickhouse URL "http://h/no-dashes": database name`},
		{"clickhouse shard", "clickhouse:\n  cluster: c\n  shards:\n    - http://a/db\n    - http://b/other\n", `f.yaml:5: clickhouse.shards: http://b/other: database "other" differs`},
		{"clickhouse cluster", "clickhouse:\n  shards: [http://a/db, http://b/db]\n", `f.yaml:2: clickhouse.shards: several shards need clickhouse.cluster`},
		{"spool_max", "clickhouse:\n  spool_max: huge\n", `f.yaml:2: clickhouse.spool_max: "huge" is not a size`},
		{"ttl table", "clickhouse:\n  ttl:\n    flows: 7d\n    flowz: 7d\n", `f.yaml:4: clickhouse.ttl.flowz: unknown table "flowz"`},
		{"senders", "clickhouse:\n  senders: -1\n", `f.yaml:2: clickhouse.senders: -1: want 0`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestValueErrorsAll: every bad value is reported, in the file's order.
func TestValueErrorsAll(t *testing.T) {
	_, err := Parse("f.yaml", []byte("web:\n  listen: garbage\ncollect:\n  rcvbuf: lots\n  max_size: big\n"))
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{"f.yaml:2: web.listen", "f.yaml:4: collect.rcvbuf", "f.yaml:5: collect.max_size"}
	if len(lines) != len(want) {
		t.Fatalf("%d errors, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("error %d = %q, want prefix %q", i, lines[i], w)
		}
	}
}

func TestGoodValues(t *testing.T) {
	text := "collect:\n  listen: [\"9995\", \"::1\", \"127.0.0.1:2055\"]\n  rcvbuf: 8MiB\n  max_size: 50GiB\n  max_age: 30d\n" +
		"  tz: UTC\n  allow: [192.0.2.1, 10.0.0.0/8]\n  sampling:\n    192.0.2.1: 100\n" +
		"web:\n  listen: \":8080\"\nclickhouse:\n  url: http://u:p@127.0.0.1:8123/flowscan\n  spool_max: 1GiB\n  ttl: {flows: 7d, flows_1h: 5y}\n"
	if _, err := Parse("f.yaml", []byte(strings.Replace(text, "5y", "1830d", 1))); err != nil {
		t.Fatal(err)
	}
}

func TestLocateModuleErrorFrontsLocation(t *testing.T) {
	c, err := Parse("m3.yaml", []byte("modules:\n  cuflow:\n    subnetz: [a]\n"))
	if err != nil {
		t.Fatal(err)
	}
	inner := c.ModuleDecoder("cuflow")(&struct {
		Subnets []string `yaml:"subnets"`
	}{})
	got := c.LocateModuleError("cuflow", errorf("module cuflow: %w", inner)).Error()
	if want := `m3.yaml:3: module cuflow: unknown key "subnetz"`; !strings.HasPrefix(got, want) || strings.Count(got, "m3.yaml") != 1 {
		t.Errorf("got %q, want it to start with %q and name the file once", got, want)
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// TestParsePrefix: the address-or-prefix form of --allow, collect.allow
// and the relay's exporter= filter.
func TestParsePrefix(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1/32"},
		{" 10.1.2.3/8 ", "10.0.0.0/8"},
		{"2001:db8::1", "2001:db8::1/128"},
		{"::ffff:192.0.2.1", "192.0.2.1/32"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"::ffff:10.0.0.0/64", ""}, // mapped, shorter than /96: no IPv4 prefix
		{"10.0.0.0/33", ""},
		{"router1", ""},
	} {
		p, err := ParsePrefix(tt.in)
		if got := p.String(); (err == nil) != (tt.want != "") || err == nil && got != tt.want {
			t.Errorf("ParsePrefix(%q) = %s, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
