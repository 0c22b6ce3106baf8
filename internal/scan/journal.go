package scan

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// journal records which flow files have been scanned, durably: one line
// per completed file, appended and fsynced before the file is disposed of.
// A file not in the journal is scanned (again) on the next pass, so a crash
// in the middle of a file makes the scanner redo that file; report modules
// make that harmless (RRD updates at an already stored time are skipped).
type journal struct {
	path string
	f    *os.File
	done map[string]bool // base names
	n    int             // lines in the file
}

// openJournal loads (or creates) the journal at path.
func openJournal(path string) (*journal, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	j := &journal{path: path, done: map[string]bool{}}
	if f, err := os.Open(path); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if name, ok := strings.CutPrefix(line, "done "); ok && name != "" {
				j.done[name] = true
				j.n++
			}
			// A torn last line (crash while appending) is ignored: that
			// file is simply scanned again.
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("reading scan journal %s: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	j.f = f
	return j, nil
}

// isDone reports whether the file with this base name was scanned.
func (j *journal) isDone(name string) bool { return j.done[name] }

// markDone records the file durably.
func (j *journal) markDone(name string) error {
	if strings.ContainsAny(name, "\n\r") {
		return fmt.Errorf("file name %q cannot be journaled", name)
	}
	if _, err := j.f.WriteString("done " + name + "\n"); err != nil {
		return err
	}
	if err := j.f.Sync(); err != nil {
		return err
	}
	j.done[name] = true
	j.n++
	return nil
}

// compact rewrites the journal keeping only names in keep, when it has
// grown to more than twice their number.
func (j *journal) compact(keep map[string]bool) error {
	if j.n < 1024 || j.n < 2*len(keep) {
		return nil
	}
	tmp := j.path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	kept := map[string]bool{}
	for name := range j.done {
		if keep[name] {
			fmt.Fprintf(w, "done %s\n", name)
			kept[name] = true
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	f.Close()
	if err := os.Rename(tmp, j.path); err != nil {
		return err
	}
	j.f.Close()
	if j.f, err = os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return err
	}
	j.done, j.n = kept, len(kept)
	return nil
}

func (j *journal) close() error { return j.f.Close() }
