package web

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	sharedOnce sync.Once
	shared     *fixture
)

// sharedFixture builds the fixture once for the package's tests (they
// only read it).
func sharedFixture(t *testing.T) *fixture {
	t.Helper()
	sharedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flowscan-web-test")
		if err != nil {
			t.Fatal(err)
		}
		shared = buildFixture(&tempDirTB{T: t, dir: dir})
	})
	if shared == nil {
		t.Fatal("fixture failed")
	}
	return shared
}

// tempDirTB gives buildFixture a temporary directory that outlives the
// first test using it (removed in TestMain).
type tempDirTB struct {
	*testing.T
	dir string
	n   int
}

func (t *tempDirTB) TempDir() string {
	t.n++
	d := filepath.Join(t.dir, fmt.Sprint(t.n))
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		os.RemoveAll(filepath.Dir(shared.dir))
	}
	os.Exit(code)
}

func decodeJSON[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("bad JSON %q: %v", truncate(string(body)), err)
	}
	return v
}

func TestCatalog(t *testing.T) {
	f := sharedFixture(t)
	_, ts := newFixtureServer(t, f, nil)
	resp, body := get(t, ts, "/api/v1/catalog")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	c := decodeJSON[CatalogResponse](t, body)
	if len(c.Modules) != 1 || c.Modules[0].Name != "cuflow" {
		t.Fatalf("modules %+v", c.Modules)
	}
	routers := map[string][]string{}
	for _, s := range c.Modules[0].Scopes {
		for _, it := range s.Items {
			routers[s.ID] = append(routers[s.ID], it.ID)
		}
	}
	if len(routers) != 2 {
		t.Fatalf("routers %v, want all and gw", routers)
	}
	for _, want := range []string{"total", "protocol_tcp", "protocol_udp", "protocol_icmp", "service_web", "service_web_src", "service_web_dst",
		"service_dns", "tos_normal", "tos_marked", "network_servers", "internal", "transit"} {
		if !slices.Contains(routers["all"], want) {
			t.Errorf("router all lacks %s: %v", want, routers["all"])
		}
	}
	if slices.Contains(routers["gw"], "network_servers") || !slices.Contains(routers["gw"], "protocol_tcp") {
		t.Errorf("router gw items %v", routers["gw"])
	}
	if routers["all"][0] != "total" {
		t.Errorf("total not first: %v", routers["all"])
	}
	if !c.Scoreboard || !c.Aggregate || !c.Exporters || c.Title != "Test U" {
		t.Errorf("catalog flags %+v", c)
	}
}

// byTime maps a series' times to its values.
func byTime(r *SeriesResponse, v Values) map[time.Time]float64 {
	m := map[time.Time]float64{}
	for i, ts := range r.Times {
		m[time.Unix(ts, 0).UTC()] = v[i]
	}
	return m
}

func seriesOf(t *testing.T, r *SeriesResponse, id string) SeriesData {
	t.Helper()
	for _, s := range r.Series {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("no series %s in %v", id, r.Series)
	return SeriesData{}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-4*math.Max(1, math.Abs(b)) }

func TestSeriesValues(t *testing.T) {
	f := sharedFixture(t)
	_, ts := newFixtureServer(t, f, nil)
	window := fmt.Sprintf("&from=%d&to=%d&step=300", fixtureStart.Unix(), fixtureEnd.Unix())
	// Per file i (ending at fixtureStart+(i+1)*5m), rates per second of
	// the hand-made flows, for each unit.
	type want struct{ out, in func(i int) float64 }
	const s = 300.0
	cases := []struct {
		name, query string
		series      map[string]want
	}{
		{"bits all", "module=cuflow&router=all&items=total,protocol_tcp,service_web&unit=bits", map[string]want{
			"total":          {func(int) float64 { return (600 + 300) * 8 / s }, func(i int) float64 { return -float64(1000*(i+1)+150) * 8 / s }},
			"protocol_tcp":   {func(int) float64 { return 600 * 8 / s }, func(i int) float64 { return -float64(1000*(i+1)) * 8 / s }},
			"service_web":    {func(int) float64 { return 600 * 8 / s }, func(i int) float64 { return -float64(1000*(i+1)) * 8 / s }},
			"other_protocol": {func(int) float64 { return 300 * 8 / s }, func(int) float64 { return -150 * 8 / s }},
			"other_service":  {func(int) float64 { return 300 * 8 / s }, func(int) float64 { return -150 * 8 / s }},
		}},
		{"packets gw", "router=gw&items=total,protocol_udp&unit=packets", map[string]want{
			"total":          {func(int) float64 { return 6 / s }, func(int) float64 { return -11 / s }},
			"protocol_udp":   {func(int) float64 { return 0 }, func(int) float64 { return 0 }},
			"other_protocol": {func(int) float64 { return 6 / s }, func(int) float64 { return -11 / s }},
		}},
		{"flows tos", "items=tos_marked,network_servers&unit=flows", map[string]want{
			"tos_marked":      {func(int) float64 { return 1 / s }, func(int) float64 { return 0 }},
			"network_servers": {func(int) float64 { return 0 }, func(int) float64 { return -2 / s }},
			"other_tos":       {func(int) float64 { return 1 / s }, func(int) float64 { return -2 / s }},
			"other_network":   {func(int) float64 { return 2 / s }, func(int) float64 { return 0 }},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, ts, "/api/v1/series?"+tc.query+window)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			r := decodeJSON[SeriesResponse](t, body)
			if r.Step != 300 {
				t.Fatalf("step %d", r.Step)
			}
			if len(r.Series) != len(tc.series) {
				t.Errorf("got %d series, want %d", len(r.Series), len(tc.series))
			}
			for id, w := range tc.series {
				sd := seriesOf(t, &r, id)
				out, in := byTime(&r, sd.Out), byTime(&r, sd.In)
				for i := 0; i < fixtureFiles; i++ {
					at := fixtureStart.Add(time.Duration(i+1) * fixtureStep)
					if !near(out[at], w.out(i)) || !near(in[at], w.in(i)) {
						t.Errorf("%s at file %d: out %v in %v, want %v %v", id, i, out[at], in[at], w.out(i), w.in(i))
					}
				}
			}
		})
	}
}

func TestSeriesStats(t *testing.T) {
	f := sharedFixture(t)
	_, ts := newFixtureServer(t, f, nil)
	resp, body := get(t, ts, fmt.Sprintf("/api/v1/series?items=protocol_tcp,protocol_icmp&from=%d&to=%d&step=300&other=0", fixtureStart.Unix(), fixtureEnd.Unix()))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	r := decodeJSON[SeriesResponse](t, body)
	if len(r.Series) != 2 || r.PercentOf != "total" {
		t.Fatalf("series %d, percent of %q", len(r.Series), r.PercentOf)
	}
	tcp := seriesOf(t, &r, "protocol_tcp").InStats
	// In: 1000*(i+1) bytes per 300 s file, i = 0..23.
	var vals []float64
	var sum float64
	for i := 0; i < fixtureFiles; i++ {
		v := float64(1000*(i+1)) * 8 / 300
		vals = append(vals, v)
		sum += v
	}
	avg := sum / fixtureFiles
	p95 := vals[int(math.Ceil(0.95*fixtureFiles))-1] // sorted already
	totalAvg := avg + 150*8/300.0
	checks := []struct {
		name      string
		got, want float64
	}{
		{"avg", tcp.Avg, avg},
		{"max", tcp.Max, 24000 * 8 / 300.0},
		{"p95", tcp.P95, p95},
		{"total bits", tcp.Total, 8 * 1000 * 300}, // 8 × 1000 × (1+...+24)
		{"percent", tcp.Percent, 100 * avg / totalAvg},
	}
	for _, c := range checks {
		if !near(c.got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
	icmpOut := seriesOf(t, &r, "protocol_icmp").OutStats
	if icmpOut.Max != 0 || icmpOut.Percent != 0 {
		t.Errorf("icmp out %+v, want zeros", icmpOut)
	}
}

func TestSeriesCompare(t *testing.T) {
	f := sharedFixture(t)
	_, ts := newFixtureServer(t, f, nil)
	// The second hour compared with the first: file i+12 against file i.
	from, to := fixtureStart.Add(time.Hour), fixtureEnd
	resp, body := get(t, ts, fmt.Sprintf("/api/v1/series?items=protocol_tcp&from=%d&to=%d&step=300&compare=1", from.Unix(), to.Unix()))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	r := decodeJSON[SeriesResponse](t, body)
	if r.Previous == nil || len(r.Previous.In) != len(r.Times) || r.Previous.From != fixtureStart.Unix() {
		t.Fatalf("previous %+v", r.Previous)
	}
	checked := 0
	for k, ts := range r.Times {
		i := int(time.Unix(ts, 0).Sub(fixtureStart)/fixtureStep) - 1 // file of this row
		if i < 12 || i >= fixtureFiles {
			continue
		}
		want := -float64(1000*(i-12+1)+150) * 8 / 300 // total in, an hour earlier
		if !near(r.Previous.In[k], want) {
			t.Errorf("previous in at file %d: %v, want %v", i, r.Previous.In[k], want)
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("only %d rows checked", checked)
	}
}

func TestBadRequests(t *testing.T) {
	f := sharedFixture(t)
	_, ts := newFixtureServer(t, f, nil)
	long := strings.Repeat("a", 5000)
	many := strings.TrimSuffix(strings.Repeat("total,", 1), ",")
	for i := 0; i < 201; i++ {
		many += fmt.Sprintf(",x%d", i)
	}
	cases := []struct {
		path string
		code int
	}{
		{"/api/v1/series?module=../../etc", 400},
		{"/api/v1/series?module=nope", 404},
		{"/api/v1/series?module=cuflow%2F..", 400},
		{"/api/v1/series?router=../gw", 404},
		{"/api/v1/series?router=/etc", 404},
		{"/api/v1/series?router=gw%00", 404},
		{"/api/v1/series?items=../../total", 404},
		{"/api/v1/series?items=total/../../x", 404},
		{"/api/v1/series?items=total,", 404},
		{"/api/v1/series?items=" + many, 404},
		{"/api/v1/series?unit=bytes", 400},
		{"/api/v1/series?unit=%3Cscript%3E", 400},
		{"/api/v1/series?range=0h", 400},
		{"/api/v1/series?range=99999y", 400},
		{"/api/v1/series?range=1x", 400},
		{"/api/v1/series?range=-1h", 400},
		{"/api/v1/series?range=1d&from=1", 400},
		{"/api/v1/series?from=abc", 400},
		{fmt.Sprintf("/api/v1/series?from=%d&to=%d", fixtureEnd.Unix(), fixtureStart.Unix()), 400},
		{fmt.Sprintf("/api/v1/series?from=%d&to=%d", fixtureEnd.Unix()-10, fixtureEnd.Unix()), 400},
		{fmt.Sprintf("/api/v1/series?to=%d", fixtureEnd.Unix()+3*86400), 400},
		{"/api/v1/series?from=100&to=200", 400},
		{"/api/v1/series?from=1&to=99999999999999999999", 400},
		{"/api/v1/series?points=1", 400},
		{"/api/v1/series?points=999999", 400},
		{"/api/v1/series?step=0", 400},
		{"/api/v1/series?step=-300", 400},
		{"/api/v1/series?step=86400&range=1h", 400},
		{"/api/v1/series?compare=maybe", 400},
		{"/api/v1/series?other=2", 400},
		{"/api/v1/series?bogus=1", 400},
		{"/api/v1/series?unit=bits&unit=flows", 400},
		{"/api/v1/series?items=" + long, 400},
		{"/api/v1/series?%zz", 400},
		{"/api/v1/graph.png?items=../../../etc/passwd", 404},
		{"/api/v1/graph.png?width=10", 400},
		{"/api/v1/graph.svg?height=99999", 400},
		{"/api/v1/graph.png?compare=1", 400},
		{"/api/v1/graph.png?router=..", 404},
		{"/api/v1/scoreboard?kind=other", 400},
		{"/api/v1/scoreboard?page=../../../etc/passwd", 400},
		{"/api/v1/scoreboard?page=2026-11-23/10/..%2F..%2Fx", 400},
		{"/api/v1/scoreboard?page=1999-01-01/00/00:00:00", 404},
		{"/api/v1/scoreboard?kind=aggregate&top=0", 400},
		{"/api/v1/scoreboard?kind=aggregate&page=x", 400},
		{"/api/v1/scoreboard?top=5", 400},
		{"/api/v1/scoreboards?limit=0", 400},
		{"/api/v1/scoreboards?range=1q", 400},
		{"/api/v1/host", 400},
		{"/api/v1/host?addr=10.0.1", 400},
		{"/api/v1/host?addr=fe80::1%25eth0", 400},
		{"/api/v1/host?addr=../../etc", 400},
		{"/api/v1/host?addr=10.0.1.1&range=1d&from=3", 400},
		{"/api/v1/exporters?x=1", 400},
		{"/api/v1/catalog?refresh=please", 400},
		{"/api/v1/nothing", 404},
		{"/api/v1/../../etc/passwd", 404},
		{"/static/../server.go", 404},
		{"/static/..%2fserver.go", 404},
		{"/nothing", 404},
	}
	for _, tc := range cases {
		resp, body := get(t, ts, tc.path)
		if resp.StatusCode != tc.code {
			t.Errorf("%s: status %d, want %d (%s)", truncate(tc.path), resp.StatusCode, tc.code, truncate(string(body)))
			continue
		}
		if strings.HasPrefix(tc.path, "/api/") && !strings.HasPrefix(tc.path, "/api/v1/../") {
			var e apiError
			if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
				t.Errorf("%s: error body %q", truncate(tc.path), body)
			}
			if strings.Contains(string(body), f.dir) {
				t.Errorf("%s: error reveals a path: %s", truncate(tc.path), body)
			}
		}
	}
}

func TestReadOnlyMethods(t *testing.T) {
	f := sharedFixture(t)
	_, ts := newFixtureServer(t, f, nil)
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		req, _ := http.NewRequest(m, ts.URL+"/api/v1/catalog", strings.NewReader("{}"))
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s: status %d", m, resp.StatusCode)
		}
	}
	resp, _ := get(t, ts, "/")
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("missing header %s", h)
		}
	}
}

func TestGraphImages(t *testing.T) {
	f := sharedFixture(t)
	_, ts := newFixtureServer(t, f, nil)
	window := fmt.Sprintf("&from=%d&to=%d", fixtureStart.Unix(), fixtureEnd.Unix())
	var pngs [][]byte
	for _, items := range []string{"total", "total,protocol_tcp,protocol_udp,service_web"} {
		resp, body := get(t, ts, "/api/v1/graph.png?items="+items+window)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || !strings.HasPrefix(string(body), "\x89PNG") {
			t.Fatalf("png %s: status %d type %s: %q", items, resp.StatusCode, resp.Header.Get("Content-Type"), truncate(string(body)))
		}
		pngs = append(pngs, body)
	}
	if string(pngs[0]) == string(pngs[1]) {
		t.Error("different items gave the same image")
	}
	resp, body := get(t, ts, "/api/v1/graph.svg?items=protocol_tcp&unit=packets&width=400&height=200"+window)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" || !strings.Contains(string(body), "<svg") {
		t.Fatalf("svg: status %d type %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !strings.Contains(string(body), `width="400`) && !strings.Contains(string(body), "viewBox") {
		t.Error("svg has no size")
	}
}

func TestGraphArgs(t *testing.T) {
	f := sharedFixture(t)
	s, _ := newFixtureServer(t, f, nil)
	q, err := s.parseQuery(url.Values{"items": {"total,protocol_tcp,protocol_udp,service_web"}, "unit": {"bits"}})
	if err != nil {
		t.Fatal(err)
	}
	args := s.graphArgs(q, "PNG", 800, 300)
	joined := strings.Join(args, "\n")
	var areas []string
	for _, a := range args {
		if strings.HasPrefix(a, "AREA:") {
			areas = append(areas, a)
		}
	}
	// 3 items + other protocols + other services above, the same below.
	if len(areas) != 10 {
		t.Fatalf("%d areas: %v", len(areas), areas)
	}
	for i, a := range areas {
		stacked := strings.HasSuffix(a, ":STACK")
		below := strings.HasPrefix(a, "AREA:neg")
		if want := i != 0 && i != 5; stacked != want {
			t.Errorf("area %d %q: stacked %v", i, a, stacked)
		}
		if below != (i >= 5) {
			t.Errorf("area %d %q: below the axis %v", i, a, below)
		}
	}
	if _, err := s.cfg.RRD.Graph(args...); err != nil {
		t.Fatalf("rrdtool refuses the arguments: %v", err)
	}
	for _, want := range []string{"LINE1:o0#000000", ",8,*", "other protocols", "other services", ",95,PERCENT", ",TOTAL", "MAXIMUM", "HRULE:0"} {
		if !strings.Contains(joined, want) {
			t.Errorf("graph arguments lack %q", want)
		}
	}
}
