package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/clickhouse"
	"github.com/flowscan/flowscan/internal/clickhouse/chtest"
	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/flowfile"
)

// explorerBase is the start of the explorer tests' window; the server's
// clock is an hour later.
var explorerBase = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// explorerFlows are the explorer tests' flows; the expectations below are
// counted from them by hand. The last one starts before the window.
//
//	src          dst               port proto bytes packets in_if
//	10.0.0.1     192.0.2.10        443  tcp   1000  10      1
//	10.0.0.1     192.0.2.10        443  tcp   2000  20      1
//	10.0.0.1     192.0.2.11         80  tcp    500   5      1
//	10.0.0.2     192.0.2.10        443  tcp   4000   4      2
//	10.0.0.2     192.0.2.53         53  udp    100   1      2
//	10.0.1.9     192.0.2.10        443  tcp     50   1      3  (three times)
//	10.0.1.9     192.0.2.123       123  udp     76   1      3
//	2001:db8::1  2001:db8::2       443  tcp    300   3      4
//	10.9.9.9     192.0.2.10        443  tcp  99999  99      5  (11:59, outside)
//
// Totals in the window: 10 flows, 8126 bytes, 47 packets.
func explorerFlows() []flow.Record {
	n := 0
	mk := func(src, dst string, dport uint16, proto uint8, bytes, pkts uint64, inIf uint32) flow.Record {
		start := explorerBase.Add(time.Duration(n) * 10 * time.Second).UnixMilli()
		n++
		return flow.Record{Exporter: netip.MustParseAddr("127.0.0.1"), SrcAddr: netip.MustParseAddr(src),
			DstAddr: netip.MustParseAddr(dst), SrcPort: 50000, DstPort: dport, Proto: proto, InIf: inIf,
			Bytes: bytes, Packets: pkts, Start: start, End: start + 1000, SamplingRate: 1}
	}
	recs := []flow.Record{
		mk("10.0.0.1", "192.0.2.10", 443, 6, 1000, 10, 1),
		mk("10.0.0.1", "192.0.2.10", 443, 6, 2000, 20, 1),
		mk("10.0.0.1", "192.0.2.11", 80, 6, 500, 5, 1),
		mk("10.0.0.2", "192.0.2.10", 443, 6, 4000, 4, 2),
		mk("10.0.0.2", "192.0.2.53", 53, 17, 100, 1, 2),
		mk("10.0.1.9", "192.0.2.10", 443, 6, 50, 1, 3),
		mk("10.0.1.9", "192.0.2.10", 443, 6, 50, 1, 3),
		mk("10.0.1.9", "192.0.2.10", 443, 6, 50, 1, 3),
		mk("10.0.1.9", "192.0.2.123", 123, 17, 76, 1, 3),
		mk("2001:db8::1", "2001:db8::2", 443, 6, 300, 3, 4),
	}
	early := mk("10.9.9.9", "192.0.2.10", 443, 6, 99999, 99, 5)
	early.Start = explorerBase.Add(-time.Minute).UnixMilli()
	early.End = early.Start + 1000
	return append(recs, early)
}

// writeExplorerArchive writes the flows into one completed flow file with
// small blocks.
func writeExplorerArchive(t testing.TB, dir string, recs []flow.Record) {
	t.Helper()
	at := explorerBase.Add(5 * time.Minute)
	w, err := flowfile.NewWriter(flowfile.Config{Dir: dir, Location: time.UTC, BlockRecords: 4, Logger: quiet, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(recs); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// newExplorerServer serves an archive of explorerFlows (and ClickHouse
// when ch is set).
func newExplorerServer(t *testing.T, ch *ClickHouse) (*Server, *httptest.Server) {
	t.Helper()
	dir := t.TempDir()
	flowDir := filepath.Join(dir, "flows")
	writeExplorerArchive(t, flowDir, explorerFlows())
	s, err := New(Config{RRDDir: filepath.Join(dir, "rrd"), FlowDir: flowDir, Logger: quiet, ClickHouse: ch,
		Now: func() time.Time { return explorerBase.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts
}

// explorerWindow is the query string of the test window.
func explorerWindow() string {
	return fmt.Sprintf("from=%d&to=%d", explorerBase.Unix(), explorerBase.Add(time.Hour).Unix())
}

// flowsJSON is the part of the answer the tests read.
type flowsJSON struct {
	Source string           `json:"source"`
	By     []string         `json:"by"`
	Groups int              `json:"groups"`
	Rows   []map[string]any `json:"rows"`
	Other  FlowCounters     `json:"other"`
	Total  FlowCounters     `json:"total"`
	Flows  []map[string]any `json:"flows"`
	Trunc  bool             `json:"truncated"`
	Skip   []string         `json:"skipped"`
}

func getFlows(t *testing.T, ts *httptest.Server, query string) flowsJSON {
	t.Helper()
	resp, body := get(t, ts, "/api/v1/flows?"+query)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: status %d: %s", query, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	return decodeJSON[flowsJSON](t, body)
}

// rowKey is a row's key fields joined by " ".
func rowKey(row map[string]any, by []string) string {
	var parts []string
	for _, k := range by {
		name, _, _ := strings.Cut(k, "/")
		parts = append(parts, fmt.Sprint(row[name]))
	}
	return strings.Join(parts, " ")
}

func TestFlowsTopN(t *testing.T) {
	_, ts := newExplorerServer(t, nil)
	type row struct {
		key                   string
		flows, packets, bytes uint64
	}
	tests := []struct {
		name, query string
		rows        []row
		other       [3]uint64 // flows, packets, bytes
		total       [3]uint64
		groups      int
	}{
		{"src bytes top 2", "by=src_addr&top=2",
			[]row{{"10.0.0.2", 2, 5, 4100}, {"10.0.0.1", 3, 35, 3500}}, [3]uint64{5, 7, 526}, [3]uint64{10, 47, 8126}, 4},
		{"src bytes", "by=src_addr&order=bytes",
			[]row{{"10.0.0.2", 2, 5, 4100}, {"10.0.0.1", 3, 35, 3500}, {"2001:db8::1", 1, 3, 300}, {"10.0.1.9", 4, 4, 226}},
			[3]uint64{}, [3]uint64{10, 47, 8126}, 4},
		{"src flows", "by=src_addr&order=flows&top=1",
			[]row{{"10.0.1.9", 4, 4, 226}}, [3]uint64{6, 43, 7900}, [3]uint64{10, 47, 8126}, 4},
		{"dst port bytes", "by=dst_port&top=2",
			[]row{{"443", 7, 40, 7450}, {"80", 1, 5, 500}}, [3]uint64{2, 2, 176}, [3]uint64{10, 47, 8126}, 4},
		{"src /24 packets", "by=src_addr/24&order=packets",
			[]row{{"10.0.0.0/24", 5, 40, 7600}, {"10.0.1.0/24", 4, 4, 226}, {"2001:db8::1", 1, 3, 300}},
			[3]uint64{}, [3]uint64{10, 47, 8126}, 3},
		{"udp by src", "by=src_addr&filter=" + url.QueryEscape("proto udp"),
			[]row{{"10.0.0.2", 1, 1, 100}, {"10.0.1.9", 1, 1, 76}}, [3]uint64{}, [3]uint64{2, 2, 176}, 2},
		{"two keys", "by=src_addr,dst_port&top=2&filter=" + url.QueryEscape("dst port 443 and not src net 10.0.1.0/24"),
			[]row{{"10.0.0.2 443", 1, 4, 4000}, {"10.0.0.1 443", 2, 30, 3000}}, [3]uint64{1, 3, 300}, [3]uint64{4, 37, 7300}, 3},
		{"nothing matches", "by=proto&filter=" + url.QueryEscape("port 22"), nil, [3]uint64{}, [3]uint64{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := getFlows(t, ts, explorerWindow()+"&"+tt.query)
			if got.Source != SourceFiles {
				t.Errorf("source %q", got.Source)
			}
			if len(got.Rows) != len(tt.rows) {
				t.Fatalf("%d rows, want %d: %v", len(got.Rows), len(tt.rows), got.Rows)
			}
			for i, w := range tt.rows {
				r := got.Rows[i]
				if k := rowKey(r, got.By); k != w.key || r["flows"] != float64(w.flows) || r["packets"] != float64(w.packets) || r["bytes"] != float64(w.bytes) {
					t.Errorf("row %d: %s %v/%v/%v, want %s %d/%d/%d", i, k, r["flows"], r["packets"], r["bytes"], w.key, w.flows, w.packets, w.bytes)
				}
				if want := round2(float64(w.bytes) * 100 / float64(tt.total[2])); r["bytes_pct"] != want {
					t.Errorf("row %d: bytes_pct %v, want %v", i, r["bytes_pct"], want)
				}
			}
			if o := got.Other; [3]uint64{o.Flows, o.Packets, o.Bytes} != tt.other {
				t.Errorf("other %d/%d/%d, want %v", o.Flows, o.Packets, o.Bytes, tt.other)
			}
			if o := got.Total; [3]uint64{o.Flows, o.Packets, o.Bytes} != tt.total {
				t.Errorf("total %d/%d/%d, want %v", o.Flows, o.Packets, o.Bytes, tt.total)
			}
			if got.Groups != tt.groups {
				t.Errorf("groups %d, want %d", got.Groups, tt.groups)
			}
		})
	}
}

// TestFlowsTerms checks that each row's filter terms, used as the filter,
// select exactly that row's flows: what clicking a key value in the page
// does.
func TestFlowsTerms(t *testing.T) {
	_, ts := newExplorerServer(t, nil)
	for _, by := range []string{"src_addr", "dst_addr/24", "src_addr/24/64", "dst_port", "proto", "in_if", "src_port,dst_addr", "exporter"} {
		t.Run(by, func(t *testing.T) {
			got := getFlows(t, ts, explorerWindow()+"&top=100&by="+url.QueryEscape(by))
			if len(got.Rows) == 0 {
				t.Fatal("no rows")
			}
			for _, r := range got.Rows {
				terms, _ := r["terms"].(map[string]any)
				var parts []string
				for _, k := range got.By {
					name, _, _ := strings.Cut(k, "/")
					term, _ := terms[name].(string)
					if term == "" {
						t.Fatalf("row %v has no term for %s", r, name)
					}
					parts = append(parts, term)
				}
				filter := strings.Join(parts, " and ")
				sel := getFlows(t, ts, explorerWindow()+"&by=proto&filter="+url.QueryEscape(filter))
				if sel.Total.Flows != uint64(r["flows"].(float64)) || sel.Total.Bytes != uint64(r["bytes"].(float64)) {
					t.Errorf("filter %q selects %d flows %d bytes, the row has %v flows %v bytes", filter, sel.Total.Flows, sel.Total.Bytes, r["flows"], r["bytes"])
				}
			}
		})
	}
	got := getFlows(t, ts, explorerWindow()+"&by=proto,dst_port&top=1")
	if n := got.Rows[0]["names"].(map[string]any); n["proto"] != "tcp" || n["dst_port"] != "https" {
		t.Errorf("names %v, want tcp and https", n)
	}
}

func TestFlowsList(t *testing.T) {
	_, ts := newExplorerServer(t, nil)
	tests := []struct {
		query     string
		srcs      []string
		truncated bool
	}{
		{"list=3", []string{"10.0.0.1", "10.0.0.1", "10.0.0.1"}, true},
		{"list=10", []string{"10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.2", "10.0.0.2", "10.0.1.9", "10.0.1.9", "10.0.1.9", "10.0.1.9", "2001:db8::1"}, false},
		{"list=5&filter=" + url.QueryEscape("proto udp"), []string{"10.0.0.2", "10.0.1.9"}, false},
		{"list=5&filter=" + url.QueryEscape("bytes > 1000"), []string{"10.0.0.1", "10.0.0.2"}, false},
		{"list=1&filter=" + url.QueryEscape("port 22"), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			got := getFlows(t, ts, explorerWindow()+"&"+tt.query)
			var srcs []string
			for _, f := range got.Flows {
				srcs = append(srcs, f["src_addr"].(string))
				for _, field := range flow.Fields {
					if _, ok := f[field]; !ok {
						t.Errorf("flow %v lacks dump field %q", f, field)
					}
				}
			}
			if strings.Join(srcs, " ") != strings.Join(tt.srcs, " ") || got.Trunc != tt.truncated {
				t.Errorf("flows from %v truncated %v, want %v %v", srcs, got.Trunc, tt.srcs, tt.truncated)
			}
		})
	}
}

// TestFlowsUnreadableFileLeftOut puts an empty file with a flow file's name
// into the archive: the explorer answers from the other files and names
// the one it left out.
func TestFlowsUnreadableFileLeftOut(t *testing.T) {
	s, ts := newExplorerServer(t, nil)
	count := func(got flowsJSON) int {
		if got.Total.Flows > 0 {
			return int(got.Total.Flows)
		}
		return len(got.Flows)
	}
	queries := []string{"by=src_addr&top=3", "list=100"}
	want := map[string]int{}
	for _, query := range queries {
		want[query] = count(getFlows(t, ts, explorerWindow()+"&"+query))
	}
	bad := filepath.Join(s.cfg.FlowDir, flowfile.FileName(explorerBase.Add(30*time.Minute)))
	if err := os.WriteFile(bad, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, query := range queries {
		got := getFlows(t, ts, explorerWindow()+"&"+query)
		if len(got.Skip) != 1 || !strings.Contains(got.Skip[0], bad) {
			t.Errorf("%s: skipped %q, want the empty file", query, got.Skip)
		}
		if n := count(got); n != want[query] || n == 0 {
			t.Errorf("%s: %d flows, want the %d of the readable file", query, n, want[query])
		}
	}
}

func TestFlowsBadRequests(t *testing.T) {
	_, ts := newExplorerServer(t, nil)
	w := explorerWindow()
	tests := []struct {
		name, query string
		code        int
		says        string
		column      int
	}{
		{"syntax", w + "&filter=" + url.QueryEscape("proto tcp and"), 400, "expected a condition", 14},
		{"syntax middle", w + "&filter=" + url.QueryEscape("host 10.0.0.1 and port banana"), 400, "", 24},
		{"bad address", w + "&filter=" + url.QueryEscape("host 10.0.0.300"), 400, "", 6},
		{"long filter", w + "&filter=" + strings.Repeat("any+or+", 200) + "any", 400, "longer than 1000", 0},
		{"top too big", w + "&top=1001", 400, "from 1 to 1000", 0},
		{"top huge", w + "&top=99999999999999999999", 400, "top", 0},
		{"top zero", w + "&top=0", 400, "top", 0},
		{"list too big", w + "&list=10001", 400, "from 1 to 10000", 0},
		{"list and by", w + "&list=5&by=src_addr", 400, "either list", 0},
		{"bad key", w + "&by=src_adr", 400, "unknown key field", 0},
		{"too many keys", w + "&by=src_addr,dst_addr,exporter,next_hop,src_port", 400, "too long", 0},
		{"mask on a port", w + "&by=dst_port/24", 400, "prefix length", 0},
		{"bad order", w + "&order=size", 400, "order", 0},
		{"no clickhouse", w + "&source=clickhouse", 400, "not configured", 0},
		{"bad source", w + "&source=s3", 400, "want files or clickhouse", 0},
		{"unknown parameter", w + "&format=csv", 400, "unknown parameter", 0},
		{"window too long", "range=7y", 400, "6y", 0},
		{"from after to", fmt.Sprintf("from=%d&to=%d", explorerBase.Unix(), explorerBase.Unix()-60), 400, "before", 0},
		{"twice", w + "&by=proto&by=src_addr", 400, "more than once", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, ts, "/api/v1/flows?"+tt.query)
			if resp.StatusCode != tt.code {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.code, body)
			}
			e := decodeJSON[filterError](t, body)
			if !strings.Contains(e.Error, tt.says) || e.Column != tt.column {
				t.Errorf("error %q column %d, want %q column %d", e.Error, e.Column, tt.says, tt.column)
			}
		})
	}
}

func TestFlowsNoSource(t *testing.T) {
	s, err := New(Config{RRDDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	if resp, body := get(t, ts, "/api/v1/flows"); resp.StatusCode != 404 {
		t.Errorf("no archive: status %d %s", resp.StatusCode, body)
	}
	_, body := get(t, ts, "/api/v1/catalog")
	if c := decodeJSON[CatalogResponse](t, body); c.FlowSources == nil || len(c.FlowSources) != 0 {
		t.Errorf("flow_sources %v, want []", c.FlowSources)
	}
}

// TestFlowsLimits fills the query slots by hand: a request then waits and
// gets 429, or runs once a slot frees up; a query past its deadline is
// stopped.
func TestFlowsLimits(t *testing.T) {
	s, ts := newExplorerServer(t, nil)
	for range cap(s.flowLimit.slots) {
		s.flowLimit.slots <- struct{}{}
	}
	s.flowLimit.wait = 50 * time.Millisecond
	resp, body := get(t, ts, "/api/v1/flows?"+explorerWindow())
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("all slots taken: status %d (Retry-After %q): %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	s.flowLimit.wait = 5 * time.Second
	go func() {
		time.Sleep(100 * time.Millisecond)
		s.flowLimit.release()
	}()
	if resp, body := get(t, ts, "/api/v1/flows?"+explorerWindow()); resp.StatusCode != 200 {
		t.Errorf("after a slot freed up: status %d: %s", resp.StatusCode, body)
	}
	s.flowLimit.release()
	if n := len(s.flowLimit.slots); n != 0 {
		t.Errorf("%d slots still taken", n)
	}

	// Concurrent requests each get an answer or 429, and leave no slot taken.
	var wg sync.WaitGroup
	codes := make(chan int, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := ts.Client().Get(ts.URL + "/api/v1/flows?" + explorerWindow() + "&by=src_addr,dst_port")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 && c != http.StatusTooManyRequests {
			t.Errorf("concurrent request: status %d", c)
		}
	}
	if n := len(s.flowLimit.slots); n != 0 {
		t.Errorf("%d slots taken after the concurrent requests", n)
	}

	s.flowLimit.deadline = time.Nanosecond
	resp, body = get(t, ts, "/api/v1/flows?"+explorerWindow())
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "longer than") {
		t.Errorf("past the deadline: status %d: %s", resp.StatusCode, body)
	}
	s.flowLimit.deadline = flowQueryDeadline
	resp, body = get(t, ts, "/api/v1/flows?"+explorerWindow()+"&list=2")
	if resp.StatusCode != 200 {
		t.Errorf("after the deadline test: status %d: %s", resp.StatusCode, body)
	}

	// More groups than the explorer holds: a clear refusal, not the
	// server's memory. The test archive has 4 sources.
	s.maxGroups = 2
	resp, body = get(t, ts, "/api/v1/flows?"+explorerWindow()+"&by=src_addr")
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), "coarser key") {
		t.Errorf("4 groups with a bound of 2: status %d: %s", resp.StatusCode, body)
	}
	if got := getFlows(t, ts, explorerWindow()+"&by=proto"); len(got.Rows) != 2 {
		t.Errorf("2 protocols with a bound of 2: %d rows", len(got.Rows))
	}
	s.maxGroups = 0
}

// TestFlowsClickHouse puts the same flows into ClickHouse and into the
// archive: both sources give the same answers.
func TestFlowsClickHouse(t *testing.T) {
	if !chtest.Available() {
		t.Skip("clickhouse-server not installed (apt-get install clickhouse-server)")
	}
	recs := explorerFlows()
	_, c, schema := startCHWithFlows(t, "fsflows", recs)
	dead, _ := clickhouse.NewClient("http://127.0.0.1:1/fsflows")
	_, ts := newExplorerServer(t, &ClickHouse{Clients: []*clickhouse.Client{dead, c}, Schema: schema})
	_, body := get(t, ts, "/api/v1/catalog")
	if cat := decodeJSON[CatalogResponse](t, body); strings.Join(cat.FlowSources, ",") != "files,clickhouse" {
		t.Errorf("flow_sources %v", cat.FlowSources)
	}
	for _, q := range []string{
		"by=src_addr",
		"by=src_addr&top=2",
		"by=dst_port&order=bytes",
		"by=src_addr/24&order=packets",
		"by=proto&filter=" + url.QueryEscape("not src net 10.0.1.0/24"),
		"by=src_addr,dst_port&filter=" + url.QueryEscape("dst port 443 and bytes > 100"),
		"by=in_if&order=flows&filter=" + url.QueryEscape("ipv4"),
	} {
		t.Run(q, func(t *testing.T) {
			files := getFlows(t, ts, explorerWindow()+"&source=files&"+q)
			ch := getFlows(t, ts, explorerWindow()+"&source=clickhouse&"+q)
			if ch.Source != SourceClickHouse {
				t.Errorf("source %q", ch.Source)
			}
			if files.Total.Flows == 0 {
				t.Fatal("the files matched nothing")
			}
			same := func(a, b FlowCounters) bool {
				return a.Flows == b.Flows && a.Packets == b.Packets && a.Bytes == b.Bytes && a.BytesPct == b.BytesPct
			}
			if !same(files.Total, ch.Total) || !same(files.Other, ch.Other) || files.Groups != ch.Groups {
				t.Errorf("total %+v other %+v groups %d from files, %+v %+v %d from ClickHouse", files.Total, files.Other, files.Groups, ch.Total, ch.Other, ch.Groups)
			}
			if len(files.Rows) != len(ch.Rows) {
				t.Fatalf("%d rows from files, %d from ClickHouse", len(files.Rows), len(ch.Rows))
			}
			for i := range files.Rows {
				f, c := files.Rows[i], ch.Rows[i]
				if rowKey(f, files.By) != rowKey(c, ch.By) || f["flows"] != c["flows"] || f["packets"] != c["packets"] || f["bytes"] != c["bytes"] {
					t.Errorf("row %d: files %s %v/%v/%v, ClickHouse %s %v/%v/%v", i, rowKey(f, files.By), f["flows"], f["packets"], f["bytes"],
						rowKey(c, ch.By), c["flows"], c["packets"], c["bytes"])
				}
			}
		})
	}
	// Listing from ClickHouse: the flows in time order.
	got := getFlows(t, ts, explorerWindow()+"&source=clickhouse&list=3&filter="+url.QueryEscape("src host 10.0.1.9"))
	if len(got.Flows) != 3 || !got.Trunc {
		t.Fatalf("%d flows (truncated %v), want 3 of 4", len(got.Flows), got.Trunc)
	}
	for _, f := range got.Flows {
		if f["src_addr"] != "10.0.1.9" || f["bytes"] != float64(50) {
			t.Errorf("flow %v", f)
		}
	}
	var e filterError
	resp, body := get(t, ts, "/api/v1/flows?source=clickhouse&filter="+url.QueryEscape("port ("))
	if json.Unmarshal(body, &e); resp.StatusCode != 400 || e.Column == 0 {
		t.Errorf("syntax error from the ClickHouse source: %d %s", resp.StatusCode, body)
	}
}
