package reexport

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/collect"
	"github.com/flowscan/flowscan/internal/decode"
	_ "github.com/flowscan/flowscan/internal/decode/ipfix"
	_ "github.com/flowscan/flowscan/internal/decode/netflow9"
	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/gen"
	"github.com/flowscan/flowscan/internal/metrics"
	"github.com/flowscan/flowscan/internal/testutil"
)

var _ collect.FlowSink = (*Exporter)(nil)

// testFlows returns n flows from the generator's mix (a share of them
// IPv6), as a collector would hold them: sampled ones already scaled.
func testFlows(n int, now time.Time) []flow.Record {
	mix := gen.NewMix(11, gen.MixOptions{IPv6Share: 0.3})
	recs := make([]flow.Record, n)
	for i := range recs {
		mix.Next(&recs[i], now)
		recs[i].Exporter = netip.MustParseAddr("198.51.100.1")
		switch i % 4 {
		case 1:
			recs[i].ApplySampling(1000)
		case 2:
			recs[i].Bytes, recs[i].Packets = 1<<40+7, 1<<33+3 // beyond 32 bits
		}
	}
	return recs
}

// listener receives datagrams on a loopback UDP socket.
type listener struct {
	conn *net.UDPConn
	mu   sync.Mutex
	got  [][]byte
	done chan struct{}
}

func listen(t *testing.T) *listener {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadBuffer(8 << 20)
	l := &listener{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		buf := make([]byte, 65536)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			l.mu.Lock()
			l.got = append(l.got, bytes.Clone(buf[:n]))
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-l.done })
	return l
}

// datagrams waits until n datagrams arrived (or 10 s passed).
func (l *listener) datagrams(n int) [][]byte {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		k := len(l.got)
		l.mu.Unlock()
		if k >= n {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][]byte(nil), l.got...)
}

func TestDecodedByOurCollectorAsSent(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		format string
		want   decode.Format
	}{{"netflow9", decode.FormatNetFlow9}, {"ipfix", decode.FormatIPFIX}, {"v9", decode.FormatNetFlow9}} {
		t.Run(tc.format, func(t *testing.T) {
			l := listen(t)
			e, err := New(Config{Format: tc.format, Target: l.conn.LocalAddr().String(), Domain: 77, TemplateEvery: 5})
			if err != nil {
				t.Fatal(err)
			}
			recs := testFlows(3000, now)
			for i := 0; i < len(recs); i += 100 {
				e.Flows(recs[i : i+100])
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			st := e.Stats()
			if st.Flows != uint64(len(recs)) || st.Dropped != 0 || st.SendErrors != 0 || st.Pending != 0 {
				t.Fatalf("stats %+v, want %d flows sent", st, len(recs))
			}
			dgrams := l.datagrams(int(st.Datagrams))
			if len(dgrams) != int(st.Datagrams) {
				t.Fatalf("received %d of %d datagrams", len(dgrams), st.Datagrams)
			}
			mux := decode.NewMux(decode.Options{})
			src := l.conn.LocalAddr().(*net.UDPAddr).AddrPort() // any address: the exporter
			var got []flow.Record
			for i, d := range dgrams {
				if len(d) > DefaultMaxDatagram {
					t.Errorf("datagram %d has %d bytes", i, len(d))
				}
				var res decode.Result
				got, res, err = mux.Decode(got, &decode.Packet{Data: d, Src: src, Received: now})
				if err != nil {
					t.Fatalf("datagram %d: %v", i, err)
				}
				if res.Format != tc.want || res.Domain != 77 || res.Skipped != 0 {
					t.Fatalf("datagram %d: %+v", i, res)
				}
			}
			// Every field the format carries comes back; flows are counted
			// as they were (no sampling announced, no rescaling).
			want := map[flow.Record]int{}
			for _, r := range recs {
				r.Exporter, r.Domain, r.SamplingRate = src.Addr(), 77, 0
				if r.NextHop.IsUnspecified() {
					r.NextHop = netip.Addr{}
				}
				want[r]++
			}
			v6 := 0
			for _, r := range got {
				if r.IsIPv6() {
					v6++
				}
				if r.SamplingRate > 1 {
					r.SamplingRate = 0 // so the mismatch shows below
				}
				if want[r] == 0 {
					t.Fatalf("decoded a flow that was not sent (or differs): %+v", r)
				}
				want[r]--
			}
			if len(got) != len(recs) || v6 == 0 {
				t.Fatalf("decoded %d flows (%d IPv6), want %d", len(got), v6, len(recs))
			}
		})
	}
}

func TestQueueFullDropsAndCounts(t *testing.T) {
	l := listen(t)
	e, err := New(Config{Format: "ipfix", Target: l.conn.LocalAddr().String(), Queue: chunkFlows})
	if err != nil {
		t.Fatal(err)
	}
	recs := testFlows(20000, time.Now())
	e.Flows(recs) // one call: the sender cannot drain 20000 flows while it runs
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	st := e.Stats()
	if st.Dropped == 0 || st.Flows+st.Dropped != uint64(len(recs)) {
		t.Fatalf("stats %+v: want drops, and sent+dropped = %d", st, len(recs))
	}
	reg := metrics.NewRegistry()
	reg.Register(e.WriteMetrics)
	line := fmt.Sprintf("flowscan_reexport_dropped_flows_total{target=%q,format=\"ipfix\"} %d", e.Target(), st.Dropped)
	if !strings.Contains(reg.Text(), line) {
		t.Errorf("metrics lack %q:\n%s", line, reg.Text())
	}
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in, format, target, err string
	}{
		{in: "ipfix@127.0.0.1:4739", format: "ipfix", target: "127.0.0.1:4739"},
		{in: "netflow9@[2001:db8::5]:2055", format: "netflow9", target: "[2001:db8::5]:2055"},
		{in: "127.0.0.1:2055", err: "FORMAT@HOST:PORT"},
		{in: "netflow5@127.0.0.1:2055", err: "unknown re-export format"},
		{in: "ipfix@127.0.0.1", err: "HOST:PORT"},
	} {
		cfg, err := ParseTarget(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || cfg.Format != tc.format || cfg.Target != tc.target {
			t.Errorf("%q: %+v, %v", tc.in, cfg, err)
		}
	}
}

// TestReceivedByNfcapd sends the re-export to Debian's nfcapd and checks
// that nfdump lists exactly the flows we sent: addresses, ports, protocol,
// packets and bytes of every flow, and the totals.
func TestReceivedByNfcapd(t *testing.T) {
	for _, tool := range []string{"nfcapd", "nfdump"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian package nfdump)", tool)
		}
	}
	for _, format := range []string{"netflow9", "ipfix"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			nf := testutil.StartNfcapd(t, dir, 3600)

			e, err := New(Config{Format: format, Target: fmt.Sprintf("127.0.0.1:%d", nf.Port), Domain: 3})
			if err != nil {
				t.Fatal(err)
			}
			recs := testFlows(5000, time.Now())
			for i := 0; i < len(recs); i += 250 {
				e.Flows(recs[i : i+250])
				time.Sleep(2 * time.Millisecond)
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			if st := e.Stats(); st.Flows != uint64(len(recs)) {
				t.Fatalf("sent %+v", st)
			}
			time.Sleep(300 * time.Millisecond) // let nfcapd read its socket
			if !nf.Stop(10 * time.Second) {
				t.Fatal("nfcapd did not stop on SIGTERM")
			}
			files, _ := filepath.Glob(filepath.Join(dir, "nfcapd.*"))
			if len(files) == 0 {
				t.Fatalf("nfcapd wrote no file; its log:\n%s", nf.Log())
			}
			out, err := exec.Command("nfdump", "-R", dir, "-q", "-o", "csv").Output()
			if err != nil {
				t.Fatalf("nfdump: %v", err)
			}
			type key struct {
				src, dst        netip.Addr
				sport, dport    uint16
				proto           string
				packets, octets uint64
			}
			protoName := map[uint8]string{6: "TCP", 17: "UDP", 1: "ICMP", 58: "ICMP6", 50: "ESP", 47: "GRE"}
			want := map[key]int{}
			var wantPkts, wantBytes uint64
			for _, r := range recs {
				p, ok := protoName[r.Proto]
				if !ok {
					p = strconv.Itoa(int(r.Proto))
				}
				sp, dp := r.SrcPort, r.DstPort
				if r.Proto == 1 || r.Proto == 58 {
					sp, dp = 0, 0 // nfdump shows ICMP type and code its own way: not compared
				}
				want[key{r.SrcAddr, r.DstAddr, sp, dp, p, r.Packets, r.Bytes}]++
				wantPkts += r.Packets
				wantBytes += r.Bytes
			}
			var flows, pkts, octets uint64
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				f := strings.Split(line, ",")
				if len(f) < 13 {
					t.Fatalf("nfdump line %q", line)
				}
				sp, _ := strconv.ParseUint(f[5], 10, 16)
				dp, _ := strconv.ParseUint(f[6], 10, 16)
				np, _ := strconv.ParseUint(f[11], 10, 64)
				nb, _ := strconv.ParseUint(f[12], 10, 64)
				src, err1 := netip.ParseAddr(strings.TrimSpace(f[3]))
				dst, err2 := netip.ParseAddr(strings.TrimSpace(f[4]))
				if err1 != nil || err2 != nil {
					t.Fatalf("nfdump addresses in %q", line)
				}
				proto := strings.TrimSpace(f[7])
				if proto == "ICMP" || proto == "ICMP6" {
					sp, dp = 0, 0
				}
				k := key{src, dst, uint16(sp), uint16(dp), proto, np, nb}
				if want[k] == 0 {
					t.Errorf("nfdump lists a flow we did not send: %q", line)
				} else {
					want[k]--
				}
				flows++
				pkts += np
				octets += nb
			}
			if flows != uint64(len(recs)) || pkts != wantPkts || octets != wantBytes {
				t.Errorf("nfdump totals: %d flows, %d packets, %d bytes; we sent %d, %d, %d\nnfcapd log:\n%s",
					flows, pkts, octets, len(recs), wantPkts, wantBytes, nf.Log())
			}
		})
	}
}
