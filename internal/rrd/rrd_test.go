package rrd

import (
	"bytes"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCreateUpdateFetch stores ABSOLUTE counts and reads back the rates,
// also through the rrdtool command, which must read our files.
func TestCreateUpdateFetch(t *testing.T) {
	c := New("")
	testRoundTrip(t, c, filepath.Join(t.TempDir(), "sub", "total.rrd"))
}

func testRoundTrip(t *testing.T, c *Client, path string) {
	t.Helper()
	step := 300 * time.Second
	t0 := time.Unix(1_800_000_000, 0).Truncate(step)
	if err := c.Create(path, step, t0.Add(-step), FlowDS(step, "in_bytes", "out_bytes"), FlowScanRRAs(step)); err != nil {
		t.Fatal(err)
	}
	// Creating again leaves the file alone.
	if err := c.Create(path, step, t0, FlowDS(step, "x"), FlowScanRRAs(step)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		// ABSOLUTE: 3000 bytes in a 300 s step is 10 bytes/s.
		if err := c.Update(path, t0.Add(time.Duration(i)*step), 3000*float64(i+1), 600); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Update(path, t0.Add(3*step), 1, 1); !errors.Is(err, ErrPastUpdate) {
		t.Fatalf("second update at the same time: %v, want ErrPastUpdate", err)
	}
	if err := c.Flush(path); err != nil {
		t.Fatal(err)
	}
	s, err := c.Fetch(path, "AVERAGE", t0, t0.Add(3*step), step)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Names) != 2 || s.Names[0] != "in_bytes" || s.Step != step {
		t.Fatalf("names %v step %v", s.Names, s.Step)
	}
	want := map[int64][2]float64{
		t0.Add(step).Unix():     {20, 2},
		t0.Add(2 * step).Unix(): {30, 2},
		t0.Add(3 * step).Unix(): {40, 2},
	}
	found := 0
	for i, row := range s.Rows {
		w, ok := want[s.Time(i).Unix()]
		if !ok {
			continue
		}
		found++
		if math.Abs(row[0]-w[0]) > 1e-9 || math.Abs(row[1]-w[1]) > 1e-9 {
			t.Errorf("at %v: %v, want %v", s.Time(i), row, w)
		}
	}
	if found != 3 {
		t.Errorf("found %d of 3 expected rows in %+v", found, s)
	}
	if _, err := exec.LookPath("rrdtool"); err == nil {
		out, err := exec.Command("rrdtool", "info", path).CombinedOutput()
		if err != nil || !strings.Contains(string(out), `ds[out_bytes].type = "ABSOLUTE"`) || !strings.Contains(string(out), "step = 300") {
			t.Errorf("rrdtool info: %v\n%s", err, out)
		}
	}
}

func TestGraphAndXport(t *testing.T) {
	c := New("")
	path := filepath.Join(t.TempDir(), "g.rrd")
	step := 60 * time.Second
	t0 := time.Unix(1_800_000_000, 0).Truncate(step)
	if err := c.Create(path, step, t0.Add(-step), FlowDS(step, "in_bytes"), FlowScanRRAs(step)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		if err := c.Update(path, t0.Add(time.Duration(i)*step), float64(6000*(i%5+1))); err != nil {
			t.Fatal(err)
		}
	}
	start, end := t0.Unix(), t0.Add(29*step).Unix()
	png, err := c.Graph("--start", itoa(start), "--end", itoa(end), "--width", "300", "--height", "100",
		"DEF:b="+path+":in_bytes:AVERAGE", "CDEF:bits=b,8,*", "AREA:bits#00cc00:in")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n")) || len(png) < 500 {
		t.Errorf("not a PNG: %d bytes %q", len(png), png[:min(8, len(png))])
	}
	x, err := c.Xport("--start", itoa(start), "--end", itoa(end), "--step", "60",
		"DEF:b="+path+":in_bytes:AVERAGE", "CDEF:bits=b,8,*", "XPORT:bits:bits")
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Names) != 1 || x.Names[0] != "bits" || len(x.Rows) < 20 {
		t.Fatalf("xport %+v", x)
	}
	// 6000*k bytes per 60 s = 100*k bytes/s = 800*k bits/s, k in 1..5.
	known := 0
	for _, r := range x.Rows {
		if math.IsNaN(r[0]) {
			continue
		}
		known++
		k := r[0] / 800
		if k < 1-1e-9 || k > 5+1e-9 || math.Abs(k-math.Round(k)) > 1e-9 {
			t.Errorf("xport value %v is not 800*k", r[0])
		}
	}
	if known < 20 {
		t.Errorf("only %d known xport rows", known)
	}
	if _, err := c.Graph("DEF:b=/nonexistent.rrd:x:AVERAGE", "LINE1:b#000"); err == nil {
		t.Error("graph of a missing file succeeded")
	}
}

// TestRRDCached runs the same round trip through a private rrdcached.
func TestRRDCached(t *testing.T) {
	bin, err := exec.LookPath("rrdcached")
	if err != nil {
		t.Skip("rrdcached not installed (apt-get install rrdcached)")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "rrdcached.sock")
	cmd := exec.Command(bin, "-g", "-l", "unix:"+sock, "-b", dir, "-B", "-p", filepath.Join(dir, "pid"), "-j", filepath.Join(dir, "journal"))
	os.Mkdir(filepath.Join(dir, "journal"), 0o755)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("rrdcached socket did not appear")
		}
		time.Sleep(20 * time.Millisecond)
	}
	testRoundTrip(t, New("unix:"+sock), filepath.Join(dir, "cached.rrd"))
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// TestUpdateSpanAfterGap: a file after downtime keeps its counts; only the
// gap is unknown.
func TestUpdateSpanAfterGap(t *testing.T) {
	c := New("")
	path := filepath.Join(t.TempDir(), "gap.rrd")
	step := 300 * time.Second
	t0 := time.Unix(1_800_000_000, 0).Truncate(step)
	if err := c.Create(path, step, t0, FlowDS(step, "bytes"), FlowScanRRAs(step)); err != nil {
		t.Fatal(err)
	}
	// File 1: [t0, t0+5m); then two hours with no files; file 2: [t0+2h, t0+2h5m).
	if err := c.UpdateSpan(path, step, t0, t0.Add(step), 3000); err != nil {
		t.Fatal(err)
	}
	s2 := t0.Add(2 * time.Hour)
	if err := c.UpdateSpan(path, step, s2, s2.Add(step), 6000); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateSpan(path, step, s2, s2.Add(step), 6000); !errors.Is(err, ErrPastUpdate) {
		t.Errorf("same file again: %v, want ErrPastUpdate", err)
	}
	s, err := c.Fetch(path, "AVERAGE", t0, s2.Add(step), step)
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range s.Rows {
		at := s.Time(i)
		switch {
		case at.Equal(t0.Add(step)):
			if row[0] != 10 {
				t.Errorf("file 1: %v, want 10 bytes/s", row[0])
			}
		case at.Equal(s2.Add(step)):
			if row[0] != 20 {
				t.Errorf("file 2 after the gap: %v, want 20 bytes/s", row[0])
			}
		case at.After(t0.Add(step)) && at.Before(s2.Add(step)):
			if !math.IsNaN(row[0]) {
				t.Errorf("gap at %v: %v, want unknown", at, row[0])
			}
		}
	}
}

// TestXportTimes: xport rows are stamped like fetch rows, at the end of
// their step, as `rrdtool xport` prints them.
func TestXportTimes(t *testing.T) {
	c := New("")
	path := filepath.Join(t.TempDir(), "x.rrd")
	step := 60 * time.Second
	t0 := time.Unix(1_800_000_000, 0).Truncate(step)
	if err := c.Create(path, step, t0, FlowDS(step, "v"), FlowScanRRAs(step)); err != nil {
		t.Fatal(err)
	}
	// One step, (t0+60, t0+120], holds 120 per minute = 2/s; the others 1/s.
	for i := 1; i <= 5; i++ {
		v := 60.0
		if i == 2 {
			v = 120
		}
		if err := c.Update(path, t0.Add(time.Duration(i)*step), v); err != nil {
			t.Fatal(err)
		}
	}
	x, err := c.Xport("--start", itoa(t0.Unix()), "--end", itoa(t0.Add(5*step).Unix()), "--step", "60",
		"DEF:v="+path+":v:AVERAGE", "XPORT:v:v")
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range x.Rows {
		if row[0] == 2 && !x.Time(i).Equal(t0.Add(2*step)) {
			t.Errorf("the 2/s step is stamped %v, want %v", x.Time(i), t0.Add(2*step))
		}
	}
	// The command stamps its first row at <start> (Debian's prints no <t>
	// per row): the 2/s row must be the one stamped t0+2 steps.
	out, err := exec.Command("rrdtool", "xport", "--start", itoa(t0.Unix()), "--end", itoa(t0.Add(5*step).Unix()), "--step", "60",
		"DEF:v="+path+":v:AVERAGE", "XPORT:v:v").CombinedOutput()
	if err == nil {
		text := string(out)
		first := strings.Index(text, "<row>")
		rows := strings.Split(text[first:], "<row>")[1:]
		wantStart := "<start>" + itoa(t0.Add(step).Unix()) + "</start>"
		if !strings.Contains(text, wantStart) || len(rows) < 2 || !strings.Contains(rows[1], "2.0000000000e+00") {
			t.Errorf("rrdtool xport disagrees about where the 2/s step is (want %s and the 2/s value in row 2):\n%s", wantStart, out)
		}
	}
}

// TestUpdateSpanLongFile: a 15-minute file in a 5-minute RRD is stored as
// three equal steps instead of being lost past the heartbeat.
func TestUpdateSpanLongFile(t *testing.T) {
	c := New("")
	path := filepath.Join(t.TempDir(), "long.rrd")
	step := 300 * time.Second
	t0 := time.Unix(1_800_000_000, 0).Truncate(step)
	if err := c.Create(path, step, t0, FlowDS(step, "bytes"), FlowScanRRAs(step)); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateSpan(path, step, t0, t0.Add(15*time.Minute), 900000); err != nil {
		t.Fatal(err)
	}
	s, err := c.Fetch(path, "AVERAGE", t0, t0.Add(15*time.Minute), step)
	if err != nil {
		t.Fatal(err)
	}
	known := 0
	for i, row := range s.Rows {
		if s.Time(i).After(t0) && !s.Time(i).After(t0.Add(15*time.Minute)) {
			known++
			if row[0] != 1000 { // 900000 bytes over 900 s
				t.Errorf("at %v: %v, want 1000 bytes/s", s.Time(i), row[0])
			}
		}
	}
	if known != 3 {
		t.Errorf("%d steps in the file's span, want 3", known)
	}
}
