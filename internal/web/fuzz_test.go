package web

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzQuery sends arbitrary query strings to the API routes: every answer
// must be 200, 400 or 404 (never a 500 or a panic), and errors must not
// reveal file-system paths.
func FuzzQuery(f *testing.F) {
	for _, seed := range []string{
		"items=total,protocol_tcp&range=1d", "module=../../etc&router=..", "from=1&to=2", "range=5y&points=10&step=86400",
		"page=2026-11-23/10/10:00:00", "kind=aggregate&top=3", "addr=10.0.1.3&range=1h", "items=%00", "%zz", "unit=flows&compare=1",
	} {
		f.Add("series", seed)
		f.Add("scoreboard", seed)
		f.Add("host", seed)
	}
	for _, seed := range []string{"filter=proto+tcp+and&by=src_addr", "by=src_addr/24,dst_port&order=pps&top=1000", "list=10000&filter=host+10.0.1.1",
		"filter=port+in+%5B80+443%5D&range=1d", "by=dst_addr/24/64&source=files", "filter=((((", "top=-1", "list=1&by=proto"} {
		f.Add("flows", seed)
	}
	fx := buildFixture(f)
	s, err := New(Config{RRDDir: fx.rrdDir, FlowDir: fx.flowDir, AggregateFile: fx.aggFile, Logger: quiet,
		Now: func() time.Time { return fixtureEnd }})
	if err != nil {
		f.Fatal(err)
	}
	h := s.Handler()
	routes := map[string]string{"series": "/api/v1/series", "scoreboard": "/api/v1/scoreboard", "host": "/api/v1/host",
		"scoreboards": "/api/v1/scoreboards", "graph": "/api/v1/graph.svg", "flows": "/api/v1/flows"}
	f.Fuzz(func(t *testing.T, route, query string) {
		path, ok := routes[route]
		if !ok {
			path = routes["series"]
		}
		if strings.ContainsAny(query, "# \n\r\t") {
			query = url.PathEscape(query)
		}
		req := httptest.NewRequest("GET", "http://x"+path, nil)
		req.URL.RawQuery = query
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 && w.Code != 400 && w.Code != 404 && w.Code != 414 {
			t.Fatalf("%s?%s: status %d: %s", path, query, w.Code, w.Body.String())
		}
		if w.Code != 200 && strings.Contains(w.Body.String(), fx.dir) {
			t.Fatalf("%s?%s: error reveals a path: %s", path, query, w.Body.String())
		}
	})
}
