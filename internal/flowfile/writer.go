package flowfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/fsutil"
)

// Defaults for Config fields left zero.
const (
	DefaultBlockRecords  = 8192
	DefaultFlushInterval = 2 * time.Second
	DefaultQueueBlocks   = 24
)

// ErrClosed is returned by Writer methods called after Close.
var ErrClosed = errors.New("flowfile: writer closed")

// Config configures a Writer.
type Config struct {
	// Dir is the archive's root directory; it is created if missing.
	Dir string
	// Interval is the length of one file (default DefaultInterval). Files
	// are aligned to the clock in Location, counted from local midnight.
	Interval time.Duration
	// Location is the zone used in names and for alignment (default
	// time.Local).
	Location *time.Location
	// Nest is 0..3 levels of date subdirectories like flow-capture -N:
	// 1 = YYYY, 2 = YYYY/YYYY-MM, 3 = YYYY/YYYY-MM/YYYY-MM-DD.
	Nest int
	// BlockRecords is the number of records per compressed block (default
	// DefaultBlockRecords).
	BlockRecords int
	// FlushInterval bounds how long a record waits before it is written
	// and fsynced (default DefaultFlushInterval).
	FlushInterval time.Duration
	// QueueBlocks bounds the full blocks waiting for the background writer
	// (default DefaultQueueBlocks); when it is full, blocks are dropped and
	// counted instead of blocking the caller.
	QueueBlocks int
	// MaxBytes makes expiry remove the oldest completed files while the
	// archive's completed files exceed it; 0 is off.
	MaxBytes int64
	// MaxAge makes expiry remove completed files that started longer ago;
	// 0 is off.
	MaxAge time.Duration
	// OnComplete, if set, is called from a background goroutine after each
	// file is completed and renamed.
	OnComplete func(path string, m *Meta)
	// Hostname is stored in each file's Meta.
	Hostname string
	// Now is the clock (default time.Now); it is also called from a
	// background goroutine (expiry), so it must be safe for concurrent use.
	Now func() time.Time
	// Logger receives errors and notices (default slog.Default()).
	Logger *slog.Logger
	// EncoderLevel is the zstd level of meta blocks (default
	// zstd.SpeedFastest); data blocks are not zstd-compressed since format
	// version 2 (see sections.go).
	EncoderLevel zstd.EncoderLevel
	// Lock, if set, is Dir's writer lock taken already with LockDir. The
	// Writer owns it from NewWriter on (NewWriter releases it when it
	// fails) and releases it in Close.
	Lock *DirLock
}

// WriterStats are a Writer's cumulative counters, for metrics.
type WriterStats struct {
	BytesWritten   uint64
	RecordsWritten uint64
	Blocks         uint64
	FilesCompleted uint64
	// DroppedRecords were lost to a full queue or a write error.
	DroppedRecords uint64
	// Errors counts failed file operations.
	Errors uint64
	// LastRotationLatency is the time from a rotation request to the
	// completed file's rename.
	LastRotationLatency time.Duration
	// QueuedBlocks is the number of data blocks waiting to be written.
	QueuedBlocks int
}

// Writer writes flow records into a rotating archive of flow files. Its
// methods must be called from one goroutine; disk I/O and compression run
// in the background.
type Writer struct {
	cfg Config
	log *slog.Logger

	// Caller goroutine state.
	cur        *wfile
	curStart   time.Time
	curEnd     time.Time
	curDropped uint64
	dropLogged bool
	buf        *colBlock
	bufOldest  time.Time
	lastSync   time.Time
	acc        map[ExporterKey]*ExporterStats
	accDirty   bool
	closed     bool

	q          jobQueue
	free       chan *colBlock
	post       chan completedFile
	workerDone chan struct{}
	postDone   chan struct{}

	// lock is the archive directory's writer lock, held until Close.
	lock *DirLock

	// Background writer state.
	enc   *zstd.Encoder
	codec columnCodec
	blk   []byte
	split []flow.Record // a block too large to encode as one, as records

	stBytes, stRecords, stBlocks, stFiles, stDropped, stErrors atomic.Uint64
	stRotation                                                 atomic.Int64
}

// wfile is one file being written. Only start and end are set by the
// caller (before the file is handed to the background writer); everything
// else belongs to the background writer.
type wfile struct {
	start, end time.Time

	f                  *os.File
	tmpPath, finalPath string
	off                int64
	tot                totals
	exporters          []ExporterMeta
	dropped            uint64 // lost in the background writer
	callerDropped      uint64 // lost to a full queue, as last reported
	damaged            bool   // some records were lost
	broken             bool   // nothing more can be written safely
	// openFailed: the file could not be created (a full disk, say);
	// creation is tried again before each write, and openErrors counts
	// the attempts that failed.
	openFailed bool
	openErrors int
	recovered  bool
	lastFlush  time.Time // End of the last meta block (recovery)
	// version is the file's format version: a recovered file of an older
	// version is completed, never appended to.
	version uint32
}

type jobKind uint8

const (
	jobOpen jobKind = iota
	jobData
	jobComplete
	jobBarrier // signals done once every earlier job is processed (tests)
)

type job struct {
	kind      jobKind
	file      *wfile
	block     *colBlock // records to write, nil for none
	counted   bool      // counts against QueueBlocks
	sync      bool      // write a meta block and fsync after the records
	exporters []ExporterMeta
	dropped   uint64
	at        time.Time // flush time, or the end time for jobComplete
	enqueued  time.Time
	done      chan error
}

type completedFile struct {
	path string
	meta *Meta
}

// NewWriter creates cfg.Dir, recovers the *.tmp files under it and starts a
// writer. A .tmp whose interval has ended is completed (Meta.Recovered); the
// .tmp of the current interval is resumed after its last valid block.
func NewWriter(cfg Config) (w *Writer, err error) {
	lock := cfg.Lock
	defer func() {
		if err != nil {
			lock.Release()
		}
	}()
	if cfg.Dir == "" {
		return nil, errors.New("flowfile: Config.Dir is empty")
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Interval < time.Second {
		return nil, fmt.Errorf("flowfile: interval %v is shorter than a second", cfg.Interval)
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.Nest < 0 || cfg.Nest > 3 {
		return nil, fmt.Errorf("flowfile: nest level %d not in 0..3", cfg.Nest)
	}
	if cfg.BlockRecords <= 0 {
		cfg.BlockRecords = DefaultBlockRecords
	}
	cfg.BlockRecords = min(cfg.BlockRecords, maxBlockRecords)
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.QueueBlocks <= 0 {
		cfg.QueueBlocks = DefaultQueueBlocks
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.EncoderLevel == 0 {
		cfg.EncoderLevel = zstd.SpeedFastest
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if lock == nil {
		if lock, err = LockDir(cfg.Dir); err != nil {
			return nil, err
		}
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(cfg.EncoderLevel), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("flowfile: zstd encoder: %w", err)
	}
	if lock.Unsupported {
		log.Warn("the archive's file system has no file locks: make sure no other collector writes into this directory", "dir", cfg.Dir)
	}
	w = &Writer{
		lock:       lock,
		cfg:        cfg,
		log:        log.With("component", "flowfile"),
		acc:        make(map[ExporterKey]*ExporterStats),
		free:       make(chan *colBlock, cfg.QueueBlocks+2),
		post:       make(chan completedFile, 16),
		workerDone: make(chan struct{}),
		postDone:   make(chan struct{}),
		enc:        enc,
		blk:        make([]byte, blockHeaderLen, 1<<16),
	}
	w.q.init(cfg.QueueBlocks)
	w.buf = w.getBuf()

	now := cfg.Now()
	resumed, done := w.recover(now)
	go w.runPost(done)
	go w.runWorker()
	if resumed != nil {
		w.cur, w.curStart, w.curEnd = resumed, resumed.start, resumed.end
		for _, e := range resumed.exporters {
			s := e.ExporterStats
			w.acc[ExporterKey{Addr: e.Addr, Domain: e.Domain, Format: formatByName(e.Format)}] = &s
		}
		w.curDropped = resumed.callerDropped
		w.lastSync = now
		w.log.Info("resumed flow file", "path", resumed.tmpPath, "flows", resumed.tot.flows)
	} else {
		w.startFile(intervalStart(now, cfg.Interval, cfg.Location), now)
	}
	return w, nil
}

// Write copies recs into the current block, rotating first when the clock
// has crossed the current file's end. It never waits for the disk: when the
// background queue is full, the block is dropped and counted.
func (w *Writer) Write(recs []flow.Record) error {
	if w.closed {
		return ErrClosed
	}
	now := w.cfg.Now()
	if !now.Before(w.curEnd) {
		w.rotateAligned(now)
	}
	for len(recs) > 0 {
		b := w.buf
		if b.n == 0 {
			w.bufOldest = now
		}
		k := min(len(recs), w.cfg.BlockRecords-b.n)
		// Transposed into columns while the records are in the cache.
		b.add(recs[:k])
		recs = recs[k:]
		if b.n >= w.cfg.BlockRecords {
			w.sendFull(now)
		}
	}
	w.maybeFlush(now)
	return nil
}

// MaxFileExporters bounds the exporters listed in one file's metadata;
// beyond it (a flood of spoofed sources) counters are summed under the
// zero ExporterKey, so a meta block stays far below the reader's limit.
const MaxFileExporters = 20000

// Account adds per-exporter counters to the current file.
func (w *Writer) Account(k ExporterKey, d ExporterStats) {
	s := w.acc[k]
	if s == nil && len(w.acc) >= MaxFileExporters {
		k = ExporterKey{}
		s = w.acc[k]
	}
	if s == nil {
		s = new(ExporterStats)
		w.acc[k] = s
	}
	s.add(d)
	w.accDirty = true
}

// Tick rotates on an interval boundary and writes a partial block once the
// oldest buffered record has waited FlushInterval. Call it about once a
// second.
func (w *Writer) Tick() error {
	if w.closed {
		return ErrClosed
	}
	now := w.cfg.Now()
	if !now.Before(w.curEnd) {
		w.rotateAligned(now)
	}
	w.maybeFlush(now)
	return nil
}

// Rotate completes the current file now (SIGHUP); the next file starts now
// (truncated to the second) and ends at the next aligned boundary. A Rotate
// in the same second as the current file's start does nothing.
func (w *Writer) Rotate() error {
	if w.closed {
		return ErrClosed
	}
	now := w.cfg.Now()
	if !now.Before(w.curEnd) {
		w.rotateAligned(now)
	}
	start := now.In(w.cfg.Location).Truncate(time.Second)
	if !start.After(w.curStart) {
		w.log.Info("rotate ignored: current file started this second", "start", w.curStart)
		return nil
	}
	w.completeCurrent(start, nil)
	w.startFile(start, now)
	return nil
}

// Close flushes and completes the current file (its End is now) and waits
// for the background work, including OnComplete calls.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	now := w.cfg.Now()
	end := now
	if end.Before(w.curStart) {
		end = w.curStart
	}
	done := make(chan error, 1)
	w.completeCurrent(end.In(w.cfg.Location), done)
	w.closed = true
	w.q.close()
	<-w.workerDone
	close(w.post)
	<-w.postDone
	w.enc.Close()
	err := <-done
	w.lock.Release() // releases the directory
	return err
}

// Stats returns the writer's counters.
func (w *Writer) Stats() WriterStats {
	return WriterStats{
		BytesWritten:        w.stBytes.Load(),
		RecordsWritten:      w.stRecords.Load(),
		Blocks:              w.stBlocks.Load(),
		FilesCompleted:      w.stFiles.Load(),
		DroppedRecords:      w.stDropped.Load(),
		Errors:              w.stErrors.Load(),
		LastRotationLatency: time.Duration(w.stRotation.Load()),
		QueuedBlocks:        w.q.queuedData(),
	}
}

func (w *Writer) rotateAligned(now time.Time) {
	w.completeCurrent(w.curEnd, nil)
	w.startFile(intervalStart(now, w.cfg.Interval, w.cfg.Location), now)
}

func (w *Writer) startFile(start, now time.Time) {
	w.cur = &wfile{start: start, end: nextBoundary(start, w.cfg.Interval, w.cfg.Location)}
	w.curStart, w.curEnd = w.cur.start, w.cur.end
	clear(w.acc)
	w.accDirty = false
	w.curDropped = 0
	w.dropLogged = false
	w.lastSync = now
	w.q.push(job{kind: jobOpen, file: w.cur})
}

// completeCurrent hands the partial block and the completion of the current
// file to the background writer; it never blocks.
func (w *Writer) completeCurrent(end time.Time, done chan error) {
	j := job{kind: jobComplete, file: w.cur, exporters: exporterSnapshot(w.acc), dropped: w.curDropped,
		at: end, enqueued: time.Now(), done: done}
	if w.buf.n > 0 {
		j.block = w.buf
		w.buf = w.getBuf()
	}
	w.q.push(j)
}

func (w *Writer) sendFull(now time.Time) {
	j := job{kind: jobData, file: w.cur, block: w.buf, counted: true}
	sync := now.Sub(w.lastSync) >= w.cfg.FlushInterval
	if sync {
		j.sync, j.exporters, j.dropped, j.at = true, exporterSnapshot(w.acc), w.curDropped, now
	}
	if w.q.push(j) {
		w.buf = w.getBuf()
		if sync {
			w.lastSync, w.accDirty = now, false
		}
		return
	}
	w.drop(w.buf.n)
	w.buf.reset()
}

func (w *Writer) drop(n int) {
	w.curDropped += uint64(n)
	w.stDropped.Add(uint64(n))
	if !w.dropLogged {
		w.dropLogged = true
		w.log.Warn("write queue full, dropping flow records", "file_start", w.curStart, "records", n)
	}
}

func (w *Writer) maybeFlush(now time.Time) {
	due := w.buf.n > 0 && now.Sub(w.bufOldest) >= w.cfg.FlushInterval ||
		w.accDirty && now.Sub(w.lastSync) >= w.cfg.FlushInterval
	if !due {
		return
	}
	j := job{kind: jobData, file: w.cur, counted: w.buf.n > 0, sync: true,
		exporters: exporterSnapshot(w.acc), dropped: w.curDropped, at: now}
	if w.buf.n > 0 {
		// Only a buffer that changes hands goes with the job: the
		// background writer recycles what it gets, and an empty buffer
		// the caller keeps filling must not land on the free list.
		j.block = w.buf
	}
	if !w.q.push(j) {
		return // queue full: keep buffering, try again later
	}
	if j.block != nil {
		w.buf = w.getBuf()
	}
	w.lastSync, w.accDirty = now, false
}

func (w *Writer) getBuf() *colBlock {
	select {
	case b := <-w.free:
		b.reset()
		return b
	default:
		return newColBlock(w.cfg.BlockRecords)
	}
}

func (w *Writer) putBuf(b *colBlock) {
	if b == nil || b.capacity() != w.cfg.BlockRecords {
		return
	}
	select {
	case w.free <- b:
	default:
	}
}

// jobQueue is the unbounded FIFO to the background writer; data jobs are
// limited to max, control jobs (open, complete, flush) always fit.
type jobQueue struct {
	mu     sync.Mutex
	jobs   []job
	head   int
	data   int
	max    int
	closed bool
	wake   chan struct{}
}

func (q *jobQueue) init(max int) {
	q.max = max
	q.wake = make(chan struct{}, 1)
}

func (q *jobQueue) push(j job) bool {
	q.mu.Lock()
	if j.counted {
		if q.data >= q.max {
			q.mu.Unlock()
			return false
		}
		q.data++
	}
	q.jobs = append(q.jobs, j)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// pop waits for the next job; ok is false once the queue is closed and empty.
func (q *jobQueue) pop() (j job, ok bool) {
	for {
		q.mu.Lock()
		if q.head < len(q.jobs) {
			j = q.jobs[q.head]
			q.jobs[q.head] = job{}
			q.head++
			if q.head == len(q.jobs) {
				q.jobs, q.head = q.jobs[:0], 0
			}
			q.mu.Unlock()
			return j, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return job{}, false
		}
		<-q.wake
	}
}

func (q *jobQueue) finished(j job) {
	if j.counted {
		q.mu.Lock()
		q.data--
		q.mu.Unlock()
	}
}

func (q *jobQueue) queuedData() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.data
}

func (q *jobQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// ---- background writer ----

func (w *Writer) runWorker() {
	defer close(w.workerDone)
	for {
		j, ok := w.q.pop()
		if !ok {
			return
		}
		w.process(j)
		w.q.finished(j)
	}
}

func (w *Writer) process(j job) {
	f := j.file
	switch j.kind {
	case jobOpen:
		w.openFile(f)
	case jobData:
		w.writeBlock(f, j.block)
		w.putBuf(j.block)
		if j.sync {
			f.exporters, f.callerDropped = j.exporters, j.dropped
			w.writeMeta(f, j.at, false)
			w.syncFile(f)
		}
	case jobComplete:
		w.writeBlock(f, j.block)
		w.putBuf(j.block)
		f.exporters, f.callerDropped = j.exporters, j.dropped
		path, m, err := w.complete(f, j.at)
		if err == nil {
			w.stRotation.Store(int64(time.Since(j.enqueued)))
			w.post <- completedFile{path: path, meta: m}
		}
		if j.done != nil {
			j.done <- err
		}
	case jobBarrier:
		j.done <- nil
	}
}

// waitIdle waits until the background writer has processed every job
// queued so far.
func (w *Writer) waitIdle() {
	done := make(chan error, 1)
	w.q.push(job{kind: jobBarrier, done: done})
	<-done
}

func (w *Writer) fail(f *wfile, op string, err error) {
	w.stErrors.Add(1)
	w.log.Error("flow file "+op+" failed", "path", f.tmpPath, "err", err)
}

// openFile creates the .tmp of f, moving its start on by a second while a
// file of that name exists. When the file cannot be created (a full disk,
// a directory it may not write), f.openFailed is set and ensureOpen tries
// again before the next write: flows are lost only while the cause lasts,
// not for the rest of the interval.
func (w *Writer) openFile(f *wfile) {
	f.openFailed = false
	dir := filepath.Join(w.cfg.Dir, nestDir(f.start, w.cfg.Nest))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		w.openFailure(f, "mkdir", err)
		return
	}
	for range 100 {
		f.finalPath = filepath.Join(dir, FileName(f.start))
		f.tmpPath = f.finalPath + tmpSuffix
		if _, err := os.Lstat(f.finalPath); err == nil {
			f.start = f.start.Add(time.Second)
			continue
		}
		fd, err := os.OpenFile(f.tmpPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrNotExist) {
			// Expiry removed the emptied directory meanwhile.
			if err := os.MkdirAll(dir, 0o755); err != nil {
				w.openFailure(f, "mkdir", err)
				return
			}
			continue
		}
		if errors.Is(err, fs.ErrExist) {
			f.start = f.start.Add(time.Second)
			continue
		}
		if err != nil {
			w.openFailure(f, "create", err)
			return
		}
		if _, err := fd.WriteAt(appendFileHeader(nil), 0); err != nil {
			// No file without its header: a reader would take a
			// headerless file for garbage.
			fd.Close()
			os.Remove(f.tmpPath)
			w.openFailure(f, "write", err)
			return
		}
		f.f = fd
		f.off = fileHeaderLen
		if f.openErrors > 0 {
			w.log.Info("flow file created after failed attempts", "path", f.tmpPath,
				"attempts_failed", f.openErrors, "flows_lost", f.dropped)
		}
		if err := fsutil.SyncDir(dir); err != nil {
			w.fail(f, "sync dir", err)
		}
		return
	}
	f.broken = true
	w.fail(f, "create", errors.New("no free file name"))
}

// openFailure records a failed attempt to create f: logged the first time,
// counted every time, tried again by ensureOpen.
func (w *Writer) openFailure(f *wfile, op string, err error) {
	f.openFailed = true
	f.openErrors++
	if f.openErrors == 1 {
		w.fail(f, op, err)
		return
	}
	w.stErrors.Add(1)
}

// ensureOpen tries again to create f if an earlier attempt failed.
func (w *Writer) ensureOpen(f *wfile) {
	if f.openFailed && f.f == nil && !f.broken {
		w.openFile(f)
	}
}

// writeBlock writes the records of b (nil: none) to f as one data block,
// or as several if the encoding is too large for one.
func (w *Writer) writeBlock(f *wfile, b *colBlock) {
	if b == nil || b.n == 0 {
		return
	}
	w.ensureOpen(f)
	if f.broken || f.f == nil {
		w.lose(f, b.n)
		return
	}
	// Encoded in place after room for the block header.
	var sum blockSummary
	var rawLen int
	w.blk, sum, rawLen = w.codec.appendColBlock(w.blk[:blockHeaderLen], b)
	if len(w.blk)-blockHeaderLen > maxRawLen || rawLen > maxRawLen {
		w.split = b.appendRecords(w.split[:0])
		half := len(w.split) / 2
		w.writeRecords(f, w.split[:half])
		w.writeRecords(f, w.split[half:])
		return
	}
	w.appendDataBlock(f, b.n, sum, rawLen)
}

// writeRecords encodes recs as one data block (or several if the encoding
// is too large) and appends it to f.
func (w *Writer) writeRecords(f *wfile, recs []flow.Record) {
	if len(recs) == 0 {
		return
	}
	if f.broken || f.f == nil {
		w.lose(f, len(recs))
		return
	}
	var sum blockSummary
	var rawLen int
	w.blk, sum, rawLen = w.codec.appendSections(w.blk[:blockHeaderLen], recs)
	if len(w.blk)-blockHeaderLen > maxRawLen || rawLen > maxRawLen {
		half := len(recs) / 2
		w.writeRecords(f, recs[:half])
		w.writeRecords(f, recs[half:])
		return
	}
	w.appendDataBlock(f, len(recs), sum, rawLen)
}

// appendDataBlock appends the data block of n records encoded in w.blk
// (after room for its header) to f.
func (w *Writer) appendDataBlock(f *wfile, n int, sum blockSummary, rawLen int) {
	payload := w.blk[blockHeaderLen:]
	h := blockHeader{Type: BlockData, Codec: codecSections, Records: uint32(n), RawLen: uint32(rawLen),
		MinStart: sum.minStart, MaxEnd: sum.maxEnd, Packets: sum.packets, Bytes: sum.bytes}
	if w.appendBlock(f, &h, payload) {
		f.tot.addBlock(h.Records, h.MinStart, h.MaxEnd, h.Packets, h.Bytes)
		w.stRecords.Add(uint64(n))
	} else {
		w.lose(f, n)
	}
}

func (w *Writer) lose(f *wfile, n int) {
	f.damaged = true
	f.dropped += uint64(n)
	w.stDropped.Add(uint64(n))
}

// appendBlock frames raw and writes it at f.off: a sections data block as
// it is (raw must then be w.blk after the header's room, where
// writeRecords encoded it), a meta block zstd-compressed when that helps.
// On a write error
// the file is truncated back to f.off so that no torn block stays in the
// middle; if even that fails the file is broken.
func (w *Writer) appendBlock(f *wfile, h *blockHeader, raw []byte) bool {
	if f.broken || f.f == nil {
		return false
	}
	var blk []byte
	if h.Codec == codecSections {
		blk = w.blk[:blockHeaderLen+len(raw)]
	} else {
		blk = w.enc.EncodeAll(raw, w.blk[:blockHeaderLen])
		h.Codec = codecZstd
		if len(blk)-blockHeaderLen >= len(raw) {
			blk = append(blk[:blockHeaderLen], raw...)
			h.Codec = codecNone
		}
	}
	w.blk = blk
	payload := blk[blockHeaderLen:]
	h.CompLen = uint32(len(payload))
	h.CRC = crc32.Checksum(payload, castagnoli)
	h.put(blk[:blockHeaderLen])
	if _, err := f.f.WriteAt(blk, f.off); err != nil {
		f.damaged = true
		w.fail(f, "write", err)
		if terr := f.f.Truncate(f.off); terr != nil {
			f.broken = true
			w.fail(f, "truncate", terr)
		}
		return false
	}
	f.off += int64(len(blk))
	w.stBytes.Add(uint64(len(blk)))
	w.stBlocks.Add(1)
	return true
}

func (w *Writer) fileMeta(f *wfile, end time.Time, final bool) *Meta {
	if end.Before(f.start) {
		end = f.start
	}
	m := &Meta{
		Version:      FormatVersion,
		Start:        f.start,
		End:          end,
		Hostname:     w.cfg.Hostname,
		Exporters:    f.exporters,
		DroppedFlows: f.dropped + f.callerDropped,
		Recovered:    f.recovered,
		final:        final,
	}
	m.Complete = final && !f.damaged && m.DroppedFlows == 0
	f.tot.apply(m)
	return m
}

func (w *Writer) writeMeta(f *wfile, end time.Time, final bool) *Meta {
	w.ensureOpen(f)
	m := w.fileMeta(f, end, final)
	if f.broken || f.f == nil {
		return m
	}
	raw, err := json.Marshal(metaJSON{Meta: *m, FirstFlow: f.tot.minStart, LastFlow: f.tot.maxEnd, Final: final})
	if err != nil {
		w.fail(f, "encode meta", err)
		return m
	}
	h := blockHeader{Type: BlockMeta, RawLen: uint32(len(raw))}
	if !w.appendBlock(f, &h, raw) && final {
		// Without its final meta block the file reads as incomplete.
		m.Complete = false
	}
	return m
}

func (w *Writer) syncFile(f *wfile) {
	if f.broken || f.f == nil {
		return
	}
	if err := f.f.Sync(); err != nil {
		// After a failed fsync the page cache state is unknown: stop
		// writing this file so that it never reads as complete.
		f.broken, f.damaged = true, true
		w.fail(f, "fsync", err)
	}
}

// complete writes the final meta block, fsyncs, closes and renames f.
func (w *Writer) complete(f *wfile, end time.Time) (string, *Meta, error) {
	// A file that could not be created until now is created for its meta
	// block, which tells readers how many flows the interval lost.
	w.ensureOpen(f)
	if f.f == nil {
		return "", nil, fmt.Errorf("flowfile: file starting %v was never created", f.start)
	}
	m := w.writeMeta(f, end, true)
	w.syncFile(f)
	if f.broken {
		m.Complete = false
	}
	if err := f.f.Close(); err != nil {
		w.fail(f, "close", err)
	}
	f.f = nil
	f.finalPath = freeName(f.finalPath, f.start)
	if err := os.Rename(f.tmpPath, f.finalPath); err != nil {
		w.fail(f, "rename", err)
		return "", nil, err
	}
	if err := fsutil.SyncDir(filepath.Dir(f.finalPath)); err != nil {
		w.fail(f, "sync dir", err)
	}
	w.stFiles.Add(1)
	return f.finalPath, m, nil
}

// freeName returns path, or if a file of that name exists (a recovered
// .tmp whose completed twin survived), the name of the first free second
// after start, so that a rename never replaces a completed file.
func freeName(path string, start time.Time) string {
	for range 100 {
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			return path
		}
		start = start.Add(time.Second)
		path = filepath.Join(filepath.Dir(path), FileName(start))
	}
	return path
}

// runPost runs expiry and OnComplete for completed files, starting with
// those completed by recovery.
func (w *Writer) runPost(initial []completedFile) {
	defer close(w.postDone)
	handle := func(c completedFile) {
		if w.cfg.MaxBytes > 0 || w.cfg.MaxAge > 0 {
			removed, err := Expire(w.cfg.Dir, w.cfg.MaxBytes, w.cfg.MaxAge, w.cfg.Now())
			if err != nil {
				w.stErrors.Add(1)
				w.log.Error("flow file expiry failed", "err", err)
			}
			for _, p := range removed {
				w.log.Info("expired flow file", "path", p)
			}
		}
		if w.cfg.OnComplete != nil {
			w.cfg.OnComplete(c.path, c.meta)
		}
	}
	for _, c := range initial {
		handle(c)
	}
	for c := range w.post {
		handle(c)
	}
}

// ---- recovery ----

// recover completes stale .tmp files under cfg.Dir and returns the one of
// the current interval (opened, truncated after its last valid block) if
// any, plus the files it completed. It runs before the background writer
// starts, on the caller's goroutine.
func (w *Writer) recover(now time.Time) (*wfile, []completedFile) {
	type tmpFile struct {
		path  string
		start time.Time
	}
	var tmps []tmpFile
	err := filepath.WalkDir(w.cfg.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable subtree: skip it
		}
		if d.IsDir() && isOtherArchive(w.cfg.Dir, path) {
			return fs.SkipDir // another writer's files
		}
		if d.Type().IsRegular() && strings.HasSuffix(d.Name(), nameSuffix+tmpSuffix) {
			if start, ok := parseTmpName(d.Name()); ok {
				tmps = append(tmps, tmpFile{path, start})
			}
		}
		return nil
	})
	if err != nil {
		w.log.Error("scanning for unfinished flow files", "err", err)
	}
	// The current interval's file is the latest-starting .tmp whose
	// interval holds now.
	resumeIdx := -1
	for i, t := range tmps {
		end := nextBoundary(t.start, w.cfg.Interval, w.cfg.Location)
		if !t.start.After(now) && now.Before(end) && (resumeIdx < 0 || t.start.After(tmps[resumeIdx].start)) {
			resumeIdx = i
		}
	}
	var resumed *wfile
	var done []completedFile
	for i, t := range tmps {
		f, final, err := w.reopen(t.path, t.start)
		if err != nil {
			w.stErrors.Add(1)
			w.log.Error("cannot recover flow file, leaving it alone", "path", t.path, "err", err)
			continue
		}
		if i == resumeIdx && !final && f.version == FormatVersion {
			resumed = f
			continue
		}
		var m *Meta
		if final {
			f.f.Close()
			f.f = nil
			f.finalPath = freeName(f.finalPath, f.start)
			if err := os.Rename(f.tmpPath, f.finalPath); err != nil {
				w.fail(f, "rename", err)
				continue
			}
			fsutil.SyncDir(filepath.Dir(f.finalPath))
			r, err := Open(f.finalPath)
			if err != nil {
				w.log.Error("recovered flow file unreadable", "path", f.finalPath, "err", err)
				continue
			}
			m = r.Meta()
			r.Close()
		} else {
			end := f.start
			if f.lastFlush.After(end) {
				end = f.lastFlush
			}
			nominal := nextBoundary(f.start, w.cfg.Interval, w.cfg.Location)
			if end.After(nominal) {
				end = nominal
			}
			var path string
			path, m, err = w.complete(f, end.In(w.cfg.Location))
			if err != nil {
				continue
			}
			f.finalPath = path
		}
		w.log.Info("recovered flow file", "path", f.finalPath, "flows", m.Flows)
		done = append(done, completedFile{path: f.finalPath, meta: m})
	}
	return resumed, done
}

// reopen opens a .tmp for appending: it verifies every block, truncates a
// torn tail and restores counters and exporter statistics. final reports a
// file whose final meta block was already written.
func (w *Writer) reopen(path string, start time.Time) (f *wfile, final bool, err error) {
	fd, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, false, err
	}
	defer func() {
		if err != nil {
			fd.Close()
		}
	}()
	st, err := fd.Stat()
	if err != nil {
		return nil, false, err
	}
	if st.Size() < fileHeaderLen {
		// Crashed before the header was written: start the file over.
		if err := fd.Truncate(0); err != nil {
			return nil, false, err
		}
		if _, err := fd.WriteAt(appendFileHeader(nil), 0); err != nil {
			return nil, false, err
		}
		st, err = fd.Stat()
		if err != nil {
			return nil, false, err
		}
	}
	res, err := scanFile(fd, st.Size(), true)
	if err != nil {
		return nil, false, err
	}
	if res.validEnd < st.Size() {
		w.log.Warn("dropping torn tail of flow file", "path", path, "bytes", st.Size()-res.validEnd, "reason", res.tornErr)
		if err := fd.Truncate(res.validEnd); err != nil {
			return nil, false, err
		}
	}
	f = &wfile{
		start:     start,
		end:       nextBoundary(start, w.cfg.Interval, w.cfg.Location),
		f:         fd,
		tmpPath:   path,
		finalPath: strings.TrimSuffix(path, tmpSuffix),
		off:       res.validEnd,
		tot:       res.totals,
		recovered: true,
		version:   res.version,
	}
	if m := res.lastMeta; m != nil {
		f.exporters = m.Exporters
		f.callerDropped = m.DroppedFlows
		f.lastFlush = m.End
		f.recovered = m.Recovered || !res.final
		if m.DroppedFlows > 0 {
			f.damaged = true
		}
	}
	return f, res.final, nil
}
