package cli

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/flowfile"
)

// queryArchive writes 6 flows: 3 TCP to port 443 (from 10.0.0.1 twice and
// 10.0.0.2), one TCP to 80 and two UDP to 53.
func queryArchive(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	at := time.Date(2026, 3, 1, 12, 5, 0, 0, time.UTC)
	w, err := flowfile.NewWriter(flowfile.Config{Dir: dir, Location: time.UTC, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	base := at.Add(-5 * time.Minute).UnixMilli()
	mk := func(src string, proto uint8, dport uint16, bytes uint64) flow.Record {
		return flow.Record{Exporter: netip.MustParseAddr("127.0.0.1"), SrcAddr: netip.MustParseAddr(src),
			DstAddr: netip.MustParseAddr("192.0.2.1"), SrcPort: 40000, DstPort: dport, Proto: proto,
			Bytes: bytes, Packets: bytes / 100, Start: base, End: base + 1000}
	}
	recs := []flow.Record{
		mk("10.0.0.1", 6, 443, 1000), mk("10.0.0.1", 6, 443, 2000), mk("10.0.0.2", 6, 443, 500),
		mk("10.0.0.3", 6, 80, 9000), mk("10.0.0.2", 17, 53, 100), mk("10.0.0.4", 17, 53, 200),
	}
	if err := w.Write(recs); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func runMain(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := Main(args, &out, &errOut); code != 0 {
		t.Fatalf("flowscan %s: exit %d: %s", strings.Join(args, " "), code, errOut.String())
	}
	return out.String()
}

func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestQueryIssueForms(t *testing.T) {
	dir := queryArchive(t)

	// Form 1: matching flows as JSON lines with dump's field names.
	rows := jsonLines(t, runMain(t, "query", "--dir", dir, "--format", "json", "proto tcp and dst port 443"))
	if len(rows) != 3 {
		t.Fatalf("%d flows, want 3", len(rows))
	}
	for _, r := range rows {
		for _, f := range flow.Fields {
			if _, ok := r[f]; !ok {
				t.Errorf("flow lacks field %q: %v", f, r)
			}
		}
		if r["proto"] != 6.0 || r["dst_port"] != 443.0 {
			t.Errorf("flow does not match the filter: %v", r)
		}
	}

	// Form 2: top 10 sources by bytes, one JSON line per row.
	rows = jsonLines(t, runMain(t, "query", "--dir", dir, "--top", "10", "--by", "src_addr", "--order", "bytes", "--format", "json"))
	want := []struct {
		addr                  string
		flows, packets, bytes float64
	}{{"10.0.0.3", 1, 90, 9000}, {"10.0.0.1", 2, 30, 3000}, {"10.0.0.2", 2, 6, 600}, {"10.0.0.4", 1, 2, 200}}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d: %v", len(rows), len(want), rows)
	}
	for i, w := range want {
		r := rows[i]
		if r["src_addr"] != w.addr || r["flows"] != w.flows || r["packets"] != w.packets || r["bytes"] != w.bytes {
			t.Errorf("row %d = %v, want %+v", i, r, w)
		}
	}
}

func TestQueryCommandForms(t *testing.T) {
	dir := queryArchive(t)
	tests := []struct {
		args     []string
		contains []string
		lines    int
	}{
		{[]string{"query", "--dir", dir, "--format", "csv", "udp"}, []string{strings.Join(flow.Fields, ","), "10.0.0.4"}, 3},
		{[]string{"query", "--dir", dir, "--limit", "2", "--format", "ndjson"}, nil, 2},
		{[]string{"query", "--dir", dir, "--top", "1", "--by", "dst_port", "--order", "flows"}, []string{"https", "other", "summary: flows 6"}, 4},
		{[]string{"query", "--dir", dir, "--top", "1", "--by", "dst_port", "--numeric"}, []string{"80 ", "other"}, 4},
		{[]string{"query", "--dir", dir, "--aggregate", "proto,dst_port", "--format", "csv"}, []string{"proto,dst_port,flows", "6,443,3"}, 4},
		{[]string{"query", "--dir", dir, "--summary", "--format", "json", "not udp"}, []string{`"summary":true,"flows":4`}, 1},
		{[]string{"query", "--dir", dir, "--from", "2026-03-01T12:01:00Z", "--format", "json"}, nil, 0},
	}
	for _, tc := range tests {
		out := runMain(t, tc.args...)
		for _, s := range tc.contains {
			if !strings.Contains(out, s) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, s, out)
			}
		}
		if n := strings.Count(out, "\n"); n != tc.lines {
			t.Errorf("%v: %d lines, want %d:\n%s", tc.args, n, tc.lines, out)
		}
	}
}

func TestQueryErrors(t *testing.T) {
	dir := queryArchive(t)
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{"query", "--dir", dir, "proto tcp and"}, "filter column 14"},
		{[]string{"query", "--dir", dir, "--by", "nonsense"}, "unknown key field"},
		{[]string{"query", "--dir", dir, "--order", "size", "--by", "src_addr"}, "unknown order"},
		{[]string{"query", "--dir", dir, "--from", "yesterday"}, "--from"},
		{[]string{"query", "proto tcp"}, "--dir (or --clickhouse URL) is required"},
	}
	for _, tc := range tests {
		var out, errOut bytes.Buffer
		if code := Main(tc.args, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want failure with %q", tc.args, code, errOut.String(), tc.msg)
		}
	}
}

func TestExportParquet(t *testing.T) {
	dir := queryArchive(t)
	out := filepath.Join(t.TempDir(), "flows.parquet")
	runMain(t, "export", "--dir", dir, "--out", out, "proto tcp")
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 12 || string(b[:4]) != "PAR1" || string(b[len(b)-4:]) != "PAR1" {
		t.Fatalf("%s is not a Parquet file (%d bytes)", out, len(b))
	}
}

// TestQueryLeavesOutUnreadableFiles: an empty file with a flow file's name
// beside a good one; query and export print every flow of the good file,
// warn about the other, and exit 1.
func TestQueryLeavesOutUnreadableFiles(t *testing.T) {
	dir := queryArchive(t)
	bad := filepath.Join(dir, flowfile.FileName(time.Date(2026, 3, 1, 12, 10, 0, 0, time.UTC)))
	if err := os.WriteFile(bad, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "x.csv")
	for _, tc := range []struct {
		args  []string
		lines int
	}{
		{[]string{"query", "--dir", dir, "--format", "csv"}, 7},
		{[]string{"query", "--dir", dir, "--by", "dst_port", "--format", "csv"}, 4},
		{[]string{"export", "--dir", dir, "--format", "csv", "--out", out}, 0},
	} {
		var stdout, stderr bytes.Buffer
		code := Main(tc.args, &stdout, &stderr)
		if code != 1 || !strings.Contains(stderr.String(), "warning: left out") || !strings.Contains(stderr.String(), bad) {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 and a warning naming %s", tc.args, code, stderr.String(), bad)
		}
		if n := strings.Count(stdout.String(), "\n"); n != tc.lines {
			t.Errorf("%v: %d lines, want %d:\n%s", tc.args, n, tc.lines, stdout.String())
		}
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n != 7 {
		t.Errorf("export wrote %d lines, want the header and 6 flows", n)
	}
}
