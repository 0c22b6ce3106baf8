package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/testutil"
)

// TestSoftflowdRestart runs softflowd over testdata/traffic.pcap twice in a
// row into one collector, as NetFlow v5, v9 and IPFIX: the second run
// numbers its datagrams from the start again, a little behind where the
// first one stopped. The collector must take that for an exporter restart
// (a sequence reset) and count no lost flows, rather than count every
// datagram of the second run as misordered.
func TestSoftflowdRestart(t *testing.T) {
	needFlowscan(t)
	sfBin := needTool(t, "softflowd", "apt-get install softflowd")
	traffic := filepath.Join(repoRoot, "testdata", "traffic.pcap")
	if _, err := os.Stat(traffic); err != nil {
		t.Fatalf("input capture: %v", err)
	}
	for _, v := range []int{5, 9, 10} {
		name := map[int]string{5: "netflow5", 9: "netflow9", 10: "ipfix"}[v]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			port := testutil.FreeUDPPort(t)
			coll := startCollector(t, port, filepath.Join(dir, "flows"), "--interval", "5m")
			sentDatagrams, sentRecords := 0, 0
			for run := range 2 {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				sf := start(t, "softflowd", sfBin, "-r", traffic, "-a", "-n", fmt.Sprintf("127.0.0.1:%d", port),
					"-v", strconv.Itoa(v), "-6", "-m", "200000", "-d", "-p", filepath.Join(dir, fmt.Sprintf("softflowd%d.pid", run)))
				go func() {
					select {
					case <-ctx.Done():
						if sf.running() {
							sf.cmd.Process.Kill()
						}
					case <-sf.done:
					}
				}()
				err := sf.wait(t, 70*time.Second)
				cancel()
				if err != nil {
					t.Fatalf("softflowd: %v\n%s", err, sf.out.String())
				}
				m := softflowdStats.FindStringSubmatch(sf.out.String())
				if m == nil {
					t.Fatalf("no export summary in softflowd output:\n%s", sf.out.String())
				}
				records, _ := strconv.Atoi(m[1])
				datagrams, _ := strconv.Atoi(m[2])
				sentRecords += records
				sentDatagrams += datagrams
				eventually(t, 15*time.Second, "the collector to receive every datagram", func() bool {
					mt, err := coll.scrape()
					return err == nil && metricSum(mt, "flowscan_datagrams_total")+metricSum(mt, "flowscan_decode_errors_total") >= float64(sentDatagrams)
				})
			}
			mt, err := coll.scrape()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("softflowd sent %d records in %d datagrams over two runs", sentRecords, sentDatagrams)
			if got := metricSum(mt, "flowscan_lost_flows_total"); got != 0 {
				t.Errorf("%v lost flows counted, want 0", got)
			}
			if got := metricSum(mt, "flowscan_sequence_resets_total"); got != 1 {
				t.Errorf("%v sequence resets, want 1 (the restart)", got)
			}
			// The first datagrams of the second run look late until they
			// are seen to continue one another.
			if got := metricSum(mt, "flowscan_misordered_datagrams_total"); got > 2 {
				t.Errorf("%v misordered datagrams, want at most 2", got)
			}
			if err := coll.signal(t, syscall.SIGTERM, 30*time.Second); err != nil {
				t.Errorf("collector exited with %v after SIGTERM", err)
			}
		})
	}
}
