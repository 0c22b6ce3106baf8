// Package report defines the report-module API, in the anatomy of
// FlowScan's report modules: PerFile once per flow file, Wanted once per
// flow (the hot path), Report after the file. Modules register a Factory by
// name from an init function; the configuration's report_classes picks
// modules and their order. Adding a module touches no other package but
// the blank import that links it into the binary.
package report

import (
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/flowfile"
	"github.com/flowscan/flowscan/internal/rrd"
)

// File describes the flow file being scanned.
type File struct {
	// Path is the file's path.
	Path string
	// Start and End bound the interval the file covers (from its name and,
	// for native files, its metadata). Rates are counts divided by
	// Duration(); nothing assumes 300 seconds.
	Start, End time.Time
	// Meta is the native file's metadata (exporters, lost flows), or nil
	// for flow-tools files.
	Meta *flowfile.Meta
}

// Duration returns End-Start, at least one second.
func (f *File) Duration() time.Duration {
	if d := f.End.Sub(f.Start); d >= time.Second {
		return d
	}
	return time.Second
}

// Module is one report module. The scanner calls, for each file in time
// order: PerFile, then Wanted for every flow, then Report. Calls never
// overlap. Wanted must not allocate or block; it returns whether the flow
// counted for anything (the "flow hit ratio" of the scan log).
type Module interface {
	// Name returns the module's registered name.
	Name() string
	// PerFile starts a new file.
	PerFile(f *File) error
	// Wanted looks at one flow. r is only valid during the call.
	Wanted(r *flow.Record) bool
	// Report finishes the file: RRD updates, scoreboards. It must be
	// idempotent for a file that was already reported before a crash
	// (RRD updates at an already-stored time are skipped, files are
	// replaced atomically), so a file interrupted by a crash can be
	// scanned again without counting anything twice.
	Report() error
}

// Closer is implemented by modules holding resources beyond a file.
type Closer interface {
	Close() error
}

// Env is what the scanner gives every module.
type Env struct {
	// RRD writes and reads RRD files (through rrdcached when configured).
	RRD *rrd.Client
	// Logger is the module's logger.
	Logger *slog.Logger
	// Interval is the expected flow-file interval, used as the RRD step
	// of new RRD files.
	Interval time.Duration
	// OutputDir is the module's default directory for RRD files and
	// scoreboards (the scanner's rrd_dir joined with the module name); a
	// module's own output_dir / OutputDir setting overrides it.
	OutputDir string
	// BaseDir resolves relative paths found in the module's configuration
	// (the directory of the configuration file; "" means the working
	// directory).
	BaseDir string
}

// Decoder fills a module's configuration struct from its section of the
// configuration file. Errors it returns name the file and line.
type Decoder func(v any) error

// Factory builds a module from its configuration.
type Factory func(env *Env, decode Decoder) (Module, error)

var (
	mu        sync.RWMutex
	factories = map[string]Factory{}
)

// Register makes a module available by name. It panics on duplicates, so
// it belongs in an init function.
func Register(name string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := factories[name]; dup {
		panic("report: module registered twice: " + name)
	}
	factories[name] = f
}

// Lookup returns the factory registered under name.
func Lookup(name string) (Factory, error) {
	mu.RLock()
	defer mu.RUnlock()
	f, ok := factories[name]
	if !ok {
		return nil, fmt.Errorf("unknown report module %q (known: %v)", name, namesLocked())
	}
	return f, nil
}

// Names returns the registered module names, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	return namesLocked()
}

func namesLocked() []string {
	out := make([]string, 0, len(factories))
	for n := range factories {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
