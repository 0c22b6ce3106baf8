package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestScanStateDir: with its own --state-dir, a second scan of the same
// archive scans the files again; the default journal is
// left alone.
func TestScanStateDir(t *testing.T) {
	flows := t.TempDir()
	writeTestFile(t, flows)
	rrdDir := t.TempDir()
	scan := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		args = append([]string{"scan", "--dir", flows, "--rrd-dir", rrdDir, "--once", "--log-level", "warn"}, args...)
		if code := Main(args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		return out.String()
	}
	if got := scan("--report-classes", "cuflow"); !strings.Contains(got, "scanned 1 files") {
		t.Fatalf("first scan: %q", got)
	}
	other := filepath.Join(t.TempDir(), "journal")
	if got := scan("--report-classes", "cuflow", "--state-dir", other); !strings.Contains(got, "scanned 1 files") {
		t.Errorf("scan with its own --state-dir: %q, want the file scanned again", got)
	}
	if _, err := os.Stat(filepath.Join(other, "scan.journal")); err != nil {
		t.Errorf("no journal in --state-dir: %v", err)
	}
	if got := scan("--report-classes", "cuflow", "--state-dir", other); !strings.Contains(got, "scanned 0 files") {
		t.Errorf("second scan with the same --state-dir: %q, want nothing scanned", got)
	}
}
