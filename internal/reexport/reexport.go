package reexport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/gen"
	"github.com/flowscan/flowscan/internal/metrics"
)

// Formats the exporter can send.
const (
	FormatNetFlow9 = "netflow9"
	FormatIPFIX    = "ipfix"
)

// Defaults.
const (
	// DefaultMaxDatagram is the UDP payload budget of one export datagram.
	DefaultMaxDatagram = 1400
	// DefaultQueue is the number of flows that may wait to be sent.
	DefaultQueue = 1 << 16
	// DefaultTemplateEvery is the template refresh period in datagrams.
	DefaultTemplateEvery = 20
	// DefaultTemplateInterval is the longest time between templates.
	DefaultTemplateInterval = 30 * time.Second
)

// chunkFlows is the number of records in one queued chunk.
const chunkFlows = 512

// Config configures an Exporter.
type Config struct {
	// Format is FormatNetFlow9 or FormatIPFIX ("v9" and "v10" also work).
	Format string
	// Target is the collector's HOST:PORT.
	Target string
	// Domain is the NetFlow v9 source ID or IPFIX observation domain ID.
	Domain uint32
	// MaxDatagram bounds each datagram's UDP payload (default 1400).
	MaxDatagram int
	// TemplateEvery resends the templates every N datagrams (default 20);
	// TemplateInterval resends them when that long has passed since the
	// last ones (default 30 s), so a restarted collector learns them soon
	// even when little is sent.
	TemplateEvery    int
	TemplateInterval time.Duration
	// Queue is the number of flows that may wait to be sent (default
	// 65536); flows beyond it are dropped and counted.
	Queue int
	// Logger receives operational messages; default slog.Default().
	Logger *slog.Logger
}

// ParseTarget reads FORMAT@HOST:PORT ("ipfix@192.0.2.5:4739",
// "netflow9@[2001:db8::5]:2055") into a Config with defaults otherwise.
func ParseTarget(s string) (Config, error) {
	format, target, ok := strings.Cut(strings.TrimSpace(s), "@")
	if !ok {
		return Config{}, fmt.Errorf("re-export %q: want FORMAT@HOST:PORT (FORMAT netflow9 or ipfix)", s)
	}
	cfg := Config{Format: format, Target: target}
	if _, err := normFormat(format); err != nil {
		return Config{}, fmt.Errorf("re-export %q: %w", s, err)
	}
	if _, _, err := net.SplitHostPort(target); err != nil {
		return Config{}, fmt.Errorf("re-export %q: want FORMAT@HOST:PORT: %w", s, err)
	}
	return cfg, nil
}

func normFormat(f string) (string, error) {
	switch strings.ToLower(f) {
	case "netflow9", "v9", "nfv9":
		return FormatNetFlow9, nil
	case "ipfix", "v10":
		return FormatIPFIX, nil
	}
	return "", fmt.Errorf("unknown re-export format %q (want netflow9 or ipfix)", f)
}

// encoder is what the exporter needs of gen.V9Encoder and
// gen.IPFIXEncoder.
type encoder interface {
	MaxRecords() int
	Append(dst []byte, now time.Time, recs []flow.Record) []byte
}

// Exporter sends flows on to another collector as NetFlow v9 or IPFIX. It
// implements collect.FlowSink: Flows copies the records into a bounded
// queue and returns at once; one goroutine encodes and sends them. Flows
// is safe for concurrent use.
//
// Bytes and packets go out exactly as they are in the records, which are
// already scaled by their sampling rate, and no sampling rate is
// announced: the receiver must not scale them again. The original
// exporter's address is not carried; every flow goes out under this
// exporter's address and Domain.
type Exporter struct {
	cfg    Config
	log    *slog.Logger
	conn   *net.UDPConn
	target string

	mu      sync.Mutex // guards filling and queueing chunks
	queue   chan []flow.Record
	free    chan []flow.Record
	pending atomic.Int64 // flows queued and not yet sent
	limit   int64        // the most flows that may be pending (cfg.Queue)

	enc          encoder
	setEvery     func(int) // sets the encoder's template period
	every        int
	lastTemplate time.Time

	done     chan struct{}
	finished chan struct{}
	closeErr error
	once     sync.Once

	flows, datagrams, bytes, dropped, sendErrors atomic.Uint64
}

// New opens the UDP socket and starts the sender.
func New(cfg Config) (*Exporter, error) {
	format, err := normFormat(cfg.Format)
	if err != nil {
		return nil, err
	}
	cfg.Format = format
	if cfg.MaxDatagram <= 0 {
		cfg.MaxDatagram = DefaultMaxDatagram
	}
	if cfg.TemplateEvery <= 0 {
		cfg.TemplateEvery = DefaultTemplateEvery
	}
	if cfg.TemplateInterval <= 0 {
		cfg.TemplateInterval = DefaultTemplateInterval
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ua, err := net.ResolveUDPAddr("udp", cfg.Target)
	if err != nil {
		return nil, fmt.Errorf("re-export target %q: %w", cfg.Target, err)
	}
	conn, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		return nil, fmt.Errorf("re-export target %q: %w", cfg.Target, err)
	}
	_ = conn.SetWriteBuffer(4 << 20)
	e := &Exporter{
		cfg:      cfg,
		log:      cfg.Logger,
		conn:     conn,
		target:   netip.AddrPortFrom(ua.AddrPort().Addr().Unmap(), ua.AddrPort().Port()).String(),
		every:    cfg.TemplateEvery,
		done:     make(chan struct{}),
		finished: make(chan struct{}),
	}
	switch format {
	case FormatNetFlow9:
		v9 := &gen.V9Encoder{SourceID: cfg.Domain, MaxDatagram: cfg.MaxDatagram, TemplateEvery: cfg.TemplateEvery}
		e.enc, e.setEvery = v9, func(n int) { v9.TemplateEvery = n }
	default:
		ipfix := &gen.IPFIXEncoder{ObservationDomain: cfg.Domain, MaxDatagram: cfg.MaxDatagram, TemplateEvery: cfg.TemplateEvery}
		e.enc, e.setEvery = ipfix, func(n int) { ipfix.TemplateEvery = n }
	}
	if e.enc.MaxRecords() < 1 {
		conn.Close()
		return nil, fmt.Errorf("re-export: a %d-byte datagram cannot hold one flow with templates", cfg.MaxDatagram)
	}
	// The queue is bounded in flows (cfg.Queue, checked against pending),
	// not in chunks: the collector hands over batches of any size, so the
	// channel has room for a chunk per flow at worst.
	e.limit = int64(cfg.Queue)
	e.queue = make(chan []flow.Record, cfg.Queue)
	e.free = make(chan []flow.Record, (cfg.Queue+chunkFlows-1)/chunkFlows+2)
	go e.run()
	return e, nil
}

// Target returns the collector address the flows go to.
func (e *Exporter) Target() string { return e.target }

// Flows queues copies of recs for sending. It never blocks: flows that do
// not fit in the queue are dropped and counted.
func (e *Exporter) Flows(recs []flow.Record) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for len(recs) > 0 {
		var chunk []flow.Record
		select {
		case chunk = <-e.free:
			chunk = chunk[:0]
		default:
			chunk = make([]flow.Record, 0, chunkFlows)
		}
		n := min(len(recs), chunkFlows)
		if e.pending.Load()+int64(n) > e.limit {
			e.dropped.Add(uint64(len(recs)))
			e.recycle(chunk)
			return
		}
		chunk = append(chunk, recs[:n]...)
		select {
		case e.queue <- chunk:
			e.pending.Add(int64(n))
		default:
			e.dropped.Add(uint64(len(recs)))
			e.recycle(chunk)
			return
		}
		recs = recs[n:]
	}
}

func (e *Exporter) recycle(chunk []flow.Record) {
	select {
	case e.free <- chunk:
	default:
	}
}

// run encodes and sends queued flows until Close.
func (e *Exporter) run() {
	defer close(e.finished)
	buf := make([]byte, 0, e.cfg.MaxDatagram+64)
	step := e.enc.MaxRecords()
	for {
		select {
		case chunk := <-e.queue:
			buf = e.send(buf, chunk, step)
		case <-e.done:
			for {
				select {
				case chunk := <-e.queue:
					buf = e.send(buf, chunk, step)
				default:
					return
				}
			}
		}
	}
}

// send encodes chunk into datagrams and writes them.
func (e *Exporter) send(buf []byte, chunk []flow.Record, step int) []byte {
	whole := chunk
	for len(chunk) > 0 {
		n := min(len(chunk), step)
		now := time.Now()
		forced := now.Sub(e.lastTemplate) >= e.cfg.TemplateInterval
		if forced {
			// A period of 1 makes this datagram carry the templates.
			e.setEvery(1)
		}
		buf = e.enc.Append(buf[:0], now, chunk[:n])
		if forced {
			e.setEvery(e.every)
			e.lastTemplate = now
		}
		if _, err := e.conn.Write(buf); err != nil {
			e.sendErrors.Add(1)
			if e.log.Enabled(context.Background(), slog.LevelDebug) {
				e.log.Debug("re-export send failed", "target", e.target, "err", err)
			}
		} else {
			e.flows.Add(uint64(n))
			e.datagrams.Add(1)
			e.bytes.Add(uint64(len(buf)))
		}
		e.pending.Add(-int64(n))
		chunk = chunk[n:]
	}
	e.recycle(whole[:0])
	return buf
}

// Stats are an Exporter's counters.
type Stats struct {
	// Flows, Datagrams and Bytes count what was handed to the kernel.
	Flows, Datagrams, Bytes uint64
	// Dropped counts flows dropped because the queue was full.
	Dropped uint64
	// SendErrors counts datagrams the kernel refused.
	SendErrors uint64
	// Pending is the number of flows queued and not yet sent.
	Pending int64
}

// Stats returns the counters.
func (e *Exporter) Stats() Stats {
	return Stats{
		Flows: e.flows.Load(), Datagrams: e.datagrams.Load(), Bytes: e.bytes.Load(),
		Dropped: e.dropped.Load(), SendErrors: e.sendErrors.Load(), Pending: e.pending.Load(),
	}
}

// WriteMetrics writes the exporter's counters; it is a metrics.Source.
func (e *Exporter) WriteMetrics(w *metrics.Writer) {
	s := e.Stats()
	l := []metrics.Label{metrics.L("target", e.target), metrics.L("format", e.cfg.Format)}
	w.Sample("flowscan_reexport_flows_total", metrics.Counter, "Flows re-exported.", float64(s.Flows), l...)
	w.Sample("flowscan_reexport_datagrams_total", metrics.Counter, "Re-export datagrams sent.", float64(s.Datagrams), l...)
	w.Sample("flowscan_reexport_bytes_total", metrics.Counter, "Re-export payload bytes sent.", float64(s.Bytes), l...)
	w.Sample("flowscan_reexport_dropped_flows_total", metrics.Counter, "Flows dropped because the re-export queue was full.", float64(s.Dropped), l...)
	w.Sample("flowscan_reexport_send_errors_total", metrics.Counter, "Re-export datagrams the kernel refused.", float64(s.SendErrors), l...)
	w.Sample("flowscan_reexport_queued_flows", metrics.Gauge, "Flows waiting to be re-exported.", float64(s.Pending), l...)
}

// Close sends what is queued (waiting at most two seconds), stops the
// sender and closes the socket. Call it after the last Flows call.
func (e *Exporter) Close() error {
	e.once.Do(func() {
		close(e.done)
		select {
		case <-e.finished:
		case <-time.After(2 * time.Second):
			_ = e.conn.SetWriteDeadline(time.Unix(1, 0))
			<-e.finished
		}
		e.closeErr = e.conn.Close()
		if s := e.Stats(); s.Dropped > 0 {
			e.log.Warn("re-export dropped flows", "target", e.target, "dropped", s.Dropped)
		}
	})
	if e.closeErr != nil && !errors.Is(e.closeErr, net.ErrClosed) {
		return e.closeErr
	}
	return nil
}
