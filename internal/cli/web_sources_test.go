package cli

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowscan/flowscan/internal/config"
)

// TestRRDSources: web names the directories it reads, a module's
// output_dir included (it said "RRD files in rrd" regardless).
func TestRRDSources(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, yaml, want string
	}{
		{"defaults", "", "RRD files in rrd/MODULE"},
		{"cuflow output_dir", "modules:\n  cuflow:\n    output_dir: /srv/rrds\n",
			"RRD files of cuflow in /srv/rrds, other modules in rrd/MODULE"},
		{"relative output_dir", "modules:\n  jkflow:\n    output_dir: jk\n",
			"RRD files of jkflow in " + filepath.Join(dir, "jk") + ", other modules in rrd/MODULE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "f.yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			logger, _ := newLogger(io.Discard, "error")
			var wf webFlags
			wc, err := wf.config(cfg, "rrd", "flows", nil, logger, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := rrdSources(wc); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
