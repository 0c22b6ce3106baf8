// Package gen is flowscan's synthetic exporter (the engine behind
// "flowscan gen"): NetFlow v5, NetFlow v9 and IPFIX encoders that append
// export datagrams to caller-owned buffers without allocating per record,
// a deterministic traffic model (Mix) that produces realistic flows, and
// Run, which paces generated flows to a UDP collector.
//
// The encoders write the counters of each flow.Record as given: they are
// the on-the-wire, sampled counts. When a sampling rate is announced, a
// collector scales them up; Stats reports what was encoded, unscaled.
package gen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/flowscan/flowscan/internal/flow"
)

// Formats accepted in Config.Format.
const (
	FormatV5    = "v5"
	FormatV9    = "v9"
	FormatIPFIX = "ipfix"
)

// DefaultTarget is the collector address used when Config.Target is empty.
const DefaultTarget = "127.0.0.1:2055"

// DefaultCount is the flow count used when neither Count nor Duration is set.
const DefaultCount = 10000

// Config describes a generator run.
type Config struct {
	// Target is the collector's host:port (IPv6 literals in brackets);
	// default DefaultTarget.
	Target string
	// Format is FormatV5, FormatV9 or FormatIPFIX (default v9).
	Format string
	// Rate is flows per second; 0 sends as fast as possible.
	Rate float64
	// Count is the number of flows to send. 0 means DefaultCount unless
	// Duration is set, in which case only Duration bounds the run.
	Count uint64
	// Duration stops the run after this long (0: only Count bounds it).
	Duration time.Duration
	// Exporters is the number of simulated exporters, each with its own
	// engine ID / source ID / observation domain (1..N); default 1.
	Exporters int
	// Seed makes the traffic deterministic.
	Seed int64
	// IPv6Share is the fraction of IPv6 flows; ignored for v5.
	IPv6Share float64
	// SamplingRate is the 1-in-N rate announced in the v5 header or in
	// v9/IPFIX options records (0: none).
	SamplingRate uint32
	// MaxDatagram is the UDP payload budget (default DefaultMaxDatagram).
	MaxDatagram int
	// TemplateEvery is the v9/IPFIX template refresh period in datagrams
	// per exporter (default DefaultTemplateEvery).
	TemplateEvery int
}

// Stats counts what a run sent. Bytes and Packets sum the flow counters as
// encoded (sampled counts, after v5's 32-bit saturation), so they can be
// compared with a collector's totals divided by the sampling rate.
type Stats struct {
	// Datagrams is the number of export datagrams sent.
	Datagrams uint64
	// Flows is the number of flow records sent.
	Flows uint64
	// Bytes and Packets sum the encoded (sampled) flow counters.
	Bytes, Packets uint64
	// Elapsed is the wall time since the run started.
	Elapsed time.Duration
}

// exporter is one simulated exporter behind a single encoder.
type exporter interface {
	// size returns the next datagram's length for n4 IPv4 and n6 IPv6
	// records.
	size(n4, n6 int) int
	// limit returns the hard per-datagram record limit of the format.
	limit() int
	// encode appends a datagram with recs.
	encode(dst []byte, now time.Time, recs []flow.Record) []byte
}

// v5Exporter keeps the per-exporter v5 header state.
type v5Exporter struct {
	boot     time.Time
	seq      uint32
	engine   uint8
	sampling uint16
}

func (x *v5Exporter) size(n4, n6 int) int { return V5Datagram(n4 + n6) }
func (x *v5Exporter) limit() int          { return V5MaxRecords }
func (x *v5Exporter) encode(dst []byte, now time.Time, recs []flow.Record) []byte {
	h := NewV5Header(now, x.boot, x.seq)
	h.EngineID = x.engine
	if x.sampling > 1 {
		h.SamplingMode, h.SamplingInterval = V5SamplingDeterministic, x.sampling
	}
	x.seq += uint32(len(recs))
	return AppendNetFlow5(dst, h, recs)
}

// v9Exporter adapts V9Encoder.
type v9Exporter struct{ V9Encoder }

func (x *v9Exporter) size(n4, n6 int) int { return x.Size(n4, n6) }
func (x *v9Exporter) limit() int          { return 0xffff }
func (x *v9Exporter) encode(dst []byte, now time.Time, recs []flow.Record) []byte {
	return x.Append(dst, now, recs)
}

// ipfixExporter adapts IPFIXEncoder.
type ipfixExporter struct{ IPFIXEncoder }

func (x *ipfixExporter) size(n4, n6 int) int { return x.Size(n4, n6) }
func (x *ipfixExporter) limit() int          { return 0xffff }
func (x *ipfixExporter) encode(dst []byte, now time.Time, recs []flow.Record) []byte {
	return x.Append(dst, now, recs)
}

// batchWriter is the sendmmsg interface shared by ipv4 and ipv6 PacketConns.
type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// runOptions are knobs for tests and benchmarks.
type runOptions struct {
	noBatch bool // use one write per datagram instead of sendmmsg
	batch   int  // datagrams per batch (default 64)
}

// Run sends generated flows to cfg.Target until cfg.Count flows are sent,
// cfg.Duration has passed or ctx ends, whichever comes first. progress, if
// not nil, is called about once a second from Run's goroutine. Run returns
// the final Stats; the error is ctx.Err() when ctx ended the run.
func Run(ctx context.Context, cfg Config, progress func(Stats)) (Stats, error) {
	return run(ctx, cfg, progress, runOptions{})
}

// normalize applies defaults and validates cfg.
func normalize(cfg *Config) error {
	if cfg.Target == "" {
		cfg.Target = DefaultTarget
	}
	if cfg.Format == "" {
		cfg.Format = FormatV9
	}
	if cfg.Count == 0 && cfg.Duration <= 0 {
		cfg.Count = DefaultCount
	}
	if cfg.Exporters <= 0 {
		cfg.Exporters = 1
	}
	if cfg.MaxDatagram <= 0 {
		cfg.MaxDatagram = DefaultMaxDatagram
	}
	if cfg.Rate < 0 {
		return fmt.Errorf("gen: negative rate %v", cfg.Rate)
	}
	if cfg.IPv6Share < 0 || cfg.IPv6Share > 1 {
		return fmt.Errorf("gen: IPv6 share %v outside [0, 1]", cfg.IPv6Share)
	}
	switch cfg.Format {
	case FormatV5:
		if cfg.Exporters > 255 {
			return fmt.Errorf("gen: v5 supports at most 255 exporters (engine IDs), got %d", cfg.Exporters)
		}
		if cfg.SamplingRate > 0x3fff {
			return fmt.Errorf("gen: v5 sampling interval %d exceeds 14 bits", cfg.SamplingRate)
		}
		if cfg.MaxDatagram < V5Datagram(1) {
			return fmt.Errorf("gen: max datagram %d too small for v5", cfg.MaxDatagram)
		}
		cfg.IPv6Share = 0
	case FormatV9, FormatIPFIX:
		// The largest first datagram: templates, options and one IPv6 record.
		need := (&V9Encoder{SamplingInterval: cfg.SamplingRate}).Size(0, 1)
		if cfg.Format == FormatIPFIX {
			need = (&IPFIXEncoder{SamplingInterval: cfg.SamplingRate}).Size(0, 1)
		}
		if cfg.MaxDatagram < need || cfg.MaxDatagram > 65507 {
			return fmt.Errorf("gen: max datagram %d outside [%d, 65507] for %s", cfg.MaxDatagram, need, cfg.Format)
		}
	default:
		return fmt.Errorf("gen: unknown format %q (want v5, v9 or ipfix)", cfg.Format)
	}
	return nil
}

// newExporters builds cfg.Exporters exporters with domains 1..N.
func newExporters(cfg *Config, now time.Time) []exporter {
	xs := make([]exporter, cfg.Exporters)
	for i := range xs {
		id := uint32(i + 1)
		switch cfg.Format {
		case FormatV5:
			xs[i] = &v5Exporter{boot: now.Add(-time.Duration(24+i) * time.Hour), engine: uint8(id), sampling: uint16(cfg.SamplingRate)}
		case FormatV9:
			xs[i] = &v9Exporter{V9Encoder{SourceID: id, TemplateEvery: cfg.TemplateEvery, SamplingInterval: cfg.SamplingRate,
				MaxDatagram: cfg.MaxDatagram, Boot: now.Add(-time.Duration(24+i) * time.Hour)}}
		default:
			xs[i] = &ipfixExporter{IPFIXEncoder{ObservationDomain: id, TemplateEvery: cfg.TemplateEvery,
				SamplingInterval: cfg.SamplingRate, MaxDatagram: cfg.MaxDatagram}}
		}
	}
	return xs
}

func run(ctx context.Context, cfg Config, progress func(Stats), ro runOptions) (Stats, error) {
	var st Stats
	if err := normalize(&cfg); err != nil {
		return st, err
	}
	raddr, err := net.ResolveUDPAddr("udp", cfg.Target)
	if err != nil {
		return st, fmt.Errorf("gen: target: %w", err)
	}
	conn, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		return st, fmt.Errorf("gen: %w", err)
	}
	defer conn.Close()
	_ = conn.SetWriteBuffer(4 << 20)
	var bw batchWriter
	if raddr.IP.To4() != nil {
		bw = ipv4.NewPacketConn(conn)
	} else {
		bw = ipv6.NewPacketConn(conn)
	}
	if ro.batch <= 0 {
		ro.batch = 64
	}

	start := time.Now()
	xs := newExporters(&cfg, start)
	mix := NewMix(cfg.Seed, MixOptions{IPv6Share: cfg.IPv6Share})

	// Flows per full datagram (IPv4), used as the pacing quantum.
	perDgram := 1
	for perDgram < xs[0].limit() && xs[0].size(perDgram+1, 0) <= cfg.MaxDatagram {
		perDgram++
	}
	arena := make([]byte, ro.batch*cfg.MaxDatagram)
	msgs := make([]ipv4.Message, ro.batch)
	bufs := make([][]byte, ro.batch)
	for i := range msgs {
		msgs[i].Buffers = bufs[i : i+1 : i+1]
	}
	recs := make([]flow.Record, min(xs[0].limit(), cfg.MaxDatagram/V5RecordLen+1))
	var pending flow.Record
	hasPending := false

	burst := uint64(perDgram)
	if cfg.Rate > 0 {
		burst = max(burst, uint64(cfg.Rate*0.005))
	}
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}
	nextProgress := start.Add(time.Second)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	xi := 0
	var runErr error
	for {
		if err := ctx.Err(); err != nil {
			runErr = err
			break
		}
		now := time.Now()
		if !deadline.IsZero() && !now.Before(deadline) {
			break
		}
		if progress != nil && !now.Before(nextProgress) {
			st.Elapsed = now.Sub(start)
			progress(st)
			nextProgress = now.Add(time.Second)
		}
		budget := ^uint64(0)
		rateLimited := false
		if cfg.Count > 0 {
			if st.Flows >= cfg.Count {
				break
			}
			budget = cfg.Count - st.Flows
		}
		if cfg.Rate > 0 {
			allowed := uint64(cfg.Rate*now.Sub(start).Seconds()) + burst
			need := min(uint64(perDgram), budget)
			if allowed < st.Flows+need {
				wait := time.Duration(float64(st.Flows+need-allowed) / cfg.Rate * float64(time.Second))
				wait = max(wait, 50*time.Microsecond)
				if !deadline.IsZero() {
					wait = min(wait, deadline.Sub(now))
				}
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				select {
				case <-ctx.Done():
				case <-timer.C:
				}
				continue
			}
			if allowed-st.Flows < budget {
				budget, rateLimited = allowed-st.Flows, true
			}
		}

		// Build a batch of datagrams.
		k := 0
		var flows, bytes, pkts uint64
		for k < ro.batch && flows < budget {
			// Under pacing, leave a partial datagram's worth of tokens for
			// the next round rather than sending a runt.
			if k > 0 && rateLimited && budget-flows < uint64(perDgram) {
				break
			}
			x := xs[xi]
			n, n4, n6 := 0, 0, 0
			for n < len(recs) && n < x.limit() && flows+uint64(n) < budget {
				r := &recs[n]
				if hasPending {
					*r = pending
					hasPending = false
				} else {
					mix.Next(r, now)
				}
				a4, a6 := n4, n6
				if r.IsIPv6() {
					a6++
				} else {
					a4++
				}
				if x.size(a4, a6) > cfg.MaxDatagram {
					pending, hasPending = *r, true
					break
				}
				n, n4, n6 = n+1, a4, a6
			}
			if n == 0 {
				break
			}
			b := x.encode(arena[k*cfg.MaxDatagram:k*cfg.MaxDatagram:(k+1)*cfg.MaxDatagram], now, recs[:n])
			bufs[k] = b
			_, v5 := x.(*v5Exporter)
			for i := range recs[:n] {
				if v5 {
					bytes += uint64(sat32(recs[i].Bytes))
					pkts += uint64(sat32(recs[i].Packets))
				} else {
					bytes += recs[i].Bytes
					pkts += recs[i].Packets
				}
			}
			flows += uint64(n)
			k++
			xi = (xi + 1) % len(xs)
		}
		if k == 0 {
			break
		}
		if err := send(conn, bw, msgs[:k], ro.noBatch); err != nil {
			runErr = err
			break
		}
		st.Datagrams += uint64(k)
		st.Flows += flows
		st.Bytes += bytes
		st.Packets += pkts
	}
	st.Elapsed = time.Since(start)
	return st, runErr
}

// maxRefused bounds consecutive ECONNREFUSED retries (the error reports an
// ICMP port unreachable for an earlier datagram, not for this one).
const maxRefused = 16

// send writes all msgs, with sendmmsg unless noBatch is set.
func send(conn *net.UDPConn, bw batchWriter, msgs []ipv4.Message, noBatch bool) error {
	refused := 0
	for len(msgs) > 0 {
		var n int
		var err error
		if noBatch {
			_, err = conn.Write(msgs[0].Buffers[0])
			if err == nil {
				n = 1
			}
		} else {
			n, err = bw.WriteBatch(msgs, 0)
		}
		if n > 0 {
			msgs = msgs[n:]
			refused = 0
		}
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) && refused < maxRefused {
				refused++
				continue
			}
			return fmt.Errorf("gen: send: %w", err)
		}
	}
	return nil
}
