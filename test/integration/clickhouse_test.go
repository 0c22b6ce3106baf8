package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/clickhouse"
	"github.com/flowscan/flowscan/internal/clickhouse/chtest"
	"github.com/flowscan/flowscan/internal/testutil"
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
	port := testutil.FreeUDPPort(t)
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
	port := testutil.FreeUDPPort(t)
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
		port := testutil.FreeUDPPort(t)
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
	// One graph over both shards: the dashboard's series of the total.
	webAddr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	web := start(t, "flowscan web", flowscanBin, append([]string{"web", "--listen", webAddr, "--rrd-dir", t.TempDir()}, chArgs...)...)
	var series struct {
		Times  []int64 `json:"times"`
		Step   int64   `json:"step"`
		Series []struct {
			Out []*float64 `json:"out"`
		} `json:"series"`
	}
	from := time.Now().Add(-2 * time.Hour).Truncate(time.Hour)
	to := time.Now().Add(time.Hour).Truncate(time.Hour)
	url := fmt.Sprintf("http://%s/api/v1/series?module=clickhouse&router=all&items=total&unit=flows&from=%d&to=%d&step=60", webAddr, from.Unix(), to.Unix())
	eventually(t, 20*time.Second, "the dashboard's series from the cluster", func() bool {
		if !web.running() {
			t.Fatalf("web exited: %s", web.out.String())
		}
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&series) == nil
	})
	// The current bucket is not drawn (it is not complete): compare the
	// complete ones with the flows that ended in them, from the raw
	// tables of both shards.
	if len(series.Series) != 1 || len(series.Series[0].Out) != len(series.Times) {
		t.Fatalf("series of the total: %+v", series)
	}
	var graphed float64
	var lastEnd int64
	for i, v := range series.Series[0].Out {
		if v != nil {
			graphed += *v * float64(series.Step)
			lastEnd = series.Times[i]
		}
	}
	var inGraph uint64
	for _, u := range urls {
		c, _ := clickhouse.NewClient(u)
		rows, err := c.QueryRows(context.Background(), fmt.Sprintf("SELECT count() FROM flowscan.flows_local WHERE time_end >= toDateTime(%d) AND time_end < toDateTime(%d)", from.Unix(), lastEnd))
		if err != nil {
			t.Fatal(err)
		}
		var n uint64
		fmt.Sscan(rows[0][0], &n)
		inGraph += n
	}
	if inGraph == 0 || uint64(math.Round(graphed)) != inGraph {
		t.Errorf("graph of the total over the cluster shows %.0f flows until %d; the shards hold %d", graphed, lastEnd, inGraph)
	}
	fromFiles := top("query", "--dir", dirs[0], "--dir", dirs[1])
	fromCluster := top(append([]string{"query"}, chArgs...)...)
	if fromFiles != fromCluster || strings.Count(fromFiles, "\n") < 5 {
		t.Errorf("top 5 dst_port differ:\nflow files:\n%s\ncluster:\n%s", fromFiles, fromCluster)
	}
}

// TestRunWithClickHouseFromConfig: one configuration file with a
// clickhouse section; `flowscan clickhouse init --config` and `flowscan
// run --config` collect into flow files and ClickHouse, and the
// dashboard offers the clickhouse module.
func TestRunWithClickHouseFromConfig(t *testing.T) {
	needFlowscan(t)
	srv := chtest.Start(t)
	dir := t.TempDir()
	udpPort, webPort, metricsPort := testutil.FreeUDPPort(t), freeTCPPort(t), freeTCPPort(t)
	cfg := fmt.Sprintf(`collect:
  listen: ["127.0.0.1:%d"]
  dir: flows
  metrics: "127.0.0.1:%d"
scan:
  rrd_dir: rrd
  report_classes: [cuflow]
web:
  listen: 127.0.0.1:%d
clickhouse:
  url: %s
  ttl: {flows: 3d, flows_1m: 10d}
`, udpPort, metricsPort, webPort, srv.URL("fsrun"))
	path := filepath.Join(dir, "flowscan.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runFlowscan(t, "clickhouse", "init", "--config", path); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	p := start(t, "flowscan run", flowscanBin, "run", "--config", path, "--log-level", "warn")
	c := &collector{proc: p, metrics: fmt.Sprintf("127.0.0.1:%d", metricsPort)}
	eventually(t, 15*time.Second, "the collector", func() bool {
		if !p.running() {
			t.Fatalf("flowscan run exited: %v\n%s", p.err, p.out.String())
		}
		_, err := c.scrape()
		return err == nil
	})
	sendFlows(t, udpPort, "v9", 5000, 20000, 21)
	eventually(t, 20*time.Second, "flows in ClickHouse", func() bool {
		m, err := c.scrape()
		return err == nil && metricSum(m, "flowscan_flows_total") > 0 &&
			metricSum(m, "flowscan_clickhouse_rows_total") >= metricSum(m, "flowscan_flows_total")
	})
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/catalog", webPort))
	if err != nil {
		t.Fatal(err)
	}
	var catalog struct {
		Modules []struct{ Name string } `json:"modules"`
	}
	json.NewDecoder(resp.Body).Decode(&catalog)
	resp.Body.Close()
	var names []string
	for _, m := range catalog.Modules {
		names = append(names, m.Name)
	}
	if !strings.Contains(strings.Join(names, ","), "clickhouse") {
		t.Errorf("dashboard modules %v: want the clickhouse module", names)
	}
	if err := p.signal(t, syscall.SIGTERM, 20*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, p.out.String())
	}
	want := fileTotals(t, filepath.Join(dir, "flows"))
	if got := clickhouseTotals(t, srv.URL("fsrun"), "flows"); got != want || want.flows == 0 {
		t.Errorf("ClickHouse %+v, flow files %+v", got, want)
	}
}
