// Package collect is the UDP flow collector: it reads export datagrams from
// one or more sockets, decodes them with the registered decoders, accounts
// sequence loss per exporter and hands the flows to the flow-file writer.
//
// Data flows one way: socket readers (one goroutine per socket, recvmmsg
// batches) decode what they read themselves, one batch at a time under the
// pipeline lock (allow-list, decode, loss accounting, metrics), and hand the
// flows to flowfile.Writer, which compresses and writes in the background so
// that neither rotation nor disk latency stalls receiving. Reading and
// decoding on the same goroutine saves a goroutine hand-off (a wake-up of
// another thread) per batch; the socket's kernel buffer absorbs what arrives
// while a batch is decoded.
package collect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/flowfile"
	"github.com/flowscan/flowscan/internal/fsutil"
	"github.com/flowscan/flowscan/internal/metrics"
	"github.com/flowscan/flowscan/internal/udp"
)

// Default UDP ports: NetFlow/IPFIX's customary 2055 and sFlow's 6343. Every
// socket accepts every registered format; the header tells them apart.
const (
	DefaultPort      = 2055
	DefaultSFlowPort = 6343
)

// Config configures a Collector.
type Config struct {
	// Listen holds UDP addresses ("127.0.0.1:2055", "[::]:2055", ":2055").
	Listen []string
	// SocketsPerAddr is the number of SO_REUSEPORT sockets per address;
	// 0 means one per CPU.
	SocketsPerAddr int
	// RcvBuf is the requested socket receive buffer in bytes (default 4 MiB).
	RcvBuf int
	// Allow, if not empty, is the exporter allow-list: datagrams from other
	// sources are counted and dropped.
	Allow []netip.Prefix
	// Decode configures the decoders (sampling overrides, template limits).
	Decode decode.Options
	// StateDir keeps decoder state (templates) across restarts; default
	// Archive.Dir/.flowscan.
	StateDir string
	// Archive configures the flow-file writer.
	Archive flowfile.Config
	// Logger receives operational messages; default slog.Default().
	Logger *slog.Logger
	// Metrics, if set, receives the collector's metrics.
	Metrics *metrics.Registry
	// MaxExporters bounds per-exporter bookkeeping (default 10000).
	MaxExporters int
	// Datagrams receive every accepted datagram, unchanged, before it is
	// decoded (the relay, `collect --forward`).
	Datagrams []DatagramSink
	// Flows receive every batch of decoded flows after it was handed to
	// the flow-file writer (re-export, external stores).
	Flows []FlowSink
	// Counters, if set, receives interface counters (sFlow counter
	// samples) after each batch of datagrams.
	Counters CounterSink
}

// CounterSink takes interface counters. Counters is called with the
// pipeline lock held (by a socket reader, one call at a time) and must not
// block or keep cs after it returns.
type CounterSink interface {
	Counters(cs []decode.IfCounters)
}

// DatagramSink takes raw export datagrams. Datagram is called with the
// pipeline lock held (by a socket reader, one call at a time) and must not
// block or keep data after it returns (copy it into a queue and count what
// a full queue drops).
type DatagramSink interface {
	Datagram(src netip.AddrPort, data []byte)
}

// FlowSink takes decoded flows. Flows is called with the pipeline lock held
// (by a socket reader, one call at a time) and must not block or keep recs
// after it returns.
type FlowSink interface {
	Flows(recs []flow.Record)
}

// Collector receives, decodes and stores flows. Create it with New and run it
// with Run.
type Collector struct {
	cfg     Config
	log     *slog.Logger
	sockets []*udp.Socket
	mux     *decode.Mux
	writer  *flowfile.Writer
	seq     *SequenceTracker

	// pipeMu is the pipeline lock: it guards the decoders' use, the
	// sequence tracker, the writer, recs, counters, stopped and the
	// exporters map's insertions (with expMu).
	pipeMu  sync.Mutex
	stopped bool // the writer is being closed: no more rotations

	recs     []flow.Record
	counters []decode.IfCounters
	// pkt is the datagram being decoded: a field, not a local, because
	// the decoders take its address and a local would be allocated on
	// every batch.
	pkt decode.Packet

	// exporters is written only under pipeMu; expMu guards insertions
	// against concurrent metric scrapes.
	expMu     sync.RWMutex
	exporters map[exporterKey]*exporterCounters
	overflow  exporterCounters // exporters beyond MaxExporters

	decodeErrors sync.Map // decode.Format+Reason -> *atomic.Uint64
	// skippedRecords counts, per decode.Format, data records that became
	// no flow (decode.Result.Skipped) -> *atomic.Uint64.
	skippedRecords sync.Map
	denied         atomic.Uint64
	truncated      atomic.Uint64
	unknownFmt     atomic.Uint64
	stateErrors    atomic.Uint64
	// receiveErrors counts failed recvmmsg calls.
	receiveErrors atomic.Uint64

	stateMu  sync.Mutex
	savedGen map[string]uint64 // state file -> decoder generation last saved
}

type exporterKey struct {
	addr   netip.Addr
	format decode.Format
}

// exporterCounters are one exporter's counters, per format.
type exporterCounters struct {
	datagrams, flows, lostFlows, lostDatagrams, resets, misordered atomic.Uint64
	// skewed counts flows whose end time is far from their arrival
	// (skewAhead, skewBehind); skewLogged is set once that was logged.
	skewed       atomic.Uint64
	skewLogged   atomic.Bool
	lastSeen     atomic.Int64 // Unix seconds
	samplingRate atomic.Uint32
}

// ExporterStatus is one exporter's counters since the collector started.
type ExporterStatus struct {
	Exporter                      netip.Addr
	Format                        decode.Format
	Datagrams, Flows, LostFlows   uint64
	LostDatagrams, SequenceResets uint64
	SamplingRate                  uint32
	LastSeen                      time.Time
}

// Exporters returns every exporter's counters, for status pages.
func (c *Collector) Exporters() []ExporterStatus {
	c.expMu.RLock()
	defer c.expMu.RUnlock()
	out := make([]ExporterStatus, 0, len(c.exporters))
	for k, v := range c.exporters {
		out = append(out, ExporterStatus{Exporter: k.addr, Format: k.format,
			Datagrams: v.datagrams.Load(), Flows: v.flows.Load(), LostFlows: v.lostFlows.Load(),
			LostDatagrams: v.lostDatagrams.Load(), SequenceResets: v.resets.Load(),
			SamplingRate: v.samplingRate.Load(), LastSeen: time.Unix(v.lastSeen.Load(), 0)})
	}
	return out
}

// Templates returns the number of templates known per format.
func (c *Collector) Templates() map[decode.Format]int {
	out := map[decode.Format]int{}
	for _, f := range decode.Registered() {
		if st, ok := c.mux.Decoder(f.Format).(decode.Stateful); ok {
			out[f.Format] = st.TemplateCount()
		}
	}
	return out
}

type errKey struct {
	format decode.Format
	reason decode.Reason
}

// New opens the sockets and the flow-file writer (recovering any file a
// crash left behind) and loads saved decoder state.
func New(ctx context.Context, cfg Config) (*Collector, error) {
	if len(cfg.Listen) == 0 {
		cfg.Listen = []string{fmt.Sprintf("127.0.0.1:%d", DefaultPort)}
	}
	if cfg.SocketsPerAddr <= 0 {
		cfg.SocketsPerAddr = min(runtime.GOMAXPROCS(0), 4)
	}
	if cfg.RcvBuf <= 0 {
		cfg.RcvBuf = udp.DefaultRcvBuf
	}
	if cfg.MaxExporters <= 0 {
		cfg.MaxExporters = 10000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Archive.Logger == nil {
		cfg.Archive.Logger = cfg.Logger
	}
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(cfg.Archive.Dir, ".flowscan")
	}
	// The archive first: a second collector on it stops here, before it
	// reads state or takes a share of the exporters' datagrams
	// (SO_REUSEPORT). NewWriter owns the lock from here on.
	if cfg.Archive.Lock == nil {
		lock, err := flowfile.LockDir(cfg.Archive.Dir)
		if err != nil {
			return nil, err
		}
		cfg.Archive.Lock = lock
	}
	c := &Collector{
		cfg:       cfg,
		log:       cfg.Logger,
		mux:       decode.NewMux(cfg.Decode),
		seq:       NewSequenceTracker(cfg.MaxExporters * 4),
		exporters: make(map[exporterKey]*exporterCounters),
		recs:      make([]flow.Record, 0, 4096),
		savedGen:  make(map[string]uint64),
	}
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		cfg.Archive.Lock.Release()
		return nil, fmt.Errorf("state directory: %w", err)
	}
	c.loadState()
	for _, addr := range cfg.Listen {
		for i := 0; i < cfg.SocketsPerAddr; i++ {
			s, got, err := udp.Listen(ctx, addr, cfg.RcvBuf)
			if err != nil {
				c.closeSockets()
				cfg.Archive.Lock.Release()
				return nil, fmt.Errorf("listen on %s: %w", addr, err)
			}
			if i == 0 {
				c.log.Info("listening", "addr", s.Addr(), "sockets", cfg.SocketsPerAddr, "rcvbuf", got)
				if got < cfg.RcvBuf {
					c.log.Warn("receive buffer smaller than requested; raise net.core.rmem_max or run as root", "requested", cfg.RcvBuf, "got", got)
				}
			}
			c.sockets = append(c.sockets, s)
		}
	}
	w, err := flowfile.NewWriter(cfg.Archive)
	if err != nil {
		c.closeSockets()
		return nil, err
	}
	c.writer = w
	if cfg.Metrics != nil {
		cfg.Metrics.Register(c.writeMetrics)
	}
	return c, nil
}

// Addrs returns the local addresses the collector listens on.
func (c *Collector) Addrs() []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range c.sockets {
		if a := s.Addr(); !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// Rotate completes the current flow file now (SIGHUP).
// It returns an error once the collector has stopped.
func (c *Collector) Rotate() error {
	c.pipeMu.Lock()
	defer c.pipeMu.Unlock()
	if c.stopped {
		return errors.New("collector stopped")
	}
	return c.writer.Rotate()
}

// Run receives and stores flows until ctx is cancelled, then drains what
// was received, completes the current file and saves decoder state.
func (c *Collector) Run(ctx context.Context) error {
	var readers sync.WaitGroup
	for _, s := range c.sockets {
		readers.Add(1)
		go func() {
			defer readers.Done()
			c.readLoop(s)
		}()
	}
	houseDone := make(chan struct{})
	go func() {
		defer close(houseDone)
		c.housekeeping(ctx)
	}()
	stateDone := make(chan struct{})
	go func() {
		defer close(stateDone)
		c.stateLoop(ctx)
	}()

	<-ctx.Done()
	c.closeSockets()
	readers.Wait()
	<-houseDone
	<-stateDone
	c.pipeMu.Lock()
	c.stopped = true
	c.pipeMu.Unlock()
	c.saveState()
	return c.writer.Close()
}

func (c *Collector) closeSockets() {
	for _, s := range c.sockets {
		s.Close()
	}
}

// readAhead bounds the batches a reader fills before decoding them.
const readAhead = 16

// readLoop reads batches from one socket and decodes them itself. Normally
// one batch at a time; but when a batch comes back full (datagrams are
// waiting: the reader fell behind, or was not scheduled for a while), it
// first empties the socket into up to readAhead batches (allocated on first
// need and kept), then decodes them all, so that the kernel's buffer is
// freed at the speed of recvmmsg rather than of decoding.
func (c *Collector) readLoop(s *udp.Socket) {
	batches := []*udp.Batch{udp.NewBatch()}
	backoff := time.Millisecond
	for {
		if err := s.ReadBatch(batches[0]); err != nil {
			if udp.IsClosed(err) {
				return
			}
			// A transient failure (ENOBUFS, ENOMEM): count it, back off
			// and keep the socket served, or the kernel would go on
			// hashing exporters to a socket nobody reads.
			if c.receiveErrors.Add(1) == 1 || backoff >= time.Second {
				c.log.Error("receive failed; retrying", "socket", s.Addr(), "err", err)
			}
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = time.Millisecond
		n := 1
		for n < readAhead && full(batches[n-1]) {
			if n == len(batches) {
				batches = append(batches, udp.NewBatch())
			}
			if err := s.TryReadBatch(batches[n]); err != nil {
				if !udp.IsClosed(err) {
					c.receiveErrors.Add(1)
				}
				break
			}
			if batches[n].N+batches[n].Truncated == 0 {
				break
			}
			n++
		}
		c.pipeMu.Lock()
		for _, b := range batches[:n] {
			if b.Truncated > 0 {
				c.truncated.Add(uint64(b.Truncated))
			}
			if b.N > 0 {
				c.handle(b)
			}
		}
		c.pipeMu.Unlock()
	}
}

// full reports whether a read filled every slot of b.
func full(b *udp.Batch) bool { return b.N+b.Truncated == udp.BatchSlots }

// housekeeping completes files on time when no datagram arrives and
// forgets idle exporters.
func (c *Collector) housekeeping(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastEvict := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			c.pipeMu.Lock()
			if err := c.writer.Tick(); err != nil {
				c.log.Error("flow file", "err", err)
			}
			c.pipeMu.Unlock()
			if now.Sub(lastEvict) >= evictEvery {
				lastEvict = now
				c.pipeMu.Lock()
				c.evictIdle(now.Add(-c.idleLimit()))
				c.pipeMu.Unlock()
			}
		}
	}
}

// handle decodes every datagram of a batch and writes the flows; the
// caller holds pipeMu.
func (c *Collector) handle(b *udp.Batch) {
	// Rotate first when the interval ended, so that this batch's exporter
	// counters and its flows land in the same file.
	if err := c.writer.Tick(); err != nil {
		c.log.Error("flow file", "err", err)
	}
	recs := c.recs[:0]
	var run exporterRun
	pkt := &c.pkt
	*pkt = decode.Packet{Received: b.Received}
	now := b.Received.Unix()
	// Flows ending outside [recvMs-skewBehind, recvMs+skewAhead] are
	// counted as skewed: the exporter's clock (or uptime) is wrong.
	recvMs := b.Received.UnixMilli()
	skewLo, skewHi := recvMs-skewBehind.Milliseconds(), recvMs+skewAhead.Milliseconds()
	c.seq.Now = now
	for i := 0; i < b.N; i++ {
		pkt.Data, pkt.Src = b.Data(i), b.Src(i)
		if !c.allowed(pkt.Src.Addr()) {
			c.denied.Add(1)
			continue
		}
		for _, sink := range c.cfg.Datagrams {
			sink.Datagram(pkt.Src, pkt.Data)
		}
		before := len(recs)
		var res decode.Result
		var err error
		recs, res, err = c.mux.Decode(recs, pkt)
		if err != nil {
			recs = recs[:before]
			c.countError(err)
			continue
		}
		if fk := (flowfile.ExporterKey{Addr: res.Exporter, Domain: res.Domain, Format: uint8(res.Format)}); !run.open || fk != run.key {
			c.closeRun(&run, now)
			run = exporterRun{key: fk, ec: c.exporter(exporterKey{res.Exporter, res.Format}), open: true}
		}
		if res.Skipped > 0 {
			c.countSkipped(res.Format, res.Skipped)
		}
		so := c.seq.Observe(&res)
		st := &run.stats
		st.Datagrams++
		st.Flows += uint64(res.Flows)
		st.LostFlows += so.LostFlows
		st.LostDatagrams += so.LostDatagrams
		if so.Reset {
			st.SequenceResets++
		}
		if so.Misordered {
			st.Misordered++
		}
		for i := before; i < len(recs); i++ {
			if e := recs[i].End; e < skewLo || e > skewHi {
				run.skewed++
				run.skewEnd = e
			}
		}
		if res.Flows > 0 {
			run.rate, run.hasRate = recs[len(recs)-1].SamplingRate, true
			if run.rate != 0 {
				st.SamplingRate = run.rate
			}
		}
	}
	c.closeRun(&run, now)
	if len(recs) > 0 {
		if err := c.writer.Write(recs); err != nil {
			c.log.Error("writing flows", "err", err, "flows", len(recs))
		}
		for _, sink := range c.cfg.Flows {
			sink.Flows(recs)
		}
	}
	if c.cfg.Counters != nil {
		c.counters = c.mux.DrainCounters(c.counters[:0])
		if len(c.counters) > 0 {
			c.cfg.Counters.Counters(c.counters)
		}
	}
	c.recs = recs[:0]
}

// exporterRun sums the counters of consecutive datagrams of one exporting
// process in a batch (usually all of them), so that the exporter's
// counters and the file's accounting are updated once per run rather than
// once per datagram.
type exporterRun struct {
	key   flowfile.ExporterKey
	ec    *exporterCounters
	stats flowfile.ExporterStats
	// rate is the sampling rate of the run's last datagram with flows,
	// when hasRate.
	rate    uint32
	hasRate bool
	open    bool
	// skewed counts the run's flows with a skewed end time; skewEnd is
	// the last such end (Unix ms), for the log.
	skewed  uint64
	skewEnd int64
}

// A flow whose end time lies more than skewAhead after its datagram's
// arrival, or more than skewBehind before it, is counted as skewed: flows
// end before they are exported, and exporters send them within their
// active timeout (minutes, rarely an hour) of their end.
const (
	skewAhead  = 10 * time.Minute
	skewBehind = 2 * time.Hour
)

// closeRun adds an open run's counters to its exporter and to the current
// file; the caller holds pipeMu.
func (c *Collector) closeRun(run *exporterRun, now int64) {
	if !run.open {
		return
	}
	st, ec := &run.stats, run.ec
	ec.datagrams.Add(st.Datagrams)
	ec.flows.Add(st.Flows)
	ec.lastSeen.Store(now)
	if st.LostFlows > 0 {
		ec.lostFlows.Add(st.LostFlows)
	}
	if st.LostDatagrams > 0 {
		ec.lostDatagrams.Add(st.LostDatagrams)
	}
	if st.SequenceResets > 0 {
		ec.resets.Add(st.SequenceResets)
	}
	if st.Misordered > 0 {
		ec.misordered.Add(st.Misordered)
	}
	if run.hasRate {
		ec.samplingRate.Store(run.rate)
	}
	if run.skewed > 0 {
		ec.skewed.Add(run.skewed)
		if ec.skewLogged.CompareAndSwap(false, true) {
			c.log.Warn("flow times far from this host's clock: check the exporter's clock (NTP) or, for NetFlow v5/v9, its uptime",
				"exporter", run.key.Addr, "format", decode.Format(run.key.Format), "flow_end", time.UnixMilli(run.skewEnd).UTC(),
				"received", time.Unix(now, 0).UTC())
		}
	}
	c.writer.Account(run.key, *st)
	run.open = false
}

// Exporters silent for idleExporter are forgotten (checked every
// evictEvery), so a burst of spoofed sources cannot fill the bookkeeping
// for good; while the bookkeeping is full, those silent for idleWhenFull
// already, so that real exporters that start after a flood are followed
// within the hour. Their counters restart at zero if they come back.
const (
	idleExporter = 24 * time.Hour
	idleWhenFull = time.Hour
	evictEvery   = time.Minute
)

// idleLimit is how long an exporter may be silent before evictIdle
// forgets it; the caller holds pipeMu.
func (c *Collector) idleLimit() time.Duration {
	if c.seq.Full() || len(c.exporters) >= c.cfg.MaxExporters {
		return idleWhenFull
	}
	return idleExporter
}

// evictIdle forgets exporters and sequence spaces last seen before cutoff.
func (c *Collector) evictIdle(cutoff time.Time) {
	limit := cutoff.Unix()
	c.expMu.Lock()
	for k, ec := range c.exporters {
		if ec.lastSeen.Load() < limit {
			delete(c.exporters, k)
		}
	}
	c.expMu.Unlock()
	c.seq.Evict(cutoff)
}

func (c *Collector) allowed(a netip.Addr) bool {
	if len(c.cfg.Allow) == 0 {
		return true
	}
	for _, p := range c.cfg.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (c *Collector) exporter(k exporterKey) *exporterCounters {
	if ec := c.exporters[k]; ec != nil {
		return ec
	}
	if len(c.exporters) >= c.cfg.MaxExporters {
		return &c.overflow
	}
	ec := &exporterCounters{}
	c.expMu.Lock()
	c.exporters[k] = ec
	c.expMu.Unlock()
	return ec
}

// countSkipped counts n data records of format f that became no flow.
func (c *Collector) countSkipped(f decode.Format, n int) {
	v, ok := c.skippedRecords.Load(f)
	if !ok {
		v, _ = c.skippedRecords.LoadOrStore(f, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(uint64(n))
}

func (c *Collector) countError(err error) {
	var de *decode.Error
	k := errKey{decode.FormatUnknown, "other"}
	if errors.As(err, &de) {
		k = errKey{de.Format, de.Reason}
	}
	v, ok := c.decodeErrors.Load(k)
	if !ok {
		v, _ = c.decodeErrors.LoadOrStore(k, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(1)
	if c.log.Enabled(context.Background(), slog.LevelDebug) {
		c.log.Debug("decode error", "err", err)
	}
}

// stateLoop saves decoder state shortly after it changes, so a restart
// (even after kill -9) keeps the templates learned up to a second before.
func (c *Collector) stateLoop(ctx context.Context) {
	wait := time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
			began := time.Now()
			c.saveState()
			wait = stateSaveWait(time.Since(began))
		}
	}
}

// stateSaveWait is the pause before the next state save after one that
// took took: a second, or ten times as long as saving took, so that a
// flood of template changes (large templates from many exporters, which
// make a large state file) costs the saver at most a tenth of a core.
func stateSaveWait(took time.Duration) time.Duration {
	return max(time.Second, 10*took)
}

// stateFile is where the state of one decoder is kept.
func (c *Collector) stateFile(f decode.Format) string {
	return filepath.Join(c.cfg.StateDir, f.String()+".state")
}

func (c *Collector) saveState() {
	c.stateMu.Lock()
	defer c.stateMu.Unlock()
	for _, f := range decode.Registered() {
		st, ok := c.mux.Decoder(f.Format).(decode.Stateful)
		if !ok {
			continue
		}
		path := c.stateFile(f.Format)
		gen := st.StateGeneration()
		if g, ok := c.savedGen[path]; ok && g == gen {
			continue
		}
		var buf bytes.Buffer
		if err := st.SaveState(&buf); err != nil {
			c.stateErrors.Add(1)
			c.log.Error("saving decoder state", "format", f.Format, "err", err)
			continue
		}
		if err := fsutil.WriteFileAtomic(path, buf.Bytes()); err != nil {
			c.stateErrors.Add(1)
			c.log.Error("saving decoder state", "format", f.Format, "err", err)
			continue
		}
		c.savedGen[path] = gen
	}
}

func (c *Collector) loadState() {
	for _, f := range decode.Registered() {
		st, ok := c.mux.Decoder(f.Format).(decode.Stateful)
		if !ok {
			continue
		}
		path := c.stateFile(f.Format)
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil {
			err = st.LoadState(bytes.NewReader(data))
		}
		if err != nil {
			c.log.Warn("ignoring saved decoder state", "file", path, "err", err)
			continue
		}
		c.savedGen[path] = st.StateGeneration()
		c.log.Info("restored decoder state", "format", f.Format, "templates", st.TemplateCount())
	}
}
