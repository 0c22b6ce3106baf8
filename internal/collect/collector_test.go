package collect_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/collect"
	"github.com/flowscan/flowscan/internal/decode"
	_ "github.com/flowscan/flowscan/internal/decode/ipfix"
	_ "github.com/flowscan/flowscan/internal/decode/netflow5"
	_ "github.com/flowscan/flowscan/internal/decode/netflow9"
	_ "github.com/flowscan/flowscan/internal/decode/sflow"
	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/flowfile"
	"github.com/flowscan/flowscan/internal/gen"
	"github.com/flowscan/flowscan/internal/metrics"
)

// running is a collector started for one test.
type running struct {
	c      *collect.Collector
	reg    *metrics.Registry
	cancel context.CancelFunc
	done   chan error
	dir    string
}

func start(t *testing.T, dir string, mod func(*collect.Config)) *running {
	t.Helper()
	reg := metrics.NewRegistry()
	cfg := collect.Config{
		Listen:         []string{"127.0.0.1:0"},
		SocketsPerAddr: 1,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics:        reg,
		Archive:        flowfile.Config{Dir: dir, Interval: time.Hour, Location: time.UTC},
	}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c, err := collect.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	r := &running{c: c, reg: reg, cancel: cancel, done: make(chan error, 1), dir: dir}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop shuts the collector down (once) and waits for it.
func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("collector: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("collector did not stop within 10 s")
	}
}

// sender returns a UDP socket connected to the collector.
func (r *running) sender(t *testing.T) *net.UDPConn {
	t.Helper()
	conn, err := net.Dial("udp", r.c.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn.(*net.UDPConn)
}

// metric returns the sum of the samples of name whose labels contain all of
// the given label substrings.
func (r *running) metric(name string, labels ...string) float64 {
	var sum float64
	for _, line := range strings.Split(r.reg.Text(), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		var v float64
		f := strings.Fields(line)
		if _, err := fmt.Sscan(f[len(f)-1], &v); err == nil {
			sum += v
		}
	}
	return sum
}

// waitMetric polls until metric name reaches want, for at most 5 s.
func (r *running) waitMetric(t *testing.T, want float64, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := r.metric(name, labels...)
		if got >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v after 5 s, want %v\n%s", name, labels, got, want, r.reg.Text())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readAll(t *testing.T, dir string) ([]flow.Record, []*flowfile.Meta) {
	t.Helper()
	entries, err := flowfile.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var recs []flow.Record
	var metas []*flowfile.Meta
	for _, e := range entries {
		r, err := flowfile.Open(e.Path)
		if err != nil {
			t.Fatal(err)
		}
		metas = append(metas, r.Meta())
		for {
			recs, err = r.Next(recs)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		r.Close()
	}
	return recs, metas
}

// key is what every format carries of a flow.
type key struct {
	src, dst     netip.Addr
	sport, dport uint16
	proto        uint8
	bytes, pkts  uint64
}

func keyOf(r *flow.Record) key {
	return key{r.SrcAddr.Unmap(), r.DstAddr.Unmap(), r.SrcPort, r.DstPort, r.Proto, r.Bytes, r.Packets}
}

// TestCollectAllFormats sends the same kind of traffic as NetFlow v5, v9 and
// IPFIX and checks that every flow sent is in the archive, once.
func TestCollectAllFormats(t *testing.T) {
	dir := t.TempDir()
	r := start(t, dir, nil)
	conn := r.sender(t)
	now := time.Now()
	mix4 := gen.NewMix(1, gen.MixOptions{})
	mix6 := gen.NewMix(2, gen.MixOptions{IPv6Share: 0.5})
	sent := map[key]int{}
	var buf []byte
	var recs []flow.Record
	next := func(m *gen.Mix, n int) []flow.Record {
		recs = recs[:0]
		for i := 0; i < n; i++ {
			var rec flow.Record
			m.Next(&rec, now)
			recs = append(recs, rec)
			sent[keyOf(&rec)]++
		}
		return recs
	}
	var v5seq uint32
	v9 := &gen.V9Encoder{SourceID: 7}
	ipfix := &gen.IPFIXEncoder{ObservationDomain: 9}
	const rounds = 20
	for i := 0; i < rounds; i++ {
		buf = gen.AppendNetFlow5(buf[:0], gen.V5Header{SysUptime: 86_400_000, UnixSecs: uint32(now.Unix()), FlowSequence: v5seq}, next(mix4, 30))
		v5seq += 30
		mustSend(t, conn, buf)
		buf = v9.Append(buf[:0], now, next(mix6, 10))
		mustSend(t, conn, buf)
		buf = ipfix.Append(buf[:0], now, next(mix6, 10))
		mustSend(t, conn, buf)
	}
	r.waitMetric(t, rounds*50, "flowscan_flows_total")
	r.stop(t)

	got, metas := readAll(t, dir)
	if len(got) != rounds*50 {
		t.Fatalf("stored %d flows, sent %d", len(got), rounds*50)
	}
	for i := range got {
		k := keyOf(&got[i])
		if sent[k] == 0 {
			t.Fatalf("stored a flow that was not sent (or sent fewer times): %+v", got[i])
		}
		sent[k]--
	}
	var lost, flows uint64
	formats := map[string]bool{}
	for _, m := range metas {
		lost += m.LostFlows()
		flows += m.Flows
		for _, e := range m.Exporters {
			formats[e.Format] = true
		}
	}
	if lost != 0 || flows != rounds*50 {
		t.Errorf("metadata: %d flows, %d lost; want %d and 0", flows, lost, rounds*50)
	}
	for _, f := range []string{"netflow5", "netflow9", "ipfix"} {
		if !formats[f] {
			t.Errorf("metadata has no %s exporter: %v", f, formats)
		}
	}
}

// TestLossAccounting drops datagrams on purpose and checks the metadata.
func TestLossAccounting(t *testing.T) {
	dir := t.TempDir()
	r := start(t, dir, nil)
	conn := r.sender(t)
	now := time.Now()
	mix := gen.NewMix(3, gen.MixOptions{})
	recs := make([]flow.Record, 30)
	var buf []byte
	seq := uint32(0)
	for i := 0; i < 10; i++ {
		for j := range recs {
			mix.Next(&recs[j], now)
		}
		buf = gen.AppendNetFlow5(buf[:0], gen.V5Header{SysUptime: 1000, UnixSecs: uint32(now.Unix()), FlowSequence: seq}, recs)
		seq += 30
		if i == 3 || i == 7 { // "lost in the network"
			continue
		}
		mustSend(t, conn, buf)
	}
	r.waitMetric(t, 8*30, "flowscan_flows_total")
	if got := r.metric("flowscan_lost_flows_total", `format="netflow5"`); got != 60 {
		t.Errorf("lost flows metric %v, want 60", got)
	}
	r.stop(t)
	_, metas := readAll(t, dir)
	var lost uint64
	for _, m := range metas {
		lost += m.LostFlows()
	}
	if lost != 60 {
		t.Errorf("lost flows in metadata %d, want 60", lost)
	}
}

// TestSkewedFlowTimes: an exporter whose clock is a day behind sends flows
// that end a day before they arrive; they are stored as sent and counted
// as skewed, the flows of a correct exporter are not.
func TestSkewedFlowTimes(t *testing.T) {
	dir := t.TempDir()
	r := start(t, dir, nil)
	conn := r.sender(t)
	now := time.Now()
	mix := gen.NewMix(5, gen.MixOptions{})
	recs := make([]flow.Record, 20)
	for _, c := range []struct {
		clock    time.Time
		engineID uint8
	}{{now.Add(-24 * time.Hour), 1}, {now, 2}} {
		for j := range recs {
			mix.Next(&recs[j], c.clock)
		}
		mustSend(t, conn, gen.AppendNetFlow5(nil, gen.V5Header{SysUptime: 3_600_000, UnixSecs: uint32(c.clock.Unix()), EngineID: c.engineID}, recs))
	}
	r.waitMetric(t, 40, "flowscan_flows_total")
	if got := r.metric("flowscan_skewed_flows_total"); got != 20 {
		t.Errorf("skewed flows %v, want the 20 of the exporter a day behind", got)
	}
	r.stop(t)
	got, _ := readAll(t, dir)
	old := 0
	for i := range got {
		if got[i].End < now.Add(-23*time.Hour).UnixMilli() {
			old++
		}
	}
	if len(got) != 40 || old != 20 {
		t.Errorf("%d flows stored, %d of them a day old; want 40 and 20 (stored as sent)", len(got), old)
	}
}

// TestHostileDatagrams sends malformed, truncated and hostile datagrams:
// each is counted and dropped, and a good datagram afterwards is stored.
func TestHostileDatagrams(t *testing.T) {
	dir := t.TempDir()
	r := start(t, dir, func(c *collect.Config) { c.Decode.MaxTemplates = 16 })
	conn := r.sender(t)
	now := time.Now()
	rng := rand.New(rand.NewSource(1))
	var bad [][]byte
	// Random garbage and every format's header with nonsense after it.
	for i := 0; i < 200; i++ {
		b := make([]byte, rng.Intn(1500))
		rng.Read(b)
		if len(b) >= 2 {
			b[0] = 0
			b[1] = []byte{5, 9, 10, 77}[i%4]
		}
		bad = append(bad, b)
	}
	// A v5 header claiming 30 records but carrying one.
	var one [1]flow.Record
	gen.NewMix(4, gen.MixOptions{}).Next(&one[0], now)
	v5 := gen.AppendNetFlow5(nil, gen.V5Header{}, one[:])
	binary.BigEndian.PutUint16(v5[2:], 30)
	bad = append(bad, v5, v5[:10], []byte{})
	// A v9 template flood: 2000 distinct templates from one exporter.
	for id := 256; id < 2256; id += 50 {
		bad = append(bad, v9TemplateFlood(uint16(id), 50))
	}
	// IPFIX with a zero-length data set and a set length past the end.
	bad = append(bad, ipfixMessage([]byte{0x01, 0x00, 0x00, 0x00}), ipfixMessage([]byte{0x01, 0x00, 0xff, 0xf0, 1, 2, 3}))
	for _, b := range bad {
		mustSend(t, conn, b)
	}
	// Data of a template never announced: not an error, but counted.
	mustSend(t, conn, ipfixMessage([]byte{0x01, 0x2c, 0x00, 0x0c, 1, 2, 3, 4, 5, 6, 7, 8}))
	good := gen.AppendNetFlow5(nil, gen.V5Header{UnixSecs: uint32(now.Unix())}, one[:])
	mustSend(t, conn, good)
	r.waitMetric(t, 1, "flowscan_flows_total", `format="netflow5"`)
	r.waitMetric(t, 1, "flowscan_skipped_records_total", `format="ipfix"`)
	if errs := r.metric("flowscan_decode_errors_total"); errs < 100 {
		t.Errorf("only %v decode errors counted for %d bad datagrams", errs, len(bad))
	}
	if n := r.metric("flowscan_templates", `format="netflow9"`); n > 16 {
		t.Errorf("%v v9 templates kept, limit 16", n)
	}
	r.stop(t)
	got, _ := readAll(t, dir)
	found := false
	for i := range got {
		if keyOf(&got[i]) == keyOf(&one[0]) {
			found = true
		}
	}
	if !found {
		t.Errorf("the good datagram after the bad ones was not stored (%d flows stored)", len(got))
	}
}

// TestTemplatesSurviveRestart: data that arrives after a restart, before the
// exporter resends its templates, is decoded with the saved templates.
func TestTemplatesSurviveRestart(t *testing.T) {
	now := time.Now()
	mix := gen.NewMix(5, gen.MixOptions{IPv6Share: 0.3})
	recs := make([]flow.Record, 10)
	fill := func() {
		for i := range recs {
			mix.Next(&recs[i], now)
		}
	}
	for _, tc := range []struct {
		name string
		enc  func([]byte) []byte
	}{
		{"netflow9", func() func([]byte) []byte {
			e := &gen.V9Encoder{SourceID: 3, TemplateEvery: 1 << 30}
			return func(b []byte) []byte { fill(); return e.Append(b, now, recs) }
		}()},
		{"ipfix", func() func([]byte) []byte {
			e := &gen.IPFIXEncoder{ObservationDomain: 3, TemplateEvery: 1 << 30}
			return func(b []byte) []byte { fill(); return e.Append(b, now, recs) }
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			r := start(t, d, nil)
			mustSend(t, r.sender(t), tc.enc(nil)) // carries the templates
			r.waitMetric(t, 10, "flowscan_flows_total", `format="`+tc.name+`"`)
			r.waitMetric(t, 1, "flowscan_templates", `format="`+tc.name+`"`)
			r.stop(t)

			r2 := start(t, d, nil)
			if n := r2.metric("flowscan_templates", `format="`+tc.name+`"`); n < 1 {
				t.Fatalf("no %s templates after restart", tc.name)
			}
			mustSend(t, r2.sender(t), tc.enc(nil)) // data only
			r2.waitMetric(t, 10, "flowscan_flows_total", `format="`+tc.name+`"`)
			r2.stop(t)
			got, _ := readAll(t, d)
			if len(got) != 20 {
				t.Errorf("stored %d flows, want 20", len(got))
			}
		})
	}
}

// TestAllowList drops exporters outside the list.
func TestAllowList(t *testing.T) {
	dir := t.TempDir()
	r := start(t, dir, func(c *collect.Config) { c.Allow = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")} })
	var one [1]flow.Record
	gen.NewMix(6, gen.MixOptions{}).Next(&one[0], time.Now())
	mustSend(t, r.sender(t), gen.AppendNetFlow5(nil, gen.V5Header{}, one[:]))
	r.waitMetric(t, 1, "flowscan_denied_datagrams_total")
	if n := r.metric("flowscan_flows_total"); n != 0 {
		t.Errorf("%v flows accepted from a denied exporter", n)
	}
}

func mustSend(t *testing.T, conn *net.UDPConn, b []byte) {
	t.Helper()
	if _, err := conn.Write(b); err != nil {
		t.Fatal(err)
	}
	// Loopback UDP drops when the receiver falls behind; pace gently.
	time.Sleep(200 * time.Microsecond)
}

// v9TemplateFlood builds a v9 datagram with n templates starting at id.
func v9TemplateFlood(id uint16, n int) []byte {
	be := binary.BigEndian
	b := make([]byte, 20, 20+4+n*12)
	be.PutUint16(b[0:], 9)
	be.PutUint16(b[2:], uint16(n))
	set := []byte{0, 0, 0, 0}
	for i := 0; i < n; i++ {
		set = be.AppendUint16(set, id+uint16(i))
		set = be.AppendUint16(set, 2)
		set = be.AppendUint16(set, 8)
		set = be.AppendUint16(set, 4)
		set = be.AppendUint16(set, 12)
		set = be.AppendUint16(set, 4)
	}
	be.PutUint16(set[2:], uint16(len(set)))
	return append(b, set...)
}

// ipfixMessage wraps one set in an IPFIX header.
func ipfixMessage(set []byte) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint16(b[0:], 10)
	binary.BigEndian.PutUint16(b[2:], uint16(16+len(set)))
	return append(b, set...)
}

// TestIPv6AndRotate receives on an IPv6 socket and completes the current
// file on demand (what SIGHUP does).
func TestIPv6AndRotate(t *testing.T) {
	if ln, err := net.ListenPacket("udp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	dir := t.TempDir()
	r := start(t, dir, func(c *collect.Config) { c.Listen = []string{"[::1]:0"} })
	var one [3]flow.Record
	m := gen.NewMix(7, gen.MixOptions{})
	for i := range one {
		m.Next(&one[i], time.Now())
	}
	mustSend(t, r.sender(t), gen.AppendNetFlow5(nil, gen.V5Header{UnixSecs: uint32(time.Now().Unix())}, one[:]))
	r.waitMetric(t, 3, "flowscan_flows_total", `exporter="::1"`)
	time.Sleep(1100 * time.Millisecond) // Rotate ignores a file started this second
	if err := r.c.Rotate(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		entries, err := flowfile.List(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d completed files 5 s after Rotate, want 1", len(entries))
		}
		time.Sleep(20 * time.Millisecond)
	}
	got, metas := readAll(t, dir)
	if len(got) != 3 || len(metas) != 1 {
		t.Fatalf("after rotate: %d flows in %d files, want 3 in 1", len(got), len(metas))
	}
	if got[0].Exporter != netip.MustParseAddr("::1") || !metas[0].Complete {
		t.Errorf("after rotate: %d flows, exporter %v, meta %+v", len(got), got[0].Exporter, metas[0])
	}
}

// sinkRecorder counts what the sinks are given; the collector calls sinks
// under its pipeline lock and the test reads after stop.
type sinkRecorder struct{ datagrams, flows int }

func (s *sinkRecorder) Datagram(src netip.AddrPort, data []byte) { s.datagrams++ }
func (s *sinkRecorder) Flows(recs []flow.Record)                 { s.flows += len(recs) }

// TestSinks: datagram and flow sinks see what the collector accepted.
func TestSinks(t *testing.T) {
	sink := &sinkRecorder{}
	r := start(t, t.TempDir(), func(c *collect.Config) {
		c.Datagrams = []collect.DatagramSink{sink}
		c.Flows = []collect.FlowSink{sink}
	})
	var recs [5]flow.Record
	m := gen.NewMix(8, gen.MixOptions{})
	for i := range recs {
		m.Next(&recs[i], time.Now())
	}
	conn := r.sender(t)
	mustSend(t, conn, gen.AppendNetFlow5(nil, gen.V5Header{UnixSecs: uint32(time.Now().Unix())}, recs[:]))
	mustSend(t, conn, []byte{0, 5, 0}) // counted by the datagram sink, not decodable
	r.waitMetric(t, 5, "flowscan_flows_total")
	r.waitMetric(t, 1, "flowscan_decode_errors_total")
	r.stop(t)
	if sink.datagrams != 2 || sink.flows != 5 {
		t.Errorf("sinks saw %d datagrams and %d flows, want 2 and 5", sink.datagrams, sink.flows)
	}
}

// counterRecorder keeps the counters given to it.
type counterRecorder struct{ got []decode.IfCounters }

func (c *counterRecorder) Counters(cs []decode.IfCounters) { c.got = append(c.got, cs...) }

// sflowCounterDatagram builds an sFlow v5 datagram with one generic
// interface counter sample (XDR, RFC-less but per sflow.org's v5 spec).
func sflowCounterDatagram(agent [4]byte, ifIndex uint32, inOctets, outOctets uint64) []byte {
	be := binary.BigEndian
	b := be.AppendUint32(nil, 5) // version
	b = be.AppendUint32(b, 1)    // agent address type IPv4
	b = append(b, agent[:]...)
	b = be.AppendUint32(b, 0)    // sub-agent
	b = be.AppendUint32(b, 1)    // datagram sequence
	b = be.AppendUint32(b, 1000) // uptime
	b = be.AppendUint32(b, 1)    // samples
	rec := be.AppendUint32(nil, ifIndex)
	rec = be.AppendUint32(rec, 6)   // ethernetCsmacd
	rec = be.AppendUint64(rec, 1e9) // speed
	rec = be.AppendUint32(rec, 1)   // full duplex
	rec = be.AppendUint32(rec, 3)   // up/up
	rec = be.AppendUint64(rec, inOctets)
	for i := 0; i < 6; i++ {
		rec = be.AppendUint32(rec, uint32(i))
	}
	rec = be.AppendUint64(rec, outOctets)
	for i := 0; i < 6; i++ {
		rec = be.AppendUint32(rec, 0)
	}
	sample := be.AppendUint32(nil, 7)         // sample sequence
	sample = be.AppendUint32(sample, ifIndex) // source id: type 0, index
	sample = be.AppendUint32(sample, 1)       // records
	sample = be.AppendUint32(sample, 1)       // generic interface counters
	sample = be.AppendUint32(sample, uint32(len(rec)))
	sample = append(sample, rec...)
	b = be.AppendUint32(b, 2) // counter sample
	b = be.AppendUint32(b, uint32(len(sample)))
	return append(b, sample...)
}

// TestSFlowCounters: interface counter samples reach the counter sink.
func TestSFlowCounters(t *testing.T) {
	rec := &counterRecorder{}
	r := start(t, t.TempDir(), func(c *collect.Config) { c.Counters = rec })
	mustSend(t, r.sender(t), sflowCounterDatagram([4]byte{192, 0, 2, 77}, 12, 1<<33, 4242))
	r.waitMetric(t, 1, "flowscan_datagrams_total", `format="sflow5"`)
	r.stop(t)
	if len(rec.got) != 1 {
		t.Fatalf("%d counter samples, want 1", len(rec.got))
	}
	c := rec.got[0]
	if c.Exporter != netip.MustParseAddr("192.0.2.77") || c.IfIndex != 12 || c.InOctets != 1<<33 || c.OutOctets != 4242 || c.Speed != 1e9 {
		t.Errorf("counters %+v", c)
	}
}

// TestSteadyStateAllocations checks that receiving, decoding and writing
// allocate nothing per batch once the collector has warmed up: datagrams
// are sent one at a time, so that most batches hold one datagram, and the
// process's allocations over thousands of them stay far below one per
// datagram (what is left is the collector's timers and housekeeping).
func TestSteadyStateAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 6 000 datagrams")
	}
	r := start(t, t.TempDir(), nil)
	conn := r.sender(t)
	now := time.Now()
	mix := gen.NewMix(3, gen.MixOptions{})
	recs := make([]flow.Record, 30)
	const warm, measured = 1000, 5000
	datagrams := make([][]byte, warm+measured)
	for i := range datagrams {
		for j := range recs {
			mix.Next(&recs[j], now)
		}
		datagrams[i] = gen.AppendNetFlow5(nil, gen.V5Header{SysUptime: 86_400_000, UnixSecs: uint32(now.Unix()), FlowSequence: uint32(30 * i)}, recs)
	}
	send := func(ds [][]byte) {
		for _, d := range ds {
			if _, err := conn.Write(d); err != nil {
				t.Fatal(err)
			}
			// A short pause (time.Sleep would take a millisecond or
			// more), so that the reader mostly finds one datagram.
			for t0 := time.Now(); time.Since(t0) < 20*time.Microsecond; {
			}
		}
	}
	send(datagrams[:warm])
	r.waitMetric(t, warm*30, "flowscan_flows_total", `format="netflow5"`)
	// No polling of the metrics inside the measured window: reading them
	// allocates.
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	send(datagrams[warm:])
	time.Sleep(300 * time.Millisecond)
	runtime.ReadMemStats(&after)
	r.waitMetric(t, (warm+measured)*30, "flowscan_flows_total", `format="netflow5"`)
	allocs := after.Mallocs - before.Mallocs
	t.Logf("%d allocations for %d datagrams", allocs, measured)
	if allocs > measured/10 {
		t.Errorf("%d allocations for %d datagrams: something allocates per batch", allocs, measured)
	}
}
