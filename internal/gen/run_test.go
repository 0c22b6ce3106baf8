package gen

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/flow"
)

// sink is a loopback collector that decodes what it receives.
type sink struct {
	conn *net.UDPConn
	wg   sync.WaitGroup

	mu                       sync.Mutex
	datagrams, flows, errs   uint64
	bytes, packets           uint64 // decoded, i.e. scaled by the sampling rate
	domains                  map[uint32]bool
	formats                  map[decode.Format]bool
	firstErr                 error
	lastSeq                  map[uint32]uint32
	seqGaps                  int
	seenSeq                  map[uint32]bool
	seqUnitDatagrams, advSum uint64
}

// newSink listens on network ("udp4" or "udp6") loopback, port 0.
func newSink(t *testing.T, network, addr string) *sink {
	t.Helper()
	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Skipf("listen %s: %v", addr, err)
	}
	_ = conn.SetReadBuffer(4 << 20)
	s := &sink{conn: conn, domains: map[uint32]bool{}, formats: map[decode.Format]bool{},
		lastSeq: map[uint32]uint32{}, seenSeq: map[uint32]bool{}}
	mux := decode.NewMux(decode.Options{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 65536)
		var recs []flow.Record
		for {
			n, src, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			var res decode.Result
			recs, res, err = mux.Decode(recs[:0], &decode.Packet{Data: buf[:n], Src: src, Received: time.Now()})
			s.mu.Lock()
			s.datagrams++
			if err != nil {
				s.errs++
				if s.firstErr == nil {
					s.firstErr = err
				}
			}
			s.flows += uint64(len(recs))
			for i := range recs {
				s.bytes += recs[i].Bytes
				s.packets += recs[i].Packets
			}
			s.domains[res.Domain] = true
			s.formats[res.Format] = true
			if s.seenSeq[res.Domain] && res.Sequence != s.lastSeq[res.Domain] {
				s.seqGaps++
			}
			s.seenSeq[res.Domain] = true
			s.lastSeq[res.Domain] = res.Sequence + res.SeqAdvance
			s.mu.Unlock()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *sink) addr() string { return s.conn.LocalAddr().String() }

// wait gives the reader time to drain after the sender finished, up to
// five seconds, until want datagrams arrived.
func (s *sink) wait(want uint64) {
	for i := 0; i < 500; i++ {
		s.mu.Lock()
		got := s.datagrams
		s.mu.Unlock()
		if got >= want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *sink) close() {
	s.conn.Close()
	s.wg.Wait()
}

func TestRunCountsMatchCollector(t *testing.T) {
	tests := []struct {
		name    string
		network string
		addr    string
		cfg     Config
	}{
		{"v5", "udp4", "127.0.0.1:0", Config{Format: FormatV5, Count: 3000, Rate: 100000}},
		{"v5 sampled, 3 exporters", "udp4", "127.0.0.1:0", Config{Format: FormatV5, Count: 2500, Rate: 100000, Exporters: 3, SamplingRate: 100}},
		{"v9 mixed", "udp4", "127.0.0.1:0", Config{Format: FormatV9, Count: 3000, Rate: 100000, IPv6Share: 0.3, Exporters: 2}},
		{"v9 sampled", "udp4", "127.0.0.1:0", Config{Format: FormatV9, Count: 3000, Rate: 100000, SamplingRate: 10, TemplateEvery: 5}},
		{"ipfix sampled, 4 exporters", "udp4", "127.0.0.1:0", Config{Format: FormatIPFIX, Count: 3001, Rate: 100000, IPv6Share: 0.5, Exporters: 4, SamplingRate: 1000}},
		{"ipfix to ::1, jumbo", "udp6", "[::1]:0", Config{Format: FormatIPFIX, Count: 5000, Rate: 50000, IPv6Share: 0.1, MaxDatagram: 8000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSink(t, tc.network, tc.addr)
			cfg := tc.cfg
			cfg.Target = s.addr()
			st, err := Run(context.Background(), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if st.Flows != cfg.Count {
				t.Errorf("sent %d flows, want %d", st.Flows, cfg.Count)
			}
			s.wait(st.Datagrams)
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.errs > 0 {
				t.Errorf("%d decode errors, first %v", s.errs, s.firstErr)
			}
			rate := uint64(max(cfg.SamplingRate, 1))
			if s.datagrams != st.Datagrams || s.flows != st.Flows || s.bytes != st.Bytes*rate || s.packets != st.Packets*rate {
				t.Errorf("collector got %d datagrams, %d flows, %d bytes, %d packets; sent %+v (rate %d)",
					s.datagrams, s.flows, s.bytes, s.packets, st, rate)
			}
			if want := max(cfg.Exporters, 1); len(s.domains) != want {
				t.Errorf("%d domains, want %d", len(s.domains), want)
			}
			if s.seqGaps != 0 {
				t.Errorf("%d sequence gaps", s.seqGaps)
			}
			if max := cfg.MaxDatagram; max == 0 && st.Datagrams > 0 && st.Flows/st.Datagrams < 10 {
				t.Errorf("only %.1f flows per datagram", float64(st.Flows)/float64(st.Datagrams))
			}
		})
	}
}

func TestRunBounds(t *testing.T) {
	tests := []struct {
		name           string
		cfg            Config
		minF, maxF     uint64
		minDur, maxDur time.Duration
	}{
		{"default count", Config{Format: FormatV5}, DefaultCount, DefaultCount, 0, 10 * time.Second},
		{"count flat out", Config{Format: FormatV9, Count: 20000}, 20000, 20000, 0, 10 * time.Second},
		{"count beats duration", Config{Format: FormatIPFIX, Count: 500, Duration: 10 * time.Second}, 500, 500, 0, 5 * time.Second},
		{"paced 2000/s for 0.5s", Config{Format: FormatV5, Rate: 2000, Duration: 500 * time.Millisecond}, 700, 1300, 450 * time.Millisecond, 3 * time.Second},
		{"paced 20000/s for 0.5s", Config{Format: FormatV9, Rate: 20000, Duration: 500 * time.Millisecond, IPv6Share: 0.2}, 7000, 13000, 450 * time.Millisecond, 3 * time.Second},
		{"duration beats count", Config{Format: FormatV9, Rate: 1000, Count: 1_000_000, Duration: 300 * time.Millisecond}, 100, 600, 250 * time.Millisecond, 3 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSink(t, "udp4", "127.0.0.1:0")
			cfg := tc.cfg
			cfg.Target = s.addr()
			st, err := Run(context.Background(), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if st.Flows < tc.minF || st.Flows > tc.maxF {
				t.Errorf("sent %d flows, want %d..%d", st.Flows, tc.minF, tc.maxF)
			}
			if st.Elapsed < tc.minDur || st.Elapsed > tc.maxDur {
				t.Errorf("took %v, want %v..%v", st.Elapsed, tc.minDur, tc.maxDur)
			}
		})
	}
}

func TestRunCancel(t *testing.T) {
	s := newSink(t, "udp4", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	calls := 0
	st, err := Run(ctx, Config{Target: s.addr(), Format: FormatV9, Rate: 5000, Duration: time.Minute}, func(Stats) { calls++ })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if st.Elapsed > 5*time.Second || st.Flows == 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestRunProgress(t *testing.T) {
	s := newSink(t, "udp4", "127.0.0.1:0")
	var last Stats
	calls := 0
	st, err := Run(context.Background(), Config{Target: s.addr(), Format: FormatV5, Rate: 4000, Duration: 1300 * time.Millisecond},
		func(p Stats) { calls++; last = p })
	if err != nil {
		t.Fatal(err)
	}
	if calls < 1 || calls > 3 || last.Flows == 0 || last.Flows > st.Flows || last.Elapsed < time.Second {
		t.Errorf("%d progress calls, last %+v, final %+v", calls, last, st)
	}
}

func TestRunNoListener(t *testing.T) {
	// A closed port answers with ICMP port unreachable; Run keeps going.
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	for _, noBatch := range []bool{false, true} {
		st, err := run(context.Background(), Config{Target: addr, Format: FormatV5, Count: 3000, Rate: 100000}, nil, runOptions{noBatch: noBatch})
		if err != nil || st.Flows != 3000 {
			t.Errorf("noBatch=%v: %+v, %v", noBatch, st, err)
		}
	}
}

func TestRunConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"format", Config{Format: "v7"}, "unknown format"},
		{"v5 exporters", Config{Format: FormatV5, Exporters: 256}, "at most 255"},
		{"v5 sampling", Config{Format: FormatV5, SamplingRate: 20000}, "14 bits"},
		{"ipv6 share", Config{Format: FormatV9, IPv6Share: 1.5}, "IPv6 share"},
		{"rate", Config{Rate: -1}, "negative rate"},
		{"tiny datagram", Config{Format: FormatIPFIX, MaxDatagram: 300}, "max datagram"},
		{"huge datagram", Config{Format: FormatV9, MaxDatagram: 70000}, "max datagram"},
		{"target", Config{Target: "nonsense"}, "target"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), tc.cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
