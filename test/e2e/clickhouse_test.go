package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flowscan/flowscan/internal/clickhouse"
	"github.com/flowscan/flowscan/internal/clickhouse/chtest"
	"github.com/flowscan/flowscan/internal/flow"
)

// TestDashboardClickHouse serves flows stored in a private ClickHouse
// server with `flowscan web --clickhouse` and checks in the browser that
// the clickhouse module plots a non-empty graph, that its PNG link gives
// an image, that its top talkers list the heaviest source first and that
// a host link shows that host's traffic.
func TestDashboardClickHouse(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	chrome := chromium(t)
	srv := chtest.Start(t)
	artifacts := artifactsDir(t)
	bin := buildFlowscan(t)
	chURL := srv.URL("e2e")
	if out, err := exec.Command(bin, "clickhouse", "init", "--clickhouse", chURL).CombinedOutput(); err != nil {
		t.Fatalf("flowscan clickhouse init: %v\n%s", err, out)
	}
	// Six hours of flows, one a minute per host; 10.0.0.9 sends the most.
	now := time.Now()
	var data []byte
	for m := range 360 {
		end := now.Add(-time.Duration(m) * time.Minute).UnixMilli()
		for k := 1; k <= 9; k++ {
			r := flow.Record{Exporter: netip.MustParseAddr("192.0.2.1"), Start: end - 1000, End: end,
				SrcAddr: netip.AddrFrom4([4]byte{10, 0, 0, byte(k)}), DstAddr: netip.MustParseAddr("192.168.1.1"),
				SrcPort: 40000, DstPort: []uint16{443, 53, 80}[k%3], Proto: []uint8{6, 17}[k%2],
				InIf: 1, OutIf: 2, Bytes: uint64(k * 100000), Packets: uint64(k * 100), SamplingRate: 1}
			data = clickhouse.AppendRow(data, &r, 1)
		}
	}
	c, err := clickhouse.NewClient(chURL)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Insert(context.Background(), "e2e.flows", clickhouse.RawColumnList(), "RowBinary", data); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	url := startWeb(t, bin, "--clickhouse", chURL, "--rrd-dir", filepath.Join(empty, "rrd"), "--dir", filepath.Join(empty, "flows"))

	br := startBrowser(t, chrome, artifacts, 2*time.Minute)
	ctx, evalString, wait, shot := br.ctx, br.eval, br.wait, br.shot

	// The graph of the clickhouse module: total and TCP, no images.
	if err := chromedp.Do(ctx, chromedp.Navigate(url+"#/graph?module=clickhouse&router=all&items=total,protocol_6&unit=bits&range=6h")); err != nil {
		t.Fatal(err)
	}
	wait("clickhouse graph", `document.body.dataset.plotted === "total,protocol_6,other_protocol" && !!document.querySelector("#chart canvas")`)
	shot("clickhouse-graph.png")
	if nz := evalString(`document.body.dataset.nonzero`); nz != "true" {
		t.Errorf("clickhouse graph: nonzero %q", nz)
	}
	if links := evalString(`[...document.querySelectorAll(".export a")].map(a => a.textContent).join(",")`); links != "PNG,SVG,JSON" {
		t.Errorf("export links %q", links)
	}
	// The PNG link: drawn by RRDtool from a temporary RRD of the same series.
	png := evalString(`document.getElementById("png").href`)
	resp, err := http.Get(png)
	if err != nil {
		t.Fatal(err)
	}
	img, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.HasPrefix(img, []byte("\x89PNG")) {
		t.Errorf("PNG link %s: status %d, %d bytes", png, resp.StatusCode, len(img))
	}
	os.WriteFile(filepath.Join(artifacts, "clickhouse-graph-rrdtool.png"), img, 0o644)
	// Top talkers from ClickHouse (the default without scoreboards).
	if err := chromedp.Do(ctx, chromedp.Navigate(url+"#/scoreboard")); err != nil {
		t.Fatal(err)
	}
	first := `(document.querySelector('table.board[data-direction="out"][data-metric="bytes"] tbody tr .host') || {}).textContent`
	wait("clickhouse top talkers", first+` === "10.0.0.9"`)
	shot("clickhouse-top.png")
	// Its host link shows the host's traffic from ClickHouse.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { document.querySelector('table.board[data-direction="out"][data-metric="bytes"] tbody tr a.host').click(); return true; })()`)); err != nil {
		t.Fatal(err)
	}
	wait("clickhouse host", `(document.getElementById("host-title") || {}).textContent === "Host 10.0.0.9" && +(document.body.dataset.hostPoints || 0) > 0 && !!document.querySelector("#chart canvas")`)
	shot("clickhouse-host.png")
}
