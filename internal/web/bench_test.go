package web

import (
	"fmt"
	"math"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/rrd"
)

// BenchmarkSeries50Year answers /api/v1/series for 50 stacked items (the
// total and 49 protocols, so "other" is computed too) over one year of
// RRD files with FlowScan's archives.
func BenchmarkSeries50Year(b *testing.B) {
	dir := b.TempDir()
	client := rrd.New("")
	step := 5 * time.Minute
	end := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	start := end.Add(-366 * 24 * time.Hour)
	// Updates every 6 hours with a heartbeat of two days keep every
	// primary point known, so every archive is filled.
	ds := rrd.FlowDS(step, "in_bytes", "out_bytes", "in_pkts", "out_pkts", "in_flows", "out_flows")
	for i := range ds {
		ds[i].Heartbeat = 48 * time.Hour
	}
	names := []string{"total"}
	for i := 0; i < 49; i++ {
		names = append(names, fmt.Sprintf("protocol_p%02d", i))
	}
	for n, name := range names {
		path := filepath.Join(dir, "cuflow", name+".rrd")
		if err := client.Create(path, step, start, ds, rrd.FlowScanRRAs(step)); err != nil {
			b.Fatal(err)
		}
		for t := start.Add(6 * time.Hour); !t.After(end); t = t.Add(6 * time.Hour) {
			v := 1e6 * (1 + math.Sin(float64(t.Unix())/86400+float64(n)))
			if err := client.Update(path, t, v*3e4, v*2e4, v*30, v*20, v/10, v/20); err != nil {
				b.Fatal(err)
			}
		}
	}
	s, err := New(Config{RRDDir: dir, Logger: quiet, Now: func() time.Time { return end }})
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	url := "/api/v1/series?module=cuflow&router=all&range=1y&items=" + strings.Join(names, ",")
	check := httptest.NewRecorder()
	h.ServeHTTP(check, httptest.NewRequest("GET", url, nil))
	if check.Code != 200 || !strings.Contains(check.Body.String(), `"other_protocol"`) {
		b.Fatalf("status %d: %.300s", check.Code, check.Body.String())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", url, nil))
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
		b.SetBytes(int64(w.Body.Len()))
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
}
