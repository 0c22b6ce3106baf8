package integration

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/testutil"
)

// TestForwardAndReexport chains three collectors: the first receives
// generated NetFlow v5, forwards every datagram unchanged to the second
// (--forward) and re-exports its decoded flows as IPFIX to the third
// (--reexport). All three must store the same flows and bytes.
func TestForwardAndReexport(t *testing.T) {
	needFlowscan(t)
	firstPort, fwdPort, rePort := testutil.FreeUDPPort(t), testutil.FreeUDPPort(t), testutil.FreeUDPPort(t)
	fwd := startCollector(t, fwdPort, t.TempDir())
	re := startCollector(t, rePort, t.TempDir())
	first := startCollector(t, firstPort, t.TempDir(),
		"--forward", fmt.Sprintf("127.0.0.1:%d;format=netflow5", fwdPort),
		"--reexport", fmt.Sprintf("ipfix@127.0.0.1:%d", rePort))

	const flows = 3000
	if out, err := runFlowscan(t, "gen", "--target", fmt.Sprintf("127.0.0.1:%d", firstPort), "--format", "v5",
		"--count", fmt.Sprint(flows), "--rate", "20000"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, c := range []*collector{first, fwd, re} {
		c := c
		eventually(t, 15*time.Second, "all flows at "+c.dir, func() bool {
			m, err := c.scrape()
			return err == nil && metricSum(m, "flowscan_flows_total") >= flows
		})
	}
	totals := map[string][2]uint64{}
	for name, c := range map[string]*collector{"first": first, "forwarded": fwd, "reexported": re} {
		if err := c.signal(t, syscall.SIGTERM, 15*time.Second); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, c.out.String())
		}
		var n, bytes uint64
		formats := map[string]bool{}
		for _, m := range dumpMetas(t, c.dir) {
			n += m.Flows
			bytes += m.Bytes
			for _, e := range m.Exporters {
				formats[e.Format] = true
			}
		}
		totals[name] = [2]uint64{n, bytes}
		want := "netflow5"
		if name == "reexported" {
			want = "ipfix"
		}
		if !formats[want] || len(formats) != 1 {
			t.Errorf("%s: formats %v, want only %s", name, formats, want)
		}
	}
	if totals["first"][0] != flows || totals["forwarded"] != totals["first"] || totals["reexported"] != totals["first"] {
		t.Errorf("flows and bytes stored: %v (want %d flows everywhere, same bytes)", totals, flows)
	}
}
