// Package scan runs report modules over completed flow files, each file
// exactly once and in time order, as FlowScan's flowscan script did: for
// every file, PerFile on each module, Wanted for every flow, then Report.
//
// Progress is kept in a journal (DIR/.flowscan/scan.journal): a file is
// journaled only after every module reported it, so a crash mid-file means
// the file is scanned again, and modules make the second pass harmless
// (RRD updates at an already stored time are skipped). Files left over
// from downtime are scanned oldest first.
package scan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/flowfile"
	"github.com/flowscan/flowscan/internal/report"
)

// What to do with a file once it is scanned.
const (
	AfterKeep   = "keep"   // leave it in the archive (default)
	AfterDelete = "delete" // remove it (FlowScan without a saved/ directory)
	AfterSave   = "save"   // move it into DIR/saved/ (FlowScan with saved/)
)

// Config configures a Scanner.
type Config struct {
	// Dir is the flow directory: native flow files and flow-tools files,
	// nested in date directories or not.
	Dir string
	// StateDir holds the journal; default Dir/.flowscan.
	StateDir string
	// Modules run in this order.
	Modules []report.Module
	// After is AfterKeep, AfterDelete or AfterSave.
	After string
	// Poll is how often Run looks for new files (default 5 s); Notify
	// wakes it at once.
	Poll time.Duration
	// Logger receives one line per scanned file; default slog.Default().
	Logger *slog.Logger
	// MaxAttempts is how many passes in a row a module may fail to
	// report one file before the scanner gives that file up (journals it
	// with the error logged and counted) so that later files are not held
	// back forever; default 5. Transient failures (a full disk that is
	// cleared, rrdcached restarting) are retried until then.
	MaxAttempts int
}

// Source lists and opens one kind of flow file. The native format is built
// in; others (flow-tools) register with RegisterSource.
type Source struct {
	// Name identifies the kind in logs ("native", "flow-tools").
	Name string
	// List returns the completed files of this kind under dir, sorted by
	// start time.
	List func(dir string) ([]flowfile.Entry, error)
	// Open opens one file for reading.
	Open func(path string) (Reader, error)
}

// Reader reads the flows of one file.
type Reader interface {
	// Next appends the next batch of flows to dst; io.EOF at the end.
	Next(dst []flow.Record) ([]flow.Record, error)
	// File describes the file: its interval and, when known, metadata.
	File() report.File
	Close() error
}

var sources = []Source{{Name: "native", List: flowfile.List, Open: openNative}}

// RegisterSource adds a kind of flow file; call it from an init function.
func RegisterSource(s Source) { sources = append(sources, s) }

// Scanner scans a flow directory.
type Scanner struct {
	cfg     Config
	log     *slog.Logger
	journal *journal
	wake    chan struct{}
	recs    []flow.Record
	hits    []uint64
	// failures counts failed report attempts per file name.
	failures map[string]int
	given    uint64
}

// Stats summarises one pass.
type Stats struct {
	Files int
	Flows uint64
	// GivenUp counts files journaled without every module's report after
	// MaxAttempts failed passes.
	GivenUp int
}

// GivenUp returns how many files the scanner gave up since it started.
func (s *Scanner) GivenUp() uint64 { return s.given }

// New opens the journal and returns a scanner.
func New(cfg Config) (*Scanner, error) {
	if cfg.Dir == "" {
		return nil, errors.New("scan: no flow directory")
	}
	if len(cfg.Modules) == 0 {
		return nil, errors.New("scan: no report modules configured (report_classes)")
	}
	switch cfg.After {
	case "":
		cfg.After = AfterKeep
	case AfterKeep, AfterDelete, AfterSave:
	default:
		return nil, fmt.Errorf("scan: after %q: want keep, delete or save", cfg.After)
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 5 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(cfg.Dir, ".flowscan")
	}
	if st, err := os.Stat(cfg.Dir); err != nil {
		return nil, fmt.Errorf("scan: flow directory: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("scan: %s is not a directory", cfg.Dir)
	}
	j, err := openJournal(filepath.Join(cfg.StateDir, "scan.journal"))
	if err != nil {
		return nil, fmt.Errorf("scan: journal: %w", err)
	}
	return &Scanner{cfg: cfg, log: cfg.Logger, journal: j, wake: make(chan struct{}, 1),
		recs: make([]flow.Record, 0, 16384), hits: make([]uint64, len(cfg.Modules)), failures: map[string]int{}}, nil
}

// Close releases the journal and closes modules that hold resources.
func (s *Scanner) Close() error {
	var errs []error
	for _, m := range s.cfg.Modules {
		if c, ok := m.(report.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	errs = append(errs, s.journal.close())
	return errors.Join(errs...)
}

// Notify wakes Run to look for new files now (the collector calls it when
// a file is completed).
func (s *Scanner) Notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run scans pending files, then keeps watching the directory until ctx is
// cancelled. A failing pass is logged and retried at the next poll.
func (s *Scanner) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Poll)
	defer t.Stop()
	for {
		if _, err := s.Pass(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("scan pass failed; retrying", "err", err, "retry_in", s.cfg.Poll)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.wake:
		}
	}
}

type pending struct {
	flowfile.Entry
	src *Source
}

// Pass scans every completed file not scanned before, oldest first.
func (s *Scanner) Pass(ctx context.Context) (Stats, error) {
	var all []pending
	existing := map[string]bool{}
	for i := range sources {
		entries, err := sources[i].List(s.cfg.Dir)
		if err != nil {
			return Stats{}, fmt.Errorf("listing %s files: %w", sources[i].Name, err)
		}
		for _, e := range entries {
			if s.cfg.After == AfterSave && isUnder(filepath.Join(s.cfg.Dir, "saved"), e.Path) {
				continue
			}
			existing[filepath.Base(e.Path)] = true
			all = append(all, pending{e, &sources[i]})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Start.Before(all[j].Start) })
	var st Stats
	for _, p := range all {
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		name := filepath.Base(p.Path)
		if s.journal.isDone(name) {
			// Scanned before a crash that came before its disposal.
			if err := s.dispose(p.Path); err != nil {
				return st, err
			}
			continue
		}
		n, scanned, err := s.scanFile(p)
		var re *reportError
		if errors.As(err, &re) {
			s.failures[name]++
			if s.failures[name] < s.cfg.MaxAttempts {
				return st, fmt.Errorf("%s (attempt %d of %d): %w", p.Path, s.failures[name], s.cfg.MaxAttempts, err)
			}
			// Give the file up rather than hold every later one back.
			s.log.Error("giving up on a flow file after repeated report failures; its traffic is missing from the failed modules' output (rescan it after fixing the cause)",
				"file", p.Path, "attempts", s.failures[name], "err", err)
			delete(s.failures, name)
			s.given++
			st.GivenUp++
			if err := s.journal.markDone(name); err != nil {
				return st, fmt.Errorf("journal: %w", err)
			}
			if err := s.dispose(p.Path); err != nil {
				return st, err
			}
			continue
		}
		if err != nil {
			return st, fmt.Errorf("%s: %w", p.Path, err)
		}
		delete(s.failures, name)
		if scanned {
			st.Files++
			st.Flows += n
		}
	}
	if err := s.journal.compact(existing); err != nil {
		s.log.Warn("compacting the scan journal", "err", err)
	}
	return st, nil
}

// scanFile runs every module over one file and journals it. scanned is
// false for a file that vanished or could not be read at all.
func (s *Scanner) scanFile(p pending) (flows uint64, scanned bool, err error) {
	began := time.Now()
	r, err := p.src.Open(p.Path)
	if err != nil {
		var pe *fs.PathError
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// Expired or moved since it was listed: nothing to scan.
			s.log.Warn("flow file vanished before it was scanned", "file", p.Path)
			return 0, false, nil
		case errors.As(err, &pe):
			// The system could not read it now (EMFILE, EIO,
			// permissions): retry at the next pass, in order.
			return 0, false, fmt.Errorf("opening: %w", err)
		}
		// Not a flow file it can read (damaged header, foreign
		// format): it must not block every later file, so log it,
		// journal it and go on.
		s.log.Error("skipping unreadable flow file", "file", p.Path, "err", err)
		return 0, false, s.journal.markDone(filepath.Base(p.Path))
	}
	defer r.Close()
	f := r.File()
	for _, m := range s.cfg.Modules {
		if err := m.PerFile(&f); err != nil {
			return 0, false, fmt.Errorf("%s: perfile: %w", m.Name(), err)
		}
	}
	clear(s.hits)
	modules := s.cfg.Modules
	var readErr error
	for {
		s.recs, err = r.Next(s.recs[:0])
		for i := range s.recs {
			rec := &s.recs[i]
			for j, m := range modules {
				if m.Wanted(rec) {
					s.hits[j]++
				}
			}
		}
		flows += uint64(len(s.recs))
		if err == io.EOF {
			break
		}
		if err != nil {
			// Report what could be read, as flow-tools' readers did.
			readErr = err
			break
		}
	}
	scanTime := time.Since(began)
	// Every module reports, even after one failed, so that one broken
	// module does not hold the others back.
	var failed []error
	for _, m := range modules {
		if err := m.Report(); err != nil {
			failed = append(failed, fmt.Errorf("%s: report: %w", m.Name(), err))
		}
	}
	if len(failed) > 0 {
		return 0, false, &reportError{errors.Join(failed...)}
	}
	if readErr != nil {
		s.log.Error("flow file damaged; reported the flows before the damage", "file", p.Path, "flows", flows, "err", readErr)
	}
	if err := s.journal.markDone(filepath.Base(p.Path)); err != nil {
		return 0, false, fmt.Errorf("journal: %w", err)
	}
	attrs := []any{"file", p.Path, "flows", flows, "scan", scanTime.Round(time.Millisecond), "total", time.Since(began).Round(time.Millisecond)}
	for j, m := range modules {
		attrs = append(attrs, m.Name()+"_hits", fmt.Sprintf("%d/%d", s.hits[j], flows))
	}
	s.log.Info("scanned", attrs...)
	return flows, true, s.dispose(p.Path)
}

// dispose applies the After policy to a scanned file.
func (s *Scanner) dispose(path string) error {
	switch s.cfg.After {
	case AfterDelete:
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	case AfterSave:
		rel, err := filepath.Rel(s.cfg.Dir, path)
		if err != nil || rel == ".." || len(rel) > 2 && rel[:3] == "../" {
			rel = filepath.Base(path)
		}
		dst := filepath.Join(s.cfg.Dir, "saved", rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.Rename(path, dst); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

func isUnder(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !(len(rel) > 2 && rel[:3] == "../")
}

// nativeReader adapts flowfile.Reader to Reader.
type nativeReader struct {
	*flowfile.Reader
	path string
}

func openNative(path string) (Reader, error) {
	r, err := flowfile.Open(path)
	if err != nil {
		return nil, err
	}
	return &nativeReader{r, path}, nil
}

// File implements Reader.
func (n *nativeReader) File() report.File {
	m := n.Meta()
	return report.File{Path: n.path, Start: m.Start, End: m.End, Meta: m}
}

// reportError is a module's failure to report a file it read.
type reportError struct{ err error }

func (e *reportError) Error() string { return e.err.Error() }
func (e *reportError) Unwrap() error { return e.err }
