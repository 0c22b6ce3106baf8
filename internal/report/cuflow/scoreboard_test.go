package cuflow

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/report"
)

// fakeResolver answers from a map and counts lookups.
type fakeResolver struct {
	mu    sync.Mutex
	names map[string]string
	calls int
}

func (r *fakeResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if n, ok := r.names[addr]; ok {
		return []string{n + "."}, nil
	}
	return nil, errors.New("no name")
}

const boardYAML = `
subnets: [10.0.0.0/8]
scoreboard: {top_n: 2, dir: sb, current_link: sb/current.html, reverse_dns: true, dns_timeout: 1s}
aggregate_score: {top_n: 5, data_file: sb/agg.dat, out_file: sb/agg.html}
`

func boardFlows() []flow.Record {
	var fl []flow.Record
	fl = append(fl, rec("192.0.2.9", "192.0.2.50", 80, "10.0.0.1", 4000, 6, 3000, 3))
	for i := 0; i < 4; i++ {
		fl = append(fl, rec("192.0.2.9", "192.0.2.51", 80, "10.0.0.2", uint16(4000+i), 6, 250, 1))
	}
	fl = append(fl, rec("192.0.2.9", "10.0.0.3", 4000, "192.0.2.50", 80, 6, 600, 2))
	fl = append(fl, rec("192.0.2.9", "10.0.0.1", 4000, "192.0.2.50", 80, 6, 60, 1))
	return fl
}

func TestScoreboard(t *testing.T) {
	step := 300 * time.Second
	m, dir := newTestModule(t, boardYAML, step)
	res := &fakeResolver{names: map[string]string{"10.0.0.1": "big<script>.example", "10.0.0.3": "out.example"}}
	m.SetResolver(res)
	file := &report.File{Path: "f1", Start: t0, End: t0.Add(step)}
	scan(t, m, file, boardFlows())

	htmlPath := ScoreboardPath(filepath.Join(dir, "sb"), t0)
	js, err := os.ReadFile(strings.TrimSuffix(htmlPath, ".html") + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var page ScoreboardPage
	if err := json.Unmarshal(js, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Tables) != 6 || page.DurationSeconds != 300 {
		t.Fatalf("page %+v", page)
	}
	inBytes, inFlows, outBytes := page.Tables[0], page.Tables[2], page.Tables[3]
	if inBytes.Direction != "in" || inBytes.Metric != "bytes" || len(inBytes.Hosts) != 2 {
		t.Fatalf("in/bytes table %+v", inBytes)
	}
	top := inBytes.Hosts[0]
	// 3000 of 4000 bytes in: 80 bits/s, 75%; its 60 bytes out of 660.
	if top.Address != "10.0.0.1" || top.Name != "big<script>.example" || top.In.BitsPerSec != 80 || top.In.BytesPercent != 75 ||
		math.Abs(top.Out.BytesPercent-100*60.0/660) > 1e-9 {
		t.Errorf("top in/bytes %+v", top)
	}
	if inFlows.Hosts[0].Address != "10.0.0.2" || inFlows.Hosts[0].In.Flows != 4 || math.Abs(inFlows.Hosts[0].In.FlowsPerSec-4.0/300) > 1e-12 {
		t.Errorf("top in/flows %+v", inFlows.Hosts[0])
	}
	if outBytes.Hosts[0].Address != "10.0.0.3" || outBytes.Hosts[0].Name != "out.example" || len(outBytes.Hosts) != 2 {
		t.Errorf("out/bytes %+v", outBytes)
	}
	html, err := os.ReadFile(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(html), "<script>") || !strings.Contains(string(html), "big&lt;script&gt;.example") {
		t.Errorf("host name not escaped in HTML")
	}
	checkLink(t, filepath.Join(dir, "sb", "current.html"), htmlPath)
	calls := res.calls

	// The same file again: same tables, no new DNS lookups (cache), the
	// aggregate does not count it twice.
	agg1, _ := os.ReadFile(filepath.Join(dir, "sb", "agg.dat"))
	scan(t, m, file, boardFlows())
	if res.calls != calls {
		t.Errorf("DNS lookups %d after a cached report, want %d", res.calls, calls)
	}
	agg2, _ := os.ReadFile(filepath.Join(dir, "sb", "agg.dat"))
	if string(agg1) != string(agg2) || !strings.Contains(string(agg1), "samples 1\n") {
		t.Errorf("aggregate changed by a rescan:\n%s\n%s", agg1, agg2)
	}
	// 10.0.0.1: in 3000/3/1, out 60/1/1 over 300 s.
	if !strings.Contains(string(agg1), "10.0.0.1 1 3000 3 1 60 1 1 300\n") {
		t.Errorf("aggregate data:\n%s", agg1)
	}

	// The next file moves the link and adds a sample.
	next := &report.File{Path: "f2", Start: t0.Add(step), End: t0.Add(2 * step)}
	scan(t, m, next, boardFlows()[:1])
	checkLink(t, filepath.Join(dir, "sb", "current.html"), ScoreboardPath(filepath.Join(dir, "sb"), next.Start))
	agg3, _ := os.ReadFile(filepath.Join(dir, "sb", "agg.dat"))
	if !strings.Contains(string(agg3), "samples 2\n") || !strings.Contains(string(agg3), "10.0.0.1 2 6000 6 2 60 1 1 600\n") {
		t.Errorf("aggregate after two files:\n%s", agg3)
	}
	aggHTML, err := os.ReadFile(filepath.Join(dir, "sb", "agg.html"))
	if err != nil || !strings.Contains(string(aggHTML), "Average rankings for the last 2 top-5 reports") {
		t.Errorf("aggregate page: %v\n%s", err, aggHTML)
	}
}

// TestAggregateDecay: past 50 samples, hosts seen once go and the counts
// halve, as CUFlow's.
func TestAggregateDecay(t *testing.T) {
	step := 300 * time.Second
	m, dir := newTestModule(t, "subnets: [10.0.0.0/8]\naggregate_score: {top_n: 5, data_file: agg.dat, out_file: agg.html}\n", step)
	for i := 0; i <= aggKeep; i++ {
		fl := []flow.Record{rec("192.0.2.9", "192.0.2.50", 80, "10.0.0.1", 4000, 6, 1000, 1)}
		if i == 0 {
			fl = append(fl, rec("192.0.2.9", "192.0.2.50", 80, "10.0.0.2", 4000, 6, 10, 1))
		}
		start := t0.Add(time.Duration(i) * step)
		scan(t, m, &report.File{Start: start, End: start.Add(step)}, fl)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "agg.dat"))
	// 51 samples > 50: 10.0.0.2 (once) dropped; 10.0.0.1's 51 reports
	// halve to 25, its 51000 bytes to 25500, its 15300 s to 7650.
	if strings.Contains(string(data), "10.0.0.2") || !strings.Contains(string(data), "samples 25\n") ||
		!strings.Contains(string(data), "10.0.0.1 25 25500 25 25 0 0 0 7650\n") {
		t.Errorf("after decay:\n%s", data)
	}
}

// checkLink checks that link is a symbolic link to target (relative to
// the link's directory).
func checkLink(t *testing.T, link, target string) {
	t.Helper()
	dest, err := os.Readlink(link)
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(dest) {
		dest = filepath.Join(filepath.Dir(link), dest)
	}
	if dest != target {
		t.Errorf("%s -> %s, want %s", link, dest, target)
	}
}

// slowResolver never answers before its context ends.
type slowResolver struct{}

func (slowResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestReverseDNSTimeout: a resolver that does not answer costs at most
// the timeout (lookups run in parallel) and leaves the names empty.
func TestReverseDNSTimeout(t *testing.T) {
	step := 300 * time.Second
	m, dir := newTestModule(t, "subnets: [10.0.0.0/8]\nscoreboard: {top_n: 3, dir: sb, reverse_dns: true, dns_timeout: 100ms}\n", step)
	m.SetResolver(slowResolver{})
	begin := time.Now()
	scan(t, m, &report.File{Start: t0, End: t0.Add(step)}, boardFlows())
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("report took %v with a 100ms DNS timeout", d)
	}
	js, err := os.ReadFile(strings.TrimSuffix(ScoreboardPath(filepath.Join(dir, "sb"), t0), ".html") + ".json")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(js), `"name"`) {
		t.Errorf("names without DNS answers:\n%s", js)
	}
}
