package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/testutil"
)

// capture is a running tshark writing a classic pcap.
type capture struct {
	*proc
	path string
}

// startTshark captures UDP port on lo into path and returns once tshark
// demonstrably captures: it sends probe datagrams to a second, unused port
// included in the filter until tshark (-P) prints one.
func startTshark(t *testing.T, port int, path string) *capture {
	t.Helper()
	bin := needTool(t, "tshark", "apt-get install tshark")
	probePort := testutil.FreeUDPPort(t)
	filter := fmt.Sprintf("udp port %d or udp port %d", port, probePort)
	c := &capture{path: path}
	c.proc = start(t, "tshark", bin, "-n", "-l", "-P", "-i", "lo", "-f", filter, "-F", "pcap", "-w", path)
	probe, err := net.Dial("udp4", fmt.Sprintf("127.0.0.1:%d", probePort))
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	probeText := strconv.Itoa(probePort)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if !c.running() {
			out := c.out.String()
			if strings.Contains(out, "ermission") || strings.Contains(out, "don't have permission") {
				t.Skipf("tshark cannot capture on lo (needs root or CAP_NET_RAW): %s", tail(out, 500))
			}
			t.Fatalf("tshark exited: %v\n%s", c.err, out)
		}
		if strings.Contains(c.out.String(), probeText) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("tshark did not capture a probe within 20 s:\n%s", c.out.String())
		}
		probe.Write([]byte("flowscan capture probe"))
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends the capture cleanly (SIGINT flushes the file).
func (c *capture) stop(t *testing.T) {
	t.Helper()
	c.signal(t, syscall.SIGINT, 20*time.Second)
	if st, err := os.Stat(c.path); err != nil || st.Size() < 24 {
		t.Fatalf("tshark capture %s missing or empty: %v\n%s", c.path, err, c.out.String())
	}
}

// softflowdResult is what one softflowd run produced.
type softflowdResult struct {
	oracle *testutil.Oracle
	dumped []dumpRecord
}

// softflowdStats matches softflowd's end-of-run summary line.
var softflowdStats = regexp.MustCompile(`Flows exported: \d+ \((\d+) records\) in (\d+) packets`)

// TestSoftflowd replays testdata/traffic.pcap through softflowd as NetFlow
// v5, v9 and IPFIX into `flowscan collect`, captures the export datagrams
// with tshark and checks that `flowscan dump` returns exactly the flows
// tshark decodes from them: counts, packet and byte totals, and every
// record's 5-tuple, counters, TOS, TCP flags and times.
func TestSoftflowd(t *testing.T) {
	needFlowscan(t)
	sfBin := needTool(t, "softflowd", "apt-get install softflowd")
	needTool(t, "tshark", "apt-get install tshark")
	traffic := filepath.Join(repoRoot, "testdata", "traffic.pcap")
	if _, err := os.Stat(traffic); err != nil {
		t.Fatalf("input capture: %v", err)
	}

	results := map[int]*softflowdResult{}
	for _, v := range []int{5, 9, 10} {
		name := map[int]string{5: "v5", 9: "v9", 10: "ipfix"}[v]
		t.Run(name, func(t *testing.T) {
			results[v] = runSoftflowd(t, sfBin, traffic, v)
		})
	}

	v5, v9, ipfix := results[5], results[9], results[10]
	if v5 == nil || v9 == nil || ipfix == nil {
		return // a subtest failed or skipped
	}
	// v5 cannot carry IPv6: fewer flows than v9, exactly v9's IPv4 flows.
	if len(v5.dumped) >= len(v9.dumped) {
		t.Errorf("v5 gave %d flows, v9 %d: v5 should have fewer (no IPv6)", len(v5.dumped), len(v9.dumped))
	}
	if len(v5.dumped) != v9.oracle.FlowsIPv4 {
		t.Errorf("v5 gave %d flows, v9 has %d IPv4 flows", len(v5.dumped), v9.oracle.FlowsIPv4)
	}
	// v9 and IPFIX describe the same flows.
	if sum(v9.dumped) != sum(ipfix.dumped) {
		t.Errorf("v9 totals %v differ from IPFIX totals %v", sum(v9.dumped), sum(ipfix.dumped))
	}
}

// totals are flow, packet and byte counts.
type totals struct{ flows, packets, bytes uint64 }

func (s totals) String() string {
	return fmt.Sprintf("%d flows, %d packets, %d bytes", s.flows, s.packets, s.bytes)
}

// sum totals dumped records.
func sum(rs []dumpRecord) totals {
	var s totals
	for _, r := range rs {
		s.flows++
		s.packets += r.Packets
		s.bytes += r.Bytes
	}
	return s
}

// runSoftflowd runs one export version end to end and checks it.
func runSoftflowd(t *testing.T, sfBin, traffic string, version int) *softflowdResult {
	dir := t.TempDir()
	flowDir := filepath.Join(dir, "flows")
	port := testutil.FreeUDPPort(t)
	coll := startCollector(t, port, flowDir, "--interval", "5m")
	capt := startTshark(t, port, filepath.Join(dir, "export.pcap"))

	// softflowd reads the pcap, flushes every flow at EOF and exits.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sf := start(t, "softflowd", sfBin, "-r", traffic, "-a", "-n", fmt.Sprintf("127.0.0.1:%d", port),
		"-v", strconv.Itoa(version), "-6", "-m", "200000", "-d", "-p", filepath.Join(dir, "softflowd.pid"))
	go func() {
		select {
		case <-ctx.Done():
			if sf.running() {
				sf.cmd.Process.Kill()
			}
		case <-sf.done:
		}
	}()
	if err := sf.wait(t, 70*time.Second); err != nil {
		t.Fatalf("softflowd: %v\n%s", err, sf.out.String())
	}
	m := softflowdStats.FindStringSubmatch(sf.out.String())
	if m == nil {
		t.Fatalf("no export summary in softflowd output:\n%s", sf.out.String())
	}
	sentRecords, _ := strconv.Atoi(m[1])
	sentDatagrams, _ := strconv.Atoi(m[2])
	t.Logf("softflowd -v %d exported %d records in %d datagrams", version, sentRecords, sentDatagrams)

	// Settle: wait (bounded) until the collector has handled every
	// datagram, then give tshark a moment to write the last ones.
	eventually(t, 15*time.Second, "the collector to receive every datagram", func() bool {
		mt, err := coll.scrape()
		if err != nil {
			return false
		}
		return metricSum(mt, "flowscan_datagrams_total")+metricSum(mt, "flowscan_decode_errors_total") >= float64(sentDatagrams)
	})
	time.Sleep(300 * time.Millisecond)
	capt.stop(t)
	mt, err := coll.scrape()
	if err != nil {
		t.Fatal(err)
	}
	if e := metricSum(mt, "flowscan_decode_errors_total"); e != 0 {
		t.Errorf("collector reports %v decode errors", e)
	}
	if err := coll.signal(t, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Errorf("collector exited with %v after SIGTERM", err)
	}

	octx, ocancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer ocancel()
	oracle, err := testutil.TsharkDecode(octx, capt.path, port)
	if err != nil {
		t.Fatalf("tshark decode: %v", err)
	}
	if oracle.Datagrams != sentDatagrams || oracle.Flows != sentRecords {
		t.Fatalf("tshark saw %d datagrams with %d flows, softflowd sent %d with %d", oracle.Datagrams, oracle.Flows, sentDatagrams, sentRecords)
	}

	// The archive: no file left in progress, every file complete, nothing
	// lost according to sequence numbers.
	for _, f := range listFiles(t, flowDir) {
		if strings.HasSuffix(f, ".tmp") {
			t.Errorf("in-progress file left after SIGTERM: %s", f)
		}
	}
	var metaFlows uint64
	for _, md := range dumpMetas(t, flowDir) {
		if !md.Complete {
			t.Errorf("%s: not complete", md.File)
		}
		if md.LostFlows != 0 {
			// Note for IPFIX: softflowd's sequence number already includes
			// the flow records of the message carrying it (20, 46, 66, ...
			// for 20, 26, 20, ... flows) and leaves out options data
			// records; loss accounting must not read that as loss.
			t.Errorf("%s: %d lost flows reported, but tshark saw every datagram softflowd sent (sequences %v)",
				md.File, md.LostFlows, sequences(oracle))
		}
		metaFlows += md.Flows
	}
	dumped := dumpFlows(t, flowDir)
	if metaFlows != uint64(len(dumped)) {
		t.Errorf("metadata counts %d flows, dump printed %d", metaFlows, len(dumped))
	}
	compareWithOracle(t, oracle, dumped)
	return &softflowdResult{oracle: oracle, dumped: dumped}
}

// sequences lists the header sequence numbers and flow counts of an
// oracle's datagrams, for error messages.
func sequences(o *testutil.Oracle) string {
	var b strings.Builder
	for i, d := range o.DatagramInfo {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%d(+%d)", d.Sequence, d.Flows)
	}
	return b.String()
}

// isICMP reports whether proto is ICMP or ICMPv6.
func isICMP(proto uint8) bool { return proto == 1 || proto == 58 }

// matchKey identifies a flow for matching dump output with the oracle.
// ICMP ports are left out: v5 carries type and code in the destination
// port, v9/IPFIX in a separate field, and decoders differ in where they
// put it; they are checked separately.
func matchKey(src, dst string, sport, dport uint16, proto uint8, packets, bytes uint64) string {
	if isICMP(proto) {
		sport, dport = 0, 0
	}
	return fmt.Sprintf("%s %s %d %d %d %d %d", src, dst, sport, dport, proto, packets, bytes)
}

// compareWithOracle checks totals and matches every dumped record with one
// of tshark's.
func compareWithOracle(t *testing.T, o *testutil.Oracle, dumped []dumpRecord) {
	t.Helper()
	got := sum(dumped)
	want := totals{uint64(o.Flows), o.Packets, o.Bytes}
	if got != want {
		t.Errorf("flowscan dump: %v; tshark: %v", got, want)
	} else {
		t.Logf("flowscan dump and tshark agree: %v", got)
	}

	pool := map[string][]testutil.OracleFlow{}
	for _, f := range o.Records {
		k := matchKey(f.Src, f.Dst, f.SrcPort, f.DstPort, f.Proto, f.Packets, f.Bytes)
		pool[k] = append(pool[k], f)
	}
	var unmatched, badTime, exactTime, badOther int
	for i, r := range dumped {
		if r.Exporter != "127.0.0.1" {
			t.Errorf("record %d: exporter %q, want 127.0.0.1", i, r.Exporter)
		}
		k := matchKey(r.SrcAddr, r.DstAddr, r.SrcPort, r.DstPort, r.Proto, r.Packets, r.Bytes)
		cands := pool[k]
		if len(cands) == 0 {
			if unmatched++; unmatched <= 5 {
				t.Errorf("dumped flow has no match in tshark's decoding: %+v", r)
			}
			continue
		}
		// Take the candidate closest in start time.
		best, bestD := 0, time.Duration(1<<62)
		rs, _ := time.Parse(time.RFC3339Nano, r.Start)
		for j, c := range cands {
			cs, _ := time.Parse(time.RFC3339Nano, c.Start)
			if d := absDur(rs.Sub(cs)); d < bestD {
				best, bestD = j, d
			}
		}
		f := cands[best]
		pool[k] = append(cands[:best], cands[best+1:]...)

		re, _ := time.Parse(time.RFC3339Nano, r.End)
		fs, err1 := time.Parse(time.RFC3339Nano, f.Start)
		fe, err2 := time.Parse(time.RFC3339Nano, f.End)
		if err1 == nil && err2 == nil {
			ds, de := absDur(rs.Sub(fs)), absDur(re.Sub(fe))
			switch {
			case ds > time.Second || de > time.Second:
				if badTime++; badTime <= 5 {
					t.Errorf("times differ: flowscan %s..%s, tshark %s..%s (%s)", r.Start, r.End, f.Start, f.End, k)
				}
			case ds == 0 && de == 0:
				exactTime++
			}
		}
		if r.TOS != f.TOS || (!isICMP(r.Proto) && r.TCPFlags != f.TCPFlags) {
			if badOther++; badOther <= 5 {
				t.Errorf("tos/tcp_flags differ: flowscan %#x/%#x, tshark %#x/%#x (%s)", r.TOS, r.TCPFlags, f.TOS, f.TCPFlags, k)
			}
		}
		if isICMP(r.Proto) && r.DstPort != f.DstPort && r.DstPort != f.ICMPTypeCode {
			if badOther++; badOther <= 5 {
				t.Errorf("ICMP dst_port %d is neither tshark's port %d nor its type/code %d (%s)", r.DstPort, f.DstPort, f.ICMPTypeCode, k)
			}
		}
	}
	left := 0
	for _, c := range pool {
		left += len(c)
	}
	if unmatched > 0 || left > 0 {
		t.Errorf("%d dumped flows without a tshark match, %d tshark flows without a dumped match", unmatched, left)
	}
	t.Logf("%d of %d matched flows have identical start and end to the millisecond", exactTime, len(dumped)-unmatched)
}

// absDur returns |d|.
func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
