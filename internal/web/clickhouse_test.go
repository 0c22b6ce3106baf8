package web

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/clickhouse"
	"github.com/flowscan/flowscan/internal/clickhouse/chtest"
	"github.com/flowscan/flowscan/internal/flow"
)

// chNow is the fake clock of the ClickHouse tests: flows end in the hour
// before it.
var chNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

var (
	chE1 = netip.MustParseAddr("192.0.2.1")
	chE2 = netip.MustParseAddr("2001:db8::1")
)

// chFlows makes the test's flows: every minute of the hour before chNow,
// one flow per host k = 1..12 from 10.0.0.k; bytes grow with k, packets
// shrink with it, so the rankings by bytes and by packets differ.
func chFlows() []flow.Record {
	var recs []flow.Record
	for m := range 60 {
		end := chNow.Add(-time.Hour + time.Duration(m)*time.Minute + 30*time.Second).UnixMilli()
		for k := 1; k <= 12; k++ {
			r := flow.Record{
				Exporter: chE1, Start: end - 5000, End: end,
				SrcAddr: netip.AddrFrom4([4]byte{10, 0, 0, byte(k)}), DstAddr: netip.AddrFrom4([4]byte{192, 168, 1, byte(k%3 + 1)}),
				SrcPort: uint16(40000 + k), DstPort: []uint16{443, 53, 80}[k%3],
				Proto: 17, TOS: uint8(k % 4 * 8), InIf: uint32(k%3 + 1), OutIf: 10,
				SrcAS: uint32(64500 + k%2), DstAS: 65000,
				Bytes: uint64(k * 1000), Packets: uint64((13 - k) * 10), SamplingRate: 1,
			}
			if k%2 == 0 {
				r.Proto = 6
			}
			if k > 6 {
				r.Exporter = chE2
			}
			recs = append(recs, r)
		}
	}
	return recs
}

// recorder is a proxy in front of ClickHouse that keeps every statement.
type recorder struct {
	mu  sync.Mutex
	sql []string
}

func (r *recorder) statements() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sql)
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.sql = nil
	r.mu.Unlock()
}

// startRecordingProxy returns the URL of a proxy to target that records
// each statement sent (body or query parameter).
func startRecordingProxy(t *testing.T, target string, rec *recorder) string {
	u, _ := url.Parse(target)
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		stmt := req.URL.Query().Get("query")
		if stmt == "" {
			stmt = string(body)
		}
		rec.mu.Lock()
		rec.sql = append(rec.sql, stmt)
		rec.mu.Unlock()
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(ts.Close)
	return ts.URL + u.Path
}

type chFixture struct {
	srv   *Server
	ts    *httptest.Server
	rec   *recorder
	flows []flow.Record
}

// startCHWithFlows starts a private ClickHouse server with flowscan's
// schema in database db and the raw flows recs in it.
func startCHWithFlows(t *testing.T, db string, recs []flow.Record) (*chtest.Server, *clickhouse.Client, *clickhouse.Schema) {
	t.Helper()
	srv := chtest.Start(t)
	c, err := clickhouse.NewClient(srv.URL(db))
	if err != nil {
		t.Fatal(err)
	}
	schema := &clickhouse.Schema{Database: db}
	ctx := context.Background()
	if _, err := schema.Migrate(ctx, c); err != nil {
		t.Fatal(err)
	}
	var data []byte
	for i := range recs {
		data = clickhouse.AppendRow(data, &recs[i], 1)
	}
	if err := c.Insert(ctx, db+".flows", clickhouse.RawColumnList(), "RowBinary", data); err != nil {
		t.Fatal(err)
	}
	return srv, c, schema
}

func newCHFixture(t *testing.T) *chFixture {
	f := &chFixture{rec: &recorder{}, flows: chFlows()}
	srv, _, schema := startCHWithFlows(t, "fsweb", f.flows)
	// A dead server first: the backend falls over to the next client.
	dead, _ := clickhouse.NewClient("http://127.0.0.1:1/fsweb")
	rc, err := clickhouse.NewClient(startRecordingProxy(t, srv.URL("fsweb"), f.rec))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Logger: quiet, Now: func() time.Time { return chNow },
		ClickHouse: &ClickHouse{Clients: []*clickhouse.Client{dead, rc}, Schema: schema}})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = s
	f.ts = httptest.NewServer(s.Handler())
	t.Cleanup(f.ts.Close)
	return f
}

// sum adds up a field of the flows that match.
func sumFlows(recs []flow.Record, match func(*flow.Record) bool, field func(*flow.Record) uint64) uint64 {
	var n uint64
	for i := range recs {
		if match(&recs[i]) {
			n += field(&recs[i])
		}
	}
	return n
}

func bytesOf(r *flow.Record) uint64   { return r.Bytes }
func packetsOf(r *flow.Record) uint64 { return r.Packets }
func oneFlow(*flow.Record) uint64     { return 1 }
func anyFlow(*flow.Record) bool       { return true }

func TestClickHouseBackend(t *testing.T) {
	f := newCHFixture(t)
	t.Run("catalog", func(t *testing.T) { testCHCatalog(t, f) })
	t.Run("series", func(t *testing.T) { testCHSeries(t, f) })
	t.Run("interfaces", func(t *testing.T) { testCHInterfaces(t, f) })
	t.Run("talkers", func(t *testing.T) { testCHTalkers(t, f) })
	t.Run("host", func(t *testing.T) { testCHHost(t, f) })
	t.Run("images", func(t *testing.T) { testCHImages(t, f) })
	t.Run("hostile", func(t *testing.T) { testCHHostile(t, f) })
}

func chModule(t *testing.T, f *chFixture) *Module {
	_, body := get(t, f.ts, "/api/v1/catalog")
	cr := decodeJSON[CatalogResponse](t, body)
	if !cr.ClickHouse {
		t.Error("catalog: clickhouse false")
	}
	for _, m := range cr.Modules {
		if m.Name == ClickHouseModule {
			return m
		}
	}
	t.Fatalf("no clickhouse module in %s", body)
	return nil
}

func itemIDs(s *Scope) []string {
	var ids []string
	for _, it := range s.Items {
		ids = append(ids, it.ID)
	}
	return ids
}

func testCHCatalog(t *testing.T, f *chFixture) {
	m := chModule(t, f)
	if m.Backend != BackendClickHouse {
		t.Errorf("backend %q", m.Backend)
	}
	var scopes []string
	for _, s := range m.Scopes {
		scopes = append(scopes, s.ID)
	}
	if want := []string{"all", "192.0.2.1", "2001:db8::1"}; !slices.Equal(scopes, want) {
		t.Fatalf("scopes %v, want %v", scopes, want)
	}
	// Items in kind order, then by id; top values by bytes.
	wantAll := []string{"total", "protocol_17", "protocol_6", "service_443", "service_53", "service_80",
		"tos_0", "tos_16", "tos_24", "tos_8", "as_64500", "as_64501", "as_65000"}
	if got := itemIDs(m.Scopes[0]); !slices.Equal(got, wantAll) {
		t.Errorf("all: items %v, want %v", got, wantAll)
	}
	// Exporter 1 has hosts 1..6: in_if k%3+1 = 1..3, out_if 10.
	got := itemIDs(m.Scopes[1])
	for _, id := range []string{"total", "interface_1", "interface_2", "interface_3", "interface_10", "protocol_6", "service_443"} {
		if !slices.Contains(got, id) {
			t.Errorf("192.0.2.1: no item %s in %v", id, got)
		}
	}
	for _, it := range m.Scopes[0].Items {
		if it.Kind == KindInterface {
			t.Errorf("all: interface item %s (interfaces are per exporter)", it.ID)
		}
		if it.ID == "service_443" && it.Label != "443 https" || it.ID == "protocol_6" && it.Label != "tcp" {
			t.Errorf("label of %s: %q", it.ID, it.Label)
		}
	}
}

func chSeries(t *testing.T, f *chFixture, q string) *SeriesResponse {
	t.Helper()
	resp, body := get(t, f.ts, "/api/v1/series?module=clickhouse&"+q)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: status %d: %s", q, resp.StatusCode, body)
	}
	r := decodeJSON[SeriesResponse](t, body)
	return &r
}

func testCHSeries(t *testing.T, f *chFixture) {
	from, to := chNow.Add(-2*time.Hour).Unix(), chNow.Unix()
	tcp := func(r *flow.Record) bool { return r.Proto == 6 }
	https := func(r *flow.Record) bool { return r.DstPort == 443 }
	cases := []struct {
		name, q, table string
		step           int64
		points         int
	}{
		{"auto step: 1 minute", "", "flows_1m", 60, 120},
		{"5 minutes", "&step=300", "flows_5m", 300, 24},
		{"hourly", "&step=3600", "flows_1h", 3600, 2},
		{"10 s: raw flows", "&step=10", "flows", 10, 720},
		{"few points widen the step", "&points=10", "flows_5m", 900, 8},
	}
	for _, c := range cases {
		for _, unit := range []struct {
			name   string
			factor float64
			field  func(*flow.Record) uint64
		}{{"bits", 8, bytesOf}, {"packets", 1, packetsOf}, {"flows", 1, oneFlow}} {
			f.rec.reset()
			r := chSeries(t, f, fmt.Sprintf("items=total,protocol_6,as_65000&unit=%s&from=%d&to=%d%s", unit.name, from, to, c.q))
			if sql := f.rec.statements(); len(sql) != 1 || !strings.Contains(sql[0], " FROM fsweb."+c.table+" ") {
				t.Errorf("%s: want one query of %s: %q", c.name, c.table, sql)
			}
			if c.q == "" {
				// Services need ports: an automatic step never scans raw
				// flows for them when a consolidated table has ports.
				f.rec.reset()
				r := chSeries(t, f, fmt.Sprintf("items=total,service_443&unit=%s&from=%d&to=%d", unit.name, from, to))
				if sql := f.rec.statements(); len(sql) != 1 || strings.Contains(sql[0], " FROM fsweb.flows ") {
					t.Errorf("services, automatic step: want one query of a consolidated table: %q", sql)
				}
				for id, w := range map[string]float64{"total": unit.factor * float64(sumFlows(f.flows, anyFlow, unit.field)),
					"service_443":   unit.factor * float64(sumFlows(f.flows, https, unit.field)),
					"other_service": unit.factor * float64(sumFlows(f.flows, func(r *flow.Record) bool { return !https(r) }, unit.field))} {
					if got := seriesOf(t, r, id).OutStats.Total; !near(got, w) {
						t.Errorf("services %s %s: total %v, want %v", unit.name, id, got, w)
					}
				}
			}
			if r.Step != c.step || len(r.Times) != c.points {
				t.Errorf("%s %s: step %d, %d points; want %d, %d", c.name, unit.name, r.Step, len(r.Times), c.step, c.points)
			}
			if r.Times[len(r.Times)-1] != to || r.PercentOf != "total" {
				t.Errorf("%s: last time %d (want %d), percent of %s", c.name, r.Times[len(r.Times)-1], to, r.PercentOf)
			}
			want := map[string]float64{
				"total":          unit.factor * float64(sumFlows(f.flows, anyFlow, unit.field)),
				"protocol_6":     unit.factor * float64(sumFlows(f.flows, tcp, unit.field)),
				"as_65000":       unit.factor * float64(sumFlows(f.flows, func(r *flow.Record) bool { return r.DstAS == 65000 }, unit.field)),
				"other_protocol": unit.factor * float64(sumFlows(f.flows, func(r *flow.Record) bool { return !tcp(r) }, unit.field)),
				"other_as":       0,
			}
			if len(r.Series) != len(want) {
				t.Errorf("%s %s: %d series, want %d", c.name, unit.name, len(r.Series), len(want))
			}
			for id, w := range want {
				sd := seriesOf(t, r, id)
				if !near(sd.OutStats.Total, w) || !near(sd.InStats.Total, w) {
					t.Errorf("%s %s %s: totals out %v in %v, want %v", c.name, unit.name, id, sd.OutStats.Total, sd.InStats.Total, w)
				}
				for i := range sd.Out {
					if sd.Out[i] != -sd.In[i] || math.IsNaN(sd.Out[i]) {
						t.Fatalf("%s %s: row %d out %v in %v: want known, in mirrored", c.name, id, i, sd.Out[i], sd.In[i])
					}
				}
			}
			if p := seriesOf(t, r, "protocol_6").OutStats.Percent; !near(p, 100*want["protocol_6"]/want["total"]) {
				t.Errorf("%s: tcp share %v", c.name, p)
			}
		}
	}
	// The first hour had no flows: known zeros. Buckets after now are
	// unknown.
	_, body := get(t, f.ts, fmt.Sprintf("/api/v1/series?module=clickhouse&items=total&from=%d&to=%d&step=600", from, to+1800))
	raw := decodeJSON[struct {
		Times  []int64
		Series []struct{ Out, In []*float64 }
	}](t, body)
	if len(raw.Series) != 1 || len(raw.Times) != 15 {
		t.Fatalf("%d series, %d times: %s", len(raw.Series), len(raw.Times), body)
	}
	for i, tm := range raw.Times {
		out := raw.Series[0].Out[i]
		switch {
		case tm > to:
			if out != nil {
				t.Errorf("bucket ending %d after now: %v, want null", tm, *out)
			}
		case out == nil:
			t.Errorf("bucket ending %d: null", tm)
		case tm <= to-3600:
			if *out != 0 {
				t.Errorf("bucket ending %d, before any flow: %v, want 0", tm, *out)
			}
		case !(*out > 0):
			t.Errorf("bucket ending %d: %v, want traffic", tm, *out)
		}
	}
	// compare: the previous window has no traffic.
	r := chSeries(t, f, fmt.Sprintf("items=total&from=%d&to=%d&compare=1", from, to))
	if r.Previous == nil || len(r.Previous.Out) != len(r.Times) || slices.ContainsFunc(r.Previous.Out, func(v float64) bool { return v != 0 }) {
		t.Errorf("previous: %+v", r.Previous)
	}
	// One exporter; totals only: the hourly table.
	f.rec.reset()
	r = chSeries(t, f, fmt.Sprintf("router=2001:db8::1&items=total&from=%d&to=%d&step=3600", from, to))
	if sql := f.rec.statements(); len(sql) != 1 || !strings.Contains(sql[0], " FROM fsweb.flows_1h ") {
		t.Errorf("exporter totals by hour: want one query of flows_1h: %q", sql)
	}
	e2 := 8 * float64(sumFlows(f.flows, func(r *flow.Record) bool { return r.Exporter == chE2 }, bytesOf))
	if got := seriesOf(t, r, "total").OutStats.Total; !near(got, e2) {
		t.Errorf("exporter 2 total %v, want %v", got, e2)
	}
}

func testCHInterfaces(t *testing.T, f *chFixture) {
	r := chSeries(t, f, fmt.Sprintf("router=192.0.2.1&items=interface_1,interface_10&from=%d&to=%d", chNow.Add(-time.Hour).Unix(), chNow.Unix()))
	e1 := func(match func(*flow.Record) bool) func(*flow.Record) bool {
		return func(r *flow.Record) bool { return r.Exporter == chE1 && match(r) }
	}
	bits := func(match func(*flow.Record) bool) float64 { return 8 * float64(sumFlows(f.flows, e1(match), bytesOf)) }
	cases := []struct {
		id      string
		out, in float64
	}{
		{"interface_1", bits(func(r *flow.Record) bool { return r.OutIf == 1 }), bits(func(r *flow.Record) bool { return r.InIf == 1 })},
		{"interface_10", bits(anyFlow), 0},
		// The rest of the exporter's traffic, per direction.
		{"other_interface", 0, bits(func(r *flow.Record) bool { return r.InIf != 1 })},
	}
	for _, c := range cases {
		sd := seriesOf(t, r, c.id)
		if !near(sd.OutStats.Total, c.out) || !near(sd.InStats.Total, c.in) {
			t.Errorf("%s: out %v in %v, want %v %v", c.id, sd.OutStats.Total, sd.InStats.Total, c.out, c.in)
		}
	}
	if c := cases[0]; c.in == 0 {
		t.Fatal("test flows have no traffic in through interface 1")
	}
}

func testCHTalkers(t *testing.T, f *chFixture) {
	q := fmt.Sprintf("/api/v1/scoreboard?kind=clickhouse&from=%d&to=%d", chNow.Add(-time.Hour).Unix(), chNow.Unix())
	for _, c := range []struct {
		name, q  string
		exporter netip.Addr
		n        int
	}{{"all, top 10", "", netip.Addr{}, 10}, {"exporter 1, top 3", "&router=192.0.2.1&top=3", chE1, 3}} {
		resp, body := get(t, f.ts, q+c.q)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d: %s", c.name, resp.StatusCode, body)
		}
		p := decodeJSON[ScoreboardPage](t, body)
		recs := f.flows
		if c.exporter.IsValid() {
			recs = slices.DeleteFunc(slices.Clone(recs), func(r flow.Record) bool { return r.Exporter != c.exporter })
		}
		if len(p.Tables) != 6 || p.TotalOut.Bytes != sumFlows(recs, anyFlow, bytesOf) {
			t.Fatalf("%s: %d tables, total %+v", c.name, len(p.Tables), p.TotalOut)
		}
		for _, tb := range p.Tables {
			field := map[string]func(*flow.Record) uint64{"bytes": bytesOf, "packets": packetsOf, "flows": oneFlow}[tb.Metric]
			addr := func(r *flow.Record) netip.Addr {
				if tb.Direction == "out" {
					return r.SrcAddr
				}
				return r.DstAddr
			}
			// The expected ranking: hosts by amount, then by address text.
			amount := map[string]uint64{}
			for i := range recs {
				amount[addr(&recs[i]).String()] += field(&recs[i])
			}
			var want []string
			for a := range amount {
				want = append(want, a)
			}
			slices.SortFunc(want, func(x, y string) int {
				if amount[x] != amount[y] {
					if amount[x] > amount[y] {
						return -1
					}
					return 1
				}
				return strings.Compare(x, y)
			})
			want = want[:min(c.n, len(want))]
			var got []string
			for _, h := range tb.Hosts {
				got = append(got, h.Address)
				v := map[string]uint64{"bytes": h.Out.Bytes, "packets": h.Out.Packets, "flows": h.Out.Flows}[tb.Metric]
				if tb.Direction == "in" {
					v = map[string]uint64{"bytes": h.In.Bytes, "packets": h.In.Packets, "flows": h.In.Flows}[tb.Metric]
				}
				if v != amount[h.Address] {
					t.Errorf("%s %s %s: %s has %d, want %d", c.name, tb.Direction, tb.Metric, h.Address, v, amount[h.Address])
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: top by %s %s: %v, want %v", c.name, tb.Metric, tb.Direction, got, want)
			}
		}
	}
}

func testCHHost(t *testing.T, f *chFixture) {
	from, to := chNow.Add(-3*time.Hour).Unix(), chNow.Unix()
	for _, c := range []struct {
		addr, router string
		points       int
	}{
		{"10.0.0.12", "all", 60}, {"192.168.1.1", "all", 60}, {"192.168.1.1", "192.0.2.1", 60}, {"10.0.0.12", "192.0.2.1", 0},
	} {
		resp, body := get(t, f.ts, fmt.Sprintf("/api/v1/host?source=clickhouse&addr=%s&router=%s&from=%d&to=%d", c.addr, c.router, from, to))
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d: %s", c.addr, resp.StatusCode, body)
		}
		h := decodeJSON[HostResponse](t, body)
		var out, in, outPkts uint64
		for _, p := range h.Points {
			out += p.Out.Bytes
			in += p.In.Bytes
			outPkts += p.Out.Packets
			if secs := p.End.Sub(p.Start).Seconds(); !near(p.Out.BitsPerSec, 8*float64(p.Out.Bytes)/secs) {
				t.Errorf("%s: rate %v for %d bytes in %v s", c.addr, p.Out.BitsPerSec, p.Out.Bytes, secs)
			}
		}
		a := netip.MustParseAddr(c.addr)
		scope := func(r *flow.Record) bool { return c.router == "all" || r.Exporter.String() == c.router }
		wantOut := sumFlows(f.flows, func(r *flow.Record) bool { return scope(r) && r.SrcAddr == a }, bytesOf)
		wantIn := sumFlows(f.flows, func(r *flow.Record) bool { return scope(r) && r.DstAddr == a }, bytesOf)
		wantPkts := sumFlows(f.flows, func(r *flow.Record) bool { return scope(r) && r.SrcAddr == a }, packetsOf)
		if h.Source != "clickhouse" || len(h.Points) != c.points || out != wantOut || in != wantIn || outPkts != wantPkts || h.Pages != 180 {
			t.Errorf("%s via %s: source %s, %d points of %d, out %d in %d packets %d; want %d points, out %d in %d packets %d",
				c.addr, c.router, h.Source, len(h.Points), h.Pages, out, in, outPkts, c.points, wantOut, wantIn, wantPkts)
		}
	}
}

func testCHImages(t *testing.T, f *chFixture) {
	window := fmt.Sprintf("from=%d&to=%d", chNow.Add(-2*time.Hour).Unix(), chNow.Unix())
	resp, body := get(t, f.ts, "/api/v1/graph.png?module=clickhouse&items=total,protocol_6&"+window)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || !bytes.HasPrefix(body, []byte("\x89PNG")) {
		t.Fatalf("png: status %d, type %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	// The legend's totals come from the temporary RRD: the bits of the
	// whole window and of TCP.
	resp, body = get(t, f.ts, "/api/v1/graph.svg?module=clickhouse&items=total,protocol_6&"+window)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" {
		t.Fatalf("svg: status %d, type %q: %.200s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if !strings.Contains(string(body), "<svg") || strings.Contains(string(body), "flowscan-web-graph") {
		t.Errorf("svg: %.200s", body)
	}
	// The temporary RRD the images are drawn from holds the series: read
	// back through xport, the window's totals are the flows'.
	v, _ := url.ParseQuery("module=clickhouse&router=192.0.2.1&items=total,protocol_6,interface_1&" + window)
	q, err := f.srv.parseQuery(v)
	if err != nil {
		t.Fatal(err)
	}
	gq, cleanup, err := f.srv.chGraphQuery(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	_, step, cols, err := f.srv.xportItems(gq.items, "bits", q.from, q.to, gq.step, q.points)
	if err != nil {
		t.Fatal(err)
	}
	e1 := func(match func(*flow.Record) bool) float64 {
		return float64(sumFlows(f.flows, func(r *flow.Record) bool { return r.Exporter == chE1 && match(r) }, bytesOf))
	}
	want := []float64{e1(anyFlow), e1(anyFlow), e1(func(r *flow.Record) bool { return r.Proto == 6 }), e1(func(r *flow.Record) bool { return r.Proto == 6 }),
		e1(func(r *flow.Record) bool { return r.OutIf == 1 }), e1(func(r *flow.Record) bool { return r.InIf == 1 })}
	for c, w := range want {
		var sum float64
		for _, x := range cols[c] {
			if !math.IsNaN(x) {
				sum += x * step.Seconds()
			}
		}
		if !near(sum, w) {
			t.Errorf("temporary RRD, %s %s: %v bytes, want %v", gq.items[c/2].ID, []string{"out", "in"}[c%2], sum, w)
		}
	}
}

func testCHHostile(t *testing.T, f *chFixture) {
	get(t, f.ts, "/api/v1/catalog") // catalog built before recording
	f.rec.reset()
	from, to := chNow.Add(-time.Hour).Unix(), chNow.Unix()
	cases := []struct {
		q      string
		status int
	}{
		{"/api/v1/series?module=clickhouse&items=protocol_6'%20OR%201=1--", 404},
		{"/api/v1/series?module=clickhouse&items=protocol_6%3B%20DROP%20TABLE%20fsweb.flows", 404},
		{"/api/v1/series?module=clickhouse&items=protocol_99999", 404},
		{"/api/v1/series?module=clickhouse&items=interface_1", 404}, // interfaces are per exporter
		{"/api/v1/series?module=clickhouse&router=10.9.9.9&items=total", 404},
		{"/api/v1/series?module=clickhouse&router=192.0.2.1')--&items=total", 404},
		{"/api/v1/series?module=clickhouse&items=total&step=1e9", 400},
		{"/api/v1/series?module=clickhouse&items=total&unit=bytes)", 400},
		{"/api/v1/series?module=clickhouse&items=total&from=1'&to=2", 400},
		{"/api/v1/graph.png?module=clickhouse&items=total'", 404},
		{"/api/v1/graph.svg?module=clickhouse&items=total&width=1", 400},
		{"/api/v1/scoreboard?kind=clickhouse&router=nope'", 404},
		{"/api/v1/scoreboard?kind=clickhouse&top=1000", 400},
		{"/api/v1/scoreboard?kind=clickhouse&page=x", 400},
		{"/api/v1/scoreboard?kind=current&range=1h", 400},
		{"/api/v1/scoreboard?kind=clickhouse&range=1x", 400},
		{"/api/v1/host?source=clickhouse&addr=10.0.0.1'", 400},
		{"/api/v1/host?source=clickhouse&addr=10.0.0.1&router=x", 404},
		{"/api/v1/host?source=sql&addr=10.0.0.1", 400},
		{"/api/v1/host?addr=10.0.0.1&router=all", 400},
	}
	for _, c := range cases {
		resp, body := get(t, f.ts, c.q)
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.q, resp.StatusCode, c.status, body)
		}
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s: content type %q", c.q, resp.Header.Get("Content-Type"))
		}
	}
	if sql := f.rec.statements(); len(sql) > 0 {
		t.Errorf("rejected requests reached ClickHouse: %q", sql)
	}
	// Accepted requests send only catalog values: no request text.
	for _, q := range []string{
		fmt.Sprintf("/api/v1/series?module=clickhouse&router=2001:db8::1&items=total,interface_1,as_65000&from=%d&to=%d&step=120", from, to),
		fmt.Sprintf("/api/v1/scoreboard?kind=clickhouse&router=2001:db8::1&from=%d&to=%d", from, to),
	} {
		if resp, body := get(t, f.ts, q); resp.StatusCode != 200 {
			t.Errorf("%s: status %d: %s", q, resp.StatusCode, body)
		}
	}
	sql := f.rec.statements()
	if len(sql) != 3 {
		t.Errorf("%d statements for a series and a top-N request, want 1 + 2: %q", len(sql), sql)
	}
	for _, s := range sql {
		if strings.Contains(s, "2001:db8") || strings.Contains(s, "interface") {
			t.Errorf("request text in SQL: %s", s)
		}
	}
}

// TestClickHouseCluster reads through the Distributed tables of a
// two-shard cluster: the sink spreads batches over both shards, and one
// server's answers (series totals, discovery, top talkers) cover both.
func TestClickHouseCluster(t *testing.T) {
	servers := chtest.StartCluster(t, "fsweb_cluster", 2)
	schema := &clickhouse.Schema{Database: "fsweb", Cluster: "fsweb_cluster"}
	var clients []*clickhouse.Client
	for _, srv := range servers {
		c, err := clickhouse.NewClient(srv.URL("fsweb"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := schema.Migrate(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	recs := chFlows()
	sink, err := clickhouse.NewSink(clickhouse.SinkConfig{Shards: clients, Schema: schema, SpoolDir: t.TempDir(),
		BatchRows: 100, FlushInterval: 100 * time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(recs); i += 50 {
		sink.Flows(recs[i:min(i+50, len(recs))])
	}
	if err := sink.Close(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	// Both shards hold part of the flows.
	for i, c := range clients {
		rows, err := c.QueryRows(context.Background(), "SELECT count() FROM fsweb.flows_local")
		if err != nil || len(rows) != 1 || rows[0][0] == "0" || rows[0][0] == fmt.Sprint(len(recs)) {
			t.Fatalf("shard %d holds %v flows of %d (%v): want a part", i, rows, len(recs), err)
		}
	}
	s, err := New(Config{Logger: quiet, Now: func() time.Time { return chNow },
		ClickHouse: &ClickHouse{Clients: clients[1:], Schema: schema}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	f := &chFixture{srv: s, ts: ts, flows: recs, rec: &recorder{}}
	from, to := chNow.Add(-time.Hour).Unix(), chNow.Unix()
	r := chSeries(t, f, fmt.Sprintf("router=2001:db8::1&items=total,protocol_6&from=%d&to=%d&step=300", from, to))
	e2 := func(r *flow.Record) bool { return r.Exporter == chE2 }
	if got, want := seriesOf(t, r, "total").OutStats.Total, 8*float64(sumFlows(recs, e2, bytesOf)); !near(got, want) {
		t.Errorf("cluster: exporter 2 total %v, want %v", got, want)
	}
	testCHTalkers(t, f)
}
