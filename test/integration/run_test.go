package integration

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/testutil"
)

// TestRunFromConfig: `flowscan run --config` on a fresh directory collects,
// scans each completed file into RRDs and serves the dashboard.
func TestRunFromConfig(t *testing.T) {
	needFlowscan(t)
	dir := t.TempDir()
	udpPort, webPort, metricsPort := testutil.FreeUDPPort(t), freeTCPPort(t), freeTCPPort(t)
	cfg := fmt.Sprintf(`collect:
  listen: ["127.0.0.1:%d"]
  dir: flows
  interval: 2s
  metrics: "127.0.0.1:%d"
scan:
  rrd_dir: rrd
  report_classes: [cuflow]
modules:
  cuflow:
    subnets: [10.0.0.0/16]
web:
  listen: 127.0.0.1:%d
`, udpPort, metricsPort, webPort)
	path := filepath.Join(dir, "flowscan.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, "flowscan run", flowscanBin, "run", "--config", path, "--log-level", "warn")
	web := fmt.Sprintf("http://127.0.0.1:%d/", webPort)
	eventually(t, 15*time.Second, "the dashboard", func() bool {
		if !p.running() {
			t.Fatalf("flowscan run exited: %v\n%s", p.err, p.out.String())
		}
		resp, err := http.Get(web)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if out, err := runFlowscan(t, "gen", "--target", fmt.Sprintf("127.0.0.1:%d", udpPort), "--format", "v9", "--rate", "2000", "--duration", "5s"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	total := filepath.Join(dir, "rrd", "cuflow", "total.rrd")
	eventually(t, 15*time.Second, "cuflow's total.rrd from a scanned file", func() bool {
		_, err := os.Stat(total)
		return err == nil
	})
	if err := p.signal(t, syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, p.out.String())
	}
}
