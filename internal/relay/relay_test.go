package relay

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/collect"
	"github.com/flowscan/flowscan/internal/decode"
	_ "github.com/flowscan/flowscan/internal/decode/ipfix"
	_ "github.com/flowscan/flowscan/internal/decode/netflow5"
	_ "github.com/flowscan/flowscan/internal/decode/netflow9"
	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/gen"
	"github.com/flowscan/flowscan/internal/metrics"
)

var _ collect.DatagramSink = (*Forwarder)(nil)

func TestParseDestination(t *testing.T) {
	tests := []struct {
		in      string
		want    Destination
		wantErr string
	}{
		{in: "127.0.0.1:2055", want: Destination{Addr: netip.MustParseAddrPort("127.0.0.1:2055")}},
		{in: "[::1]:9995;spoof", want: Destination{Addr: netip.MustParseAddrPort("[::1]:9995"), Spoof: true}},
		{in: "[::ffff:10.1.2.3]:2055", want: Destination{Addr: netip.MustParseAddrPort("10.1.2.3:2055")}},
		{in: "192.0.2.10:2055;exporter=10.0.0.0/8,192.0.2.1;format=ipfix,v9;queue=100",
			want: Destination{Addr: netip.MustParseAddrPort("192.0.2.10:2055"),
				Exporters: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32")},
				Formats:   []decode.Format{decode.FormatIPFIX, decode.FormatNetFlow9}, Queue: 100}},
		{in: " [2001:db8::5]:2055 ; exporter=2001:db8::/32 ; exporter=10.1.2.3/8 ; FORMAT=sflow ",
			want: Destination{Addr: netip.MustParseAddrPort("[2001:db8::5]:2055"),
				Exporters: []netip.Prefix{netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("10.0.0.0/8")},
				Formats:   []decode.Format{decode.FormatSFlow5}}},
		{in: "localhost:2055", want: Destination{Addr: netip.MustParseAddrPort("127.0.0.1:2055")}},
		{in: "127.0.0.1", wantErr: "HOST:PORT"},
		{in: "127.0.0.1:0", wantErr: "port 0"},
		{in: ":2055", wantErr: "missing host"},
		{in: "127.0.0.1:2055;format=netflow7", wantErr: "unknown format"},
		{in: "127.0.0.1:2055;exporter=10.0.0.300", wantErr: "not an address"},
		{in: "127.0.0.1:2055;exporter=", wantErr: "needs addresses"},
		{in: "127.0.0.1:2055;spoof=yes", wantErr: "no value"},
		{in: "127.0.0.1:2055;queue=0", wantErr: "queue="},
		{in: "127.0.0.1:2055;fast", wantErr: "unknown option"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDestination(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.in == "localhost:2055" && got.Addr.Addr().Is6() {
				tc.want.Addr = netip.MustParseAddrPort("[::1]:2055")
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
			again, err := ParseDestination(got.String())
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("String %q does not parse back: %+v, %v", got.String(), again, err)
			}
		})
	}
}

func FuzzParseDestination(f *testing.F) {
	for _, s := range []string{"127.0.0.1:2055", "[::1]:1;spoof;queue=5", "1.2.3.4:5;exporter=10.0.0.0/8,::/0;format=v5,ipfix", "a;b=c;;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsAny(s, ":") && !strings.HasPrefix(s, "[") && strings.Count(strings.SplitN(s, ";", 2)[0], ":") == 1 {
			// May name a host: avoid resolver traffic in the fuzzer.
			host, _, _ := strings.Cut(strings.SplitN(s, ";", 2)[0], ":")
			if _, err := netip.ParseAddr(strings.TrimSpace(host)); err != nil {
				return
			}
		}
		d, err := ParseDestination(s)
		if err != nil {
			return
		}
		again, err := ParseDestination(d.String())
		if err != nil || !reflect.DeepEqual(again, d) {
			t.Fatalf("%q: String %q parses to %+v, %v", s, d.String(), again, err)
		}
	})
}

// receiver collects the datagrams arriving on a loopback UDP socket.
type receiver struct {
	local netip.AddrPort
	mu    sync.Mutex
	got   [][]byte
	srcs  []netip.AddrPort
	cond  chan struct{}
}

func newReceiver(t testing.TB, addr string) *receiver {
	t.Helper()
	r, err := Listen(context.Background(), addr, 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	rc := &receiver{cond: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Run(func(src netip.AddrPort, data []byte) {
			rc.mu.Lock()
			rc.got = append(rc.got, bytes.Clone(data))
			rc.srcs = append(rc.srcs, src)
			rc.mu.Unlock()
			select {
			case rc.cond <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() { r.Close(); <-done })
	rc.local = r.Addr()
	return rc
}

func (r *receiver) addr() netip.AddrPort { return r.local }

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// wait waits until n datagrams arrived or timeout passed, then returns
// what arrived.
func (r *receiver) wait(n int, timeout time.Duration) [][]byte {
	deadline := time.After(timeout)
	for r.count() < n {
		select {
		case <-r.cond:
		case <-deadline:
			return r.snapshot()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return r.snapshot()
}

func (r *receiver) snapshot() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.got...)
}

// testDatagrams returns n distinct datagrams of varied length (1 byte to
// 9000 bytes), each starting with its index.
func testDatagrams(n int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([][]byte, n)
	for i := range out {
		l := 4 + rng.IntN(1500)
		switch i % 50 {
		case 7:
			l = 9000
		case 8:
			l = 4
		}
		b := make([]byte, l)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		b[0], b[1], b[2], b[3] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		out[i] = b
	}
	return out
}

func mustForwarder(t testing.TB, dests ...Destination) *Forwarder {
	t.Helper()
	f, err := NewForwarder(dests, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// sendPaced hands datagrams to f, pausing while any destination's queue
// is more than half full (the test checks delivery, not queue limits).
func sendPaced(f *Forwarder, src netip.AddrPort, dgrams [][]byte) {
	for _, d := range dgrams {
		for f.backlog() > DefaultQueue/2 {
			time.Sleep(100 * time.Microsecond)
		}
		f.Datagram(src, d)
	}
}

// backlog returns the longest destination queue.
func (f *Forwarder) backlog() int {
	m := 0
	for _, d := range f.dests {
		m = max(m, len(d.queue))
	}
	return m
}

func TestForwardTwoReceiversByteForByte(t *testing.T) {
	a, b := newReceiver(t, "127.0.0.1:0"), newReceiver(t, "[::1]:0")
	f := mustForwarder(t, Destination{Addr: a.addr()}, Destination{Addr: b.addr()})
	want := testDatagrams(5000)
	sendPaced(f, netip.MustParseAddrPort("192.0.2.7:9995"), want)
	for _, r := range []*receiver{a, b} {
		got := r.wait(len(want), 10*time.Second)
		if len(got) != len(want) {
			t.Fatalf("%s received %d of %d datagrams; stats %+v", r.addr(), len(got), len(want), f.Stats())
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%s: datagram %d differs (got %d bytes starting %x, want %d bytes starting %x)",
					r.addr(), i, len(got[i]), got[i][:4], len(want[i]), want[i][:4])
			}
		}
	}
	for _, s := range f.Stats() {
		var bytesWant uint64
		for _, d := range want {
			bytesWant += uint64(len(d))
		}
		if s.Forwarded != uint64(len(want)) || s.Bytes != bytesWant || s.Dropped != 0 || s.Errors != 0 {
			t.Errorf("stats %+v, want %d forwarded, %d bytes", s, len(want), bytesWant)
		}
	}
}

func TestDeadDestinationDoesNotStopOthers(t *testing.T) {
	// A closed port (ICMP port unreachable comes back, so the connected
	// socket reports ECONNREFUSED) and a receiver that never reads.
	closed, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := closed.LocalAddr().(*net.UDPAddr).AddrPort()
	closed.Close()
	stuck, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	stuck.SetReadBuffer(4096)
	live := newReceiver(t, "127.0.0.1:0")
	f := mustForwarder(t,
		Destination{Addr: deadAddr},
		Destination{Addr: stuck.LocalAddr().(*net.UDPAddr).AddrPort()},
		Destination{Addr: live.addr()})
	want := testDatagrams(3000)
	sendPaced(f, netip.MustParseAddrPort("192.0.2.7:9995"), want)
	got := live.wait(len(want), 10*time.Second)
	if len(got) != len(want) {
		t.Fatalf("live receiver got %d of %d; stats %+v", len(got), len(want), f.Stats())
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("datagram %d differs", i)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	st := f.Stats()
	if st[0].Errors == 0 || st[0].Forwarded+st[0].Errors+st[0].Dropped != uint64(len(want)) {
		t.Errorf("dead destination: %+v: want refusals counted and every datagram accounted for", st[0])
	}
	if st[1].Forwarded+st[1].Errors+st[1].Dropped != uint64(len(want)) {
		t.Errorf("stuck destination: %+v: every datagram must be accounted for", st[1])
	}
	reg := metrics.NewRegistry()
	reg.Register(f.WriteMetrics)
	text := reg.Text()
	wantLine := fmt.Sprintf("flowscan_relay_send_errors_total{destination=%q} %d", deadAddr.String(), st[0].Errors)
	if !strings.Contains(text, wantLine) {
		t.Errorf("metrics lack %q:\n%s", wantLine, text)
	}
}

// blockingSender holds every send until released.
type blockingSender struct {
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	sent    int
}

func (s *blockingSender) send(batch []*packet) sendResult {
	s.entered <- struct{}{}
	<-s.release
	s.mu.Lock()
	s.sent += len(batch)
	s.mu.Unlock()
	return sendResult{sent: len(batch)}
}
func (s *blockingSender) interrupt()   {}
func (s *blockingSender) close() error { return nil }

func TestQueueFullDropsAndCounts(t *testing.T) {
	bs := &blockingSender{entered: make(chan struct{}, 100), release: make(chan struct{})}
	orig := newSender
	newSender = func(Destination) (sender, error) { return bs, nil }
	defer func() { newSender = orig }()
	const queue = 16
	f := mustForwarder(t, Destination{Addr: netip.MustParseAddrPort("127.0.0.1:9"), Queue: queue})
	src := netip.MustParseAddrPort("192.0.2.1:1000")
	f.Datagram(src, []byte("first"))
	<-bs.entered // the sender holds "first" and is blocked
	start := time.Now()
	for i := 0; i < queue+100; i++ {
		f.Datagram(src, []byte("more"))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Datagram blocked for %v with a stuck destination", d)
	}
	st := f.Stats()[0]
	if st.Dropped != 100 {
		t.Errorf("dropped %d, want 100", st.Dropped)
	}
	close(bs.release)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if st := f.Stats()[0]; st.Forwarded != queue+1 || bs.sent != queue+1 {
		t.Errorf("forwarded %d (sender saw %d), want %d", st.Forwarded, bs.sent, queue+1)
	}
}

// formatDatagrams returns one datagram of each format the relay tests
// link (v5, v9, IPFIX), keyed by format.
func formatDatagrams() map[decode.Format][]byte {
	now := time.Unix(1700000000, 0)
	mix := gen.NewMix(3, gen.MixOptions{})
	recs := make([]flow.Record, 3)
	for i := range recs {
		mix.Next(&recs[i], now)
	}
	v9 := &gen.V9Encoder{SourceID: 1}
	ipfix := &gen.IPFIXEncoder{ObservationDomain: 1}
	return map[decode.Format][]byte{
		decode.FormatNetFlow5: gen.AppendNetFlow5(nil, gen.NewV5Header(now, now.Add(-time.Hour), 1), recs),
		decode.FormatNetFlow9: v9.Append(nil, now, recs),
		decode.FormatIPFIX:    ipfix.Append(nil, now, recs),
	}
}

func TestFilters(t *testing.T) {
	dgrams := formatDatagrams()
	exporters := []netip.AddrPort{
		netip.MustParseAddrPort("10.1.2.3:2055"),
		netip.MustParseAddrPort("192.0.2.9:2055"),
		netip.MustParseAddrPort("[2001:db8::9]:2055"),
	}
	tests := []struct {
		spec string // after the address
		keep func(src netip.Addr, f decode.Format) bool
	}{
		{"", func(netip.Addr, decode.Format) bool { return true }},
		{";exporter=10.0.0.0/8", func(a netip.Addr, _ decode.Format) bool { return a.Is4() && a.As4()[0] == 10 }},
		{";exporter=192.0.2.9,2001:db8::/32", func(a netip.Addr, _ decode.Format) bool { return !(a.Is4() && a.As4()[0] == 10) }},
		{";format=ipfix", func(_ netip.Addr, f decode.Format) bool { return f == decode.FormatIPFIX }},
		{";format=v5,v9;exporter=10.0.0.0/8,2001:db8::/32", func(a netip.Addr, f decode.Format) bool {
			return f != decode.FormatIPFIX && !(a.Is4() && a.As4()[0] == 192)
		}},
	}
	var dests []Destination
	var recvs []*receiver
	for _, tc := range tests {
		r := newReceiver(t, "127.0.0.1:0")
		d, err := ParseDestination(r.addr().String() + tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		dests, recvs = append(dests, d), append(recvs, r)
	}
	f := mustForwarder(t, dests...)
	formats := []decode.Format{decode.FormatNetFlow5, decode.FormatNetFlow9, decode.FormatIPFIX}
	garbage := []byte{0, 77, 1, 2, 3} // no format matches
	want := make([][][]byte, len(tests))
	for _, src := range exporters {
		for _, fm := range formats {
			f.Datagram(src, dgrams[fm])
			for i, tc := range tests {
				if tc.keep(src.Addr(), fm) {
					want[i] = append(want[i], dgrams[fm])
				}
			}
		}
		f.Datagram(src, garbage)
		for i, tc := range tests {
			if tc.spec == "" || !strings.Contains(tc.spec, "format=") && tc.keep(src.Addr(), decode.FormatUnknown) {
				want[i] = append(want[i], garbage)
			}
		}
	}
	for i, tc := range tests {
		got := recvs[i].wait(len(want[i]), 5*time.Second)
		time.Sleep(20 * time.Millisecond)
		got = recvs[i].snapshot()
		if len(got) != len(want[i]) {
			t.Errorf("%q: got %d datagrams, want %d", tc.spec, len(got), len(want[i]))
			continue
		}
		for j := range got {
			if !bytes.Equal(got[j], want[i][j]) {
				t.Errorf("%q: datagram %d differs", tc.spec, j)
			}
		}
		total := len(exporters) * (len(formats) + 1)
		if st := f.Stats()[i]; st.Filtered != uint64(total-len(want[i])) {
			t.Errorf("%q: filtered %d, want %d", tc.spec, st.Filtered, total-len(want[i]))
		}
	}
}

func TestUnknownFormatFilterRefused(t *testing.T) {
	// sFlow is not linked into this test binary.
	_, err := NewForwarder([]Destination{{Addr: netip.MustParseAddrPort("127.0.0.1:9"), Formats: []decode.Format{decode.FormatSFlow5}}}, nil)
	if err == nil || !strings.Contains(err.Error(), "sflow5") {
		t.Fatalf("error %v, want one naming sflow5", err)
	}
}

func TestChecksum(t *testing.T) {
	// RFC 1071's example: words 0001 f203 f4f5 f6f7 sum to 0xddf2.
	if got := fold(sum(0, []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7})); got != 0xddf2 {
		t.Fatalf("sum %#x, want 0xddf2", got)
	}
	// Odd length pads with zero; the word loop and the 8-byte loop agree.
	b := make([]byte, 37)
	for i := range b {
		b[i] = byte(i*37 + 11)
	}
	var ref uint64
	for i := 0; i+1 < len(b); i += 2 {
		ref += uint64(b[i])<<8 | uint64(b[i+1])
	}
	ref += uint64(b[36]) << 8
	if fold(sum(0, b)) != fold(ref) {
		t.Fatalf("sum %#x, want %#x", fold(sum(0, b)), fold(ref))
	}
}
