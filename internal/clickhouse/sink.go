package clickhouse

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/fsutil"
	"github.com/flowscan/flowscan/internal/metrics"
)

// SinkConfig configures the collector's ClickHouse sink.
type SinkConfig struct {
	// Shards are the servers inserts go to: one for a single server, one
	// per shard of a cluster (each batch goes whole to one shard, chosen
	// by its id, into the shard's local table).
	Shards []*Client
	// Schema names the database, the cluster and the TTLs.
	Schema *Schema
	// SpoolDir keeps batches that could not be sent yet (required).
	SpoolDir string
	// SpoolMax bounds the spool in bytes (default 1 GiB); batches that do
	// not fit are dropped and counted (they remain in the flow files).
	SpoolMax int64
	// BatchRows is the most rows in one INSERT (default 262144; at most
	// 1 M so that ClickHouse inserts it as one block, atomically).
	BatchRows int
	// FlushInterval sends a partial batch this long after its first row
	// (default 2 s).
	FlushInterval time.Duration
	// MemoryBatches is how many sealed batches wait in memory before new
	// ones go straight to the spool (default 6).
	MemoryBatches int
	// Block makes Flows wait (up to Timeout) for room in the memory queue
	// instead of spooling, for producers that can wait, such as loading
	// flow files; the collector never blocks.
	Block bool
	// SendersPerShard is how many INSERTs run at once per shard (default
	// 1). More use more of the server's cores, but then a server crash
	// can leave several of this collector's batches in doubt at once, and
	// the consolidated tables of those hours may need `flowscan
	// clickhouse rebuild` (the sink logs it); batches start in order but
	// may finish out of order.
	SendersPerShard int
	// Timeout bounds one INSERT (default 60 s).
	Timeout time.Duration
	// Logger receives errors and state changes (default slog.Default).
	Logger *slog.Logger
}

// SinkStats are the sink's counters.
type SinkStats struct {
	Batches, Rows     uint64 // inserted
	Errors            uint64 // failed INSERTs or checks
	AlreadyThere      uint64 // re-sent batches found already inserted
	Dropped           uint64 // rows dropped because the spool was full
	Spooled           uint64 // batches written to the spool
	SpoolBatches      int
	SpoolBytes        int64
	MemoryBatches     int
	ExpiredPartitions uint64
	// RepairedViews counts consolidated tables completed after an
	// interrupted INSERT.
	RepairedViews uint64
	// DeadBatches counts batches set aside after repeated refusals.
	DeadBatches uint64
}

// Sink inserts decoded flows into ClickHouse. It implements the
// collector's flow sink: Flows copies the records into batches (Native columns)
// and returns at once; one goroutine sends the batches in order, spools
// them to disk while the server is unreachable and sends the spool first
// when it is back. A batch is never inserted twice: its id is in every
// row, and a batch whose INSERT failed is checked on the server before
// it is sent again.
type Sink struct {
	cfg   SinkConfig
	log   *slog.Logger
	feats []Features

	mu       sync.Mutex
	cur      *batch
	curSince time.Time
	mem      []*batch
	spool    *spool
	// inflight are the sequence numbers senders hold; inflightMem counts
	// those that came from memory (not in the spool).
	inflight    map[uint64]bool
	inflightMem int
	// free holds buffers of sent batches for reuse.
	free    [][]byte
	nextSeq uint64
	closing bool
	// spillq feeds the spooler; pending are the sequence numbers in it.
	spillq      chan *batch
	pending     map[uint64]bool
	spoolerDone chan struct{}

	wake     chan struct{}
	done     chan struct{}
	idle     chan struct{}
	idleOnce sync.Once
	stop     context.CancelFunc
	ctx      context.Context

	// refusals counts the server's refusals of each batch in a row.
	refusals map[uint64]int

	batches, rows, errs, already, dropped, spooled, expired, repaired, deadBatches atomic.Uint64
	down, expiring                                                                 atomic.Bool
}

// NewSink opens the spool, checks that every shard answers and has the
// schema (it is not created here: run `flowscan clickhouse init`), and
// starts the sender. A server that does not answer is not an error: the
// sink spools until it does.
func NewSink(cfg SinkConfig) (*Sink, error) {
	if len(cfg.Shards) == 0 {
		return nil, errors.New("clickhouse sink: no server")
	}
	if cfg.SpoolDir == "" {
		return nil, errors.New("clickhouse sink: no spool directory")
	}
	if cfg.Schema == nil {
		cfg.Schema = &Schema{Database: cfg.Shards[0].Database}
	}
	if cfg.SpoolMax <= 0 {
		cfg.SpoolMax = 1 << 30
	}
	if cfg.BatchRows <= 0 {
		cfg.BatchRows = 262144
	}
	if cfg.BatchRows > maxBatchRows {
		cfg.BatchRows = maxBatchRows
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 2 * time.Second
	}
	if cfg.MemoryBatches <= 0 {
		cfg.MemoryBatches = 6
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Minute
	}
	if cfg.SendersPerShard <= 0 {
		cfg.SendersPerShard = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	sp, err := openSpool(cfg.SpoolDir)
	if err != nil {
		return nil, err
	}
	s := &Sink{cfg: cfg, log: cfg.Logger.With("component", "clickhouse"), spool: sp,
		wake: make(chan struct{}, 1), done: make(chan struct{}), idle: make(chan struct{}), inflight: map[uint64]bool{}, refusals: map[uint64]int{},
		spillq: make(chan *batch, 4), pending: map[uint64]bool{}, spoolerDone: make(chan struct{}), feats: make([]Features, len(cfg.Shards))}
	s.nextSeq = sp.reserved
	if err := sp.reserve(s.nextSeq + seqChunk); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i, c := range cfg.Shards {
		v, err := cfg.Schema.SchemaVersion(ctx, c)
		if err != nil {
			s.log.Warn("server not reachable; spooling until it is", "server", c.Addr(), "err", err)
			continue
		}
		if v == 0 {
			return nil, fmt.Errorf("clickhouse %s: database %q has no flowscan schema: run `flowscan clickhouse init` first", c.Addr(), cfg.Schema.Database)
		}
		if v < LatestVersion() {
			return nil, fmt.Errorf("clickhouse %s: schema version %d is older than this flowscan's %d: run `flowscan clickhouse migrate`", c.Addr(), v, LatestVersion())
		}
		if s.feats[i], err = DetectFeatures(ctx, c); err == nil {
			for _, n := range s.feats[i].Notes() {
				s.log.Info(n, "server", c.Addr())
			}
		}
	}
	if n := len(sp.files); n > 0 {
		s.log.Info("spooled batches from an earlier run will be sent first", "batches", n, "bytes", sp.bytes)
	}
	s.ctx, s.stop = context.WithCancel(context.Background())
	go s.spooler()
	go s.run()
	return s, nil
}

// Flows implements the collector's flow sink: it appends recs to the
// current batch. It never blocks on the network; when both the server
// and the memory queue are full it writes the sealed batch to the spool.
func (s *Sink) Flows(recs []flow.Record) {
	if len(recs) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return
	}
	for i := range recs {
		if s.cur == nil && !s.startBatch() {
			s.dropped.Add(uint64(len(recs) - i))
			return
		}
		b := s.cur
		b.build.add(&recs[i], b.id)
		t := unixSeconds(recs[i].End)
		if b.rows == 0 || t < b.minT {
			b.minT = t
		}
		if t > b.maxT {
			b.maxT = t
		}
		b.rows++
		if b.build.full() {
			s.sealLocked()
		}
	}
}

func (s *Sink) startBatch() bool {
	if s.nextSeq >= s.spool.reserved {
		// An id used without being reserved on disk could be used again
		// after a restart, and a batch in doubt then mistaken for it.
		if err := s.spool.reserve(s.nextSeq + seqChunk); err != nil {
			s.log.Error("cannot reserve batch ids on disk: flows not sent to ClickHouse until it works", "err", err)
			return false
		}
	}
	s.cur = &batch{id: uint64(s.spool.collectorID)<<seqBits | s.nextSeq&seqMask}
	s.cur.build.reset(s.getBuffer(), s.cfg.BatchRows)
	s.nextSeq++
	s.curSince = time.Now()
	return true
}

// getBuffer returns a batch buffer with room for a whole batch (Native
// columns), reused from sent batches when one is free.
func (s *Sink) getBuffer() []byte {
	if n := len(s.free); n > 0 {
		b := s.free[n-1]
		s.free = s.free[:n-1]
		return b
	}
	return make([]byte, nativeSize(s.cfg.BatchRows))
}

// putBuffer keeps the buffer of a sent batch for reuse (a few at most);
// batches read from the spool have none.
func (s *Sink) putBuffer(b *batch) {
	buf := b.build.buf
	b.build = nativeBuilder{}
	if buf != nil && len(buf) == nativeSize(s.cfg.BatchRows) && len(s.free) < 2 {
		s.free = append(s.free, buf)
	}
}

// sealLocked ends the current batch and queues it.
func (s *Sink) sealLocked() {
	b := s.cur
	s.cur = nil
	if b == nil || b.rows == 0 {
		return
	}
	b.data = b.build.seal()
	if s.cfg.Block && len(s.mem) >= s.cfg.MemoryBatches {
		deadline := time.Now().Add(s.cfg.Timeout)
		for len(s.mem) >= s.cfg.MemoryBatches && time.Now().Before(deadline) && s.ctx.Err() == nil {
			s.mu.Unlock()
			time.Sleep(10 * time.Millisecond)
			s.mu.Lock()
		}
	}
	if len(s.mem) < s.cfg.MemoryBatches {
		s.mem = append(s.mem, b)
	} else {
		// The spooler compresses and writes it: the caller (the
		// collector's pipeline) never waits for the disk.
		select {
		case s.spillq <- b:
			s.pending[b.seq()] = true
		default:
			s.dropped.Add(uint64(b.rows))
			s.log.Error("spool writer behind: batch dropped (its flows are still in the flow files)", "rows", b.rows)
		}
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// spooler writes the batches sealLocked could not queue in memory.
func (s *Sink) spooler() {
	defer close(s.spoolerDone)
	for b := range s.spillq {
		s.spill(b)
		s.mu.Lock()
		delete(s.pending, b.seq())
		s.putBuffer(b)
		s.mu.Unlock()
	}
}

// spill writes b to the spool, or drops it when the spool is full. The
// caller must not hold s.mu: compressing and syncing take a while.
func (s *Sink) spill(b *batch) {
	s.mu.Lock()
	full := s.spool.bytes+int64(len(b.data)/3) > s.cfg.SpoolMax
	used := s.spool.bytes
	s.mu.Unlock()
	if full {
		s.dropped.Add(uint64(b.rows))
		s.log.Error("spool full: batch dropped (its flows are still in the flow files)",
			"rows", b.rows, "spool_bytes", used, "spool_max", s.cfg.SpoolMax)
		return
	}
	buf := s.spool.encode(b)
	if err := s.spool.write(b.seq(), buf); err != nil {
		s.dropped.Add(uint64(b.rows))
		s.log.Error("cannot spool batch: dropped", "rows", b.rows, "err", err)
		return
	}
	s.mu.Lock()
	s.spool.record(b.seq(), int64(len(buf)))
	s.mu.Unlock()
	s.spooled.Add(1)
}

// next picks the oldest pending batch of shard that no sender has yet
// (from the memory queue or the spool, whichever is older) and marks it
// in flight.
func (s *Sink) next(shard int) (b *batch, fromSpool bool, err error) {
	s.mu.Lock()
	var sh uint64
	hasSpool := false
	for _, seq := range s.spool.files {
		if !s.inflight[seq] && s.shardOf(seq) == shard {
			sh, hasSpool = seq, true
			break
		}
	}
	mi := -1
	for i, m := range s.mem {
		if s.shardOf(m.seq()) == shard {
			mi = i
			break
		}
	}
	// A batch on its way to the spool may be older than both: wait for it.
	for seq := range s.pending {
		if s.shardOf(seq) == shard && (mi < 0 || seq < s.mem[mi].seq()) && (!hasSpool || seq < sh) {
			s.mu.Unlock()
			return nil, false, nil
		}
	}
	if mi >= 0 && (!hasSpool || s.mem[mi].seq() < sh) {
		b = s.mem[mi]
		s.mem = append(s.mem[:mi], s.mem[mi+1:]...)
		s.inflight[b.seq()] = true
		s.inflightMem++
		s.mu.Unlock()
		return b, false, nil
	}
	if !hasSpool {
		s.mu.Unlock()
		return nil, false, nil
	}
	s.inflight[sh] = true
	s.mu.Unlock()
	// Read and decompress outside the lock.
	b, err = s.spool.load(sh)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		delete(s.inflight, sh)
		if errors.Is(err, errSpoolDamaged) {
			s.log.Error("damaged spooled batch removed", "err", err)
			s.spool.remove(sh)
		} else {
			s.log.Error("cannot read spooled batch; retrying", "err", err)
		}
		return nil, false, err
	}
	return b, true, nil
}

// finish marks b as sent.
func (s *Sink) finish(b *batch, fromSpool bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inflight, b.seq())
	// A batch from the spool has a buffer too once a sender ordered it.
	s.putBuffer(b)
	if fromSpool {
		if err := s.spool.remove(b.seq()); err != nil {
			s.log.Error("cannot remove sent batch from the spool", "err", err)
		}
		return
	}
	s.inflightMem--
}

// park keeps a batch whose INSERT failed in the spool, with its
// attempted flag, so that it is checked before it is sent again and
// survives a restart.
func (s *Sink) park(b *batch, fromSpool bool) {
	if fromSpool {
		buf := s.spool.encode(b)
		err := s.spool.write(b.seq(), buf)
		s.mu.Lock()
		if err != nil {
			s.log.Error("cannot record the attempt in the spool", "err", err)
		} else {
			s.spool.record(b.seq(), int64(len(buf)))
		}
		delete(s.inflight, b.seq())
		s.mu.Unlock()
		return
	}
	s.spill(b)
	s.mu.Lock()
	delete(s.inflight, b.seq())
	s.inflightMem--
	s.putBuffer(b)
	s.mu.Unlock()
}

// shard picks b's shard: batches of one collector go round-robin, and
// collectors start at different shards (by their collector id).
func (s *Sink) shard(b *batch) int { return s.shardOf(b.seq()) }

func (s *Sink) shardOf(seq uint64) int {
	return int((seq + uint64(s.spool.collectorID)) % uint64(len(s.cfg.Shards)))
}

// send inserts b unless a failed earlier attempt already did.
func (s *Sink) send(b *batch) error {
	c := s.cfg.Shards[s.shard(b)]
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.Timeout)
	defer cancel()
	table := s.cfg.Schema.Database + "." + s.cfg.Schema.InsertTable()
	if b.attempted {
		// Look on every shard: the shard list may have changed since
		// the attempt (a batch goes to the shard its id picks among the
		// shards configured then). On each, the server may still be
		// running the earlier attempt (it goes on after the client gave
		// up): wait until it has ended, so that what is counted is what
		// it did.
		for _, sc := range s.cfg.Shards {
			if err := s.waitQueryGone(ctx, sc, b.queryID()); err != nil {
				return err
			}
			days, err := s.countBatchDays(ctx, sc, b)
			if err != nil {
				return err
			}
			s.log.Debug("batch check", "server", sc.Addr(), "days", days)
			if len(days) == 0 {
				continue
			}
			s.already.Add(1)
			// One INSERT writes one part per day (partition) of its
			// rows; a crash can leave some days out. Send those again.
			// First complete the views of what is there (repairViews
			// attributes by the rows present), then send the rest.
			if err := s.repairViews(ctx, sc, b); err != nil {
				return err
			}
			missing, n, err := b.rowsOutside(days)
			if err != nil {
				return err
			}
			if n == 0 {
				s.log.Info("batch already inserted by an earlier attempt", "batch", b.id, "rows", b.rows)
				return nil
			}
			s.log.Warn("batch partly inserted by an earlier attempt: sending the days it lacks", "batch", b.id, "rows", b.rows, "missing", n)
			return sc.InsertWithID(ctx, table, RawColumnList(), b.format(), missing, restQueryID(b.queryID()))
		}
	}
	b.attempted = true
	return c.InsertWithID(ctx, table, RawColumnList(), b.format(), b.data, b.queryID())
}

// countBatchDays returns the days (YYYYMMDD of time_end, the raw table's
// partitions) for which the server has rows of b.
func (s *Sink) countBatchDays(ctx context.Context, c *Client, b *batch) (map[uint32]bool, error) {
	rows, err := c.QueryRows(ctx, fmt.Sprintf("SELECT DISTINCT toYYYYMMDD(time_end) FROM %s.%s WHERE time_end >= toDateTime(%d, 'UTC') "+
		"AND time_end <= toDateTime(%d, 'UTC') AND batch_id = %d", s.cfg.Schema.Database, s.cfg.Schema.InsertTable(), b.minT, b.maxT, b.id))
	if err != nil {
		return nil, err
	}
	days := map[uint32]bool{}
	for _, r := range rows {
		d, err := strconv.ParseUint(r[0], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("clickhouse: bad day %q in the batch check", r[0])
		}
		days[uint32(d)] = true
	}
	return days, nil
}

// rowsOutside returns the rows of b whose day (UTC, of time_end) is not
// in days, in b's format, and how many.
func (b *batch) rowsOutside(days map[uint32]bool) ([]byte, int, error) {
	outside := func(timeEnd []byte) bool {
		t := time.Unix(int64(binary.LittleEndian.Uint32(timeEnd)), 0).UTC()
		y, m, d := t.Date()
		return !days[uint32(y*10000+int(m)*100+d)]
	}
	if b.rowBinary {
		var out []byte
		for off := 0; off+RowSize <= len(b.data); off += RowSize {
			if outside(b.data[off+4:]) {
				out = append(out, b.data[off:off+RowSize]...)
			}
		}
		return out, len(out) / RowSize, nil
	}
	rows, cols, err := parseNative(b.data)
	if err != nil {
		return nil, 0, fmt.Errorf("clickhouse: batch %d: %w", b.id, err)
	}
	out, n := selectNative(rows, &cols, func(i int) bool { return outside(cols[1][4*i:]) })
	return out, n, nil
}

// run starts the senders and the housekeeping, and closes done when all
// have stopped.
func (s *Sink) run() {
	defer close(s.done)
	var wg sync.WaitGroup
	for i := range s.cfg.Shards {
		for range s.cfg.SendersPerShard {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.sender(i)
			}()
		}
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var lastExpire time.Time
	for {
		s.sealStale()
		if time.Since(lastExpire) > time.Hour && !s.expiring.Load() {
			lastExpire = time.Now()
			s.expiring.Store(true)
			go func() { // not on this loop: it seals batches on time
				defer s.expiring.Store(false)
				s.expire()
			}()
		}
		select {
		case <-tick.C:
		case <-s.ctx.Done():
			wg.Wait()
			return
		case <-s.idle:
			wg.Wait()
			return
		}
	}
}

// sender sends the batches of one shard, one at a time and oldest first,
// until the sink closes. With one sender per shard (the default), a crash
// of the server leaves at most one batch of this collector in doubt,
// which repairViews can attribute.
func (s *Sink) sender(shard int) {
	backoff := time.Duration(0)
	var order rawOrder
	for {
		if s.ctx.Err() != nil {
			return
		}
		b, fromSpool, err := s.next(shard)
		if err != nil {
			select { // a spool file that cannot be read now: not in a hot loop
			case <-time.After(time.Second):
			case <-s.ctx.Done():
				return
			}
			continue
		}
		if b == nil {
			s.mu.Lock()
			finished := s.closing && s.cur == nil && len(s.mem) == 0 && len(s.inflight) == 0 && len(s.spool.files) == 0 && len(s.pending) == 0
			s.mu.Unlock()
			if finished {
				s.idleOnce.Do(func() { close(s.idle) })
				return
			}
			select {
			case <-s.wake:
			case <-time.After(100 * time.Millisecond):
			case <-s.ctx.Done():
				return
			case <-s.idle:
				return
			}
			continue
		}
		// In the raw table's order the server need not sort the batch
		// (see rawOrder): worth the collector's CPU while batches wait
		// for the server, not while it keeps up.
		if s.backlog() > 0 {
			order.order(b, s.cfg.BatchRows)
		}
		err = s.send(b)
		if err == nil {
			s.batches.Add(1)
			s.rows.Add(uint64(b.rows))
			s.finish(b, fromSpool)
			if s.down.Swap(false) {
				s.log.Info("server reachable again; sending", "server", s.cfg.Shards[s.shard(b)].Addr())
			}
			backoff = 0
			continue
		}
		s.errs.Add(1)
		if s.refused(b, err) {
			// The server keeps refusing this batch itself (not the
			// connection): set it aside so the batches behind it go on.
			s.deadLetter(b, fromSpool, err)
			continue
		}
		s.park(b, fromSpool)
		if !s.down.Swap(true) {
			s.log.Warn("insert failed; spooling and retrying", "server", s.cfg.Shards[s.shard(b)].Addr(), "err", err)
		}
		backoff = min(max(2*backoff, 250*time.Millisecond), 15*time.Second)
		select {
		case <-time.After(backoff):
		case <-s.ctx.Done():
			return
		}
	}
}

// backlog is how many sealed batches wait to be sent (in memory, in the
// spool or on their way to it).
func (s *Sink) backlog() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mem) + len(s.spool.files) - len(s.inflight) + s.inflightMem + len(s.pending)
}

// maxRefusals is how many times in a row the server may refuse one batch
// (an answer, not a failed connection) before it is set aside.
var maxRefusals = 20

// refused counts a server's refusal of b and reports whether b has now
// been refused maxRefusals times in a row.
func (s *Sink) refused(b *batch, err error) bool {
	var se *ServerError
	s.mu.Lock()
	defer s.mu.Unlock()
	if !errors.As(err, &se) {
		delete(s.refusals, b.seq())
		return false
	}
	s.refusals[b.seq()]++
	return s.refusals[b.seq()] >= maxRefusals
}

// deadLetter moves a batch the server keeps refusing to SpoolDir/dead
// (same format as the spool: it can be inspected, or moved back once the
// cause is fixed) and counts it.
func (s *Sink) deadLetter(b *batch, fromSpool bool, cause error) {
	dir := filepath.Join(s.cfg.SpoolDir, "dead")
	buf := s.spool.encode(b)
	err := os.MkdirAll(dir, 0o755)
	if err == nil {
		err = fsutil.WriteFileAtomic(filepath.Join(dir, filepath.Base(s.spool.path(b.seq()))), buf)
	}
	s.mu.Lock()
	delete(s.refusals, b.seq())
	delete(s.inflight, b.seq())
	if fromSpool {
		s.spool.remove(b.seq())
	} else {
		s.inflightMem--
		s.putBuffer(b)
	}
	s.mu.Unlock()
	s.deadBatches.Add(1)
	if err != nil {
		s.dropped.Add(uint64(b.rows))
		s.log.Error("batch refused by the server and not saved: dropped", "batch", b.id, "rows", b.rows, "cause", cause, "err", err)
		return
	}
	s.log.Error("batch refused by the server again and again: set aside in the spool's dead/ directory", "batch", b.id, "rows", b.rows, "refusals", maxRefusals, "cause", cause, "dir", dir)
}

// sealStale seals the current batch once it is FlushInterval old.
func (s *Sink) sealStale() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil && (s.closing || time.Since(s.curSince) >= s.cfg.FlushInterval) {
		s.sealLocked()
	}
}

// expire drops expired partitions on servers without table TTL.
func (s *Sink) expire() {
	for i, c := range s.cfg.Shards {
		if s.feats[i].Version == (Version{}) {
			// The server did not answer at start: ask now.
			ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
			f, err := DetectFeatures(ctx, c)
			cancel()
			if err != nil {
				continue
			}
			s.feats[i] = f
		}
		if s.feats[i].TTL {
			continue
		}
		ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
		dropped, err := s.cfg.Schema.Expire(ctx, c, time.Now())
		cancel()
		if err != nil {
			s.log.Warn("expiring old partitions failed", "server", c.Addr(), "err", err)
		}
		if len(dropped) > 0 {
			s.expired.Add(uint64(len(dropped)))
			s.log.Info("expired partitions dropped", "server", c.Addr(), "partitions", dropped)
		}
	}
}

// Close seals the current batch and keeps sending for up to wait; what
// is still unsent then goes to the spool for the next start.
func (s *Sink) Close(wait time.Duration) error {
	s.mu.Lock()
	s.closing = true
	if s.cur != nil {
		s.sealLocked()
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	select {
	case <-s.done:
	case <-time.After(wait):
		s.stop()
		<-s.done
	}
	s.stop()
	s.mu.Lock()
	left := s.mem
	s.mem = nil
	s.mu.Unlock()
	for _, b := range left {
		s.spill(b)
	}
	close(s.spillq)
	<-s.spoolerDone
	if len(left) > 0 {
		s.log.Warn("unsent batches kept in the spool for the next start", "batches", len(left), "dir", s.cfg.SpoolDir)
	}
	return nil
}

// Stats returns the sink's counters.
func (s *Sink) Stats() SinkStats {
	s.mu.Lock()
	st := SinkStats{SpoolBatches: len(s.spool.files), SpoolBytes: s.spool.bytes, MemoryBatches: len(s.mem) + s.inflightMem}
	s.mu.Unlock()
	st.Batches, st.Rows, st.Errors = s.batches.Load(), s.rows.Load(), s.errs.Load()
	st.AlreadyThere, st.Dropped, st.Spooled = s.already.Load(), s.dropped.Load(), s.spooled.Load()
	st.ExpiredPartitions, st.RepairedViews, st.DeadBatches = s.expired.Load(), s.repaired.Load(), s.deadBatches.Load()
	return st
}

// WriteMetrics writes the sink's metrics (a metrics.Source).
func (s *Sink) WriteMetrics(w *metrics.Writer) {
	st := s.Stats()
	w.Sample("flowscan_clickhouse_batches_total", metrics.Counter, "Batches inserted into ClickHouse.", float64(st.Batches))
	w.Sample("flowscan_clickhouse_rows_total", metrics.Counter, "Flows inserted into ClickHouse.", float64(st.Rows))
	w.Sample("flowscan_clickhouse_errors_total", metrics.Counter, "Failed ClickHouse inserts and checks.", float64(st.Errors))
	w.Sample("flowscan_clickhouse_batches_already_inserted_total", metrics.Counter, "Re-sent batches found already inserted (not sent twice).", float64(st.AlreadyThere))
	w.Sample("flowscan_clickhouse_dropped_rows_total", metrics.Counter, "Flows not sent to ClickHouse because the spool was full.", float64(st.Dropped))
	w.Sample("flowscan_clickhouse_spooled_batches_total", metrics.Counter, "Batches written to the local spool.", float64(st.Spooled))
	w.Sample("flowscan_clickhouse_spool_batches", metrics.Gauge, "Batches waiting in the local spool.", float64(st.SpoolBatches))
	w.Sample("flowscan_clickhouse_spool_bytes", metrics.Gauge, "Size of the local spool.", float64(st.SpoolBytes))
	w.Sample("flowscan_clickhouse_dead_batches_total", metrics.Counter, "Batches the server refused again and again, set aside in the spool's dead/ directory.", float64(st.DeadBatches))
	w.Sample("flowscan_clickhouse_repaired_views_total", metrics.Counter, "Consolidated tables completed after an interrupted insert.", float64(st.RepairedViews))
	w.Sample("flowscan_clickhouse_memory_batches", metrics.Gauge, "Sealed batches waiting in memory.", float64(st.MemoryBatches))
	up := 1.0
	if s.down.Load() {
		up = 0
	}
	w.Sample("flowscan_clickhouse_up", metrics.Gauge, "1 if the last ClickHouse insert succeeded.", up)
}

// repairViews completes the consolidated tables for a batch that an
// earlier, interrupted INSERT stored in the raw table: the server writes
// the raw rows first and then pushes them through each materialized
// view, so a crash in between leaves views without the batch.
//
// Every consolidated row carries batch_hash, the sum of
// cityHash64(batch_id) over the flows it counts, so that for the hours
// the batch covers, the raw table's sum minus the view's is the sum over
// the flows the view misses. When that difference is exactly this
// batch's own sum, the view misses this batch and nothing else (another
// batch's flows would add their own, unrelated hashes): it is made up
// from the batch's raw rows. Zero means the view is complete. Anything
// else (other inserts still in flight, other collectors' interrupted
// batches) is checked again after the running INSERTs ended, then
// logged for `flowscan clickhouse rebuild`. A repaired view has a
// difference of zero, so repeating the check never repairs twice.
func (s *Sink) repairViews(ctx context.Context, c *Client, b *batch) error {
	db := s.cfg.Schema.Database
	raw := db + "." + s.cfg.Schema.InsertTable()
	from, to := int64(b.minT)/3600*3600, (int64(b.maxT)/3600+1)*3600
	hours := func(col string) string {
		return fmt.Sprintf("%s >= toDateTime(%d, 'UTC') AND %s < toDateTime(%d, 'UTC')", col, from, col, to)
	}
	own, err := s.scalar(ctx, c, fmt.Sprintf("SELECT sum(cityHash64(batch_id)) FROM %s WHERE %s AND batch_id = %d", raw, hours("time_end"), b.id))
	if err != nil {
		return err
	}
	for _, v := range consolidated {
		table := db + "." + s.cfg.Schema.storage(v.name)
		var diff uint64
		for try := 0; ; try++ {
			rawSum, err := s.scalar(ctx, c, fmt.Sprintf("SELECT sum(cityHash64(batch_id)) FROM %s WHERE %s", raw, hours("time_end")))
			if err != nil {
				return err
			}
			viewSum, err := s.scalar(ctx, c, fmt.Sprintf("SELECT sum(batch_hash) FROM %s WHERE %s", table, hours("time")))
			if err != nil {
				return err
			}
			diff = rawSum - viewSum // modulo 2^64, as the server sums
			if diff == 0 || diff == own || try == 2 {
				break
			}
			// Someone else's INSERT may be between its raw part and its
			// views: let the running ones end, then look again.
			if err := s.waitInserts(ctx, c); err != nil {
				return err
			}
		}
		switch diff {
		case 0:
			continue
		case own:
		default:
			s.log.Warn("consolidated table disagrees with the raw flows (not only this batch); once these hours are closed, run flowscan clickhouse rebuild",
				"table", v.name, "from", time.Unix(from, 0).UTC(), "to", time.Unix(to, 0).UTC(), "batch", b.id)
			continue
		}
		keys := strings.Join(v.keys, ", ")
		stmt := fmt.Sprintf("INSERT INTO %s (time, %s, bytes, packets, flows, batch_hash) SELECT %s(time_end) AS time, %s, sum(bytes), sum(packets), count(), "+
			"sum(cityHash64(batch_id)) FROM %s WHERE %s AND batch_id = %d GROUP BY time, %s",
			table, keys, v.round, keys, raw, hours("time_end"), b.id, keys)
		if err := c.Exec(ctx, stmt); err != nil {
			return err
		}
		s.repaired.Add(1)
		s.log.Warn("consolidated table completed with a batch an interrupted insert left out", "table", v.name, "batch", b.id, "rows", b.rows)
	}
	return nil
}

// queryID names a batch's INSERT on the server.
func (b *batch) queryID() string { return fmt.Sprintf("flowscan-batch-%d", b.id) }

// waitInserts waits a few seconds at most for the server's running
// INSERTs to end; on a busy server some always run, so it gives up
// quietly (the caller then logs what it cannot explain).
func (s *Sink) waitInserts(ctx context.Context, c *Client) error {
	if err := s.waitProcesses(ctx, c, "query LIKE 'INSERT%'", 5*time.Second); err != nil && ctx.Err() != nil {
		return err
	}
	return nil
}

// waitQueryGone waits until the server runs no query with this id.
// Both INSERTs of a batch count: the whole batch under id, and the rest
// of a partly inserted one under id-rest.
func (s *Sink) waitQueryGone(ctx context.Context, c *Client, id string) error {
	return s.waitProcesses(ctx, c, fmt.Sprintf("query_id IN ('%s', '%s')", id, restQueryID(id)), s.cfg.Timeout)
}

// restQueryID is the query id of the INSERT of a batch's missing days.
func restQueryID(id string) string { return id + "-rest" }

// waitProcesses polls system.processes until no query matches cond, for
// at most max.
func (s *Sink) waitProcesses(ctx context.Context, c *Client, cond string, max time.Duration) error {
	deadline := time.Now().Add(max)
	for {
		n, err := s.scalar(ctx, c, "SELECT count() FROM system.processes WHERE "+cond)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("clickhouse %s: queries (%s) still running after %s", c.Addr(), cond, max)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *Sink) scalar(ctx context.Context, c *Client, q string) (uint64, error) {
	rows, err := c.QueryRows(ctx, q)
	if err != nil {
		return 0, err
	}
	if len(rows) != 1 || len(rows[0]) != 1 {
		return 0, fmt.Errorf("clickhouse: unexpected answer to %q", q)
	}
	return strconv.ParseUint(rows[0][0], 10, 64)
}
