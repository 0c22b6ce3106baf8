package sflow

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/testutil"
)

// TestCollectorEndToEnd builds flowscan, runs `flowscan collect` on a
// loopback port, lets pmacctd export testdata/traffic.pcap to it as sFlow,
// stops the collector and reads the flow files back with `flowscan dump`:
// the stored flows must be the pcap's packets, in order, attributed to the
// agent, with no datagram lost.
func TestCollectorEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: builds flowscan and runs pmacctd")
	}
	pmacctd, err := exec.LookPath("pmacctd")
	if err != nil {
		t.Skip("pmacctd not found: install Debian's pmacct package (apt-get install pmacct)")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not found")
	}
	traffic, err := filepath.Abs(trafficPcap)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "flowscan")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, goBin, "build", "-o", bin, "./cmd/flowscan")
	build.Dir = filepath.Join("..", "..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/flowscan: %v\n%s", err, out)
	}

	port := freeUDPPort(t)
	flowDir := filepath.Join(dir, "flows")
	collector := exec.Command(bin, "collect", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--dir", flowDir,
		"--metrics", "", "--tz", "UTC", "--flush", "500ms")
	stderr, err := collector.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := collector.Start(); err != nil {
		t.Fatal(err)
	}
	collectorDone := make(chan struct{})
	var collectorLog bytes.Buffer
	ready := make(chan struct{})
	go func() {
		defer close(collectorDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			collectorLog.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "collecting") {
				close(ready)
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	stopCollector := func() {
		collector.Process.Signal(syscall.SIGTERM)
		select {
		case <-collectorDone:
		case <-time.After(10 * time.Second):
			collector.Process.Kill()
			<-collectorDone
		}
		collector.Wait()
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			stopCollector()
		}
	})
	select {
	case <-ready:
	case <-collectorDone:
		t.Fatalf("flowscan collect exited:\n%s", collectorLog.String())
	case <-time.After(30 * time.Second):
		t.Fatal("flowscan collect did not start within 30 s")
	}

	conf := filepath.Join(dir, "pmacctd.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "daemonize: false\npcap_savefile: %s\npcap_savefile_wait: false\n"+
		"plugins: sfprobe\nsfprobe_receiver: 127.0.0.1:%d\nsfprobe_agentip: 127.0.0.1\nsampling_rate: 1\n", traffic, port), 0o644); err != nil {
		t.Fatal(err)
	}
	pm := exec.Command(pmacctd, "-f", conf)
	var pmLog bytes.Buffer
	pm.Stdout, pm.Stderr = &pmLog, &pmLog
	if err := pm.Start(); err != nil {
		t.Fatal(err)
	}
	pmDone := make(chan struct{})
	go func() { pm.Wait(); close(pmDone) }()
	select {
	case <-pmDone:
	case <-time.After(60 * time.Second):
		pm.Process.Signal(syscall.SIGINT) // pmacct ignores SIGTERM in the foreground
		select {
		case <-pmDone:
		case <-time.After(5 * time.Second):
			pm.Process.Kill()
			<-pmDone
		}
		t.Fatalf("pmacctd did not finish within 60 s:\n%s", pmLog.String())
	}
	time.Sleep(time.Second) // let the collector write what it received
	stopped = true
	stopCollector()

	dump := func(args ...string) []byte {
		out, err := exec.CommandContext(ctx, bin, append([]string{"dump", "--format", "json"}, args...)...).Output()
		if err != nil {
			t.Fatalf("flowscan dump %v: %v", args, err)
		}
		return out
	}
	type dumped struct {
		Exporter string `json:"exporter"`
		Src      string `json:"src_addr"`
		Dst      string `json:"dst_addr"`
		SrcPort  uint16 `json:"src_port"`
		DstPort  uint16 `json:"dst_port"`
		Proto    uint8  `json:"proto"`
		Bytes    uint64 `json:"bytes"`
		Packets  uint64 `json:"packets"`
		Rate     uint32 `json:"sampling_rate"`
	}
	var flows []dumped
	for _, line := range bytes.Split(bytes.TrimSpace(dump(flowDir)), []byte("\n")) {
		var f dumped
		if err := json.Unmarshal(line, &f); err != nil {
			t.Fatalf("dump line %q: %v", line, err)
		}
		flows = append(flows, f)
	}
	var datagrams, lost uint64
	for _, line := range bytes.Split(bytes.TrimSpace(dump("--meta", flowDir)), []byte("\n")) {
		var m struct {
			Exporters []struct {
				Exporter      string `json:"exporter"`
				Format        string `json:"format"`
				Datagrams     uint64 `json:"datagrams"`
				LostDatagrams uint64 `json:"lost_datagrams"`
			} `json:"exporters"`
		}
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("dump --meta line %q: %v", line, err)
		}
		for _, e := range m.Exporters {
			if e.Format != "sflow5" || e.Exporter != "127.0.0.1" {
				t.Errorf("exporter %s format %s, want the agent 127.0.0.1 and sflow5", e.Exporter, e.Format)
			}
			datagrams += e.Datagrams
			lost += e.LostDatagrams
		}
	}

	lt, frames, err := testutil.ReadFile(traffic)
	if err != nil {
		t.Fatal(err)
	}
	var pkts []testutil.Packet
	for _, fr := range frames {
		if p, err := testutil.ParseFrame(lt, fr.Data); err == nil {
			pkts = append(pkts, p)
		}
	}
	t.Logf("collector stored %d flows from %d datagrams (%d lost); traffic.pcap has %d IP packets", len(flows), datagrams, lost, len(pkts))
	// pmacctd drops at most one unfilled datagram (8 samples) at exit.
	if missing := len(pkts) - len(flows); missing < 0 || missing > 8 {
		t.Fatalf("%d flows stored for %d packets", len(flows), len(pkts))
	}
	if lost != 0 || datagrams == 0 || uint64(len(flows)) > 8*datagrams {
		t.Errorf("%d datagrams, %d lost, for %d flows", datagrams, lost, len(flows))
	}
	var sumBytes, wantBytes uint64
	bad := 0
	for i, f := range flows {
		p := pkts[i]
		sumBytes += f.Bytes
		wantBytes += uint64(p.IPLen)
		if f.Exporter != "127.0.0.1" || f.Src != p.Src.String() || f.Dst != p.Dst.String() || f.Proto != p.Proto ||
			f.Bytes != uint64(p.IPLen) || f.Packets != 1 || f.Rate != 1 ||
			(p.Proto == 6 || p.Proto == 17) && (f.SrcPort != p.SrcPort || f.DstPort != p.DstPort) {
			if bad++; bad <= 10 {
				t.Errorf("flow %d: %+v; pcap packet %v -> %v proto %d ports %d/%d IP length %d", i, f, p.Src, p.Dst, p.Proto, p.SrcPort, p.DstPort, p.IPLen)
			}
		}
	}
	if sumBytes != wantBytes {
		t.Errorf("stored %d bytes, the pcap's first %d IP packets hold %d", sumBytes, len(flows), wantBytes)
	}
}

// freeUDPPort returns a loopback UDP port that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
