package probe

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/testutil"
)

// runSoftflowd replays pcap through softflowd exporting NetFlow v9 to a
// receiver and returns the decoded flows.
func runSoftflowd(t *testing.T, pcap string) []flow.Record {
	t.Helper()
	bin := requireTool(t, "softflowd", "softflowd")
	rcv := startReceiver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	abs, err := filepath.Abs(pcap)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, "-r", abs, "-a", "-n", rcv.addr().String(), "-v", "9", "-6",
		"-m", "200000", "-d", "-p", filepath.Join(t.TempDir(), "softflowd.pid"))
	// (no -c: with -r, a control socket makes softflowd wait forever)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("softflowd: %v\n%s", err, out)
	}
	return rcv.wait(t, 300*time.Millisecond)
}

// runProbeUDP replays pcap through a Probe exporting NetFlow v9 over UDP to
// a receiver and returns the decoded flows.
func runProbeUDP(t *testing.T, pcap string, cfg Config) ([]flow.Record, Stats) {
	t.Helper()
	rcv := startReceiver(t)
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(rcv.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	exp, err := NewExporter(conn, ExportV9, 7)
	if err != nil {
		t.Fatal(err)
	}
	var p *Probe
	cfg.Emit = func(recs []flow.Record) {
		if err := exp.Export(recs, p.Now()); err != nil {
			t.Errorf("export: %v", err)
		}
		time.Sleep(time.Millisecond) // pace the burst a little
	}
	p, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(pcap)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := ReadPcap(p, f); err != nil {
		t.Fatal(err)
	}
	p.Flush()
	return rcv.wait(t, 300*time.Millisecond), p.Stats()
}

// softflowdPadding returns, per flow key, the bytes softflowd counts on
// top of the IP length: softflowd takes a packet's length from the capture
// (wire length minus the link header), so an IPv4 packet shorter than the
// 46-byte Ethernet minimum payload counts with its padding (40-byte TCP
// ACKs count 46). The probe counts IP lengths, as NetFlow defines octets.
func softflowdPadding(t *testing.T, pcap string) map[string]uint64 {
	t.Helper()
	lt, recs, err := testutil.ReadFile(pcap)
	if err != nil {
		t.Fatal(err)
	}
	if lt != LinkEthernet {
		t.Fatalf("%s: link type %d, the padding rule below assumes Ethernet", pcap, lt)
	}
	pad := map[string]uint64{}
	var pkt Packet
	for _, rec := range recs {
		if err := ParseFrame(&pkt, lt, rec.Data); err != nil {
			t.Fatalf("%s: %v", pcap, err)
		}
		l2 := 14
		if pkt.VLAN != 0 {
			l2 += 4
		}
		if extra := rec.OrigLen - l2 - int(pkt.IPLen); extra > 0 {
			r := flow.Record{SrcAddr: addr16(pkt.Src), DstAddr: addr16(pkt.Dst), SrcPort: pkt.SrcPort, DstPort: pkt.DstPort, Proto: pkt.Proto}
			pad[flowKeyString(&r)] += uint64(extra)
		}
	}
	return pad
}

// reverseKey is the key of the opposite direction of r.
func reverseKey(r *flow.Record) string {
	rev := flow.Record{SrcAddr: r.DstAddr, DstAddr: r.SrcAddr, SrcPort: r.DstPort, DstPort: r.SrcPort, Proto: r.Proto}
	return flowKeyString(&rev)
}

func addr16(b [16]byte) netip.Addr { return netip.AddrFrom16(b).Unmap() }

// TestSoftflowdSameRules runs softflowd and the probe over the same pcap
// with the probe's timeouts set so that neither side expires a flow before
// the end of the file (softflowd's shortest relevant timeout is 300 s,
// traffic.pcap spans 60 s; -m 200000 prevents its early expiry; the probe
// gets 1 h idle and active timeouts and FIN/RST expiry off). Then every
// flow must match one to one: same keys, packets and TCP flags, bytes
// equal after adding exactly softflowd's Ethernet padding (see
// softflowdPadding), and start/end equal up to softflowd's v9 header
// rounding (its header time has whole seconds, so its times land up to
// 1 s early).
func TestSoftflowdSameRules(t *testing.T) {
	sf := runSoftflowd(t, trafficPcap)
	ours, st := runProbeUDP(t, trafficPcap, Config{IdleTimeout: time.Hour, ActiveTimeout: time.Hour, FinTimeout: -1})
	pad := softflowdPadding(t, trafficPcap)
	sfTot, ourTot := sum(sf), sum(ours)
	var padTotal uint64
	for _, v := range pad {
		padTotal += v
	}
	t.Logf("softflowd %+v, probe %+v, padding %d bytes; probe stats %+v", sfTot, ourTot, padTotal, st)
	if sfTot.flows == 0 {
		t.Fatal("softflowd exported nothing")
	}
	if ourTot.flows != sfTot.flows || ourTot.packets != sfTot.packets || ourTot.bytes+padTotal != sfTot.bytes {
		t.Errorf("totals: probe %+v + padding %d, softflowd %+v", ourTot, padTotal, sfTot)
	}
	if st.IPPackets != sfTot.packets || st.Exported() != sfTot.flows {
		t.Errorf("probe stats %+v disagree with what the receiver decoded %+v", st, sfTot)
	}
	sfByKey := map[string]flow.Record{}
	for _, r := range sf {
		k := flowKeyString(&r)
		if _, dup := sfByKey[k]; dup {
			t.Fatalf("softflowd split %s although no timeout applies", k)
		}
		sfByKey[k] = r
	}
	ourByKey := map[string]flow.Record{}
	for _, o := range ours {
		ourByKey[flowKeyString(&o)] = o
	}
	seen := map[string]bool{}
	for _, o := range ours {
		k := flowKeyString(&o)
		s, ok := sfByKey[k]
		switch {
		case !ok:
			t.Errorf("probe flow %s not exported by softflowd", k)
			continue
		case seen[k]:
			t.Errorf("probe split %s although no timeout applies", k)
			continue
		}
		seen[k] = true
		if o.Packets != s.Packets || o.Bytes+pad[k] != s.Bytes || o.TCPFlags != s.TCPFlags {
			t.Errorf("%s: probe packets %d bytes %d(+%d padding) flags %#x; softflowd %d %d %#x",
				k, o.Packets, o.Bytes, pad[k], o.TCPFlags, s.Packets, s.Bytes, s.TCPFlags)
		}
		// softflowd keeps one flow for both directions and reports the TOS
		// only for the direction whose packet opened it, and only for
		// IPv4; the probe reports every flow's first TOS.
		wantTOS := o.TOS
		if rev, ok := ourByKey[reverseKey(&o)]; o.IsIPv6() || ok && rev.Start <= o.Start {
			wantTOS = 0
		}
		if s.TOS != wantTOS {
			t.Errorf("%s: softflowd TOS %d, want %d (probe TOS %d)", k, s.TOS, wantTOS, o.TOS)
		}
		if d := o.Start - s.Start; d < 0 || d >= 1000 {
			t.Errorf("%s: start probe %d softflowd %d", k, o.Start, s.Start)
		}
		if d := o.End - s.End; d < 0 || d >= 1000 {
			t.Errorf("%s: end probe %d softflowd %d", k, o.End, s.End)
		}
	}
	for k := range sfByKey {
		if !seen[k] {
			t.Errorf("softflowd flow %s missing from the probe", k)
		}
	}
}

// TestSoftflowdSplitRules compares the probe with its default timeouts
// (idle 15 s, active 60 s, 2 s after FIN/RST) and with tight ones (which
// split many flows) against softflowd (which, on this 60-second capture,
// expires nothing before the end). Packets and
// bytes per flow key must still agree exactly (bytes after softflowd's
// padding); the probe may only have more flows, and each extra flow must
// be a split explained by one of its rules: the gap to the previous piece
// is at least the idle timeout, or the previous piece saw FIN/RST and the
// gap is at least the FIN timeout, or the previous piece had reached the
// active timeout.
func TestSoftflowdSplitRules(t *testing.T) {
	sf := runSoftflowd(t, trafficPcap)
	for _, tc := range []struct {
		name              string
		idle, active, fin time.Duration
		minSplits         int
	}{
		{"defaults", DefaultIdleTimeout, DefaultActiveTimeout, DefaultFinTimeout, 0},
		{"tight", 500 * time.Millisecond, 3 * time.Second, 100 * time.Millisecond, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkSplits(t, sf, Config{IdleTimeout: tc.idle, ActiveTimeout: tc.active, FinTimeout: tc.fin}, tc.minSplits)
		})
	}
}

// checkSplits runs the probe with cfg and checks its flows against
// softflowd's sf as TestSoftflowdSplitRules describes.
func checkSplits(t *testing.T, sf []flow.Record, cfg Config, minSplits int) {
	var ours []flow.Record
	cfg.Emit = func(recs []flow.Record) { ours = append(ours, recs...) }
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(trafficPcap)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := ReadPcap(p, f); err != nil {
		t.Fatal(err)
	}
	p.Flush()
	st := p.Stats()
	pad := softflowdPadding(t, trafficPcap)
	sfKeys, ourKeys := byKey(sf), byKey(ours)
	if len(sfKeys) != len(sf) {
		t.Fatalf("softflowd split flows (%d keys, %d flows)", len(sfKeys), len(sf))
	}
	for k, s := range sfKeys {
		o := ourKeys[k]
		if o.packets != s.packets || o.bytes+pad[k] != s.bytes {
			t.Errorf("%s: probe %+v (+%d padding), softflowd %+v", k, o, pad[k], s)
		}
	}
	for k := range ourKeys {
		if _, ok := sfKeys[k]; !ok {
			t.Errorf("probe flow %s not exported by softflowd", k)
		}
	}
	pieces := map[string][]flow.Record{}
	for _, r := range ours {
		k := flowKeyString(&r)
		pieces[k] = append(pieces[k], r)
	}
	var idle, fin, active int
	for _, k := range sortedKeys(pieces) {
		ps := pieces[k]
		sort.Slice(ps, func(i, j int) bool { return ps[i].Start < ps[j].Start })
		for i := 1; i < len(ps); i++ {
			prev, cur := ps[i-1], ps[i]
			gap := cur.Start - prev.End
			switch {
			case gap >= cfg.IdleTimeout.Milliseconds():
				idle++
			case prev.TCPFlags&(tcpFIN|tcpRST) != 0 && gap >= cfg.FinTimeout.Milliseconds():
				fin++
			case cur.Start-prev.Start >= cfg.ActiveTimeout.Milliseconds():
				active++
			default:
				t.Errorf("%s: piece %d (start %d) follows a piece ending %d with no timeout explaining the split", k, i, cur.Start, prev.End)
			}
		}
	}
	splits := len(ours) - len(sf)
	t.Logf("softflowd %d flows, probe %d: %d splits (idle %d, fin %d, active %d); stats %+v", len(sf), len(ours), splits, idle, fin, active, st)
	if splits < minSplits {
		t.Errorf("only %d splits, want at least %d: the rules were not exercised", splits, minSplits)
	}
	if idle+fin+active != splits {
		t.Errorf("%d extra flows but %d explained splits", splits, idle+fin+active)
	}
	if uint64(len(ours)) != st.Exported() {
		t.Errorf("emitted %d flows, stats say %d", len(ours), st.Exported())
	}
}
