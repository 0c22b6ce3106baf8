package flowfile

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of size bytes on dir for the test, or skips
// the test when this process may not mount (not root, no CAP_SYS_ADMIN,
// a container without mount rights).
func mountTmpfs(t *testing.T, dir string, size int) {
	t.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		t.Skipf("cannot mount a tmpfs to fill (needs root): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

// resizeTmpfs changes the size of the tmpfs mounted on dir.
func resizeTmpfs(t *testing.T, dir string, size int) {
	t.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT, fmt.Sprintf("size=%d", size)); err != nil {
		t.Fatalf("remount %s: %v", dir, err)
	}
}

// fillDisk writes a file under dir until the file system is full and
// returns its path.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("filler: %v", err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for range 1 << 16 {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filler: %v", err)
			}
			return path
		}
	}
	t.Fatal("filler: the file system never filled")
	return ""
}

// closeAndCheck closes w and checks the archive under dir: every record
// sent was written or dropped, the files hold exactly the records
// the writer counts as written, the flows each file says it dropped add
// up to the writer's count, and no .tmp is left. It returns the records
// read per file.
func closeAndCheck(t *testing.T, dir string, w *Writer, sent int) []int {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.RecordsWritten+st.DroppedRecords != uint64(sent) {
		t.Errorf("written %d + dropped %d != %d sent", st.RecordsWritten, st.DroppedRecords, sent)
	}
	if tmp := listTmp(t, dir); len(tmp) != 0 {
		t.Errorf(".tmp files left after Close: %v", tmp)
	}
	files, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	var records, dropped uint64
	var perFile []int
	for _, e := range files {
		got, m := readAll(t, e.Path)
		records += uint64(len(got))
		dropped += m.DroppedFlows
		perFile = append(perFile, len(got))
		if m.DroppedFlows > 0 && m.Complete {
			t.Errorf("%s: %d flows dropped but the file reads complete", e.Path, m.DroppedFlows)
		}
	}
	if records != st.RecordsWritten {
		t.Errorf("files hold %d records, the writer counts %d written", records, st.RecordsWritten)
	}
	if dropped != st.DroppedRecords {
		t.Errorf("files report %d dropped flows, the writer counts %d", dropped, st.DroppedRecords)
	}
	return perFile
}

// TestDiskFillsWhileWriting fills a real (tmpfs) file system with flows:
// blocks that do not fit are dropped and counted, nothing written before
// is damaged, and once there is room again the same file takes the next
// blocks.
func TestDiskFillsWhileWriting(t *testing.T) {
	dir := t.TempDir()
	mountTmpfs(t, dir, 128<<10)
	clock := newFakeClock(t0.Add(time.Minute))
	w := testWriter(t, dir, clock, func(c *Config) { c.BlockRecords = 256 })
	rng := rand.New(rand.NewPCG(21, 22))
	sent := 0
	for range 200 {
		w.Write(synthV5(rng, 256, t0))
		sent += 256
		w.waitIdle()
		if w.Stats().DroppedRecords > 0 {
			break
		}
	}
	st := w.Stats()
	if st.DroppedRecords == 0 || st.Errors == 0 {
		t.Fatalf("the file system never filled: %+v", st)
	}
	// Still full: dropped and counted, the writer goes on.
	for range 3 {
		w.Write(synthV5(rng, 256, t0))
		sent += 256
	}
	w.waitIdle()
	full := w.Stats()
	if full.DroppedRecords < st.DroppedRecords+3*256 {
		t.Errorf("writes to a full disk: dropped %d, then %d", st.DroppedRecords, full.DroppedRecords)
	}

	resizeTmpfs(t, dir, 8<<20)
	for range 3 {
		w.Write(synthV5(rng, 256, t0))
		sent += 256
	}
	w.waitIdle()
	after := w.Stats()
	if after.RecordsWritten != full.RecordsWritten+3*256 || after.DroppedRecords != full.DroppedRecords {
		t.Errorf("with room again: written %d → %d, dropped %d → %d; want every new record written",
			full.RecordsWritten, after.RecordsWritten, full.DroppedRecords, after.DroppedRecords)
	}
	if perFile := closeAndCheck(t, dir, w, sent); len(perFile) != 1 {
		t.Errorf("files = %v, want the one interval's file", perFile)
	}
}

// TestDiskFullWhenFileStarts starts an interval on a full file system, so
// that its file cannot be created: the interval's flows are dropped and
// counted until there is room again, and then written to its file, not
// lost until the next rotation.
func TestDiskFullWhenFileStarts(t *testing.T) {
	dir := t.TempDir()
	mountTmpfs(t, dir, 256<<10)
	clock := newFakeClock(t0.Add(time.Minute))
	w := testWriter(t, dir, clock, func(c *Config) { c.BlockRecords = 256 })
	rng := rand.New(rand.NewPCG(23, 24))
	sent := 256
	w.Write(synthV5(rng, 256, t0))
	clock.Set(t0.Add(6 * time.Minute))
	w.Tick() // completes the first file; the second one is opened
	w.waitIdle()
	if err := w.Rotate(); err != nil { // and completed (empty) too
		t.Fatal(err)
	}
	// The first files are complete and on disk; fill what is left, then
	// rotate into a file that cannot be created.
	filler := fillDisk(t, dir)
	clock.Set(t0.Add(11 * time.Minute))
	w.Tick()
	w.Write(synthV5(rng, 256, t0))
	sent += 256
	w.waitIdle()
	st := w.Stats()
	if st.DroppedRecords != 256 || st.Errors == 0 {
		t.Fatalf("flows of an interval whose file could not be created: %+v", st)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	w.Write(synthV5(rng, 256, t0))
	sent += 256
	w.waitIdle()
	after := w.Stats()
	if after.RecordsWritten != st.RecordsWritten+256 {
		t.Errorf("with room again in the same interval: written %d → %d, dropped %d → %d; want the new records written",
			st.RecordsWritten, after.RecordsWritten, st.DroppedRecords, after.DroppedRecords)
	}
	closeAndCheck(t, dir, w, sent)
}
