package web

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestScoreboardCurrent(t *testing.T) {
	f := sharedFixture(t)
	_, ts := newFixtureServer(t, f, nil)
	resp, body := get(t, ts, "/api/v1/scoreboard?kind=current")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	p := decodeJSON[ScoreboardPage](t, body)
	last := fixtureStart.Add((fixtureFiles - 1) * fixtureStep)
	if !p.Start.Equal(last) || p.Next != "" || p.Previous == "" || len(p.Tables) != 6 {
		t.Fatalf("page %s start %v next %q previous %q tables %d", p.ID, p.Start, p.Next, p.Previous, len(p.Tables))
	}
	// File 23: the web download of 24000 bytes goes to 10.0.1.3.
	if tb := p.Tables[0]; tb.Direction != "in" || tb.Metric != "bytes" || tb.Hosts[0].Address != "10.0.1.3" || tb.Hosts[0].In.Bytes != 24000 {
		t.Errorf("top in bytes %+v", p.Tables[0])
	}
	resp, body = get(t, ts, "/api/v1/scoreboard?page="+p.Previous)
	if resp.StatusCode != 200 {
		t.Fatalf("previous: status %d: %s", resp.StatusCode, body)
	}
	prev := decodeJSON[ScoreboardPage](t, body)
	if !prev.Start.Equal(last.Add(-fixtureStep)) || prev.Next != p.ID || prev.Tables[0].Hosts[0].Address != "10.0.1.2" {
		t.Errorf("previous page %s start %v next %q top %+v", prev.ID, prev.Start, prev.Next, prev.Tables[0].Hosts[0])
	}
	resp, body = get(t, ts, "/api/v1/scoreboards?range=1d")
	list := decodeJSON[[]PageInfo](t, body)
	if resp.StatusCode != 200 || len(list) != fixtureFiles || list[0].ID != p.ID {
		t.Errorf("list: status %d, %d pages, first %+v", resp.StatusCode, len(list), list[0])
	}
}

func TestScoreboardAggregate(t *testing.T) {
	f := sharedFixture(t)
	_, ts := newFixtureServer(t, f, nil)
	resp, body := get(t, ts, "/api/v1/scoreboard?kind=aggregate&top=3")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	p := decodeJSON[ScoreboardPage](t, body)
	if p.Samples != fixtureFiles || len(p.Tables) != 6 {
		t.Fatalf("samples %d tables %d", p.Samples, len(p.Tables))
	}
	for _, tb := range p.Tables {
		if len(tb.Hosts) > 3 {
			t.Errorf("%s %s: %d hosts, top 3 asked", tb.Direction, tb.Metric, len(tb.Hosts))
		}
		for i := 1; i < len(tb.Hosts); i++ {
			a, b := tb.Hosts[i-1], tb.Hosts[i]
			ra, rb := a.In.BitsPerSec, b.In.BitsPerSec
			if tb.Direction == "out" {
				ra, rb = a.Out.BitsPerSec, b.Out.BitsPerSec
			}
			if tb.Metric == "bytes" && ra < rb {
				t.Errorf("%s bytes not ranked: %v before %v", tb.Direction, ra, rb)
			}
		}
	}
	// Out by bytes: 10.0.2.1 sends 600 bytes per file, 10.0.3.1 300.
	out := p.Tables[3]
	if out.Direction != "out" || out.Metric != "bytes" || len(out.Hosts) != 2 || out.Hosts[0].Address != "10.0.2.1" ||
		!near(out.Hosts[0].Out.BitsPerSec, 600*8/300.0) {
		t.Errorf("aggregate out bytes %+v", out)
	}
}

func TestHost(t *testing.T) {
	f := sharedFixture(t)
	_, ts := newFixtureServer(t, f, nil)
	resp, body := get(t, ts, "/api/v1/host?addr=10.0.1.3&range=1d")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	h := decodeJSON[HostResponse](t, body)
	// 10.0.1.3 gets the web download in files i with i%3 == 2.
	if h.Pages != fixtureFiles || len(h.Points) != fixtureFiles/3 {
		t.Fatalf("searched %d pages, %d points", h.Pages, len(h.Points))
	}
	for _, p := range h.Points {
		i := int(p.Start.Sub(fixtureStart) / fixtureStep)
		if i%3 != 2 || !near(p.In.BitsPerSec, float64(1000*(i+1))*8/300) || p.Ranks["bytes in"] != 1 {
			t.Errorf("point %+v (file %d)", p, i)
		}
	}
	if h.Aggregate == nil || h.Aggregate.Address != "10.0.1.3" {
		t.Errorf("aggregate %+v", h.Aggregate)
	}
	resp, body = get(t, ts, "/api/v1/host?addr=192.0.2.200")
	if h := decodeJSON[HostResponse](t, body); resp.StatusCode != 200 || len(h.Points) != 0 || h.Aggregate != nil {
		t.Errorf("unknown host: %d %s", resp.StatusCode, body)
	}
}

type fakeLive []ExporterStatus

func (f fakeLive) Exporters() []ExporterStatus { return f }

func TestExporters(t *testing.T) {
	f := sharedFixture(t)
	_, ts := newFixtureServer(t, f, nil)
	resp, body := get(t, ts, "/api/v1/exporters")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	r := decodeJSON[ExportersResponse](t, body)
	// The last hour: files 11..23 (13 files).
	if r.Source != "archive" || r.Files != 13 || len(r.Exporters) != 2 {
		t.Fatalf("source %s files %d exporters %+v", r.Source, r.Files, r.Exporters)
	}
	gw, other := r.Exporters[0], r.Exporters[1]
	if gw.Exporter != "192.0.2.1" || gw.Format != "netflow5" || gw.Flows != 39 || gw.LostFlows != 7 ||
		gw.Silent || !gw.LastSeen.Equal(fixtureEnd) || !near(gw.FlowsPerSecond, 39/3900.0) {
		t.Errorf("gw %+v", gw)
	}
	if other.Exporter != "192.0.2.2" || other.Domain != 7 || other.Format != "ipfix" || other.SamplingRate != 100 || other.Flows != 1 || !other.Silent ||
		other.AgeSeconds != 3600 {
		t.Errorf("silent exporter %+v", other)
	}
	live := fakeLive{{Exporter: "192.0.2.9", Format: "IPFIX", Flows: 10, LostFlows: 10, Templates: 3, LastSeen: fixtureEnd.Add(-time.Second)},
		{Exporter: "192.0.2.8", Format: "NetFlow v9", LastSeen: fixtureEnd.Add(-time.Hour)}}
	_, ts2 := newFixtureServer(t, f, func(c *Config) { c.Live = live })
	_, body = get(t, ts2, "/api/v1/exporters")
	r = decodeJSON[ExportersResponse](t, body)
	if r.Source != "live" || len(r.Exporters) != 2 || r.Exporters[0].Exporter != "192.0.2.8" || !r.Exporters[0].Silent ||
		r.Exporters[1].Silent || r.Exporters[1].LostPercent != 50 || r.Exporters[1].Templates != 3 {
		t.Errorf("live %+v", r)
	}
}

func writeHTPasswd(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBasicAuth(t *testing.T) {
	f := sharedFixture(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	// htpasswd -B writes $2y$.
	y := "$2y$" + string(hash[4:])
	path := writeHTPasswd(t, "# users", "alice:"+string(hash), "bob:"+y)
	_, ts := newFixtureServer(t, f, func(c *Config) { c.HTPasswd = path })
	cases := []struct {
		user, pass string
		set        bool
		code       int
	}{
		{"", "", false, 401},
		{"alice", "wrong", true, 401},
		{"mallory", "s3cret", true, 401},
		{"alice", "", true, 401},
		{"Alice", "s3cret", true, 401},
		{"alice", "s3cret", true, 200},
		{"bob", "s3cret", true, 200},
		// After a success is cached, other passwords still fail.
		{"alice", "s3cret2", true, 401},
		{"bob", "", true, 401},
		{"alice", "s3cret", true, 200},
	}
	for _, tc := range cases {
		for _, path := range []string{"/", "/api/v1/catalog", "/static/app.js"} {
			req, _ := http.NewRequest("GET", ts.URL+path, nil)
			if tc.set {
				req.SetBasicAuth(tc.user, tc.pass)
			}
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Errorf("%s as %q/%q: status %d, want %d", path, tc.user, tc.pass, resp.StatusCode, tc.code)
			}
			if tc.code == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic realm=") {
				t.Errorf("401 without a Basic challenge: %q", resp.Header.Get("WWW-Authenticate"))
			}
		}
	}
	bad := []struct {
		name  string
		lines []string
	}{
		{"md5", []string{"alice:$apr1$abc$def"}},
		{"sha", []string{"alice:{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M="}},
		{"plain", []string{"alice:secret"}},
		{"no colon", []string{"alice"}},
		{"twice", []string{"alice:" + string(hash), "alice:" + string(hash)}},
		{"empty", []string{"# nobody"}},
		{"broken bcrypt", []string{"alice:$2y$10$short"}},
	}
	for _, b := range bad {
		if _, err := New(Config{RRDDir: f.rrdDir, HTPasswd: writeHTPasswd(t, b.lines...)}); err == nil {
			t.Errorf("%s: htpasswd accepted", b.name)
		}
	}
	if _, err := New(Config{RRDDir: f.rrdDir, HTPasswd: "/nonexistent/htpasswd"}); err == nil {
		t.Error("missing htpasswd accepted")
	}
}

func TestStaticAssets(t *testing.T) {
	f := sharedFixture(t)
	_, ts := newFixtureServer(t, f, nil)
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/", "text/html", "uPlot"},
		{"/static/app.js", "javascript", "api/v1/series"},
		{"/static/app.css", "text/css", "@media"},
		{"/static/vendor/uplot/uPlot.iife.min.js", "javascript", "uPlot"},
		{"/static/vendor/uplot/LICENSE", "text/plain", "MIT"},
	} {
		resp, body := get(t, ts, tc.path)
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(string(body), tc.contains) {
			t.Errorf("%s: status %d type %q, has %q: %v", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.contains, strings.Contains(string(body), tc.contains))
		}
	}
}

func TestDefaultsAndErrors(t *testing.T) {
	f := sharedFixture(t)
	s, err := New(Config{RRDDir: f.rrdDir})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.Listen != "127.0.0.1:8080" || s.boards.dir != f.boardDir {
		t.Errorf("listen %q, scoreboard %q", s.cfg.Listen, s.boards.dir)
	}
	for name, cfg := range map[string]Config{
		"no dirs":         {},
		"half TLS":        {RRDDir: f.rrdDir, TLSCert: "x.pem"},
		"bad module name": {Modules: map[string]string{"../x": f.rrdDir}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestHostileTree checks that the catalog follows no symbolic link and
// ignores files that are not RRDs.
func TestHostileTree(t *testing.T) {
	f := sharedFixture(t)
	dir := t.TempDir()
	mod := filepath.Join(dir, "cuflow")
	os.MkdirAll(mod, 0o755)
	os.WriteFile(filepath.Join(mod, "protocol_fake.rrd"), []byte("not an rrd"), 0o644)
	os.Symlink(filepath.Join(f.rrdDir, "cuflow", "total.rrd"), filepath.Join(mod, "total.rrd"))
	os.Symlink(filepath.Join(f.rrdDir, "cuflow"), filepath.Join(mod, "elsewhere"))
	os.Symlink("/etc", filepath.Join(mod, "etc"))
	data, _ := os.ReadFile(filepath.Join(f.rrdDir, "cuflow", "tos_normal.rrd"))
	os.WriteFile(filepath.Join(mod, "tos_normal.rrd"), data, 0o644)
	_, ts := newFixtureServer(t, f, func(c *Config) { c.RRDDir = dir })
	_, body := get(t, ts, "/api/v1/catalog")
	c := decodeJSON[CatalogResponse](t, body)
	if len(c.Modules) != 1 || len(c.Modules[0].Scopes) != 1 || len(c.Modules[0].Scopes[0].Items) != 1 || c.Modules[0].Scopes[0].Items[0].ID != "tos_normal" {
		t.Fatalf("catalog of a hostile tree: %s", body)
	}
	resp, _ := get(t, ts, "/api/v1/series?items=total")
	if resp.StatusCode != 404 {
		t.Errorf("total through a symlink: status %d", resp.StatusCode)
	}
}

func selfSignedCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return
}

func TestServe(t *testing.T) {
	f := sharedFixture(t)
	cert, key := selfSignedCert(t)
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprint("tls=", useTLS), func(t *testing.T) {
			cfg := Config{Listen: "127.0.0.1:0", RRDDir: f.rrdDir, Logger: quiet}
			if useTLS {
				cfg.TLSCert, cfg.TLSKey = cert, key
			}
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			if err := s.Listen(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- s.Serve(ctx) }()
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
			url := s.URL()
			if useTLS != strings.HasPrefix(url, "https://") || !strings.Contains(url, "127.0.0.1:") {
				t.Fatalf("url %q", url)
			}
			resp, err := client.Get(url + "healthz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 || (resp.TLS != nil) != useTLS {
				t.Errorf("status %d tls %v", resp.StatusCode, resp.TLS != nil)
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("serve did not return after cancel")
			}
		})
	}
}

func TestStats(t *testing.T) {
	nan := math.NaN()
	cases := []struct {
		name  string
		v     []float64
		whole float64
		want  Stats
	}{
		{"empty", nil, 10, Stats{}},
		{"unknown only", []float64{nan, nan}, 10, Stats{}},
		{"simple", []float64{1, 2, 3, 4}, 5, Stats{Avg: 2.5, Max: 4, P95: 4, Total: 10 * 60, Percent: 50}},
		{"unknown skipped", []float64{nan, 10, nan, 30}, 0, Stats{Avg: 20, Max: 30, P95: 30, Total: 40 * 60}},
	}
	for _, tc := range cases {
		if got := stats(tc.v, 60, tc.whole); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
	// 95th percentile by nearest rank: of 1..100 it is 95.
	var v []float64
	for i := 100; i >= 1; i-- {
		v = append(v, float64(i))
	}
	if got := stats(v, 1, 0).P95; got != 95 {
		t.Errorf("p95 of 1..100 = %v", got)
	}
}

func TestClassify(t *testing.T) {
	cases := []struct{ module, file, kind, label string }{
		{"cuflow", "total.rrd", KindTotal, "total"},
		{"jkflow", "total_total.rrd", KindTotal, "total"},
		{"cuflow", "protocol_tcp.rrd", KindProtocol, "tcp"},
		{"cuflow", "service_web_src.rrd", KindService, "web_src"},
		{"cuflow", "tos_marked.rrd", KindTOS, "marked"},
		{"cuflow", "as_peer.rrd", KindAS, "peer"},
		{"cuflow", "network_servers.rrd", KindNetwork, "servers"},
		{"cuflow", "internal.rrd", KindTraffic, "internal"},
		{"cuflow", "random.rrd", "", ""},
		{"campusio", "MCAST.rrd", KindProtocol, "multicast"},
		{"campusio", "tcp.rrd", KindProtocol, "tcp"},
		{"campusio", "http_src.rrd", KindService, "http_src"},
		{"campusio", "as_701_702.rrd", KindAS, "701_702"},
		{"subnetio", "10.1.0.0_16.rrd", KindNetwork, "10.1.0.0/16"},
		{"subnetio", "2001-db8-1--_48.rrd", KindNetwork, "2001:db8:1::/48"},
	}
	for _, tc := range cases {
		if k, l := classify(tc.module, tc.file); k != tc.kind || l != tc.label {
			t.Errorf("%s %s: %s %s, want %s %s", tc.module, tc.file, k, l, tc.kind, tc.label)
		}
	}
}
