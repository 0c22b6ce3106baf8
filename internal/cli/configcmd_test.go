package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCheck: config check refuses what collect, scan, web and run
// would refuse at start, naming file:line once.
func TestConfigCheck(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string // substrings of stderr; nil means "ok"
	}{
		{"module section without report_classes", "modules:\n  cuflow:\n    subnetz: [10.0.0.0/8]\n",
			[]string{`F:3: module cuflow: unknown key "subnetz"`}},
		{"jkflow section", "scan:\n  report_classes: [jkflow]\nmodules:\n  jkflow:\n    routerz: []\n",
			[]string{`F:5: module jkflow: unknown key "routerz"`}},
		{"unknown report class", "scan:\n  report_classes:\n    - cuflow\n    - nosuch\n",
			[]string{`F:4: scan.report_classes: unknown report module "nosuch"`}},
		{"unknown module section", "modules:\n  cuflo:\n    subnets: []\n",
			[]string{`F:3: modules.cuflo: unknown report module "cuflo"`}},
		{"collect values", "collect:\n  rcvbuf: lots\n  sockets: -3\n",
			[]string{`F:2: collect.rcvbuf: "lots" is not a size`, `F:3: collect.sockets: -3`}},
		{"clickhouse values", "clickhouse:\n  url: \"ftp://x\"\n  spool_max: huge\n  ttl: {flowz: 7d}\n",
			[]string{`F:2: clickhouse.url`, `F:3: clickhouse.spool_max`, `F:4: clickhouse.ttl.flowz`}},
		{"web and scan", "web:\n  listen: garbage\nscan:\n  max_attempts: -1\n",
			[]string{`F:2: web.listen`, `F:4: scan.max_attempts`}},
		{"good", "collect:\n  rcvbuf: 8MiB\nscan:\n  report_classes: [cuflow]\nmodules:\n  cuflow:\n    subnets: [10.0.0.0/8]\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f.yaml")
			if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			code := Main([]string{"config", "check", path}, &out, &errb)
			stderr := strings.ReplaceAll(errb.String(), path, "F")
			if tc.want == nil {
				if code != 0 || !strings.Contains(out.String(), "ok") {
					t.Errorf("exit %d, stdout %q, stderr %q; want ok", code, out.String(), stderr)
				}
				return
			}
			if code != 1 {
				t.Errorf("exit %d, want 1 (stdout %q)", code, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
			if strings.Count(stderr, "F:") != len(tc.want) {
				t.Errorf("stderr names the file %d times, want %d: %q", strings.Count(stderr, "F:"), len(tc.want), stderr)
			}
		})
	}
}

// TestConfigErrorsNameLine: the commands that read the file report a bad
// value with its file and line (not as a flag).
func TestConfigErrorsNameLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.yaml")
	if err := os.WriteFile(path, []byte("collect:\n  dir: x\n  rcvbuf: lots\nclickhouse:\n  url: \"ftp://x\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"collect", "--config", path, "--metrics", ""},
		{"query", "--config", path},
		{"web", "--config", path},
	} {
		var out, errb bytes.Buffer
		code := Main(args, &out, &errb)
		if code != 1 || !strings.Contains(errb.String(), path+":3: collect.rcvbuf") || !strings.Contains(errb.String(), path+":5: clickhouse.url") {
			t.Errorf("%v: exit %d, stderr %q; want file:line of both values", args, code, errb.String())
		}
	}
}
