package counters

import (
	"bufio"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/decode"
)

func TestSinkWritesDailyFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := New(dir, time.UTC, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	agent := netip.MustParseAddr("192.0.2.9")
	day1 := time.Date(2026, 11, 22, 23, 59, 50, 0, time.UTC)
	s.Counters([]decode.IfCounters{
		{Exporter: agent, Time: day1, IfIndex: 3, Speed: 1e9, InOctets: 1 << 40, OutOctets: 77, Status: 3},
		{Exporter: agent, Time: day1.Add(20 * time.Second), IfIndex: 3, InOctets: 1<<40 + 1000},
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for day, wantIn := range map[string]uint64{"2026-11-22": 1 << 40, "2026-11-23": 1<<40 + 1000} {
		f, err := os.Open(filepath.Join(dir, "counters", "counters."+day+".ndjson"))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		n := 0
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("%s: %v: %s", day, err, sc.Text())
			}
			n++
			if m["exporter"] != "192.0.2.9" || m["if_index"].(float64) != 3 || uint64(m["in_octets"].(float64)) != wantIn {
				t.Errorf("%s: %v", day, m)
			}
		}
		f.Close()
		if n != 1 {
			t.Errorf("%s: %d lines, want 1", day, n)
		}
	}
	if w, d, e := s.Stats(); w != 2 || d != 0 || e != 0 {
		t.Errorf("stats %d %d %d", w, d, e)
	}
}

func TestSinkExpiresOldDays(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "counters"), 0o755)
	old := filepath.Join(dir, "counters", "counters.2020-01-01.ndjson")
	recent := filepath.Join(dir, "counters", "counters."+time.Now().UTC().Format("2006-01-02")+".ndjson")
	os.WriteFile(old, []byte("{}\n"), 0o644)
	os.WriteFile(recent, []byte("{}\n"), 0o644)
	s, err := New(dir, time.UTC, 30*24*time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("a day file from 2020 survived --max-age 30d: %v", err)
	}
	if _, err := os.Stat(recent); err != nil {
		t.Errorf("today's file was removed: %v", err)
	}
}
