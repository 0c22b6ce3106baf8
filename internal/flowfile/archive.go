package flowfile

import (
	"cmp"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Entry is one completed flow file found by List.
type Entry struct {
	Path  string
	Start time.Time
}

// List returns the completed flow files anywhere under dir, sorted by start
// time. In-progress (.tmp) and foreign files are ignored.
func List(dir string) ([]Entry, error) { return list(dir, false) }

// list is List; with ownOnly, the subdirectories that are archives of
// their own (another writer's lock in them) are left out, for the
// writer's expiry.
func list(dir string, ownOnly bool) ([]Entry, error) {
	var out []Entry
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			return nil // an unreadable subdirectory is skipped
		}
		if ownOnly && d.IsDir() && isOtherArchive(dir, path) {
			return fs.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if start, ok := ParseName(d.Name()); ok {
			out = append(out, Entry{Path: path, Start: start})
		}
		return nil
	})
	slices.SortFunc(out, func(a, b Entry) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return cmp.Compare(a.Path, b.Path)
	})
	return out, err
}

// Expire removes completed files under dir whose start is more than maxAge
// before now, then the oldest ones while the completed files total more
// than maxBytes. A zero limit is off. Emptied date subdirectories are
// removed too. It returns the removed paths.
//
// Subdirectories that are archives of their own (a writer's lock file in
// them, for example a probe's archive inside the collector's) are left to
// their own writer.
func Expire(dir string, maxBytes int64, maxAge time.Duration, now time.Time) (removed []string, err error) {
	entries, err := list(dir, true)
	if err != nil {
		return nil, err
	}
	sizes := make([]int64, len(entries))
	var total int64
	for i, e := range entries {
		if st, serr := os.Stat(e.Path); serr == nil {
			sizes[i] = st.Size()
			total += sizes[i]
		}
	}
	var errs []error
	for i, e := range entries {
		if i == len(entries)-1 {
			// Never the newest file: it was just completed, and the
			// scanner and --exec have yet to see it.
			break
		}
		tooOld := maxAge > 0 && now.Sub(e.Start) > maxAge
		tooBig := maxBytes > 0 && total > maxBytes
		if !tooOld && !tooBig {
			break // entries are oldest first
		}
		if rerr := os.Remove(e.Path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			errs = append(errs, rerr)
			continue
		}
		total -= sizes[i]
		removed = append(removed, e.Path)
		removeEmptyParents(dir, filepath.Dir(e.Path))
	}
	return removed, errors.Join(errs...)
}

// removeEmptyParents removes sub and its parents up to (not including) root
// while they are empty.
func removeEmptyParents(root, sub string) {
	root = filepath.Clean(root)
	for sub = filepath.Clean(sub); sub != root && len(sub) > len(root); sub = filepath.Dir(sub) {
		if os.Remove(sub) != nil {
			return
		}
	}
}

// isOtherArchive reports whether path, a directory under the archive root,
// is the root of another archive: it holds a writer's lock file (which
// stays after its writer stopped).
func isOtherArchive(root, path string) bool {
	if path == root {
		return false
	}
	_, err := os.Lstat(filepath.Join(path, lockName))
	return err == nil
}
