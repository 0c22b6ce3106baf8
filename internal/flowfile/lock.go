package flowfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// lockName is the writer's lock file, under the archive's state directory.
const lockName = ".flowscan/writer.lock"

// ErrDirInUse is returned by NewWriter when another writer (usually
// another collector) holds the archive directory.
var ErrDirInUse = errors.New("flowfile: archive directory in use by another writer")

// lockDir takes the archive's exclusive writer lock (a flock on
// DIR/.flowscan/writer.lock, released when the file is closed or the
// process dies), so that two collectors never write into one directory
// and recover, complete or rename each other's files. The lock file holds
// the owner's process id, for the error the next one gets.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("flowfile: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("flowfile: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		owner := make([]byte, 32)
		n, _ := f.ReadAt(owner, 0)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid := string(bytes.TrimSpace(owner[:n]))
			if pid == "" {
				pid = "unknown"
			}
			return nil, fmt.Errorf("%w: %s (locked by process %s); give each collector its own directory", ErrDirInUse, dir, pid)
		}
		return nil, fmt.Errorf("flowfile: locking %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
