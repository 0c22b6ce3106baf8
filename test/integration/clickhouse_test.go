package integration

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/clickhouse"
	"github.com/flowscan/flowscan/internal/clickhouse/chtest"
)

type chTotals struct{ flows, packets, bytes uint64 }

func clickhouseTotals(t *testing.T, url, table string) chTotals {
	t.Helper()
	c, err := clickhouse.NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	flows := "count()"
	if table != "flows" && table != "flows_local" {
		flows = "sum(flows)"
	}
	rows, err := c.QueryRows(context.Background(), fmt.Sprintf("SELECT %s, sum(packets), sum(bytes) FROM %s.%s", flows, c.Database, table))
	if err != nil {
		t.Fatal(err)
	}
	var tt chTotals
	fmt.Sscan(rows[0][0], &tt.flows)
	fmt.Sscan(rows[0][1], &tt.packets)
	fmt.Sscan(rows[0][2], &tt.bytes)
	return tt
}

func fileTotals(t *testing.T, dirs ...string) chTotals {
	t.Helper()
	var tt chTotals
	for _, m := range dumpMetas(t, dirs...) {
		tt.flows += m.Flows
		tt.packets += m.Packets
		tt.bytes += m.Bytes
	}
	return tt
}

func sendFlows(t *testing.T, port int, format string, count, rate int, seed int) {
	t.Helper()
	if out, err := runFlowscan(t, "gen", "--target", fmt.Sprintf("127.0.0.1:%d", port), "--format", format,
		"--count", fmt.Sprint(count), "--rate", fmt.Sprint(rate), "--seed", fmt.Sprint(seed)); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// TestClickHouseSameTotalsAsFlowFiles runs `flowscan clickhouse init` and
// `flowscan collect --clickhouse` against a private clickhouse-server;
// the flows generated must reach every ClickHouse table with the totals
// of the local flow files.
func TestClickHouseSameTotalsAsFlowFiles(t *testing.T) {
	needFlowscan(t)
	srv := chtest.Start(t)
	url := srv.URL("flowscan")
	if out, err := runFlowscan(t, "clickhouse", "init", "--clickhouse", url); err != nil {
		t.Fatalf("%v\n%s", err, out)
	} else if !strings.Contains(string(out), "version 0 -> 1") {
		t.Errorf("init output %q: want the migration reported", out)
	}
	port := freeUDPPort(t)
	dir := t.TempDir()
	c := startCollector(t, port, dir, "--clickhouse", url)
	sendFlows(t, port, "ipfix", 20000, 50000, 1)
	sendFlows(t, port, "v5", 10000, 50000, 2)
	eventually(t, 20*time.Second, "flows in ClickHouse", func() bool {
		m, err := c.scrape()
		return err == nil && metricSum(m, "flowscan_clickhouse_rows_total") >= metricSum(m, "flowscan_flows_total") &&
			metricSum(m, "flowscan_flows_total") > 0
	})
	if err := c.signal(t, syscall.SIGTERM, 20*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, c.out.String())
	}
	want := fileTotals(t, dir)
	if want.flows < 25000 {
		t.Fatalf("only %d of 30000 flows stored in the flow files", want.flows)
	}
	for _, table := range clickhouse.TableNames() {
		if got := clickhouseTotals(t, url, table); got != want {
			t.Errorf("%s: %+v, flow files %+v", table, got, want)
		}
	}
	out, err := runFlowscan(t, "clickhouse", "status", "--clickhouse", url)
	if err != nil || !strings.Contains(string(out), "schema version 1") {
		t.Errorf("status: %v\n%s", err, out)
	}
	// Backfill: the same flow files loaded into another database.
	url2 := srv.URL("backfill")
	if out, err := runFlowscan(t, "clickhouse", "load", "--clickhouse", url2, dir); err == nil {
		t.Errorf("load into a database without the schema succeeded:\n%s", out)
	}
	if out, err := runFlowscan(t, "clickhouse", "init", "--clickhouse", url2); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if out, err := runFlowscan(t, "clickhouse", "load", "--clickhouse", url2, dir); err != nil {
		t.Fatalf("%v\n%s", err, out)
	} else if !strings.Contains(string(out), fmt.Sprintf("loaded %d flows", want.flows)) {
		t.Errorf("load output %q: want %d flows loaded", out, want.flows)
	}
	for _, table := range clickhouse.TableNames() {
		if got := clickhouseTotals(t, url2, table); got != want {
			t.Errorf("loaded %s: %+v, flow files %+v", table, got, want)
		}
	}
}

// TestClickHouseStoppedDuringCollection stops the server for a while
// during collection (SIGKILL, as a crash) and starts it again: every flow
// must arrive exactly once, spooled batches included.
func TestClickHouseStoppedDuringCollection(t *testing.T) {
	needFlowscan(t)
	srv := chtest.Start(t)
	url := srv.URL("flowscan")
	if out, err := runFlowscan(t, "clickhouse", "init", "--clickhouse", url); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	port := freeUDPPort(t)
	dir := t.TempDir()
	c := startCollector(t, port, dir, "--clickhouse", url)
	sendFlows(t, port, "v9", 20000, 40000, 3)
	srv.Stop()
	sendFlows(t, port, "v9", 20000, 40000, 4)
	eventually(t, 20*time.Second, "batches spooled while the server is down", func() bool {
		m, err := c.scrape()
		return err == nil && metricSum(m, "flowscan_clickhouse_spool_batches") > 0
	})
	time.Sleep(time.Second)
	srv.Restart()
	sendFlows(t, port, "v9", 10000, 40000, 5)
	eventually(t, 60*time.Second, "the spool sent", func() bool {
		m, err := c.scrape()
		return err == nil && metricSum(m, "flowscan_clickhouse_spool_batches") == 0 &&
			metricSum(m, "flowscan_clickhouse_memory_batches") == 0 &&
			metricSum(m, "flowscan_clickhouse_rows_total") >= metricSum(m, "flowscan_flows_total")-5
	})
	if err := c.signal(t, syscall.SIGTERM, 20*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, c.out.String())
	}
	want := fileTotals(t, dir)
	for _, table := range clickhouse.TableNames() {
		if got := clickhouseTotals(t, url, table); got != want {
			t.Errorf("%s: %+v, flow files %+v (lost or doubled)", table, got, want)
		}
	}
}

// TestClickHouseTwoShardCluster runs two ClickHouse servers as the two
// shards of one cluster, two collectors inserting into both, and reads
// top-N and totals through the Distributed tables of either server.
func TestClickHouseTwoShardCluster(t *testing.T) {
	needFlowscan(t)
	srvs := chtest.StartCluster(t, "flows", 2)
	urls := []string{srvs[0].URL("flowscan"), srvs[1].URL("flowscan")}
	chArgs := []string{"--clickhouse", urls[0], "--clickhouse", urls[1], "--clickhouse-cluster", "flows"}
	if out, err := runFlowscan(t, append([]string{"clickhouse", "init"}, chArgs...)...); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var dirs []string
	var cols []*collector
	for i := 0; i < 2; i++ {
		port := freeUDPPort(t)
		dir := t.TempDir()
		dirs = append(dirs, dir)
		c := startCollector(t, port, dir, append(chArgs, "--clickhouse-batch-rows", "2000")...)
		cols = append(cols, c)
		sendFlows(t, port, []string{"v5", "ipfix"}[i], 15000, 50000, 10+i)
	}
	for _, c := range cols {
		c := c
		eventually(t, 30*time.Second, "flows in ClickHouse", func() bool {
			m, err := c.scrape()
			return err == nil && metricSum(m, "flowscan_flows_total") > 0 &&
				metricSum(m, "flowscan_clickhouse_rows_total") >= metricSum(m, "flowscan_flows_total")
		})
		if err := c.signal(t, syscall.SIGTERM, 20*time.Second); err != nil {
			t.Fatalf("%v\n%s", err, c.out.String())
		}
	}
	want := fileTotals(t, dirs...)
	// Each shard holds part of the flows; the Distributed tables all.
	var perShard uint64
	for _, u := range urls {
		n := clickhouseTotals(t, u, "flows_local").flows
		if n == 0 {
			t.Errorf("shard %s holds no flows: batches are not spread", u)
		}
		perShard += n
	}
	if perShard != want.flows {
		t.Errorf("shards hold %d flows together, flow files %d", perShard, want.flows)
	}
	for _, u := range urls {
		for _, table := range clickhouse.TableNames() {
			if got := clickhouseTotals(t, u, table); got != want {
				t.Errorf("%s %s (Distributed): %+v, flow files %+v", u, table, got, want)
			}
		}
	}
	// The same top-N from the flow files of both collectors and from the cluster.
	top := func(args ...string) string {
		out, err := runFlowscan(t, append(args, "--top", "5", "--by", "dst_port", "--order", "bytes", "--format", "csv", "--progress", "no")...)
		if err != nil {
			t.Fatal(err)
		}
		// Key, flows, packets, bytes: rates and first/last differ by
		// design (the consolidated tables know times by the interval).
		var b strings.Builder
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Split(line, ",")
			b.WriteString(strings.Join(f[:min(4, len(f))], ",") + "\n")
		}
		return b.String()
	}
	fromFiles := top("query", "--dir", dirs[0], "--dir", dirs[1])
	fromCluster := top(append([]string{"query"}, chArgs...)...)
	if fromFiles != fromCluster || strings.Count(fromFiles, "\n") < 5 {
		t.Errorf("top 5 dst_port differ:\nflow files:\n%s\ncluster:\n%s", fromFiles, fromCluster)
	}
}
