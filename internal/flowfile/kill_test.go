package flowfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
)

const (
	kill9DirEnv        = "FLOWFILE_KILL9_DIR"
	kill9FlushInterval = 100 * time.Millisecond
)

// TestKill9Child is the child side of TestKill9: it writes numbered records
// until it is killed, reporting its progress on stdout.
func TestKill9Child(t *testing.T) {
	dir := os.Getenv(kill9DirEnv)
	if dir == "" {
		t.Skip("only run as TestKill9's child")
	}
	w, err := NewWriter(Config{Dir: dir, Interval: time.Second, Location: time.UTC,
		FlushInterval: kill9FlushInterval, BlockRecords: 512, Logger: discardLogger()})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	batch := make([]flow.Record, 20)
	exporter := netip.MustParseAddr("192.0.2.9")
	var id uint64
	for {
		now := time.Now().UnixMilli()
		for i := range batch {
			batch[i] = flow.Record{Exporter: exporter, SrcAddr: exporter, DstAddr: exporter,
				Start: now, End: now, Packets: 1, Bytes: id}
			id++
		}
		w.Write(batch)
		w.Tick()
		fmt.Fprintln(out, "written", id)
		out.Flush()
		time.Sleep(time.Millisecond)
	}
}

func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Child$")
	cmd.Env = append(os.Environ(), kill9DirEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type progress struct {
		at      time.Time
		written uint64
	}
	progressc := make(chan progress, 1<<16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if n, ok := strings.CutPrefix(sc.Text(), "written "); ok {
				v, _ := strconv.ParseUint(n, 10, 64)
				progressc <- progress{time.Now(), v}
			}
		}
		close(progressc)
	}()
	time.Sleep(2500 * time.Millisecond) // crosses at least two 1s boundaries
	killedAt := time.Now()
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	// Records handed to the writer more than FlushInterval (plus slack for
	// a loaded machine) before the kill must have survived.
	safeBefore := killedAt.Add(-kill9FlushInterval - 400*time.Millisecond)
	var mustSurvive, lastWritten uint64
	for p := range progressc {
		if p.at.Before(safeBefore) {
			mustSurvive = p.written
		}
		lastWritten = p.written
	}
	if mustSurvive == 0 {
		t.Fatalf("child made no progress (last %d)", lastWritten)
	}

	completedByChild, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range completedByChild {
		if _, m := readAll(t, e.Path); !m.Complete || m.Recovered {
			t.Errorf("%s completed by the child: meta %+v", e.Path, m)
		}
	}
	// Usually one file was in progress; none when the kill fell between
	// the completion of a file and the creation of the next one's .tmp
	// (a few milliseconds at each rotation).
	tmps := listTmp(t, dir)
	if len(completedByChild) < 2 || len(tmps) > 1 {
		t.Fatalf("after kill: %d completed files, tmp files %v", len(completedByChild), tmps)
	}

	w, err := NewWriter(Config{Dir: dir, Interval: time.Second, Location: time.UTC, Logger: discardLogger(),
		Now: func() time.Time { return time.Now().Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := List(dir)
	var next uint64
	recovered := 0
	for _, e := range files {
		r, err := Open(e.Path)
		if err != nil {
			t.Fatal(err)
		}
		if m := r.Meta(); !m.Complete {
			t.Errorf("%s: not complete after recovery: %+v", e.Path, m)
		} else if m.Recovered {
			recovered++
		}
		var recs []flow.Record
		for {
			recs, err = r.Next(recs[:0])
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", e.Path, err)
			}
			for _, rec := range recs {
				if rec.Bytes != next {
					t.Fatalf("%s: record id %d, want %d (gap or duplicate)", e.Path, rec.Bytes, next)
				}
				next++
			}
		}
		r.Close()
	}
	if recovered != len(tmps) {
		t.Errorf("%d recovered files, want %d (the .tmp files left by the kill)", recovered, len(tmps))
	}
	if next < mustSurvive {
		t.Errorf("recovered %d records, but %d were written more than %v before the kill", next, mustSurvive, kill9FlushInterval)
	}
	t.Logf("child wrote %d records, %d survived the kill (%d had to)", lastWritten, next, mustSurvive)
}
