// Package e2e holds end-to-end tests that drive the flowscan binary and a
// headless Chromium (Debian's chromium package) through chromedp.
//
// TestDashboard generates history with `flowscan demo --backfill`, serves
// it with `flowscan web` behind basic auth, and checks in the browser that
// the dashboard plots non-empty graphs, that a time range and a category
// change the plotted series, that a scoreboard host link leads to that
// host's traffic, that jkflow's scoreboard (from a `flowscan scan` with a
// jkflow configuration) links hosts and ports, that the flow explorer runs a typed filter (and agrees
// with its API), adds clicked values to the filter and points at syntax
// errors, and that a wrong password is rejected. Screenshots go to
// $FLOWSCAN_ARTIFACTS, or test/e2e/artifacts.
package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"github.com/flowscan/flowscan/internal/flowfile"
)

func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not installed (apt-get install chromium)")
	return ""
}

func artifactsDir(t *testing.T) string {
	dir := os.Getenv("FLOWSCAN_ARTIFACTS")
	if dir == "" {
		dir = "artifacts"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// buildFlowscan builds the binary into a temporary directory.
func buildFlowscan(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "flowscan")
	cmd := exec.Command("go", "build", "-o", bin, "../../cmd/flowscan")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startWeb runs `flowscan web` on a free loopback port and returns its URL.
// browser is a headless chromium driven by a test.
type browser struct {
	t         *testing.T
	ctx       context.Context
	artifacts string // where shot saves screenshots
}

// eval evaluates js in the page and returns its string value.
func (b *browser) eval(js string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// wait polls js until it is true, for at most 30 s; step names the wait
// in the failure, with the page's location and start.
func (b *browser) wait(step, js string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		b.t.Fatalf("%s: waiting for %s: %v (page: %s)", step, js, err, b.eval(`location.hash + " " + document.body.innerText.slice(0, 300)`))
	}
}

// shot saves a screenshot of the whole page as name in the artifacts.
func (b *browser) shot(name string) {
	b.t.Helper()
	buf, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(b.artifacts, name), buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// startBrowser starts headless chromium (at path chrome) for the test;
// its context ends after timeout, and the test's cleanup stops it.
// Screenshots go to artifacts.
func startBrowser(t *testing.T, chrome, artifacts string, timeout time.Duration) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1000)}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	// The first call starts the browser; it must not carry the timeout.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(cancelTimeout)
	return &browser{t: t, ctx: ctx, artifacts: artifacts}
}

func startWeb(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, append([]string{"web", "--listen", "127.0.0.1:0", "--log-level", "warn"}, args...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	select {
	case line := <-lines:
		m := regexp.MustCompile(`https?://127\.0\.0\.1:\d+/`).FindString(line)
		if m == "" {
			t.Fatalf("flowscan web said %q", line)
		}
		return m
	case <-time.After(30 * time.Second):
		t.Fatal("flowscan web did not start")
	}
	return ""
}

func TestDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	chrome := chromium(t)
	artifacts := artifactsDir(t)
	bin := buildFlowscan(t)
	data := t.TempDir()
	demo := exec.Command(bin, "demo", "--backfill", "24h", "--backfill-flows", "2000", "--interval", "5m", "--duration", "2s", "--dir", data)
	if out, err := demo.CombinedOutput(); err != nil {
		t.Fatalf("flowscan demo: %v\n%s", err, out)
	}
	jkflowScan(t, bin, data)
	hash, err := bcrypt.GenerateFromPassword([]byte("right-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("ops:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := startWeb(t, bin, "--rrd-dir", filepath.Join(data, "rrd"), "--dir", filepath.Join(data, "flows"), "--htpasswd", htpasswd, "--title", "E2E University")

	br := startBrowser(t, chrome, artifacts, 3*time.Minute)
	ctx, evalString, wait, shot := br.ctx, br.eval, br.wait, br.shot

	do := func(name string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	click := func(selector string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`(() => { const e = document.querySelector(`+strconvQuote(selector)+`); if (!e) throw new Error("no element"); e.click(); return true; })()`)(ctx, tg)
			return err
		})
	}
	auth := func(user, pass string) {
		t.Helper()
		if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
			t.Fatal(err)
		}
		h := network.Headers{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}
		if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: h}); err != nil {
			t.Fatal(err)
		}
	}
	state := func() (plotted, points, nonzero string) {
		return evalString(`document.body.dataset.plotted || ""`), evalString(`document.body.dataset.points || ""`), evalString(`document.body.dataset.nonzero || ""`)
	}

	// The dashboard loads with non-empty graphs.
	auth("ops", "right-password")
	do("dashboard", chromedp.Navigate(url+"#/graph?module=cuflow&router=all&items=total,protocol_tcp&unit=bits&range=1d"))
	wait("dashboard", `document.body.dataset.plotted === "total,protocol_tcp,other_protocol" && !!document.querySelector("#chart canvas")`)
	shot("dashboard.png")
	plotted, points, nonzero := state()
	title := evalString(`document.getElementById("title").textContent`)
	if nonzero != "true" || points == "" || points == "0" || title != "E2E University" {
		t.Fatalf("dashboard: plotted %q points %q nonzero %q title %q", plotted, points, nonzero, title)
	}
	if rows := evalString(`String(document.querySelectorAll("#legend-table tbody tr").length)`); rows < "4" && len(rows) == 1 {
		t.Errorf("legend has %s rows", rows) // total and tcp, out and in, and "other protocols"
	}

	// A time range changes the plotted series.
	dayPoints := points
	do("range 6h", click(`button[data-range="6h"]`))
	wait("range 6h", `location.hash.includes("range=6h") && document.body.dataset.points !== "`+dayPoints+`"`)
	shot("range-6h.png")
	if _, points, _ = state(); points == dayPoints {
		t.Errorf("6h range plots as many points (%s) as 1d", points)
	}
	if h := evalString(`location.hash`); !strings.Contains(h, "range=6h") || !strings.Contains(h, "items=total%2Cprotocol_tcp") {
		t.Errorf("state not in the URL: %q", h)
	}

	// A category changes the plotted series.
	do("category", click(`input[data-item="protocol_udp"]`))
	wait("category", `(document.body.dataset.plotted || "").split(",").includes("protocol_udp")`)
	shot("category-udp.png")
	if plotted, _, _ = state(); !strings.Contains(plotted, "protocol_udp") || !strings.Contains(plotted, "other_protocol") {
		t.Errorf("after clicking udp, plotted %q", plotted)
	}

	// Dragging on the chart zooms into a custom range.
	box := evalString(`(() => { const r = document.querySelector("#chart .u-over").getBoundingClientRect(); return [r.left, r.top, r.width, r.height].join(","); })()`)
	var bx [4]float64
	for i, f := range strings.Split(box, ",") {
		bx[i], _ = strconv.ParseFloat(f, 64)
	}
	y, x0, x1 := bx[1]+bx[3]/2, bx[0]+bx[2]*0.3, bx[0]+bx[2]*0.6
	do("drag", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x0, y),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMousePressed, x0, y, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, (x0+x1)/2, y, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x1, y, chromedp.ButtonLeft),
		chromedp.MouseEvent(input.DispatchMouseEventTypeMouseReleased, x1, y, chromedp.ButtonLeft))
	wait("zoom", `location.hash.includes("from=") && location.hash.includes("to=")`)
	shot("zoomed.png")

	// A scoreboard host link leads to that host's traffic.
	do("scoreboard", chromedp.Navigate(url+"#/scoreboard"))
	wait("scoreboard", `!!document.querySelector("a.host")`)
	shot("scoreboard.png")
	addr := evalString(`document.querySelector("a.host").dataset.addr`)
	do("host", click(`a.host`))
	wait("host", `!!document.getElementById("host-title") && +(document.body.dataset.hostPoints || 0) > 0`)
	shot("host.png")
	if hostTitle := evalString(`document.getElementById("host-title").textContent`); addr == "" || !strings.Contains(hostTitle, addr) {
		t.Errorf("host page %q, want host %q", hostTitle, addr)
	}

	// The host page links to the flow explorer with the host preselected.
	if href := evalString(`(document.querySelector("a.flows-link") || {}).href || ""`); href != "" {
		t.Errorf("host page: a scoreboard flows link is still there: %q", href)
	}
	do("host flows", click(`#host-flows`))
	wait("host flows", `location.hash.startsWith("#/flows") && !!document.getElementById("flow-filter") && (document.body.dataset.flowRows || "") !== ""`)
	shot("flows-host.png")
	if f, n := evalString(`document.getElementById("flow-filter").value`), evalString(`document.body.dataset.flowRows`); f != "host "+addr || n == "0" || n == "error" {
		t.Errorf("explorer from the host page: filter %q, %s rows (page: %s)", f, n, evalString(`document.getElementById("flow-result").innerText`))
	}

	// Typing a filter and running it shows the top sources; the page
	// agrees with the API.
	filterIs := func(f string) string {
		return `new URLSearchParams(location.hash.split("?")[1] || "").get("filter") === ` + strconvQuote(f)
	}
	do("flows filter", chromedp.Clear("#flow-filter"), chromedp.SendKeys("#flow-filter", "proto tcp and bytes > 0"), click("#flow-run"))
	wait("flows filter", filterIs("proto tcp and bytes > 0")+` && +(document.body.dataset.flowRows || 0) > 0`)
	shot("flows.png")
	firstKey := evalString(`document.querySelector("#flow-table tbody td[data-key] a").textContent`)
	flowQS := evalString(`location.hash.split("?")[1]`)
	flowReq, _ := http.NewRequest("GET", url+"api/v1/flows?"+flowQS, nil)
	flowReq.SetBasicAuth("ops", "right-password")
	if resp, err := http.DefaultClient.Do(flowReq); err != nil {
		t.Fatal(err)
	} else {
		var answer struct {
			Rows []map[string]any `json:"rows"`
		}
		err := json.NewDecoder(resp.Body).Decode(&answer)
		resp.Body.Close()
		if err != nil || len(answer.Rows) == 0 || fmt.Sprint(answer.Rows[0]["src_addr"]) != firstKey {
			t.Errorf("page's first source %q, API (%s): %v %v", firstKey, flowQS, answer.Rows, err)
		}
	}
	// Clicking a key value adds it to the filter.
	do("flows term", click(`#flow-table tbody a.term`))
	wait("flows term", filterIs("proto tcp and bytes > 0 and src host "+firstKey)+` && +(document.body.dataset.flowRows || 0) === 1`)
	shot("flows-term.png")
	// A syntax error points at its column.
	do("flows error", chromedp.Clear("#flow-filter"), chromedp.SendKeys("#flow-filter", "proto tcp and"), click("#flow-run"))
	wait("flows error", `document.body.dataset.flowRows === "error" && !!document.querySelector("pre.caret")`)
	shot("flows-error.png")
	if msg := evalString(`document.getElementById("flow-error").textContent`); !strings.Contains(msg, "column 14") {
		t.Errorf("syntax error says %q", msg)
	}
	// Listing flows.
	do("flows list", chromedp.Navigate(url+"#/flows?filter=proto+tcp&range=1d&list=20"))
	wait("flows list", `document.getElementById("flow-by").value === "list" && +(document.body.dataset.flowRows || 0) === 20`)
	shot("flows-list.png")

	// Scoreboard entries link to the explorer.
	do("scoreboard flows", chromedp.Navigate(url+"#/scoreboard"))
	wait("scoreboard flows", `!!document.querySelector("a.flows-link")`)
	if href := evalString(`document.querySelector("a.flows-link").getAttribute("href")`); !strings.HasPrefix(href, "#/flows?filter=host+") || !strings.Contains(href, "from=") {
		t.Errorf("scoreboard flows link %q", href)
	}
	do("scoreboard flows click", click(`a.flows-link`))
	wait("scoreboard flows click", `location.hash.startsWith("#/flows") && +(document.body.dataset.flowRows || 0) > 0`)

	// jkflow's scoreboard: hosts link to their page, ports to the explorer.
	do("jkflow", chromedp.Navigate(url+"#/scoreboard?kind=jkflow"))
	wait("jkflow", `+(document.body.dataset.jkflowRows || 0) > 0 && !!document.querySelector("#jk-ports a.port-link") && !!document.querySelector("#jk-hosts a.host")`)
	shot("jkflow.png")
	jkReq, _ := http.NewRequest("GET", url+"api/v1/scoreboard?kind=jkflow&direction=campus_inet", nil)
	jkReq.SetBasicAuth("ops", "right-password")
	var jk struct {
		Hosts []struct{ Key, Filter string } `json:"hosts"`
		Ports []struct{ Key, Filter string } `json:"ports"`
	}
	if resp, err := http.DefaultClient.Do(jkReq); err != nil {
		t.Fatal(err)
	} else {
		err := json.NewDecoder(resp.Body).Decode(&jk)
		resp.Body.Close()
		if err != nil || len(jk.Hosts) == 0 || len(jk.Ports) == 0 {
			t.Fatalf("jkflow API: %v %+v", err, jk)
		}
	}
	if d, host, port := evalString(`document.getElementById("sb-direction").value`), evalString(`document.querySelector("#jk-hosts a.host").dataset.addr`),
		evalString(`document.querySelector("#jk-ports a.port-link").textContent`); d != "campus_inet" || host != jk.Hosts[0].Key || port != jk.Ports[0].Key {
		t.Errorf("jkflow page: direction %q, first host %q, first port %q; API %+v", d, host, port, jk)
	}
	portHref := evalString(`document.querySelector("#jk-ports a.port-link").getAttribute("href")`)
	if !strings.HasPrefix(portHref, "#/flows?filter=proto+") || !strings.Contains(portHref, "from=") {
		t.Errorf("jkflow port link %q", portHref)
	}
	// The window opens at least 5 minutes before the file's end: the
	// file's flows started up to an active timeout before it.
	if v, err := neturl.ParseQuery(strings.TrimPrefix(portHref, "#/flows?")); err == nil {
		from, _ := strconv.ParseInt(v.Get("from"), 10, 64)
		to, _ := strconv.ParseInt(v.Get("to"), 10, 64)
		if to-from < 300 {
			t.Errorf("jkflow port link window %d..%d is shorter than 5 minutes", from, to)
		}
	}
	do("jkflow port", click(`#jk-ports a.port-link`))
	wait("jkflow port", filterIs(jk.Ports[0].Filter)+` && +(document.body.dataset.flowRows || 0) > 0`)
	do("jkflow host", chromedp.Navigate(url+"#/scoreboard?kind=jkflow"))
	wait("jkflow host", `!!document.querySelector("#jk-hosts a.flows-link")`)
	if href := evalString(`document.querySelector("#jk-hosts a.flows-link").getAttribute("href")`); !strings.HasPrefix(href, "#/flows?filter=host+"+jk.Hosts[0].Key) {
		t.Errorf("jkflow host flows link %q, first host %s", href, jk.Hosts[0].Key)
	}

	// The exporters page lists the demo's exporters.
	do("exporters", chromedp.Navigate(url+"#/exporters"))
	wait("exporters", `document.querySelectorAll("#exporters tbody tr").length > 0`)
	shot("exporters.png")

	// A phone-sized viewport still shows the graph.
	do("phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(url+"#/graph?items=total&range=1d"))
	wait("phone", `document.body.dataset.plotted === "total" && !!document.querySelector("#chart canvas")`)
	shot("phone.png")
	do("desktop", chromedp.EmulateViewport(1280, 1000))

	// A wrong password is rejected.
	auth("ops", "wrong-password")
	// Chromium either fails the navigation (ERR_INVALID_AUTH_CREDENTIALS) or
	// shows the 401 body; either way the dashboard must not appear.
	navErr := chromedp.Do(ctx, chromedp.Navigate(url+"?wrong"))
	body := evalString(`document.body ? document.body.innerText : ""`)
	shot("wrong-password.png")
	rejected := navErr != nil && strings.Contains(navErr.Error(), "ERR_INVALID_AUTH_CREDENTIALS") || strings.Contains(body, "authentication required")
	if !rejected || strings.Contains(body, "Top talkers") {
		t.Errorf("wrong password: navigation error %v, page says %q", navErr, body)
	}
	req, _ := http.NewRequest("GET", url+"api/v1/catalog", nil)
	req.SetBasicAuth("ops", "wrong-password")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong password: status %d", resp.StatusCode)
	}
	fmt.Fprintf(os.Stderr, "e2e screenshots in %s\n", artifacts)
}

func strconvQuote(s string) string { return strconv.Quote(s) }

// jkflowConfig is a jkflow module for the demo's traffic: one direction,
// the campus and the rest, with a scoreboard.
const jkflowConfig = `
scan:
  report_classes: [jkflow]
modules:
  jkflow:
    sites:
      campus: [10.0.0.0/16, "2001:db8::/48"]
    directions:
      - name: campus_inet
        from: [campus]
        no_to: [campus]
        total: true
        scoreboard: {hosts: true, ports: true, top_n: 10}
`

// jkflowScan runs `flowscan scan` with the jkflow module over copies of
// the demo's last flow files (the demo's own scan journaled the
// originals), so that data/rrd/jkflow holds RRDs and a scoreboard.
func jkflowScan(t *testing.T, bin, data string) {
	t.Helper()
	entries, err := flowfile.List(filepath.Join(data, "flows"))
	if err != nil || len(entries) < 3 {
		t.Fatalf("demo flow files: %d, %v", len(entries), err)
	}
	dir := t.TempDir()
	for _, e := range entries[len(entries)-3:] {
		b, err := os.ReadFile(e.Path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(e.Path)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(t.TempDir(), "jkflow.yaml")
	if err := os.WriteFile(cfg, []byte(jkflowConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "scan", "--once", "--config", cfg, "--dir", dir, "--rrd-dir", filepath.Join(data, "rrd")).CombinedOutput()
	if err != nil {
		t.Fatalf("flowscan scan (jkflow): %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(data, "rrd", "jkflow", "campus_inet", "scoreboard", "scoreboard.json")); err != nil {
		t.Fatalf("no jkflow scoreboard after the scan: %v\n%s", err, out)
	}
}
