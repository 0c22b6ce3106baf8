package cli

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/flowscan/flowscan/internal/clickhouse"
	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/query"
)

// fakeClickHouse answers every SELECT on the raw table with the RowBinary
// rows of recs and records the statements it was sent.
func fakeClickHouse(t *testing.T, recs []flow.Record) (url string, statements func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		stmt := string(body)
		mu.Lock()
		seen = append(seen, stmt)
		mu.Unlock()
		if !strings.Contains(stmt, "FROM flowscan.flows ") {
			http.Error(w, "Code: 60. DB::Exception: unexpected statement in test", http.StatusBadRequest)
			return
		}
		var out []byte
		for i := range recs {
			out = clickhouse.AppendRow(out, &recs[i], 1)
		}
		w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/flowscan", func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

func clickhouseRecords() []flow.Record {
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	var recs []flow.Record
	for i, port := range []uint16{443, 53, 80} {
		recs = append(recs, flow.Record{Exporter: netip.MustParseAddr("192.0.2.9"),
			SrcAddr: netip.MustParseAddr("10.0.0.1"), DstAddr: netip.MustParseAddr("2001:db8::1"),
			SrcPort: 40000, DstPort: port, Proto: 6, Bytes: uint64(1000 * (i + 1)), Packets: 3,
			Start: end - 2000, End: end})
	}
	return recs
}

func TestExportClickHouse(t *testing.T) {
	recs := clickhouseRecords()
	url, statements := fakeClickHouse(t, recs)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfgPath, []byte("clickhouse:\n  url: "+url+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		source []string
		format string
	}{
		{"flag parquet", []string{"--clickhouse", url}, "parquet"},
		{"flag ndjson", []string{"--clickhouse", url}, "ndjson"},
		{"config parquet", []string{"--config", cfgPath}, "parquet"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "flows."+tc.format)
			args := append([]string{"export"}, tc.source...)
			args = append(args, "--from", "2026-03-01T11:00:00Z", "--to", "2026-03-01T13:00:00Z", "--format", tc.format, "--out", out, "proto tcp")
			var stdout, stderr bytes.Buffer
			if code := Main(args, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), "export: 3 flows") {
				t.Errorf("stderr %q, want 3 flows reported", stderr.String())
			}
			var ports []uint16
			if tc.format == "parquet" {
				rows, err := parquet.ReadFile[query.ParquetFlow](out)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range rows {
					ports = append(ports, r.DstPort)
					if r.DstAddr != "2001:db8::1" || r.Exporter != "192.0.2.9" {
						t.Errorf("row %+v: addresses differ from the stored flow", r)
					}
				}
			} else {
				b, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range jsonLines(t, string(b)) {
					ports = append(ports, uint16(m["dst_port"].(float64)))
				}
			}
			if len(ports) != 3 || ports[0] != 443 || ports[1] != 53 || ports[2] != 80 {
				t.Errorf("exported ports %v, want [443 53 80]", ports)
			}
		})
	}
	for _, stmt := range statements() {
		if !strings.Contains(stmt, "time_end >= toDateTime(") || !strings.Contains(stmt, "proto") {
			t.Errorf("statement lacks the window or the filter: %s", stmt)
		}
	}
}

func TestExportSourceErrors(t *testing.T) {
	url, _ := fakeClickHouse(t, nil)
	dir := queryArchive(t)
	out := filepath.Join(t.TempDir(), "x.parquet")
	var stdout, stderr bytes.Buffer
	code := Main([]string{"export", "--dir", dir, "--clickhouse", url, "--out", out}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "exclude each other") {
		t.Errorf("--dir with --clickhouse: exit %d, stderr %q; want a refusal", code, stderr.String())
	}
	// A configuration naming ClickHouse does not stop an explicit --dir.
	cfgPath := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfgPath, []byte("clickhouse:\n  url: "+url+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := Main([]string{"export", "--config", cfgPath, "--dir", dir, "--out", out}, &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "export: 6 flows") {
		t.Errorf("--config with --dir: exit %d, stderr %q; want the archive's 6 flows", code, stderr.String())
	}
}
