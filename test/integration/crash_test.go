package integration

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/testutil"
)

// Values of the hand-made NetFlow v9 exporter of TestKill9: a source ID the
// generator does not use, a template ID, and marker flows that cannot be
// confused with generated ones.
const (
	markSourceID   = 0x4d4b
	markTemplateID = 300
	markBytes      = 987654321
	markPackets    = 4242
)

// markFlows are the flows of the data-only datagram sent after restart.
var markFlows = []struct {
	src, dst     [4]byte
	sport, dport uint16
	proto        uint8
}{
	{[4]byte{192, 0, 2, 77}, [4]byte{198, 51, 100, 77}, 4242, 4343, 17},
	{[4]byte{192, 0, 2, 78}, [4]byte{198, 51, 100, 78}, 5252, 443, 6},
}

// v9Header appends a NetFlow v9 header.
func v9Header(b []byte, count uint16, uptime, unixSecs, seq uint32) []byte {
	b = binary.BigEndian.AppendUint16(b, 9)
	b = binary.BigEndian.AppendUint16(b, count)
	b = binary.BigEndian.AppendUint32(b, uptime)
	b = binary.BigEndian.AppendUint32(b, unixSecs)
	b = binary.BigEndian.AppendUint32(b, seq)
	return binary.BigEndian.AppendUint32(b, markSourceID)
}

// markTemplateFields are (type, length) pairs of the marker template.
var markTemplateFields = [][2]uint16{
	{8, 4},  // IPV4_SRC_ADDR
	{12, 4}, // IPV4_DST_ADDR
	{7, 2},  // L4_SRC_PORT
	{11, 2}, // L4_DST_PORT
	{4, 1},  // PROTOCOL
	{1, 4},  // IN_BYTES
	{2, 4},  // IN_PKTS
	{22, 4}, // FIRST_SWITCHED
	{21, 4}, // LAST_SWITCHED
}

// markTemplateDatagram is a v9 datagram holding only the marker template.
func markTemplateDatagram(now time.Time, seq uint32) []byte {
	b := v9Header(nil, 1, 100000, uint32(now.Unix()), seq)
	b = binary.BigEndian.AppendUint16(b, 0) // template flowset
	b = binary.BigEndian.AppendUint16(b, uint16(4+4+4*len(markTemplateFields)))
	b = binary.BigEndian.AppendUint16(b, markTemplateID)
	b = binary.BigEndian.AppendUint16(b, uint16(len(markTemplateFields)))
	for _, f := range markTemplateFields {
		b = binary.BigEndian.AppendUint16(b, f[0])
		b = binary.BigEndian.AppendUint16(b, f[1])
	}
	return b
}

// markDataDatagram is a v9 datagram holding only marker flows, no template.
func markDataDatagram(now time.Time, seq uint32) []byte {
	b := v9Header(nil, uint16(len(markFlows)), 100000, uint32(now.Unix()), seq)
	var recs []byte
	for _, f := range markFlows {
		recs = append(recs, f.src[:]...)
		recs = append(recs, f.dst[:]...)
		recs = binary.BigEndian.AppendUint16(recs, f.sport)
		recs = binary.BigEndian.AppendUint16(recs, f.dport)
		recs = append(recs, f.proto)
		recs = binary.BigEndian.AppendUint32(recs, markBytes)
		recs = binary.BigEndian.AppendUint32(recs, markPackets)
		recs = binary.BigEndian.AppendUint32(recs, 95000) // 5 s before export
		recs = binary.BigEndian.AppendUint32(recs, 99000) // 1 s before export
	}
	for len(recs)%4 != 0 {
		recs = append(recs, 0)
	}
	b = binary.BigEndian.AppendUint16(b, markTemplateID)
	b = binary.BigEndian.AppendUint16(b, uint16(4+len(recs)))
	return append(b, recs...)
}

// TestKill9 checks crash safety at the binary level: a collector rotating
// every 2 s receives generator traffic plus a hand-made v9 template, is
// killed with SIGKILL mid-run and restarted on the same directory. Then
// every file must be complete and readable, the flows counted a while
// before the kill must be on disk, and a v9 data-only datagram sent right
// after the restart must decode with the template learned before the
// crash.
func TestKill9(t *testing.T) {
	needFlowscan(t)
	dir := filepath.Join(t.TempDir(), "flows")
	port := testutil.FreeUDPPort(t)
	target := fmt.Sprintf("127.0.0.1:%d", port)
	collArgs := []string{"--interval", "2s", "--flush", "250ms"}
	coll := startCollector(t, port, dir, collArgs...)

	// The marker exporter: one socket kept across the restart, so the
	// exporter address and port stay the same.
	mark, err := net.Dial("udp4", target)
	if err != nil {
		t.Fatal(err)
	}
	defer mark.Close()
	if _, err := mark.Write(markTemplateDatagram(time.Now(), 0)); err != nil {
		t.Fatal(err)
	}

	// The marker template is learned (nothing else has been sent yet) and
	// then saved to the state directory.
	var learned time.Time
	eventually(t, 10*time.Second, "the marker template to be learned", func() bool {
		m, err := coll.scrape()
		if err == nil && metricSum(m, "flowscan_templates") >= 1 {
			learned = time.Now()
			return true
		}
		return false
	})
	stateDir := filepath.Join(dir, ".flowscan")
	eventually(t, 10*time.Second, "decoder state saved in "+stateDir+" after the template arrived", func() bool {
		entries, _ := os.ReadDir(stateDir)
		for _, e := range entries {
			if st, err := e.Info(); err == nil && !e.IsDir() && st.ModTime().After(learned) {
				return true
			}
		}
		return false
	})

	// Generated v9 traffic for about 6 s.
	gen := start(t, "flowscan gen", flowscanBin, "gen", "--target", target, "--format", "v9",
		"--rate", "2000", "--count", "12000", "--exporters", "2", "--seed", "7")

	// Let files rotate, note how many flows the collector has decoded,
	// wait well past the flush interval, then kill it mid-run.
	eventually(t, 15*time.Second, "two completed files", func() bool {
		n := 0
		for _, f := range listFiles(t, dir) {
			if strings.HasSuffix(f, ".fsf") {
				n++
			}
		}
		return n >= 2
	})
	if !gen.running() {
		t.Fatalf("generator finished before the kill; output:\n%s", gen.out.String())
	}
	m, err := coll.scrape()
	if err != nil {
		t.Fatal(err)
	}
	decodedBeforeKill := metricSum(m, "flowscan_flows_total")
	time.Sleep(time.Second)
	coll.signal(t, syscall.SIGKILL, 10*time.Second)
	killedAt := time.Now()
	t.Logf("killed the collector after %v decoded flows (as of 1 s earlier)", decodedBeforeKill)

	// The generator may give up on ICMP port-unreachable errors while
	// nobody listens; either way it ends.
	gen.wait(t, 30*time.Second)
	t.Logf("generator exited: %v", gen.err)

	coll = startCollector(t, port, dir, collArgs...)
	if _, err := mark.Write(markDataDatagram(time.Now(), 1)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the data-only datagram sent after the restart to be decoded (did the template survive?)", func() bool {
		m, err := coll.scrape()
		return err == nil && metricSum(m, "flowscan_flows_total") >= float64(len(markFlows))
	})
	if err := coll.signal(t, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Errorf("collector exited with %v after SIGTERM", err)
	}
	t.Logf("restart to exit took %v", time.Since(killedAt).Round(time.Millisecond))

	// Every file is complete and reads back in full on its own.
	files := listFiles(t, dir)
	var total, recovered uint64
	for _, f := range files {
		if strings.HasSuffix(f, ".tmp") {
			t.Errorf("in-progress file left after SIGTERM: %s", f)
			continue
		}
		metas := dumpMetas(t, f)
		if len(metas) != 1 {
			t.Errorf("%s: %d metadata objects", f, len(metas))
			continue
		}
		md := metas[0]
		if !md.Complete {
			t.Errorf("%s: not complete", f)
		}
		if md.Recovered {
			recovered++
		}
		recs := dumpFlows(t, f)
		if uint64(len(recs)) != md.Flows {
			t.Errorf("%s: metadata says %d flows, %d read back", f, md.Flows, len(recs))
		}
		total += md.Flows
	}
	t.Logf("%d files, %d flows, %d completed by recovery", len(files), total, recovered)
	if len(files) < 3 {
		t.Errorf("only %d files after about %v of 2 s intervals", len(files), time.Since(killedAt))
	}
	if float64(total) < decodedBeforeKill {
		t.Errorf("archive holds %d flows, but %v were decoded more than a flush interval before the kill", total, decodedBeforeKill)
	}

	// The marker flows decoded with the template from before the crash.
	found := 0
	for _, r := range dumpFlows(t, dir) {
		if r.Bytes != markBytes {
			continue
		}
		found++
		ok := false
		for _, f := range markFlows {
			if r.SrcAddr == net.IP(f.src[:]).String() && r.DstAddr == net.IP(f.dst[:]).String() &&
				r.SrcPort == f.sport && r.DstPort == f.dport && r.Proto == f.proto && r.Packets == markPackets {
				ok = true
			}
		}
		if !ok {
			t.Errorf("marker flow decoded wrongly: %+v", r)
		}
		if r.Start == "" || r.End == "" {
			t.Errorf("marker flow without times: %+v", r)
		} else {
			s, _ := time.Parse(time.RFC3339Nano, r.Start)
			e, _ := time.Parse(time.RFC3339Nano, r.End)
			if d := e.Sub(s); d != 4*time.Second {
				t.Errorf("marker flow lasts %v, want 4s (%s..%s)", d, r.Start, r.End)
			}
		}
	}
	if found != len(markFlows) {
		t.Errorf("found %d of %d marker flows sent without a template after the restart: templates did not survive kill -9", found, len(markFlows))
	}

	// Control: a collector without the saved state cannot decode the same
	// datagram, so the check above really depends on the saved templates.
	ctl := startCollector(t, port, filepath.Join(t.TempDir(), "control"))
	if _, err := mark.Write(markDataDatagram(time.Now(), 2)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the control collector to receive the data-only datagram", func() bool {
		m, err := ctl.scrape()
		return err == nil && metricSum(m, "flowscan_datagrams_total")+metricSum(m, "flowscan_decode_errors_total") >= 1
	})
	if m, err := ctl.scrape(); err != nil {
		t.Error(err)
	} else if n := metricSum(m, "flowscan_flows_total"); n != 0 {
		t.Errorf("a collector without saved templates decoded %v flows from a data-only datagram", n)
	}
	ctl.signal(t, syscall.SIGTERM, 30*time.Second)
}
