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

// errLockUnsupported is lockDir's error when the file system has no locks.
var errLockUnsupported = errors.New("file locks not supported")

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
		if errors.Is(err, unix.ENOLCK) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
			// A file system without locks (NFS without a lock
			// manager, some FUSE ones): go on without.
			f.Close()
			return nil, errLockUnsupported
		}
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

// DirLock is an archive directory's writer lock, taken by LockDir.
type DirLock struct {
	f *os.File
	// Unsupported is true when the directory's file system has no file
	// locks: the lock is then not held (NewWriter logs a warning).
	Unsupported bool
}

// LockDir creates dir if needed and takes its exclusive writer lock, for a
// caller that must hold the directory before it touches anything in it
// (the collector's state, spool and sockets); hand it to NewWriter in
// Config.Lock.
func LockDir(dir string) (*DirLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("flowfile: %w", err)
	}
	f, err := lockDir(dir)
	if errors.Is(err, errLockUnsupported) {
		return &DirLock{Unsupported: true}, nil
	}
	if err != nil {
		return nil, err
	}
	return &DirLock{f: f}, nil
}

// Release gives the lock up; on a nil or released lock it does nothing.
func (l *DirLock) Release() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}
