package scan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/flowfile"
	"github.com/flowscan/flowscan/internal/report"
	"github.com/flowscan/flowscan/internal/rrd"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// t0 is the start of the first test file.
var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

const step = 5 * time.Minute

// writeFiles writes n five-minute flow files; file i holds i+1 flows of
// 100 bytes each.
func writeFiles(t testing.TB, dir string, n int) {
	t.Helper()
	clock := t0
	w, err := flowfile.NewWriter(flowfile.Config{Dir: dir, Interval: step, Location: time.UTC, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		clock = t0.Add(time.Duration(i)*step + time.Second)
		recs := make([]flow.Record, i+1)
		for j := range recs {
			recs[j] = flow.Record{SrcAddr: netip.AddrFrom4([4]byte{10, 0, byte(i), byte(j)}), DstAddr: netip.MustParseAddr("192.0.2.1"),
				Bytes: 100, Packets: 1, Start: clock.UnixMilli(), End: clock.UnixMilli()}
		}
		if err := w.Write(recs); err != nil {
			t.Fatal(err)
		}
	}
	clock = t0.Add(time.Duration(n) * step)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := flowfile.List(dir); len(entries) != n {
		t.Fatalf("wrote %d files, want %d", len(entries), n)
	}
}

// recorder is a test module that remembers what it saw and stores each
// file's byte total in an RRD, at the file's end time.
type recorder struct {
	rrd      *rrd.Client
	path     string
	files    []time.Time
	flows    []int
	bytes    uint64
	failOnce bool
	// failFile, if set, makes Report fail for the file starting then.
	failFile time.Time
	// killAfterUpdate, if > 0, SIGKILLs the process right after the RRD
	// update of that (1-based) file: a crash before the journal entry.
	killAfterUpdate int
	cur             *report.File
}

func (r *recorder) Name() string { return "recorder" }
func (r *recorder) PerFile(f *report.File) error {
	r.cur = f
	r.files = append(r.files, f.Start)
	r.flows = append(r.flows, 0)
	r.bytes = 0
	return nil
}
func (r *recorder) Wanted(rec *flow.Record) bool {
	r.flows[len(r.flows)-1]++
	r.bytes += rec.Bytes
	return rec.Bytes > 0
}
func (r *recorder) Report() error {
	if r.failOnce {
		r.failOnce = false
		return errors.New("disk full (simulated)")
	}
	if !r.failFile.IsZero() && r.cur.Start.Equal(r.failFile) {
		return errors.New("corrupt RRD (simulated)")
	}
	if err := r.rrd.Create(r.path, step, t0.Add(-step), rrd.FlowDS(step, "bytes"), rrd.FlowScanRRAs(step)); err != nil {
		return err
	}
	err := r.rrd.Update(r.path, r.cur.End, float64(r.bytes))
	if err != nil && !errors.Is(err, rrd.ErrPastUpdate) {
		return err
	}
	if r.killAfterUpdate == len(r.files) {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(10 * time.Second)
	}
	return nil
}

func newScanner(t testing.TB, dir string, m report.Module, after string) *Scanner {
	t.Helper()
	s, err := New(Config{Dir: dir, Modules: []report.Module{m}, After: after, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBacklogInOrderOnce scans a backlog oldest first, then nothing more
// on the next pass or after a restart.
func TestBacklogInOrderOnce(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, 5)
	rec := &recorder{rrd: rrd.New(""), path: filepath.Join(t.TempDir(), "total.rrd")}
	s := newScanner(t, dir, rec, "")
	st, err := s.Pass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 5 || st.Flows != 15 {
		t.Errorf("pass: %+v, want 5 files 15 flows", st)
	}
	for i, start := range rec.files {
		if want := t0.Add(time.Duration(i) * step); !start.Equal(want) || rec.flows[i] != i+1 {
			t.Errorf("file %d: start %v flows %d, want %v and %d", i, start, rec.flows[i], want, i+1)
		}
	}
	if st, _ := s.Pass(context.Background()); st.Files != 0 {
		t.Errorf("second pass scanned %d files", st.Files)
	}
	s.Close()
	s2 := newScanner(t, dir, rec, "")
	defer s2.Close()
	if st, _ := s2.Pass(context.Background()); st.Files != 0 {
		t.Errorf("pass after restart scanned %d files", st.Files)
	}
}

// TestReportFailureRetries: a module failing on a file stops the pass
// before that file is journaled; the next pass scans it again.
func TestReportFailureRetries(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, 3)
	rec := &recorder{rrd: rrd.New(""), path: filepath.Join(t.TempDir(), "total.rrd"), failOnce: true}
	s := newScanner(t, dir, rec, "")
	defer s.Close()
	if _, err := s.Pass(context.Background()); err == nil {
		t.Fatal("pass with a failing module succeeded")
	}
	st, err := s.Pass(context.Background())
	if err != nil || st.Files != 3 {
		t.Fatalf("retry pass: %+v %v, want all 3 files", st, err)
	}
	checkRRD(t, rec.path, 3)
}

// TestReportFailureGivesUp: a module that keeps failing on one file holds
// later files back only for MaxAttempts passes; then that file is given
// up (journaled, counted) and the later files are scanned, in order.
func TestReportFailureGivesUp(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, 4)
	rec := &recorder{rrd: rrd.New(""), path: filepath.Join(t.TempDir(), "total.rrd"), failFile: t0.Add(step)}
	s, err := New(Config{Dir: dir, Modules: []report.Module{rec}, Logger: quiet, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 1; i < 3; i++ {
		st, err := s.Pass(context.Background())
		if err == nil || st.Files != 0 && i > 1 {
			t.Fatalf("pass %d: %+v %v: want the failing file to stop the pass", i, st, err)
		}
	}
	st, err := s.Pass(context.Background())
	if err != nil || st.GivenUp != 1 || st.Files != 2 || s.GivenUp() != 1 {
		t.Fatalf("third pass: %+v %v: want the file given up and the 2 later files scanned", st, err)
	}
	if st, _ := s.Pass(context.Background()); st.Files != 0 || st.GivenUp != 0 {
		t.Errorf("pass after giving up: %+v, want nothing left", st)
	}
}

// TestAfterDeleteAndSave applies FlowScan's disposal policies.
func TestAfterDeleteAndSave(t *testing.T) {
	for _, after := range []string{AfterDelete, AfterSave} {
		t.Run(after, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, 2)
			rec := &recorder{rrd: rrd.New(""), path: filepath.Join(t.TempDir(), "total.rrd")}
			s := newScanner(t, dir, rec, after)
			defer s.Close()
			if st, err := s.Pass(context.Background()); err != nil || st.Files != 2 {
				t.Fatalf("%+v %v", st, err)
			}
			left, _ := flowfile.List(dir)
			saved, _ := flowfile.List(filepath.Join(dir, "saved"))
			wantLeft, wantSaved := 0, 0
			if after == AfterSave {
				wantLeft, wantSaved = 2, 2 // List sees saved/ too; the scanner skips it
			}
			if len(left) != wantLeft || len(saved) != wantSaved {
				t.Errorf("%d files left, %d saved; want %d and %d", len(left), len(saved), wantLeft, wantSaved)
			}
			if st, _ := s.Pass(context.Background()); st.Files != 0 {
				t.Errorf("second pass scanned %d saved files", st.Files)
			}
		})
	}
}

// checkRRD asserts that the RRD holds file i's bytes (100*(i+1)) for the
// step ending at its end time, for the first n files: each counted once.
func checkRRD(t *testing.T, path string, n int) {
	t.Helper()
	s, err := rrd.New("").Fetch(path, "AVERAGE", t0, t0.Add(time.Duration(n)*step), step)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]float64{}
	for i, row := range s.Rows {
		got[s.Time(i).Unix()] = row[0]
	}
	for i := 0; i < n; i++ {
		end := t0.Add(time.Duration(i+1) * step)
		want := float64(100*(i+1)) / step.Seconds()
		if v, ok := got[end.Unix()]; !ok || math.Abs(v-want) > 1e-9 {
			t.Errorf("file %d: RRD has %v at %v, want %v (bytes/s)", i, v, end, want)
		}
	}
}

// TestKill9MidScan kills a scanner process after a module stored a file's
// RRD update but before the file was journaled, restarts it, and checks
// that every file is counted exactly once.
func TestKill9MidScan(t *testing.T) {
	if dir := os.Getenv("FLOWSCAN_SCAN_CHILD_DIR"); dir != "" {
		k, _ := strconv.Atoi(os.Getenv("FLOWSCAN_SCAN_CHILD_KILL"))
		rec := &recorder{rrd: rrd.New(""), path: os.Getenv("FLOWSCAN_SCAN_CHILD_RRD"), killAfterUpdate: k}
		s := newScanner(t, dir, rec, "")
		if _, err := s.Pass(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	dir := t.TempDir()
	writeFiles(t, dir, 6)
	rrdPath := filepath.Join(t.TempDir(), "total.rrd")
	run := func(kill int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestKill9MidScan$")
		cmd.Env = append(os.Environ(), "FLOWSCAN_SCAN_CHILD_DIR="+dir, "FLOWSCAN_SCAN_CHILD_RRD="+rrdPath,
			"FLOWSCAN_SCAN_CHILD_KILL="+strconv.Itoa(kill))
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}
	err := run(3)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed: %v", err)
	}
	j, err := openJournal(filepath.Join(dir, ".flowscan", "scan.journal"))
	if err != nil {
		t.Fatal(err)
	}
	if len(j.done) != 2 {
		t.Errorf("journal after the crash has %d files, want 2", len(j.done))
	}
	j.close()
	if err := run(0); err != nil {
		t.Fatal(err)
	}
	checkRRD(t, rrdPath, 6)
}

// TestUnreadableFiles: a damaged file is journaled and skipped so later
// files are scanned; a file the system cannot open now is retried.
func TestUnreadableFiles(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, 2)
	bad := filepath.Join(dir, flowfile.FileName(t0.Add(-step)))
	if err := os.WriteFile(bad, []byte("not a flow file"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{rrd: rrd.New(""), path: filepath.Join(t.TempDir(), "total.rrd")}
	s := newScanner(t, dir, rec, "")
	defer s.Close()
	st, err := s.Pass(context.Background())
	if err != nil || st.Files != 2 {
		t.Fatalf("pass over a damaged file: %+v %v, want the 2 good files", st, err)
	}
	if !s.journal.isDone(filepath.Base(bad)) {
		t.Error("damaged file not journaled")
	}
	if os.Getuid() == 0 {
		return // root reads files whatever their permissions
	}
	locked := filepath.Join(dir, flowfile.FileName(t0.Add(10*step)))
	os.WriteFile(locked, []byte("x"), 0o000)
	if _, err := s.Pass(context.Background()); err == nil {
		t.Error("a file that cannot be opened now was skipped, not retried")
	}
}
