package cli

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/flowfile/flowtools"
)

// writeFlowToolsFile writes a flow-capture file starting at start with
// flows flows of 100 bytes and 2 packets each, and returns its path.
func writeFlowToolsFile(t *testing.T, dir string, start time.Time, flows int) string {
	t.Helper()
	var recs []flow.Record
	for i := range flows {
		recs = append(recs, flow.Record{Exporter: netip.MustParseAddr("192.0.2.7"),
			SrcAddr: netip.MustParseAddr("10.1.0.1"), DstAddr: netip.MustParseAddr("198.51.100.1"),
			SrcPort: 1024, DstPort: uint16(8000 + i), Proto: 17, Bytes: 100, Packets: 2,
			Start: start.Add(time.Second).UnixMilli(), End: start.Add(2 * time.Second).UnixMilli()})
	}
	path := filepath.Join(dir, "ft-v05."+start.UTC().Format("2006-01-02.150405")+"+0000")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	h := flowtools.Header{Exporter: netip.MustParseAddr("192.0.2.7"), CaptureStart: start,
		CaptureEnd: start.Add(5 * time.Minute), LostFlows: 3, Hostname: "capture1"}
	if err := flowtools.Write(f, h, recs, flowtools.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDumpFlowTools(t *testing.T) {
	ftDir := t.TempDir()
	start := time.Date(2026, 11, 23, 11, 50, 0, 0, time.UTC)
	ftFile := writeFlowToolsFile(t, ftDir, start, 3)
	// A mixed archive: a flow-tools file before a flowscan file.
	mixed := t.TempDir()
	writeTestFile(t, mixed)
	writeFlowToolsFile(t, mixed, start, 2)

	tests := []struct {
		name     string
		args     []string
		lines    int
		contains []string
	}{
		{"directory of flow-tools files", []string{"dump", "--format", "json", ftDir}, 3, []string{`"dst_port":8002`, `"exporter":"192.0.2.7"`}},
		{"one flow-tools file", []string{"dump", ftFile}, 3 + 1 + 4, []string{"flow-tools, complete", "lost flows 3", "198.51.100.1:8001"}},
		{"flow-tools metadata", []string{"dump", "--meta", "--format", "json", ftFile}, 1, []string{`"source":"flow-tools"`, `"flows":3`, `"packets":6`, `"bytes":300`, `"lost_flows":3`, `"hostname":"capture1"`}},
		{"mixed archive, oldest first", []string{"dump", "--format", "csv", mixed}, 1 + 2 + 2, []string{"198.51.100.1,,1024,8000"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := runMain(t, tc.args...)
			if n := strings.Count(out, "\n"); n != tc.lines {
				t.Errorf("%d lines, want %d:\n%s", n, tc.lines, out)
			}
			for _, s := range tc.contains {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
			if tc.name == "mixed archive, oldest first" {
				lines := strings.Split(out, "\n")
				if !strings.Contains(lines[1], "192.0.2.7") || !strings.Contains(lines[3], "192.0.2.1") {
					t.Errorf("flow-tools flows (11:50) must come before the flowscan file's (12:00):\n%s", out)
				}
			}
		})
	}
}

// TestDumpSkipsUnreadable: an unreadable file among several is reported
// by name, the others are dumped, and the exit status is 1.
func TestDumpSkipsUnreadable(t *testing.T) {
	dir := t.TempDir()
	good := writeFlowToolsFile(t, dir, time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC), 2)
	empty := filepath.Join(t.TempDir(), "flows.2026-11-23.115500+0000.fsf")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(dir, "ft-v05.2026-11-23.115500+0000")
	if err := os.WriteFile(corrupt, []byte("not a flow-tools file, but named like one"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "gone.fsf")
	var out, errb bytes.Buffer
	code := Main([]string{"dump", "--format", "json", empty, dir, missing, good}, &out, &errb)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, p := range []string{empty, corrupt, missing} {
		if !strings.Contains(errb.String(), "warning: "+p+":") {
			t.Errorf("stderr does not name %s:\n%s", p, errb.String())
		}
	}
	// The good file is dumped twice (through the directory and by name).
	if n := strings.Count(out.String(), "\n"); n != 4 {
		t.Errorf("%d flows dumped, want 4 (the good file twice):\n%s", n, out.String())
	}
}
