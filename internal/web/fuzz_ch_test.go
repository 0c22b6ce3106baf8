package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/clickhouse"
)

// fakeClickHouse answers flowscan's web queries with canned
// tab-separated rows (one exporter, 192.0.2.1, with TCP and UDP on
// interface 3) and records every statement.
type fakeClickHouse struct {
	mu  sync.Mutex
	sql []string
}

const fakeExporterHex = "00000000000000000000FFFFC0000201"

func (f *fakeClickHouse) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	sql := string(body)
	f.mu.Lock()
	f.sql = append(f.sql, sql)
	f.mu.Unlock()
	switch {
	case strings.Contains(sql, "LIMIT 200"): // exporters
		io.WriteString(w, fakeExporterHex+"\t1000\n")
	case strings.Contains(sql, "LIMIT 10 BY e"): // per-exporter top values
		io.WriteString(w, fakeExporterHex+"\t6\t900\n"+fakeExporterHex+"\t3\t800\n")
	case strings.Contains(sql, "AS k,"): // top values over all exporters
		io.WriteString(w, "6\t900\n17\t100\n")
	case strings.Contains(sql, "AS t, hex("): // top-N candidates
		io.WriteString(w, "0\t00000000000000000000FFFF0A000001\t5\n")
	}
	// Anything else: no rows.
}

func (f *fakeClickHouse) statements() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.sql...)
}

// FuzzClickHouseQuery sends arbitrary query strings to the routes that
// read ClickHouse: every answer must be 200, 400, 404 or 414, and no
// parameter value may appear in the SQL sent (values reach SQL only as
// catalog entries and parsed numbers).
func FuzzClickHouseQuery(f *testing.F) {
	for _, seed := range []string{
		"module=clickhouse&items=total,protocol_6&range=1d", "module=clickhouse&router=192.0.2.1&items=interface_3,total&step=60",
		"module=clickhouse&items=protocol_6'--", "module=clickhouse&router=192.0.2.1%27&items=total", "module=clickhouse&unit=flows&compare=1",
		"kind=clickhouse&range=1h&top=5", "kind=clickhouse&router=192.0.2.1&from=1795400000&to=1795435200",
		"source=clickhouse&addr=10.0.0.1&range=1h", "source=clickhouse&addr=10.0.0.1%27)%20OR%201=1&range=1h",
		"module=clickhouse&items=total&from=1795400000&to=1795435200&step=10&points=5000",
	} {
		f.Add("series", seed)
		f.Add("scoreboard", seed)
		f.Add("host", seed)
		f.Add("graph", seed)
	}
	fake := &fakeClickHouse{}
	ts := httptest.NewServer(fake)
	f.Cleanup(ts.Close)
	c, err := clickhouse.NewClient(ts.URL + "/fz")
	if err != nil {
		f.Fatal(err)
	}
	s, err := New(Config{Logger: quiet, Now: func() time.Time { return chNow },
		ClickHouse: &ClickHouse{Clients: []*clickhouse.Client{c}, Schema: &clickhouse.Schema{Database: "fz"}}})
	if err != nil {
		f.Fatal(err)
	}
	h := s.Handler()
	routes := map[string]string{"series": "/api/v1/series", "scoreboard": "/api/v1/scoreboard", "host": "/api/v1/host", "graph": "/api/v1/graph.png"}
	// Parameter values that legitimately name SQL columns.
	columns := map[string]bool{"flows": true, "packets": true}
	plain := regexp.MustCompile(`^[0-9]*$`)
	f.Fuzz(func(t *testing.T, route, query string) {
		path, ok := routes[route]
		if !ok {
			path = routes["series"]
		}
		if strings.ContainsAny(query, "# \n\r\t") {
			query = url.PathEscape(query)
		}
		before := len(fake.statements())
		req := httptest.NewRequest("GET", "http://x"+path, nil)
		req.URL.RawQuery = query
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		switch w.Code {
		case 200, 400, 404, 414:
		default:
			t.Fatalf("%s?%s: status %d: %s", path, query, w.Code, w.Body.String())
		}
		values, _ := url.ParseQuery(query)
		for _, sql := range fake.statements()[before:] {
			for _, vs := range values {
				for _, v := range vs {
					if len(v) >= 3 && !plain.MatchString(v) && !columns[v] && strings.Contains(sql, v) {
						t.Fatalf("%s?%s: parameter value %q in SQL: %s", path, query, v, sql)
					}
				}
			}
		}
	})
}
