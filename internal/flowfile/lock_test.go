package flowfile

import (
	"errors"
	"os"
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
