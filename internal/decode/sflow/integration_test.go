package sflow

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/testutil"
)

// TestPmacctLive runs Debian's pmacctd on testdata/traffic.pcap with its
// sfprobe plugin exporting sFlow to a UDP socket of this test on loopback.
// The datagrams received are decoded and compared with tshark's decoding
// of the same datagrams (written to a pcap) and with the packets of
// traffic.pcap.
func TestPmacctLive(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: runs pmacctd")
	}
	pmacctd, err := exec.LookPath("pmacctd")
	if err != nil {
		t.Skip("pmacctd not found: install Debian's pmacct package (apt-get install pmacct)")
	}
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not found: install Debian's tshark package (apt-get install tshark)")
	}
	traffic, err := filepath.Abs(trafficPcap)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// pmacct sends its datagrams in a burst; keep them all.
	if err := conn.SetReadBuffer(4 << 20); err != nil {
		t.Fatal(err)
	}
	port := conn.LocalAddr().(*net.UDPAddr).Port

	dir := t.TempDir()
	conf := filepath.Join(dir, "pmacctd.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, `daemonize: false
pcap_savefile: %s
pcap_savefile_wait: false
plugins: sfprobe
sfprobe_receiver: 127.0.0.1:%d
sfprobe_agentip: 127.0.0.1
sampling_rate: 1
`, traffic, port), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "pmacctd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(pmacctd, "-f", conf)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{}) // closed when pmacctd has exited
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
			return
		default:
		}
		// pmacct daemons in the foreground ignore SIGTERM.
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})

	// pmacctd sleeps 2 s, reads the file and exits by itself. Read until it
	// has exited and the socket has been quiet for a second, at most 60 s.
	var dgrams []testutil.Datagram
	buf := make([]byte, 65536)
	deadline := time.Now().Add(60 * time.Second)
	done := false
	for time.Now().Before(deadline) {
		conn.SetReadDeadline(time.Now().Add(time.Second))
		n, src, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatal(err)
			}
			if done {
				break
			}
			select {
			case <-exited:
				done = true // one more quiet second, then stop
			default:
			}
			continue
		}
		dgrams = append(dgrams, testutil.Datagram{Time: time.Now().UTC(), Src: src, Payload: append([]byte(nil), buf[:n]...),
			Dst: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port))})
	}
	if !done {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("pmacctd did not finish within 60 s; %d datagrams so far; log:\n%s", len(dgrams), log)
	}
	if len(dgrams) == 0 {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("no sFlow datagram from pmacctd; log:\n%s", log)
	}

	capture := filepath.Join(dir, "sflow.pcap")
	if err := writeUDPPcap(capture, dgrams); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o, err := tsharkOracle(ctx, capture, port)
	if err != nil {
		t.Fatal(err)
	}
	recs := checkAgainstOracle(t, dgrams, o)
	checkAgainstTraffic(t, recs, o)
}

// writeUDPPcap writes datagrams as Ethernet/IPv4/UDP frames, so tshark can
// decode exactly the payloads the test received.
func writeUDPPcap(path string, dgrams []testutil.Datagram) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	w, err := testutil.NewWriter(bw, testutil.LinkTypeEthernet, 0)
	if err != nil {
		return err
	}
	for _, dg := range dgrams {
		frame := make([]byte, 14+20+8, 14+20+8+len(dg.Payload))
		binary.BigEndian.PutUint16(frame[12:], 0x0800)
		ip := frame[14:]
		ip[0], ip[8], ip[9] = 0x45, 64, 17
		binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(dg.Payload)))
		s, d := dg.Src.Addr().Unmap().As4(), dg.Dst.Addr().As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		udp := ip[20:]
		binary.BigEndian.PutUint16(udp[0:], dg.Src.Port())
		binary.BigEndian.PutUint16(udp[2:], dg.Dst.Port())
		binary.BigEndian.PutUint16(udp[4:], uint16(8+len(dg.Payload)))
		frame = append(frame, dg.Payload...)
		if err := w.WritePacket(dg.Time, frame, len(frame)); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}
