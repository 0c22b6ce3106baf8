// Package counters keeps interface counters (sFlow counter samples) next to
// the flow archive: one JSON object per sample, appended to a file per day
// (DIR/counters/counters.YYYY-MM-DD.ndjson), so interface utilisation can be
// graphed or queried later with ordinary tools.
package counters

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowscan/flowscan/internal/decode"
)

// Sink writes counter samples in the background. Counters never blocks: a
// full queue drops samples and counts them.
type Sink struct {
	dir     string
	loc     *time.Location
	maxAge  time.Duration
	log     *slog.Logger
	queue   chan decode.IfCounters
	done    chan struct{}
	once    sync.Once
	written atomic.Uint64
	dropped atomic.Uint64
	errors  atomic.Uint64

	day  string
	f    *os.File
	w    *bufio.Writer
	line []byte
}

// New starts a sink writing under dir/counters. Day files older than
// maxAge (0: keep all) are removed when a new day starts and at start.
func New(dir string, loc *time.Location, maxAge time.Duration, logger *slog.Logger) (*Sink, error) {
	if loc == nil {
		loc = time.Local
	}
	if logger == nil {
		logger = slog.Default()
	}
	d := filepath.Join(dir, "counters")
	if err := os.MkdirAll(d, 0o755); err != nil {
		return nil, err
	}
	s := &Sink{dir: d, loc: loc, log: logger, maxAge: maxAge, queue: make(chan decode.IfCounters, 8192), done: make(chan struct{})}
	s.expire(time.Now())
	go s.run()
	return s, nil
}

// Counters implements collect.CounterSink.
func (s *Sink) Counters(cs []decode.IfCounters) {
	for i := range cs {
		select {
		case s.queue <- cs[i]:
		default:
			s.dropped.Add(1)
		}
	}
}

// Stats returns the samples written, dropped and the write errors.
func (s *Sink) Stats() (written, dropped, errors uint64) {
	return s.written.Load(), s.dropped.Load(), s.errors.Load()
}

// Close writes what is queued and closes the file.
func (s *Sink) Close() error {
	s.once.Do(func() { close(s.queue) })
	<-s.done
	return nil
}

func (s *Sink) run() {
	defer close(s.done)
	flush := time.NewTicker(2 * time.Second)
	defer flush.Stop()
	for {
		select {
		case c, ok := <-s.queue:
			if !ok {
				s.closeFile()
				return
			}
			s.write(&c)
		case <-flush.C:
			if s.w != nil {
				if err := s.w.Flush(); err != nil {
					s.fail(err)
				}
			}
		}
	}
}

func (s *Sink) write(c *decode.IfCounters) {
	day := c.Time.In(s.loc).Format("2006-01-02")
	if day != s.day || s.f == nil {
		if day != s.day && s.day != "" {
			s.expire(c.Time)
		}
		s.closeFile()
		path := filepath.Join(s.dir, "counters."+day+".ndjson")
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			s.fail(err)
			return
		}
		s.f, s.w, s.day = f, bufio.NewWriterSize(f, 64<<10), day
	}
	s.line = AppendJSON(s.line[:0], c)
	s.line = append(s.line, '\n')
	if _, err := s.w.Write(s.line); err != nil {
		s.fail(err)
		return
	}
	s.written.Add(1)
}

// expire removes day files whose day ended more than maxAge before now.
func (s *Sink) expire(now time.Time) {
	if s.maxAge <= 0 {
		return
	}
	names, _ := filepath.Glob(filepath.Join(s.dir, "counters.*.ndjson"))
	for _, p := range names {
		day := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "counters."), ".ndjson")
		t, err := time.ParseInLocation("2006-01-02", day, s.loc)
		if err != nil {
			continue
		}
		if now.Sub(t.AddDate(0, 0, 1)) > s.maxAge {
			if err := os.Remove(p); err != nil {
				s.fail(err)
			}
		}
	}
}

func (s *Sink) closeFile() {
	if s.f == nil {
		return
	}
	if err := s.w.Flush(); err != nil {
		s.fail(err)
	}
	s.f.Close()
	s.f, s.w = nil, nil
}

func (s *Sink) fail(err error) {
	if s.errors.Add(1) == 1 {
		s.log.Error("writing interface counters", "err", err)
	}
}

// AppendJSON appends c as one JSON object.
func AppendJSON(b []byte, c *decode.IfCounters) []byte {
	b = append(b, `{"time":"`...)
	b = c.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","exporter":"`...)
	b = c.Exporter.AppendTo(b)
	b = append(b, '"')
	for _, f := range []struct {
		k string
		v uint64
	}{
		{"domain", uint64(c.Domain)}, {"sequence", uint64(c.Sequence)}, {"if_index", uint64(c.IfIndex)},
		{"if_type", uint64(c.IfType)}, {"speed", c.Speed}, {"direction", uint64(c.Direction)}, {"status", uint64(c.Status)},
		{"in_octets", c.InOctets}, {"in_ucast_pkts", uint64(c.InUcastPkts)}, {"in_multicast_pkts", uint64(c.InMulticastPkts)},
		{"in_broadcast_pkts", uint64(c.InBroadcastPkts)}, {"in_discards", uint64(c.InDiscards)}, {"in_errors", uint64(c.InErrors)},
		{"in_unknown_protos", uint64(c.InUnknownProtos)}, {"out_octets", c.OutOctets}, {"out_ucast_pkts", uint64(c.OutUcastPkts)},
		{"out_multicast_pkts", uint64(c.OutMulticastPkts)}, {"out_broadcast_pkts", uint64(c.OutBroadcastPkts)},
		{"out_discards", uint64(c.OutDiscards)}, {"out_errors", uint64(c.OutErrors)}, {"promiscuous", uint64(c.Promiscuous)},
	} {
		b = append(b, ',', '"')
		b = append(b, f.k...)
		b = append(b, '"', ':')
		b = strconv.AppendUint(b, f.v, 10)
	}
	return append(b, '}')
}

// String describes the sink for logs.
func (s *Sink) String() string { return fmt.Sprintf("counters in %s", s.dir) }
