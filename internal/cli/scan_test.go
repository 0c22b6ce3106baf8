package cli

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/rrd"
)

// TestScanCUFlowOnce runs the issue's form `flowscan scan --dir FLOWDIR
// --cuflow CUFlow.cf --once` on a file with hand-picked flows and checks
// total.rrd, with no other configuration.
func TestScanCUFlowOnce(t *testing.T) {
	flows := t.TempDir()
	writeTestFile(t, flows) // 12:00-12:05 UTC: 10.0.0.1 -> 198.51.100.7 4000 bytes; an IPv6 flow of 76000 bytes
	etc := t.TempDir()
	cf := filepath.Join(etc, "CUFlow.cf")
	os.WriteFile(cf, []byte("Subnet 10.0.0.0/8\nOutputDir rrds\nProtocol 6 tcp\n"), 0o644)
	var out, errb bytes.Buffer
	if code := Main([]string{"scan", "--dir", flows, "--cuflow", cf, "--once", "--log-level", "warn"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "scanned 1 files, 2 flows") {
		t.Errorf("output %q", out.String())
	}
	// OutputDir is relative to the CUFlow.cf's directory.
	total := filepath.Join(etc, "rrds", "total.rrd")
	end := time.Date(2026, 11, 23, 12, 5, 0, 0, time.UTC)
	s, err := rrd.New("").Fetch(total, "AVERAGE", end.Add(-5*time.Minute), end, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for i, row := range s.Rows {
		if !s.Time(i).Equal(end) {
			continue
		}
		found = true
		// The IPv4 flow leaves the inside subnet: out_bytes = 4000 over 300 s.
		if math.Abs(row[1]*300-4000) > 1e-6 || math.Abs(row[0]) > 1e-9 {
			t.Errorf("total.rrd at %v: %v, want out_bytes 4000/300", end, row)
		}
	}
	if !found {
		t.Fatalf("no row at %v in %+v", end, s)
	}
	// A second run scans nothing: exactly once.
	out.Reset()
	if code := Main([]string{"scan", "--dir", flows, "--cuflow", cf, "--once", "--log-level", "warn"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "scanned 0 files") {
		t.Errorf("second run: exit %d, %q", code, out.String())
	}
}

// TestDemoShort runs the demo briefly: everything sent is stored and cuflow
// made its RRD files.
func TestDemoShort(t *testing.T) {
	if testing.Short() {
		t.Skip("demo sends traffic for a few seconds")
	}
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := Main([]string{"demo", "--dir", dir, "--duration", "2s", "--interval", "1s", "--rate", "500"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	m := regexp.MustCompile(`stored (\d+) of (\d+) flows sent`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no summary in output:\n%s", out.String())
	}
	stored, _ := strconv.Atoi(m[1])
	sent, _ := strconv.Atoi(m[2])
	if sent < 1000 || stored != sent {
		t.Errorf("stored %d of %d flows", stored, sent)
	}
	if _, err := os.Stat(filepath.Join(dir, "rrd", "cuflow", "total.rrd")); err != nil {
		t.Errorf("cuflow wrote no total.rrd: %v", err)
	}
}
