package cli

import (
	"bytes"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestProbeExportDeadPort: exporting to a loopback port nobody listens on
// fails with a clear message, and the flows sent plus the flows lost are
// the flows that ended (none is counted as exported that was not sent).
func TestProbeExportDeadPort(t *testing.T) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := c.LocalAddr().String()
	c.Close()
	var out, errb bytes.Buffer
	code := Main([]string{"probe", "--read", probeTestPcap, "--export", dead}, &out, &errb)
	stderr := errb.String()
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, stderr)
	}
	if strings.Contains(stderr, "flows exported") {
		t.Errorf("stderr still counts ended flows as exported:\n%s", stderr)
	}
	num := func(re string) int {
		t.Helper()
		m := regexp.MustCompile(re).FindStringSubmatch(stderr)
		if m == nil {
			t.Fatalf("stderr lacks %s:\n%s", re, stderr)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	ended := num(`(\d+) flows ended`)
	sent := num(`(\d+) of \d+ flows sent`)
	lost := num(`\((\d+) flows lost\)`)
	if ended == 0 || sent+lost != ended {
		t.Errorf("ended %d, sent %d, lost %d: sent + lost must be the flows that ended\n%s", ended, sent, lost, stderr)
	}
	if !strings.Contains(stderr, "--export "+dead+": ") || !strings.Contains(stderr, "could not be sent") || !strings.Contains(stderr, "nothing listens on that port?") {
		t.Errorf("final error unclear:\n%s", stderr)
	}
}
