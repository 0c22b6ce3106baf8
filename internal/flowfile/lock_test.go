package flowfile

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestWriterLocksDirectory checks that a second writer on a directory in
// use is refused with an error naming the owner, and that the directory
// is free again once the first writer is closed.
func TestWriterLocksDirectory(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock(t0)
	first := testWriter(t, dir, clock, nil)
	_, err := NewWriter(Config{Dir: dir, Location: testLoc, Now: clock.Now, Logger: discardLogger()})
	if !errors.Is(err, ErrDirInUse) {
		t.Fatalf("second writer on %s: err = %v, want ErrDirInUse", dir, err)
	}
	if !strings.Contains(err.Error(), strconv.Itoa(os.Getpid())) {
		t.Errorf("error %q does not name the owning process", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Minute)
	again, err := NewWriter(Config{Dir: dir, Location: testLoc, Now: clock.Now, Logger: discardLogger()})
	if err != nil {
		t.Fatalf("writer after the first was closed: %v", err)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	// Another directory is not affected.
	other := testWriter(t, t.TempDir(), clock, nil)
	other.Close()
}

// TestNestedArchiveLeftAlone checks that a writer leaves an archive of its
// own inside its directory (another writer's, for example a probe's) to
// that writer: recovery does not complete its .tmp and expiry does not
// remove its files.
func TestNestedArchiveLeftAlone(t *testing.T) {
	outer := t.TempDir()
	inner := filepath.Join(outer, "probe")
	clock := newFakeClock(t0)
	// The inner archive: one completed file, and one in progress whose
	// writer is still running.
	iw := testWriter(t, inner, clock, func(c *Config) { c.Interval = time.Minute })
	iw.Write(sectionsRecords(rand.New(rand.NewPCG(1, 2)), 10, true))
	clock.Add(time.Minute)
	iw.Write(sectionsRecords(rand.New(rand.NewPCG(3, 4)), 10, true))
	iw.waitIdle()
	innerDone, err := List(inner)
	if err != nil || len(innerDone) != 1 {
		t.Fatalf("inner archive: %v, %v", innerDone, err)
	}
	innerTmp := listTmp(t, inner)
	if len(innerTmp) != 1 {
		t.Fatalf("inner .tmp files: %v", innerTmp)
	}
	// The outer writer starts an hour later with an expiry that would
	// remove everything older.
	clock.Add(time.Hour)
	ow := testWriter(t, outer, clock, func(c *Config) { c.MaxAge = time.Minute; c.Interval = time.Minute })
	clock.Add(2 * time.Minute)
	ow.Write(sectionsRecords(rand.New(rand.NewPCG(5, 6)), 10, true))
	if err := ow.Close(); err != nil {
		t.Fatal(err)
	}
	if got := listTmp(t, inner); len(got) != 1 || got[0] != innerTmp[0] {
		t.Errorf("inner .tmp after the outer writer ran: %v, want %v", got, innerTmp)
	}
	if _, err := os.Stat(innerDone[0].Path); err != nil {
		t.Errorf("the outer writer's expiry removed the inner archive's file: %v", err)
	}
	if err := iw.Close(); err != nil {
		t.Fatal(err)
	}
}
