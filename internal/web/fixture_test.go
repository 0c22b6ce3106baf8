package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/flowfile"
	"github.com/flowscan/flowscan/internal/report"
	_ "github.com/flowscan/flowscan/internal/report/cuflow"
	"github.com/flowscan/flowscan/internal/rrd"
	"github.com/flowscan/flowscan/internal/scan"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Fixture constants: fixtureFiles five-minute files from fixtureStart.
const (
	fixtureFiles = 24
	fixtureStep  = 5 * time.Minute
)

var fixtureStart = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// fixtureEnd is the end of the last file, the fixture server's "now".
var fixtureEnd = fixtureStart.Add(fixtureFiles * fixtureStep)

const fixtureCuflow = `
subnets: [10.0.0.0/16]
routers: [{address: 192.0.2.1, name: gw}]
services:
  - {name: web, ports: [80/tcp, 443/tcp]}
  - {name: dns, ports: [53/udp]}
protocols: [{number: tcp}, {number: udp}, {number: icmp}]
tos: [{name: normal, values: "0"}, {name: marked, values: "1-255"}]
networks: [{name: servers, prefixes: [10.0.1.0/24]}]
`

// fixtureFlows are file i's flows; the expectations in the tests are
// worked out from them by hand:
//   - in, web src, tcp, servers, gw: 198.51.100.1:443 -> 10.0.1.(1+i%3), 1000*(i+1) bytes, 10 packets
//   - out, web dst, tcp, not servers, gw: 10.0.2.1 -> 198.51.100.2:80, 600 bytes, 6 packets
//   - out, dns dst, udp, exporter 192.0.2.2: 10.0.3.1 -> 203.0.113.5:53, 300 bytes, 3 packets, TOS 8
//   - in, icmp: 203.0.113.7 -> 10.0.1.1, 150 bytes, 1 packet
func fixtureFlows(i int, at time.Time) []flow.Record {
	gw, other := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	ms := at.UnixMilli()
	r := func(exp netip.Addr, src string, sport uint16, dst string, dport uint16, proto uint8, bytes, pkts uint64) flow.Record {
		return flow.Record{Exporter: exp, SrcAddr: netip.MustParseAddr(src), DstAddr: netip.MustParseAddr(dst), SrcPort: sport, DstPort: dport,
			Proto: proto, Bytes: bytes, Packets: pkts, Start: ms, End: ms}
	}
	dns := r(other, "10.0.3.1", 40000, "203.0.113.5", 53, 17, 300, 3)
	dns.TOS = 8
	return []flow.Record{
		r(gw, "198.51.100.1", 443, "10.0.1."+string(rune('1'+i%3)), 50000, 6, uint64(1000*(i+1)), 10),
		r(gw, "10.0.2.1", 50001, "198.51.100.2", 80, 6, 600, 6),
		dns,
		r(gw, "203.0.113.7", 0, "10.0.1.1", 0, 1, 150, 1),
	}
}

// fixture is a scanned flow archive: flows, RRDs, scoreboards.
type fixture struct {
	dir, flowDir, rrdDir, boardDir, aggFile string
}

// buildFixture writes the flow files with a fake clock and scans them
// with the cuflow module (scoreboard and aggregate score on).
func buildFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{dir: dir, flowDir: filepath.Join(dir, "flows"), rrdDir: filepath.Join(dir, "rrd")}
	f.boardDir = filepath.Join(f.rrdDir, "cuflow", "scoreboard")
	f.aggFile = filepath.Join(dir, "agg.dat")
	var clock atomic.Int64
	clock.Store(fixtureStart.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	w, err := flowfile.NewWriter(flowfile.Config{Dir: f.flowDir, Interval: fixtureStep, Location: time.UTC, Now: now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < fixtureFiles; i++ {
		at := fixtureStart.Add(time.Duration(i)*fixtureStep + time.Minute)
		clock.Store(at.UnixNano())
		if err := w.Write(fixtureFlows(i, at)); err != nil {
			t.Fatal(err)
		}
		w.Account(flowfile.ExporterKey{Addr: netip.MustParseAddr("192.0.2.1"), Domain: 0, Format: uint8(decode.FormatNetFlow5)},
			flowfile.ExporterStats{Datagrams: 1, Flows: 3, LostFlows: uint64(i % 2), SamplingRate: 1})
		if i < fixtureFiles/2 { // the second router falls silent half way
			w.Account(flowfile.ExporterKey{Addr: netip.MustParseAddr("192.0.2.2"), Domain: 7, Format: uint8(decode.FormatIPFIX)},
				flowfile.ExporterStats{Datagrams: 1, Flows: 1, SamplingRate: 100})
		}
	}
	clock.Store(fixtureEnd.UnixNano())
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	text := fixtureCuflow + "scoreboard: {top_n: 5, dir: " + f.boardDir + "}\naggregate_score: {top_n: 5, data_file: " + f.aggFile +
		", out_file: " + filepath.Join(dir, "agg.html") + "}\n"
	factory, err := report.Lookup("cuflow")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := factory(&report.Env{RRD: rrd.New(""), Logger: quiet, Interval: fixtureStep, OutputDir: filepath.Join(f.rrdDir, "cuflow"), BaseDir: dir},
		func(v any) error { return yaml.Unmarshal([]byte(text), v) })
	if err != nil {
		t.Fatal(err)
	}
	sc, err := scan.New(scan.Config{Dir: f.flowDir, Modules: []report.Module{mod}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	st, err := sc.Pass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_ = st
	if _, err := os.Stat(filepath.Join(f.rrdDir, "cuflow", "gw", "total.rrd")); err != nil {
		t.Fatal(err)
	}
	return f
}

// newFixtureServer returns a server over the fixture with its clock at
// the fixture's end, and an httptest server running its handler.
func newFixtureServer(t testing.TB, f *fixture, mod func(*Config)) (*Server, *httptest.Server) {
	t.Helper()
	cfg := Config{RRDDir: f.rrdDir, FlowDir: f.flowDir, AggregateFile: f.aggFile, Title: "Test U", Logger: quiet,
		Now: func() time.Time { return fixtureEnd }}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts
}

func get(t testing.TB, ts *httptest.Server, path string) (*http.Response, []byte) {
	t.Helper()
	resp, err := ts.Client().Get(ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}
