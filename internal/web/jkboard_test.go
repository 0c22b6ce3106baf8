package web

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flowscan/flowscan/internal/flow"
	flowquery "github.com/flowscan/flowscan/internal/query"
	"github.com/flowscan/flowscan/internal/report"
	"github.com/flowscan/flowscan/internal/rrd"
)

// jkTestConfig has two directions with scoreboards (one nested) and one
// without.
const jkTestConfig = `
sites:
  campus: [10.0.0.0/16, "2001:db8::/32"]
  servers: [10.0.1.0/24, "2001:db8:1::/48"]
directions:
  - name: campus_inet
    from: [campus]
    no_to: [campus]
    total: true
    scoreboard: {hosts: true, ports: true, top_n: 6}
    directions:
      - name: servers
        from: [servers]
        total: true
        scoreboard: {ports: true, top_n: 4}
  - name: quiet
    from: [campus]
    total: true
`

var (
	jkCampus  = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16"), netip.MustParsePrefix("2001:db8::/32")}
	jkServers = []netip.Prefix{netip.MustParsePrefix("10.0.1.0/24"), netip.MustParsePrefix("2001:db8:1::/48")}
)

func inAny(a netip.Addr, ps []netip.Prefix) bool {
	return slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Contains(a) })
}

// jkTestFlows generates file i's flows: campus hosts (some servers, some
// IPv6) talking with outside hosts over TCP and UDP services, ICMP, GRE
// and protocol 253, plus internal and transit flows that campus_inet does
// not count. Client ports are 1024 or above and services below, so the
// lower port is the service.
func jkTestFlows(i int) []flow.Record {
	rng := rand.New(rand.NewPCG(uint64(i), 7))
	inside := []string{"10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.2.1", "10.0.2.2", "10.0.3.9", "2001:db8:1::10", "2001:db8:5::5"}
	outside := []string{"198.51.100.1", "198.51.100.2", "203.0.113.9", "2600::1", "2600::2"}
	pick := func(list []string, v6 bool) netip.Addr {
		for {
			a := netip.MustParseAddr(list[rng.IntN(len(list))])
			if a.Is6() == v6 {
				return a
			}
		}
	}
	type svc struct {
		proto uint8
		port  uint16
	}
	services := []svc{{6, 80}, {6, 443}, {6, 22}, {17, 53}, {17, 123}, {1, 0}, {47, 0}, {253, 0}}
	var out []flow.Record
	for n := 0; n < 300; n++ {
		v6 := rng.IntN(4) == 0
		campus, far := pick(inside, v6), pick(outside, v6)
		s := services[rng.IntN(len(services))]
		r := flow.Record{Proto: s.proto, Bytes: uint64(40 + rng.IntN(1_000_000)), Packets: uint64(1 + rng.IntN(900))}
		client := uint16(1024 + rng.IntN(64000))
		switch rng.IntN(10) {
		case 0: // internal: not counted by campus_inet
			r.SrcAddr, r.DstAddr = campus, pick(inside, v6)
		case 1: // transit
			r.SrcAddr, r.DstAddr = far, pick(outside, v6)
		case 2, 3, 4, 5: // out: the campus host is the client or the server
			r.SrcAddr, r.DstAddr = campus, far
		default: // in
			r.SrcAddr, r.DstAddr = far, campus
		}
		if s.proto == 6 || s.proto == 17 {
			r.SrcPort, r.DstPort = client, s.port
			if rng.IntN(2) == 0 {
				r.SrcPort, r.DstPort = s.port, client
			}
		}
		out = append(out, r)
	}
	return out
}

// jkFixture runs the real jkflow module over two generated files and
// returns the RRD directory (jkflow's output in RRD_DIR/jkflow) and the
// last file's flows and span.
func jkFixture(t *testing.T) (rrdDir string, last []flow.Record, start, end time.Time) {
	t.Helper()
	rrdDir = filepath.Join(t.TempDir(), "rrd")
	factory, err := report.Lookup("jkflow")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := factory(&report.Env{RRD: rrd.New(""), Logger: quiet, Interval: fixtureStep, OutputDir: filepath.Join(rrdDir, "jkflow")},
		func(v any) error { return yaml.Unmarshal([]byte(jkTestConfig), v) })
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		start = fixtureStart.Add(time.Duration(i) * fixtureStep)
		end = start.Add(fixtureStep)
		last = jkTestFlows(i)
		f := &report.File{Path: "/x/ft-v05." + start.Format("2006-01-02.150405"), Start: start, End: end}
		if err := mod.PerFile(f); err != nil {
			t.Fatal(err)
		}
		for j := range last {
			mod.Wanted(&last[j])
		}
		if err := mod.Report(); err != nil {
			t.Fatal(err)
		}
	}
	return rrdDir, last, start, end
}

// jkTally is one expected scoreboard line.
type jkTally struct {
	key     string
	in, out [3]uint64 // bytes, packets, flows
}

// jkExpected ranks the flows the way docs/modules.md describes jkflow's
// scoreboards: the "from" end's address, or the lower port of TCP/UDP
// (the protocol alone otherwise); by bytes in + out, then key; top n.
func jkExpected(flows []flow.Record, from []netip.Prefix, parent func(*flow.Record) bool, ports bool, n int) []jkTally {
	m := map[string]*jkTally{}
	for i := range flows {
		r := &flows[i]
		if !parent(r) {
			continue
		}
		var way int // 1 out, 2 in
		switch {
		case inAny(r.SrcAddr, from):
			way = 1
		case inAny(r.DstAddr, from):
			way = 2
		default:
			continue
		}
		key := r.SrcAddr.String()
		if way == 2 {
			key = r.DstAddr.String()
		}
		if ports {
			names := map[uint8]string{6: "tcp", 17: "udp", 1: "icmp", 47: "gre"}
			key = names[r.Proto]
			if key == "" {
				key = fmt.Sprint(r.Proto)
			}
			if r.Proto == 6 || r.Proto == 17 {
				key = fmt.Sprintf("%d/%s", min(r.SrcPort, r.DstPort), key)
			}
		}
		tl := m[key]
		if tl == nil {
			tl = &jkTally{key: key}
			m[key] = tl
		}
		c := &tl.out
		if way == 2 {
			c = &tl.in
		}
		c[0] += r.Bytes
		c[1] += r.Packets
		c[2]++
	}
	var out []jkTally
	for _, tl := range m {
		out = append(out, *tl)
	}
	slices.SortFunc(out, func(a, b jkTally) int {
		if c := cmp.Compare(b.in[0]+b.out[0], a.in[0]+a.out[0]); c != 0 {
			return c
		}
		return cmp.Compare(a.key, b.key)
	})
	return out[:min(n, len(out))]
}

func TestJKFlowScoreboard(t *testing.T) {
	rrdDir, flows, start, end := jkFixture(t)
	_, ts := newFixtureServer(t, &fixture{rrdDir: rrdDir}, func(c *Config) { c.FlowDir, c.AggregateFile = "", "" })

	resp, body := get(t, ts, "/api/v1/catalog")
	cat := decodeJSON[CatalogResponse](t, body)
	if resp.StatusCode != 200 || !slices.Equal(cat.JKFlowScoreboards, []string{"campus_inet", "campus_inet/servers"}) || cat.Scoreboard {
		t.Fatalf("catalog: status %d, jkflow scoreboards %q, cuflow scoreboard %v", resp.StatusCode, cat.JKFlowScoreboards, cat.Scoreboard)
	}

	isCampusInet := func(r *flow.Record) bool {
		return inAny(r.SrcAddr, jkCampus) != inAny(r.DstAddr, jkCampus)
	}
	secs := end.Sub(start).Seconds()
	tests := []struct {
		query, direction string
		hosts, ports     []jkTally
	}{
		{"kind=jkflow", "campus_inet", jkExpected(flows, jkCampus, isCampusInet, false, 6), jkExpected(flows, jkCampus, isCampusInet, true, 6)},
		{"kind=jkflow&direction=campus_inet", "campus_inet", jkExpected(flows, jkCampus, isCampusInet, false, 6), jkExpected(flows, jkCampus, isCampusInet, true, 6)},
		{"kind=jkflow&direction=campus_inet%2Fservers", "campus_inet/servers", nil, jkExpected(flows, jkServers, isCampusInet, true, 4)},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			resp, body := get(t, ts, "/api/v1/scoreboard?"+tc.query)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			p := decodeJSON[JKFlowScoreboard](t, body)
			if p.Kind != "jkflow" || p.ID != tc.direction || p.Direction != tc.direction || !p.Start.Equal(start) || !p.End.Equal(end) ||
				p.Seconds != secs || !strings.HasSuffix(p.File, start.Format("2006-01-02.150405")) {
				t.Fatalf("page %+v", p)
			}
			for _, part := range []struct {
				name string
				got  []JKFlowEntry
				want []jkTally
			}{{"hosts", p.Hosts, tc.hosts}, {"ports", p.Ports, tc.ports}} {
				if len(part.got) != len(part.want) {
					t.Fatalf("%s: %d entries, want %d: %+v", part.name, len(part.got), len(part.want), part.got)
				}
				for i, e := range part.got {
					w := part.want[i]
					if e.Rank != i+1 || e.Key != w.key || e.InBytes != w.in[0] || e.OutBytes != w.out[0] || e.InPkts != w.in[1] ||
						e.OutPkts != w.out[1] || e.InFlows != w.in[2] || e.OutFlows != w.out[2] ||
						math.Abs(e.InBits-8*float64(w.in[0])/secs) > 1e-6 || math.Abs(e.OutBits-8*float64(w.out[0])/secs) > 1e-6 {
						t.Errorf("%s #%d: %+v, want %+v", part.name, i+1, e, w)
					}
					// The explorer's filter selects exactly the flows the
					// line counts: the direction's flows of that host or port.
					f, err := flowquery.Compile(e.Filter)
					if err != nil || e.Filter == "" {
						t.Fatalf("%s %s: filter %q: %v", part.name, e.Key, e.Filter, err)
					}
					var sum uint64
					for j := range flows {
						r := &flows[j]
						inDir := isCampusInet(r) && (tc.direction == "campus_inet" || inAny(r.SrcAddr, jkServers) || inAny(r.DstAddr, jkServers))
						if inDir && f.Match(r) {
							sum += r.Bytes
						}
					}
					if sum != e.InBytes+e.OutBytes {
						t.Errorf("%s %s: filter %q selects %d bytes of the direction, the line counts %d", part.name, e.Key, e.Filter, sum, e.InBytes+e.OutBytes)
					}
				}
			}
		})
	}
	// Port filters name the protocol; hosts are "host ADDR".
	_, body = get(t, ts, "/api/v1/scoreboard?kind=jkflow")
	p := decodeJSON[JKFlowScoreboard](t, body)
	for _, e := range p.Hosts {
		if e.Filter != "host "+e.Key {
			t.Errorf("host %s: filter %q", e.Key, e.Filter)
		}
	}
	for _, e := range p.Ports {
		want := map[string]string{"icmp": "proto 1", "gre": "proto 47", "253": "proto 253"}[e.Key]
		if port, proto, ok := strings.Cut(e.Key, "/"); ok {
			want = "proto " + proto + " and port " + port
		}
		if e.Filter != want {
			t.Errorf("port %s: filter %q, want %q", e.Key, e.Filter, want)
		}
	}
}

func TestJKFlowScoreboardHostile(t *testing.T) {
	rrdDir, _, _, _ := jkFixture(t)
	jk := filepath.Join(rrdDir, "jkflow")
	outside := filepath.Join(t.TempDir(), "secret.json")
	if err := os.WriteFile(outside, []byte(`{"direction":"x","hosts":[{"rank":1,"key":"192.0.2.66","in_bytes":1}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	mk := func(dir string) string {
		d := filepath.Join(jk, dir, "scoreboard")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(d, "scoreboard.json")
	}
	// A symbolic link as the file, a symbolic link as the direction, a
	// hidden direction, a bad name: none is discovered.
	if err := os.Symlink(outside, mk("linkfile")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(filepath.Dir(mk("real"))), filepath.Join(jk, "linkdir")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(mk("real"), []byte(`{"direction":"real"}`), 0o644)
	os.WriteFile(mk(".hidden"), []byte(`{}`), 0o644)
	os.WriteFile(mk("bad name"), []byte(`{}`), 0o644)
	// Discovered but unreadable: not JSON, too large.
	os.WriteFile(mk("broken"), []byte(`{"hosts": [`), 0o644)
	if err := os.WriteFile(mk("huge"), []byte(`{"file":"`+strings.Repeat("x", maxPageBytes)+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, ts := newFixtureServer(t, &fixture{rrdDir: rrdDir}, func(c *Config) { c.FlowDir, c.AggregateFile = "", "" })
	_, body := get(t, ts, "/api/v1/catalog")
	if got := decodeJSON[CatalogResponse](t, body).JKFlowScoreboards; !slices.Equal(got, []string{"broken", "campus_inet", "campus_inet/servers", "huge", "real"}) {
		t.Errorf("discovered %q", got)
	}
	tests := []struct {
		query string
		code  int
	}{
		{"kind=jkflow&direction=real", 200},
		{"kind=jkflow&direction=nope", 404},
		{"kind=jkflow&direction=linkfile", 404},
		{"kind=jkflow&direction=linkdir", 404},
		{"kind=jkflow&direction=.hidden", 404},
		{"kind=jkflow&direction=..%2F..%2Fetc", 404},
		{"kind=jkflow&direction=" + strings.Repeat("a", 5000), 400},
		{"kind=jkflow&direction=%2Ftmp", 404},
		{"kind=jkflow&direction=campus_inet%2F", 404},
		{"kind=jkflow&direction=", 400},
		{"kind=jkflow&direction=real&direction=real", 400},
		{"kind=jkflow&page=2026-11-23/10/10:00:00", 400},
		{"kind=jkflow&top=3", 400},
		{"kind=jkflow&range=1h", 400},
		{"kind=jkflow&router=all", 400},
		{"kind=current&direction=real", 400},
		{"direction=real", 400},
		{"kind=aggregate&direction=real", 400},
		{"kind=jkflow&direction=broken", 500},
		{"kind=jkflow&direction=huge", 500},
	}
	for _, tc := range tests {
		resp, body := get(t, ts, "/api/v1/scoreboard?"+tc.query)
		if resp.StatusCode != tc.code || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%.80s: status %d, want %d: %s", tc.query, resp.StatusCode, tc.code, truncate(string(body)))
		}
		if strings.Contains(string(body), rrdDir) || strings.Contains(string(body), "192.0.2.66") {
			t.Errorf("%.80s: answer shows a path or the linked file: %s", tc.query, body)
		}
	}
}

func TestJKFlowDiscoveryBound(t *testing.T) {
	dir := t.TempDir()
	for i := range 12 {
		d := filepath.Join(dir, fmt.Sprintf("d%02d", i), "scoreboard")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "scoreboard.json"), []byte(`{}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Deeper than the walk goes.
	deep := filepath.Join(dir, "a", "b", "c", "d", "e", "f", "g", "scoreboard")
	os.MkdirAll(deep, 0o755)
	os.WriteFile(filepath.Join(deep, "scoreboard.json"), []byte(`{}`), 0o644)
	old := maxJKBoards
	t.Cleanup(func() { maxJKBoards = old })
	for _, tc := range []struct{ limit, want int }{{1000, 12}, {5, 5}} {
		maxJKBoards = tc.limit
		got := discoverJKBoards(dir)
		if len(got) != tc.want || got[0].direction != "d00" || !slices.IsSortedFunc(got, func(a, b jkBoard) int { return cmp.Compare(a.direction, b.direction) }) {
			t.Errorf("limit %d: found %d (%v), want %d", tc.limit, len(got), got, tc.want)
		}
	}
	if got := discoverJKBoards(filepath.Join(dir, "missing")); got != nil {
		t.Errorf("missing directory: %v", got)
	}
}
