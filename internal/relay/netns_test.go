package relay

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The source-preservation test builds two network namespaces joined by a
// veth pair:
//
//	sender ns  veth 192.0.2.1/24  2001:db8:1::1/64  ── runs a Forwarder
//	receiver ns veth 192.0.2.2/24  2001:db8:1::2/64 ── prints what arrives
//
// The Forwarder relays datagrams "received" from exporters that live
// nowhere (198.51.100.7, 2001:db8:99::7): with spoof the receiver must see
// those addresses and ports; without it, the sender's veth address. Both
// sides run as this test binary re-executed inside its namespace.

const (
	nsHelperEnv  = "FLOWSCAN_RELAY_NS_HELPER"
	nsPort       = 2055
	nsExporter4  = "198.51.100.7:4739"
	nsExporter6  = "[2001:db8:99::7]:4739"
	nsDatagrams  = 50 // per exporter and destination
	nsHelperWait = 10 * time.Second
)

func TestSourcePreservationInNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("source preservation needs root (network namespaces and a raw socket)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("source preservation needs the ip command (Debian package iproute2)")
	}
	id := strconv.Itoa(os.Getpid() % 100000)
	nsS, nsR := "fsrelay-s"+id, "fsrelay-r"+id
	vethS, vethR := "fsrs"+id, "fsrr"+id
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", nsS)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", nsS).Run() })
	ip("netns", "add", nsR)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", nsR).Run() })
	ip("-n", nsS, "link", "add", vethS, "type", "veth", "peer", "name", vethR, "netns", nsR)
	ip("-n", nsS, "addr", "add", "192.0.2.1/24", "dev", vethS)
	ip("-n", nsS, "addr", "add", "2001:db8:1::1/64", "dev", vethS, "nodad")
	ip("-n", nsR, "addr", "add", "192.0.2.2/24", "dev", vethR)
	ip("-n", nsR, "addr", "add", "2001:db8:1::2/64", "dev", vethR, "nodad")
	for _, ns := range []string{nsS, nsR} {
		ip("-n", ns, "link", "set", "lo", "up")
	}
	ip("-n", nsS, "link", "set", vethS, "up")
	ip("-n", nsR, "link", "set", vethR, "up")
	// The receiver routes everything back over the veth, so reverse-path
	// filtering accepts the spoofed sources; switch it off all the same.
	ip("-n", nsR, "route", "add", "default", "via", "192.0.2.1")
	ip("-n", nsR, "-6", "route", "add", "default", "via", "2001:db8:1::1")
	exec.Command("ip", "netns", "exec", nsR, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0", "net.ipv4.conf."+vethR+".rp_filter=0").Run()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	helper := func(ns, role string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestNamespaceHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), nsHelperEnv+"="+role)
		cmd.Stderr = os.Stderr
		return cmd
	}
	// 4 destinations get nsDatagrams from each of 2 exporters, but the
	// IPv4 spoofing destination cannot keep an IPv6 exporter's address
	// (and vice versa): 6 streams arrive.
	recv := helper(nsR, "recv")
	out, err := recv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { recv.Process.Kill(); recv.Wait() })
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("receiver did not start: %q", lines.Text())
	}
	sendOut, err := helper(nsS, "send").Output()
	if err != nil {
		t.Fatalf("sender: %v\n%s", err, sendOut)
	}
	var stats []DestinationStats
	if err := json.Unmarshal(sendOut[strings.LastIndexByte(strings.TrimSpace(string(sendOut)), '\n')+1:], &stats); err != nil {
		t.Fatalf("sender output %q: %v", sendOut, err)
	}
	// What arrived, by (destination port, source).
	seen := map[string]int{}
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		if len(f) != 3 {
			t.Fatalf("receiver line %q", lines.Text())
		}
		payload, _ := hex.DecodeString(f[2])
		// Every payload names the exporter it was relayed for.
		if !strings.HasPrefix(string(payload), "from "+f[1]+" ") && !strings.HasPrefix(f[1], "192.0.2.1:") && !strings.HasPrefix(f[1], "[2001:db8:1::1]:") {
			t.Errorf("datagram from %s carries %q", f[1], payload)
		}
		src := netip.MustParseAddrPort(f[1])
		key := f[0] + " " + src.String()
		if src.Addr() == netip.MustParseAddr("192.0.2.1") || src.Addr() == netip.MustParseAddr("2001:db8:1::1") {
			key = f[0] + " " + src.Addr().String() // ephemeral port
		}
		seen[key]++
	}
	recv.Wait()
	want := map[string]int{
		"v4-spoof " + nsExporter4: nsDatagrams,
		"v6-spoof " + nsExporter6: nsDatagrams,
		"v4-plain 192.0.2.1":      2 * nsDatagrams,
		"v6-plain 2001:db8:1::1":  2 * nsDatagrams,
	}
	for k, n := range want {
		if seen[k] != n {
			t.Errorf("%s: %d datagrams, want %d (all seen: %v; sender stats %+v)", k, seen[k], n, seen, stats)
		}
	}
	for k := range seen {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected datagrams %s: %d", k, seen[k])
		}
	}
	// The spoofing destinations refused the other family's exporter.
	for _, i := range []int{0, 2} {
		if stats[i].Errors != nsDatagrams || stats[i].Forwarded != nsDatagrams {
			t.Errorf("spoofing destination %s: %+v, want %d forwarded and %d refused", stats[i].Destination, stats[i], nsDatagrams, nsDatagrams)
		}
	}
}

// TestNamespaceHelper is the sender or receiver of
// TestSourcePreservationInNamespaces when re-executed in a namespace.
func TestNamespaceHelper(t *testing.T) {
	switch os.Getenv(nsHelperEnv) {
	case "":
		t.Skip("helper process for TestSourcePreservationInNamespaces")
	case "recv":
		nsReceive()
	case "send":
		nsSend()
	}
	os.Exit(0)
}

// nsReceive listens on port nsPort (spoofed streams) and nsPort+1 (plain
// streams) over IPv4 and IPv6 and prints "STREAM SRC HEX" per datagram
// until every expected datagram arrived or nsHelperWait passed.
func nsReceive() {
	lines := make(chan string, 1024)
	for _, l := range []struct{ stream, addr string }{
		{"v4-spoof", fmt.Sprintf("192.0.2.2:%d", nsPort)},
		{"v4-plain", fmt.Sprintf("192.0.2.2:%d", nsPort+1)},
		{"v6-spoof", fmt.Sprintf("[2001:db8:1::2]:%d", nsPort)},
		{"v6-plain", fmt.Sprintf("[2001:db8:1::2]:%d", nsPort+1)},
	} {
		r, err := Listen(context.Background(), l.addr, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "listen:", err)
			os.Exit(1)
		}
		go r.Run(func(src netip.AddrPort, data []byte) {
			lines <- l.stream + " " + src.String() + " " + hex.EncodeToString(data)
		})
	}
	fmt.Println("ready")
	deadline := time.After(nsHelperWait)
	for n := 0; n < 6*nsDatagrams; n++ {
		select {
		case l := <-lines:
			fmt.Println(l)
		case <-deadline:
			return
		}
	}
}

// nsSend relays datagrams from two phantom exporters to four destinations
// (spoofing and plain, IPv4 and IPv6) and prints the forwarder's counters
// as JSON.
func nsSend() {
	var dests []Destination
	for _, s := range []string{
		fmt.Sprintf("192.0.2.2:%d;spoof", nsPort),
		fmt.Sprintf("192.0.2.2:%d", nsPort+1),
		fmt.Sprintf("[2001:db8:1::2]:%d;spoof", nsPort),
		fmt.Sprintf("[2001:db8:1::2]:%d", nsPort+1),
	} {
		d, err := ParseDestination(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		dests = append(dests, d)
	}
	f, err := NewForwarder(dests, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for i := 0; i < nsDatagrams; i++ {
		for _, e := range []string{nsExporter4, nsExporter6} {
			src := netip.MustParseAddrPort(e)
			f.Datagram(src, []byte(fmt.Sprintf("from %s datagram %d", src, i)))
		}
		if i%10 == 0 {
			time.Sleep(5 * time.Millisecond) // let neighbour discovery finish without overflowing its queue
		}
	}
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	b, _ := json.Marshal(f.Stats())
	fmt.Printf("%s\n", b)
}
