package relay

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/metrics"
)

// headroom is the room kept in front of each queued payload for the IPv6
// (40 bytes) and UDP (8 bytes) headers a spoofing sender writes in place.
const headroom = 48

// sendBatch is the most datagrams one sendmmsg call carries.
const sendBatch = 64

// defaultSlot is the payload capacity of a fresh packet buffer; larger
// datagrams get a larger buffer, which is then kept.
const defaultSlot = 1500

// closeGrace is how long Close waits for senders to drain their queues
// before it interrupts a blocked send.
const closeGrace = 2 * time.Second

// packet is one queued datagram: headroom bytes, then the payload.
type packet struct {
	buf []byte
	n   int
	src netip.AddrPort
}

// payload returns the datagram bytes.
func (p *packet) payload() []byte { return p.buf[headroom : headroom+p.n] }

// set copies data into p, growing its buffer if needed.
func (p *packet) set(src netip.AddrPort, data []byte) {
	if cap(p.buf) < headroom+len(data) {
		p.buf = make([]byte, headroom+max(len(data), defaultSlot))
	}
	p.buf = p.buf[:cap(p.buf)]
	p.n = copy(p.buf[headroom:], data)
	p.src = src
}

// Forwarder copies datagrams, unchanged, to several destinations. It
// implements collect.DatagramSink: Datagram copies the datagram into each
// matching destination's bounded queue and returns at once; one goroutine
// per destination sends what is queued. A full queue drops the datagram
// and counts it, so a slow or dead destination never delays the caller or
// the other destinations. Datagram is safe for concurrent use.
type Forwarder struct {
	log     *slog.Logger
	dests   []*dest
	formats []decode.Factory // header matchers, when a destination filters by format

	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

// dest is one destination's queue, sender and counters.
type dest struct {
	cfg   Destination
	label string
	queue chan *packet
	free  chan *packet
	conn  sender

	forwarded, bytes, dropped, filtered, errs atomic.Uint64
	lastErr                                   atomic.Value // string
}

// sender sends batches of queued packets to one destination.
type sender interface {
	// send sends batch and returns how many datagrams were sent (and
	// their payload bytes), how many the kernel refused and the last
	// refusal. sent+failed < len(batch) means the socket stopped sending
	// (closed or interrupted).
	send(batch []*packet) (r sendResult)
	// interrupt makes a blocked send return.
	interrupt()
	close() error
}

// newSender opens the socket for one destination; tests replace it.
var newSender = func(cfg Destination) (sender, error) {
	if cfg.Spoof {
		return newRawSender(cfg.Addr)
	}
	return newUDPSender(cfg.Addr)
}

// DestinationStats are one destination's counters.
type DestinationStats struct {
	// Destination is the destination's label (its address, made unique).
	Destination string
	// Forwarded and Bytes count datagrams handed to the kernel and their
	// payload bytes.
	Forwarded, Bytes uint64
	// Dropped counts datagrams dropped because the queue was full.
	Dropped uint64
	// Filtered counts datagrams the exporter or format filter left out.
	Filtered uint64
	// Errors counts datagrams the kernel refused (or, with spoofing,
	// that could not be sent from the exporter's address family).
	Errors uint64
}

// NewForwarder opens one socket per destination and starts its sender.
// Destinations with Spoof need CAP_NET_RAW. logger may be nil.
func NewForwarder(dests []Destination, logger *slog.Logger) (*Forwarder, error) {
	if len(dests) == 0 {
		return nil, errors.New("relay: no destination")
	}
	if logger == nil {
		logger = slog.Default()
	}
	f := &Forwarder{log: logger, done: make(chan struct{})}
	registered := map[decode.Format]bool{}
	for _, fac := range decode.Registered() {
		registered[fac.Format] = true
	}
	needFormats := false
	labels := map[string]int{}
	for _, cfg := range dests {
		for _, fm := range cfg.Formats {
			if !registered[fm] {
				f.closeConns()
				return nil, fmt.Errorf("relay: destination %s filters format %s, which this build does not recognise", cfg.Addr, fm)
			}
			needFormats = true
		}
		if cfg.Queue <= 0 {
			cfg.Queue = DefaultQueue
		}
		conn, err := newSender(cfg)
		if err != nil {
			f.closeConns()
			return nil, fmt.Errorf("relay: destination %s: %w", cfg.Addr, err)
		}
		label := cfg.Addr.String()
		labels[label]++
		if n := labels[label]; n > 1 {
			label = fmt.Sprintf("%s#%d", label, n)
		}
		f.dests = append(f.dests, &dest{
			cfg:   cfg,
			label: label,
			queue: make(chan *packet, cfg.Queue),
			free:  make(chan *packet, cfg.Queue+sendBatch),
			conn:  conn,
		})
	}
	if needFormats {
		f.formats = decode.Registered()
	}
	for _, d := range f.dests {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			d.run(f.done)
		}()
	}
	return f, nil
}

// Destinations returns the destinations' labels, in order.
func (f *Forwarder) Destinations() []string {
	out := make([]string, len(f.dests))
	for i, d := range f.dests {
		out[i] = d.label
	}
	return out
}

// Datagram queues a copy of data, received from src, for every destination
// whose filters let it through. It never blocks.
func (f *Forwarder) Datagram(src netip.AddrPort, data []byte) {
	format, detected := decode.FormatUnknown, false
	for _, d := range f.dests {
		if !d.cfg.matchExporter(src.Addr()) {
			d.filtered.Add(1)
			continue
		}
		if len(d.cfg.Formats) > 0 {
			if !detected {
				format, detected = f.detect(data), true
			}
			if !d.cfg.matchFormat(format) {
				d.filtered.Add(1)
				continue
			}
		}
		p := d.get()
		p.set(src, data)
		select {
		case d.queue <- p:
		default:
			d.dropped.Add(1)
			d.put(p)
		}
	}
}

// detect returns the format whose header matcher accepts data.
func (f *Forwarder) detect(data []byte) decode.Format {
	for i := range f.formats {
		if f.formats[i].Match(data) {
			return f.formats[i].Format
		}
	}
	return decode.FormatUnknown
}

// Stats returns every destination's counters.
func (f *Forwarder) Stats() []DestinationStats {
	out := make([]DestinationStats, len(f.dests))
	for i, d := range f.dests {
		out[i] = DestinationStats{
			Destination: d.label,
			Forwarded:   d.forwarded.Load(),
			Bytes:       d.bytes.Load(),
			Dropped:     d.dropped.Load(),
			Filtered:    d.filtered.Load(),
			Errors:      d.errs.Load(),
		}
	}
	return out
}

// WriteMetrics writes the per-destination counters; it is a metrics.Source.
func (f *Forwarder) WriteMetrics(w *metrics.Writer) {
	for _, s := range f.Stats() {
		l := metrics.L("destination", s.Destination)
		w.Sample("flowscan_relay_forwarded_datagrams_total", metrics.Counter, "Datagrams forwarded to a destination.", float64(s.Forwarded), l)
		w.Sample("flowscan_relay_forwarded_bytes_total", metrics.Counter, "Payload bytes forwarded to a destination.", float64(s.Bytes), l)
		w.Sample("flowscan_relay_dropped_datagrams_total", metrics.Counter, "Datagrams dropped because a destination's queue was full.", float64(s.Dropped), l)
		w.Sample("flowscan_relay_filtered_datagrams_total", metrics.Counter, "Datagrams a destination's exporter or format filter left out.", float64(s.Filtered), l)
		w.Sample("flowscan_relay_send_errors_total", metrics.Counter, "Datagrams the kernel refused to send to a destination.", float64(s.Errors), l)
	}
	for _, d := range f.dests {
		w.Sample("flowscan_relay_queue_length", metrics.Gauge, "Datagrams waiting in a destination's queue.", float64(len(d.queue)), metrics.L("destination", d.label))
	}
}

// Close sends what is queued (waiting up to two seconds for a blocked
// destination), stops the senders and closes the sockets. Call it after
// the last Datagram call; datagrams passed later are dropped.
func (f *Forwarder) Close() error {
	f.closeOnce.Do(func() {
		close(f.done)
		finished := make(chan struct{})
		go func() {
			f.wg.Wait()
			close(finished)
		}()
		select {
		case <-finished:
		case <-time.After(closeGrace):
			for _, d := range f.dests {
				d.conn.interrupt()
			}
			<-finished
		}
		f.closeErr = f.closeConns()
	})
	return f.closeErr
}

func (f *Forwarder) closeConns() error {
	var errs []error
	for _, d := range f.dests {
		if err := d.conn.close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// get returns a recycled packet or a new one.
func (d *dest) get() *packet {
	select {
	case p := <-d.free:
		return p
	default:
		return &packet{buf: make([]byte, headroom+defaultSlot)}
	}
}

// put recycles p.
func (d *dest) put(p *packet) {
	select {
	case d.free <- p:
	default:
	}
}

// run sends queued packets in batches until done is closed and the queue
// is empty.
func (d *dest) run(done <-chan struct{}) {
	batch := make([]*packet, 0, sendBatch)
	for {
		var p *packet
		select {
		case p = <-d.queue:
		case <-done:
			// Drain what is queued, then stop.
			for {
				batch = batch[:0]
			drain:
				for len(batch) < sendBatch {
					select {
					case p := <-d.queue:
						batch = append(batch, p)
					default:
						break drain
					}
				}
				if len(batch) == 0 {
					return
				}
				if !d.flush(batch) {
					return
				}
			}
		}
		batch = append(batch[:0], p)
	more:
		for len(batch) < sendBatch {
			select {
			case p := <-d.queue:
				batch = append(batch, p)
			default:
				break more
			}
		}
		d.flush(batch)
	}
}

// flush sends batch, counts the outcome and recycles the packets. It
// reports false when the socket can no longer send (closed or
// interrupted).
func (d *dest) flush(batch []*packet) bool {
	r := d.conn.send(batch)
	sent, failed, err := r.sent, r.failed, r.err
	d.forwarded.Add(uint64(sent))
	d.bytes.Add(r.bytes)
	ok := true
	if rest := len(batch) - sent - failed; rest > 0 {
		// The send was interrupted: the rest is lost.
		failed += rest
		ok = false
	}
	if failed > 0 {
		d.errs.Add(uint64(failed))
		if err != nil {
			d.lastErr.Store(err.Error())
		}
	}
	for _, p := range batch {
		d.put(p)
	}
	return ok
}
