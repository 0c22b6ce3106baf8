package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/testutil"
)

// TestExecOnShutdownFile: --exec runs for the file completed by SIGTERM
// too, before the collector exits.
func TestExecOnShutdownFile(t *testing.T) {
	needFlowscan(t)
	dir := t.TempDir()
	log := filepath.Join(t.TempDir(), "exec.log")
	port := testutil.FreeUDPPort(t)
	c := startCollector(t, port, dir, "--exec", `echo "$1 $FLOWSCAN_FILE" >> `+log)
	if out, err := runFlowscan(t, "gen", "--target", fmt.Sprintf("127.0.0.1:%d", port), "--format", "v9", "--count", "500", "--rate", "5000"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	eventually(t, 10*time.Second, "flows at the collector", func() bool {
		m, err := c.scrape()
		return err == nil && metricSum(m, "flowscan_flows_total") >= 500
	})
	if err := c.signal(t, syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, c.out.String())
	}
	files := listFiles(t, dir)
	data, _ := os.ReadFile(log)
	for _, f := range files {
		if !strings.HasSuffix(f, ".fsf") {
			continue
		}
		if !strings.Contains(string(data), filepath.Base(f)) {
			t.Errorf("--exec did not run for %s; log:\n%s", f, data)
		}
	}
	if len(data) == 0 {
		t.Errorf("--exec never ran (files %v)", files)
	}
}
