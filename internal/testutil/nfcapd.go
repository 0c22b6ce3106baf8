package testutil

import (
	"bytes"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Nfcapd is a Debian nfcapd (package nfdump) started by StartNfcapd,
// receiving on a loopback port and writing into a directory.
type Nfcapd struct {
	// Port is the loopback UDP port it receives on.
	Port   int
	cmd    *exec.Cmd
	exited chan struct{}
	log    *LockedBuffer
}

// StartNfcapd starts nfcapd writing into dir on a free loopback port (with
// a 4 MiB receive buffer, rotating every rotate seconds) and waits until it
// holds the port; the test's cleanup kills it. A port found free can be
// taken by another test before nfcapd binds it, and nfcapd then exits: it
// is tried again on another port, three times at most.
func StartNfcapd(t testing.TB, dir string, rotate int) *Nfcapd {
	t.Helper()
	for attempt := 1; ; attempt++ {
		n := &Nfcapd{Port: FreeUDPPort(t), exited: make(chan struct{}), log: new(LockedBuffer)}
		n.cmd = exec.Command("nfcapd", "-w", dir, "-b", "127.0.0.1", "-p", strconv.Itoa(n.Port),
			"-B", "4194304", "-t", strconv.Itoa(rotate))
		n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
		if err := n.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { n.cmd.Wait(); close(n.exited) }()
		if n.waitBound() {
			t.Cleanup(func() { n.cmd.Process.Kill(); <-n.exited })
			return n
		}
		if attempt == 3 {
			t.Fatalf("nfcapd exited at start three times; its last log:\n%s", n.Log())
		}
		t.Logf("nfcapd exited at start (port %d taken?); trying another port. Its log:\n%s", n.Port, n.Log())
	}
}

// Stop ends nfcapd with SIGTERM (it then writes its current file) and
// waits for it, at most timeout; false when it did not stop.
func (n *Nfcapd) Stop(timeout time.Duration) bool {
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Log returns what nfcapd printed so far.
func (n *Nfcapd) Log() string { return n.log.String() }

// waitBound waits until something holds n.Port on 127.0.0.1; false when
// nfcapd exited first or nothing bound the port within 5 s.
func (n *Nfcapd) waitBound() bool {
	for range 100 {
		select {
		case <-n.exited:
			return false
		default:
		}
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: n.Port})
		if err != nil {
			return true
		}
		c.Close()
		time.Sleep(50 * time.Millisecond)
	}
	n.cmd.Process.Kill()
	<-n.exited
	return false
}

// FreeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// LockedBuffer is a bytes.Buffer safe for concurrent use: the output of a
// process read while it runs.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
