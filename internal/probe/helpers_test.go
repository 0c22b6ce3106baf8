package probe

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/decode"
	_ "github.com/flowscan/flowscan/internal/decode/ipfix"
	_ "github.com/flowscan/flowscan/internal/decode/netflow5"
	_ "github.com/flowscan/flowscan/internal/decode/netflow9"
	"github.com/flowscan/flowscan/internal/flow"
)

// trafficPcap is the shared test capture (see testdata/captures/README.md).
const trafficPcap = "../../testdata/traffic.pcap"

// receiver is a UDP collector on loopback that decodes every datagram
// with the project's real decoders.
type receiver struct {
	conn      *net.UDPConn
	done      chan struct{}
	datagrams atomic.Int64
	recs      []flow.Record
	errs      []error
}

// startReceiver listens on 127.0.0.1 with a large receive buffer (exporters
// flush their whole table in one burst at end of file) and decodes until
// wait closes it.
func startReceiver(t *testing.T) *receiver {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadBuffer(8 << 20)
	r := &receiver{conn: conn, done: make(chan struct{})}
	t.Cleanup(func() { conn.Close() })
	go func() {
		defer close(r.done)
		mux := decode.NewMux(decode.Options{})
		buf := make([]byte, 65536)
		for {
			n, src, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			r.recs, _, err = mux.Decode(r.recs, &decode.Packet{Data: buf[:n], Src: src, Received: time.Now()})
			if err != nil {
				r.errs = append(r.errs, err)
			}
			r.datagrams.Add(1)
		}
	}()
	return r
}

// addr returns the receiver's address.
func (r *receiver) addr() netip.AddrPort { return r.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// wait returns the decoded flows once no datagram arrived for quiet (and
// at least one did), or after 10 s.
func (r *receiver) wait(t *testing.T, quiet time.Duration) []flow.Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	last, lastChange := int64(-1), time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n := r.datagrams.Load()
		if n != last {
			last, lastChange = n, time.Now()
			continue
		}
		if n > 0 && time.Since(lastChange) >= quiet {
			break
		}
	}
	r.conn.Close()
	<-r.done
	for _, err := range r.errs {
		t.Errorf("receiver: decode error: %v", err)
	}
	return r.recs
}

// flowKeyString identifies a record the way both probes key flows.
func flowKeyString(r *flow.Record) string {
	return fmt.Sprintf("%v %v %d %d %d", r.SrcAddr, r.DstAddr, r.SrcPort, r.DstPort, r.Proto)
}

// totals sums flows, packets and bytes.
type totals struct{ flows, packets, bytes uint64 }

func sum(recs []flow.Record) totals {
	var s totals
	for i := range recs {
		s.flows++
		s.packets += recs[i].Packets
		s.bytes += recs[i].Bytes
	}
	return s
}

// byKey sums packets and bytes per flow key.
func byKey(recs []flow.Record) map[string]totals {
	m := map[string]totals{}
	for i := range recs {
		k := flowKeyString(&recs[i])
		s := m[k]
		s.flows++
		s.packets += recs[i].Packets
		s.bytes += recs[i].Bytes
		m[k] = s
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// requireTool skips the test when a command is missing.
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (apt-get install %s)", name, pkg)
	}
	return p
}
