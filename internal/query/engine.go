package query

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/flowfile"
	"github.com/flowscan/flowscan/internal/flowfile/flowtools"
)

// DefaultLag is how long after the window's end files are still read for
// flows that started inside the window but were exported later (long
// flows, active timeouts).
const DefaultLag = 30 * time.Minute

// maxPlannedReaders bounds the files plan keeps open for the workers (the
// first ones, which the workers read first); the others are opened again
// by the worker that reads them, so that a long archive does not hold
// thousands of descriptors.
var maxPlannedReaders = 256

// blocksPerUnit is the number of native blocks one worker reads as a unit.
const blocksPerUnit = 2

// scanRecords is the number of records decoded at a time from a native
// block (flowfile.Reader.ScanBlock): about 95 KB, which stays in the CPU
// cache until the filter and the aggregation have used them (512 measured
// as fast as 256 and a few percent faster than 1024 and more).
const scanRecords = 512

// Query selects flows from flow archives: native flow files and
// flow-tools files found under Dirs, within a time window, through a
// filter. Its methods may be called once each; they run workers over
// files and blocks in parallel.
type Query struct {
	// Dirs are the archive directories (searched recursively for native
	// and flow-tools files) or single files.
	Dirs []string
	// From and To bound the flows' start time: From <= Start < To. Zero
	// values leave that side open.
	From, To time.Time
	// Filter selects flows; nil matches all.
	Filter *Filter
	// Workers is the number of parallel readers (default GOMAXPROCS).
	Workers int
	// Lag widens file selection past To (default DefaultLag).
	Lag time.Duration
	// Strict makes the query fail at the first file or block it cannot
	// read. By default such a file (damaged, truncated, not a flow file
	// after all) or block is left out, reported through OnSkip and
	// listed by Skipped, and the query goes on with the others.
	Strict bool
	// OnSkip, if set, is called (from any worker) for each file or block
	// left out; by default a warning is logged with slog.
	OnSkip func(FileError)

	progress Progress
	skipMu   sync.Mutex
	skipped  []FileError
}

// FileError is a file, or a block of one, that a query could not read.
type FileError struct {
	Path string
	Err  error
}

func (e FileError) Error() string {
	if msg := e.Err.Error(); strings.Contains(msg, e.Path) {
		return msg // the reader's errors name the file already
	}
	return e.Path + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e FileError) Unwrap() error { return e.Err }

// Skipped returns the files and blocks the query left out because it
// could not read them (see Strict).
func (q *Query) Skipped() []FileError {
	q.skipMu.Lock()
	defer q.skipMu.Unlock()
	return slices.Clone(q.skipped)
}

// skip leaves out the unreadable file or block of path: it returns the
// error to fail the query with when Strict, or records and reports it and
// returns nil.
func (q *Query) skip(path string, err error) error {
	fe := FileError{Path: path, Err: err}
	if q.Strict {
		return fe
	}
	q.skipMu.Lock()
	q.skipped = append(q.skipped, fe)
	q.skipMu.Unlock()
	if q.OnSkip != nil {
		q.OnSkip(fe)
	} else {
		slog.Warn("flow file left out: cannot read it", "path", path, "err", err)
	}
	return nil
}

// Progress counts a running query's work; read it with Query.Progress.
type Progress struct {
	// Units and UnitsDone count the work units (groups of blocks, or
	// whole flow-tools files).
	Units, UnitsDone uint64
	// Read and Matched count flows decoded and flows that passed.
	Read, Matched uint64
}

// Progress returns a snapshot of the counters; safe to call while the
// query runs.
func (q *Query) Progress() Progress {
	return Progress{
		Units:     atomic.LoadUint64(&q.progress.Units),
		UnitsDone: atomic.LoadUint64(&q.progress.UnitsDone),
		Read:      atomic.LoadUint64(&q.progress.Read),
		Matched:   atomic.LoadUint64(&q.progress.Matched),
	}
}

// unit is one piece of work: some blocks of a native file, or a whole
// flow-tools file.
type unit struct {
	path      string
	flowTools bool
	blocks    []flowfile.BlockInfo
	// inside is true when every flow of the unit lies in the window (no
	// per-flow time check).
	inside bool
	// file is the reader plan opened for the native file, handed to the
	// first worker that reads one of its units.
	file *plannedFile
}

// plannedFile is a native file plan opened to read its block index; the
// first worker to read the file takes its reader instead of opening the
// file again.
type plannedFile struct {
	r     *flowfile.Reader
	taken atomic.Bool
}

// take returns the planned reader if no one took it before.
func (f *plannedFile) take() *flowfile.Reader {
	if f == nil || !f.taken.CompareAndSwap(false, true) {
		return nil
	}
	return f.r
}

// closeUnits closes the planned readers no worker took.
func closeUnits(units []unit) {
	for i := range units {
		if r := units[i].file.take(); r != nil {
			r.Close()
		}
	}
}

// window returns the window in Unix ms.
func (q *Query) window() (from, to int64) {
	from, to = math.MinInt64, math.MaxInt64
	if !q.From.IsZero() {
		from = q.From.UnixMilli()
	}
	if !q.To.IsZero() {
		to = q.To.UnixMilli()
	}
	return from, to
}

// Plan lists the files the query would read (for --explain and tests).
func (q *Query) Plan() (files []string, blocks, skippedBlocks int, err error) {
	units, skipped, err := q.plan()
	closeUnits(units)
	seen := map[string]bool{}
	for _, u := range units {
		if !seen[u.path] {
			seen[u.path] = true
			files = append(files, u.path)
		}
		blocks += len(u.blocks)
	}
	return files, blocks, skipped, err
}

// plan chooses files by their names' times and blocks by their time
// bounds.
func (q *Query) plan() ([]unit, int, error) {
	from, to := q.window()
	lag := q.Lag
	if lag == 0 {
		lag = DefaultLag
	}
	fileLimit := int64(math.MaxInt64)
	if to != math.MaxInt64 {
		fileLimit = to + lag.Milliseconds()
	}
	type candidate struct {
		flowfile.Entry
		flowTools bool
	}
	var files []candidate
	for _, dir := range q.Dirs {
		native, ft, err := listDir(dir)
		if err != nil {
			return nil, 0, err
		}
		for k, list := range [][]flowfile.Entry{native, ft} {
			for i, e := range list {
				// A file holds flows received before the next file
				// started, so they started before that too.
				if i+1 < len(list) && list[i+1].Start.UnixMilli() <= from {
					continue
				}
				if e.Start.UnixMilli() >= fileLimit {
					break
				}
				files = append(files, candidate{e, k == 1})
			}
		}
	}
	slices.SortStableFunc(files, func(a, b candidate) int { return a.Start.Compare(b.Start) })
	// Native files are opened (their block index read) on all workers at
	// once; many small files make this a large part of a query.
	// Files past the first maxPlannedReaders are closed at once.
	readers := make([]*flowfile.Reader, len(files))
	blocks := make([][]flowfile.BlockInfo, len(files))
	errs := make([]error, len(files))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(q.workers(), len(files)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(files) {
					return
				}
				if files[i].flowTools {
					continue
				}
				r, err := flowfile.Open(files[i].Path)
				if err != nil {
					errs[i] = err
					continue
				}
				blocks[i] = r.Blocks()
				if i < maxPlannedReaders {
					readers[i] = r
				} else {
					r.Close()
				}
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			continue
		}
		if err = q.skip(files[i].Path, err); err != nil {
			for _, r := range readers {
				if r != nil {
					r.Close()
				}
			}
			return nil, 0, err // the first file's error
		}
	}
	var units []unit
	skipped := 0
	for i, e := range files {
		if errs[i] != nil {
			continue
		}
		if e.flowTools {
			units = append(units, unit{path: e.Path, flowTools: true})
			continue
		}
		r := readers[i]
		var keep []flowfile.BlockInfo
		for _, b := range blocks[i] {
			if b.MaxEnd < from || b.MinStart >= to {
				skipped++
				continue
			}
			keep = append(keep, b)
		}
		var file *plannedFile
		if r != nil {
			if len(keep) == 0 {
				r.Close()
				continue
			}
			file = &plannedFile{r: r}
		}
		for len(keep) > 0 {
			n := min(blocksPerUnit, len(keep))
			inside := true
			for _, b := range keep[:n] {
				inside = inside && b.MinStart >= from && b.MaxEnd < to
			}
			units = append(units, unit{path: e.Path, blocks: keep[:n:n], inside: inside, file: file})
			keep = keep[n:]
		}
	}
	return units, skipped, nil
}

// listDir returns the native and flow-tools files under dir (as
// flowfile.List and flowtools.List would, in one walk of the tree), or
// dir itself when it is a file of either kind.
func listDir(dir string) (native, ft []flowfile.Entry, err error) {
	if start, ok := flowfile.ParseName(baseName(dir)); ok {
		return []flowfile.Entry{{Path: dir, Start: start}}, nil, nil
	}
	if start, ok := flowtools.ParseName(baseName(dir)); ok {
		return nil, []flowfile.Entry{{Path: dir, Start: start}}, nil
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			return nil // an unreadable subdirectory is skipped
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if start, ok := flowfile.ParseName(d.Name()); ok {
			native = append(native, flowfile.Entry{Path: path, Start: start})
		} else if start, ok := flowtools.ParseName(d.Name()); ok {
			ft = append(ft, flowfile.Entry{Path: path, Start: start})
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	byStart := func(a, b flowfile.Entry) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return cmp.Compare(a.Path, b.Path)
	}
	slices.SortFunc(native, byStart)
	slices.SortFunc(ft, byStart)
	return native, ft, nil
}

func baseName(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}

func (q *Query) workers() int {
	if q.Workers > 0 {
		return q.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// worker is one reader goroutine's state.
type worker struct {
	q        *Query
	from, to int64
	path     string
	reader   *flowfile.Reader
	// cols are the columns read from native files: all for flow output,
	// only those the filter, keys and counters use for aggregations.
	cols flowfile.Columns
	// recs holds scanRecords records: native blocks are decoded into it
	// a run at a time; with one column set, the fields outside it stay
	// zero. ftRecs holds flow-tools records.
	recs, ftRecs []flow.Record
	// sel indexes the records of a run that passed the filter.
	sel []int32
	// scratch is the filter's space for evaluating runs.
	scratch runScratch
	agg     *aggregator
}

func (w *worker) close() {
	if w.reader != nil {
		w.reader.Close()
		w.reader = nil
	}
	w.path = "" // the next unit opens its file, even the same one
}

// batchSink receives the matching flows of a run of records: recs[i] for
// each i in sel, in order.
type batchSink func(recs []flow.Record, sel []int32)

// records is the number of flows in u's native blocks.
func (u *unit) records() uint64 {
	var n uint64
	for _, b := range u.blocks {
		n += uint64(b.Records)
	}
	return n
}

// run reads unit u and calls sink with the matching flows, run by run.
func (w *worker) run(u *unit, sink batchSink) error {
	if u.flowTools {
		r, err := flowtools.Open(u.path)
		if err != nil {
			return w.q.skip(u.path, err)
		}
		defer r.Close()
		for {
			w.ftRecs, err = r.Next(w.ftRecs[:0])
			w.filter(w.ftRecs, false, sink)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				// The flows before the damage are counted; the rest
				// of the file is left out.
				return w.q.skip(u.path, err)
			}
		}
	}
	if w.path != u.path {
		w.close()
		r := u.file.take()
		if r == nil {
			var err error
			if r, err = flowfile.Open(u.path); err != nil {
				return w.q.skip(u.path, err)
			}
		}
		r.SetColumns(w.cols)
		w.reader, w.path = r, u.path
	}
	if w.recs == nil {
		w.recs = make([]flow.Record, scanRecords)
	}
	inside := u.inside
	for _, b := range u.blocks {
		if err := w.reader.ScanBlock(b, w.recs, func(recs []flow.Record) { w.filter(recs, inside, sink) }); err != nil {
			// A damaged block is left out whole (ScanBlock checks its
			// checksum before it decodes a record).
			if err := w.q.skip(u.path, err); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *worker) filter(recs []flow.Record, inside bool, sink batchSink) {
	if cap(w.sel) < len(recs) {
		w.sel = make([]int32, len(recs))
	}
	sel := w.sel[:len(recs)]
	if inside {
		for i := range sel {
			sel[i] = int32(i)
		}
	} else {
		n := 0
		for i := range recs {
			sel[n] = int32(i)
			n += int(b2u(recs[i].Start >= w.from && recs[i].Start < w.to))
		}
		sel = sel[:n]
	}
	sel = w.q.Filter.selectRun(recs, sel, &w.scratch)
	if len(sel) > 0 {
		sink(recs, sel)
	}
	atomic.AddUint64(&w.q.progress.Read, uint64(len(recs)))
	atomic.AddUint64(&w.q.progress.Matched, uint64(len(sel)))
}

// each runs fn(worker, unitIndex) for every unit on the workers; results
// are handed to fn in any order. It stops at the first error.
func (q *Query) each(ctx context.Context, units []unit, cols flowfile.Columns, fn func(w *worker, i int) error) error {
	atomic.StoreUint64(&q.progress.Units, uint64(len(units)))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	from, to := q.window()
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	for range min(q.workers(), max(len(units), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{q: q, from: from, to: to, cols: cols}
			defer w.close()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(units) {
					return
				}
				if err := fn(w, i); err != nil {
					errOnce.Do(func() { firstErr = err })
					cancel()
					return
				}
				atomic.AddUint64(&q.progress.UnitsDone, 1)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return context.Cause(ctx)
}

// AggregateSpec says how to group and rank flows.
type AggregateSpec struct {
	// Keys group the flows; nil computes only Result.Total.
	Keys []KeyField
	// Order ranks the groups.
	Order Order
	// Limit keeps the top Limit groups (0: all).
	Limit int
	// MaxGroups stops the query with ErrTooManyGroups once one worker
	// holds more groups than this (0: no limit), which bounds the
	// memory of a query to about Workers × MaxGroups groups.
	MaxGroups int
}

// ErrTooManyGroups is Aggregate's error when the groups pass
// AggregateSpec.MaxGroups.
var ErrTooManyGroups = errors.New("query: too many groups")

// Aggregate groups the matching flows by spec.Keys in per-worker maps,
// merges them and returns the top groups with the total and the rest.
func (q *Query) Aggregate(ctx context.Context, spec AggregateSpec) (*Result, error) {
	units, _, err := q.plan()
	if err != nil {
		return nil, err
	}
	defer closeUnits(units)
	var aggs []*aggregator
	var mu sync.Mutex
	defer func() {
		for _, a := range aggs {
			a.release()
		}
	}()
	// A summary of every flow of blocks inside the window is in the
	// blocks' headers: no decoding.
	headerOnly := spec.Keys == nil && q.Filter.MatchAll()
	err = q.each(ctx, units, aggregateColumns(q.Filter, spec.Keys), func(w *worker, i int) error {
		if w.agg == nil {
			w.agg = newAggregator(spec.Keys)
			mu.Lock()
			aggs = append(aggs, w.agg)
			mu.Unlock()
		}
		u := &units[i]
		if headerOnly && u.inside && !u.flowTools {
			w.agg.addBlockTotals(u.blocks)
			atomic.AddUint64(&q.progress.Read, u.records())
			atomic.AddUint64(&q.progress.Matched, u.records())
			return nil
		}
		if err := w.run(u, w.agg.addBatch); err != nil {
			return err
		}
		if spec.MaxGroups > 0 && w.agg.groups() > spec.MaxGroups {
			return fmt.Errorf("%w: more than %d", ErrTooManyGroups, spec.MaxGroups)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var total Counters
	for _, a := range aggs {
		total.Merge(&a.total)
	}
	parts := mergeParts(aggs, spec.Keys, q.workers())
	defer func() {
		for _, p := range parts {
			p.release()
		}
	}()
	return topParts(parts, spec.Keys, total, spec.Order, spec.Limit), nil
}

// aggregateColumns are the columns an aggregation reads: the window's
// Start, the counters' Start, End, Bytes and Packets, the filter's and
// the keys' fields.
func aggregateColumns(f *Filter, keys []KeyField) flowfile.Columns {
	cols := flowfile.ColStart | flowfile.ColEnd | flowfile.ColBytes | flowfile.ColPackets | f.columns()
	for _, k := range keys {
		cols |= fieldColumns[k.f]
	}
	return cols
}

// Flows calls fn with the matching flows, batch by batch, in archive
// order (files by time, blocks in file order), while workers read ahead
// in parallel. fn runs on one goroutine at a time; the batch is reused
// after fn returns. An error from fn stops the query and is returned.
func (q *Query) Flows(ctx context.Context, fn func(batch []flow.Record) error) error {
	units, _, err := q.plan()
	if err != nil {
		return err
	}
	defer closeUnits(units)
	if len(units) == 0 {
		return nil
	}
	type result struct {
		recs []flow.Record
		err  error
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	nw := min(q.workers(), len(units))
	ahead := 2 * nw // units read ahead of the consumer
	results := make([]chan result, len(units))
	for i := range results {
		results[i] = make(chan result, 1)
	}
	pool := sync.Pool{New: func() any { return []flow.Record(nil) }}
	sem := make(chan struct{}, ahead)
	jobs := make(chan int)
	from, to := q.window()
	go func() {
		defer close(jobs)
		for i := range units {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range nw {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{q: q, from: from, to: to, cols: flowfile.AllColumns}
			defer w.close()
			for i := range jobs {
				out := pool.Get().([]flow.Record)[:0]
				err := w.run(&units[i], func(recs []flow.Record, sel []int32) {
					for _, j := range sel {
						out = append(out, recs[j])
					}
				})
				results[i] <- result{out, err}
				atomic.AddUint64(&q.progress.UnitsDone, 1)
			}
		}()
	}
	atomic.StoreUint64(&q.progress.Units, uint64(len(units)))
	for i := range units {
		var res result
		select {
		case res = <-results[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		<-sem
		if res.err != nil {
			return res.err
		}
		if len(res.recs) > 0 {
			if err := fn(res.recs); err != nil {
				return err
			}
		}
		pool.Put(res.recs[:0]) //nolint:staticcheck // the slice header is small; the array is what is reused
	}
	return nil
}
