package web

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/clickhouse"
	"github.com/flowscan/flowscan/internal/clickhouse/chtest"
	"github.com/flowscan/flowscan/internal/flow"
)

// benchCHServer starts a server holding a day of varied flows (about
// 200 k: 140 a minute from 4 exporters) and returns the web server over
// it.
func benchCHServer(b *testing.B) (*Server, *httptest.Server) {
	srv := chtest.Start(b)
	c, err := clickhouse.NewClient(srv.URL("fsbench"))
	if err != nil {
		b.Fatal(err)
	}
	schema := &clickhouse.Schema{Database: "fsbench"}
	if _, err := schema.Migrate(context.Background(), c); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	var data []byte
	for m := range 24 * 60 {
		end := chNow.Add(-time.Duration(m) * time.Minute).Add(-time.Second).UnixMilli()
		for range 140 {
			r := flow.Record{Exporter: netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + rng.IntN(4))}), Start: end - 1000, End: end,
				SrcAddr: netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(4)), byte(rng.IntN(256))}), DstAddr: netip.AddrFrom4([4]byte{192, 168, 0, byte(rng.IntN(256))}),
				SrcPort: uint16(1024 + rng.IntN(60000)), DstPort: uint16([]int{80, 443, 53, 22, 25, 123, 993, 8080, 3389, 5060, 161, 179}[rng.IntN(12)]),
				Proto: []uint8{6, 6, 17, 1, 47, 50}[rng.IntN(6)], TOS: uint8(rng.IntN(12) * 4), InIf: uint32(rng.IntN(12)), OutIf: uint32(rng.IntN(12)),
				SrcAS: uint32(64500 + rng.IntN(15)), DstAS: uint32(65000 + rng.IntN(15)),
				Bytes: uint64(40 + rng.IntN(1_000_000)), Packets: uint64(1 + rng.IntN(1000)), SamplingRate: 1}
			data = clickhouse.AppendRow(data, &r, uint64(m))
		}
	}
	if err := c.Insert(context.Background(), "fsbench.flows", clickhouse.RawColumnList(), "RowBinary", data); err != nil {
		b.Fatal(err)
	}
	s, err := New(Config{Logger: quiet, Now: func() time.Time { return chNow },
		ClickHouse: &ClickHouse{Clients: []*clickhouse.Client{c}, Schema: schema}})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	b.Cleanup(ts.Close)
	return s, ts
}

// BenchmarkClickHouseSeriesDay answers /api/v1/series for every item of
// the clickhouse module's "all" scope (the total and the top protocols,
// services, TOS values and AS numbers: about 40 series, "other" bands
// included) over one day: one query on the table Pick chooses.
func BenchmarkClickHouseSeriesDay(b *testing.B) {
	s, ts := benchCHServer(b)
	all := s.currentCatalog(false).module(ClickHouseModule).byID["all"]
	ids := ""
	for i, it := range all.Items {
		if i > 0 {
			ids += ","
		}
		ids += it.ID
	}
	path := fmt.Sprintf("/api/v1/series?module=clickhouse&items=%s&range=1d", ids)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if resp, body := get(b, ts, path); resp.StatusCode != 200 {
			b.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	}
	b.ReportMetric(float64(len(all.Items)), "items")
}

// BenchmarkClickHouseTalkersDay ranks a day's top talkers (two queries).
func BenchmarkClickHouseTalkersDay(b *testing.B) {
	_, ts := benchCHServer(b)
	b.ReportAllocs()
	for b.Loop() {
		if resp, body := get(b, ts, "/api/v1/scoreboard?kind=clickhouse&range=1d"); resp.StatusCode != 200 {
			b.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	}
}

// BenchmarkClickHouseDiscovery builds the clickhouse module's catalog
// from a day of flows (about ten queries).
func BenchmarkClickHouseDiscovery(b *testing.B) {
	s, _ := benchCHServer(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.ch.discover(chNow); err != nil {
			b.Fatal(err)
		}
	}
}
