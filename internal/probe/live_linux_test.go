package probe

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flowscan/flowscan/internal/flow"
)

// inNetns runs fn on a thread switched into the named network namespace
// and switches back afterwards. Sockets made in fn stay in that namespace.
func inNetns(t *testing.T, name string, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()))
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			panic("cannot return to the original network namespace: " + err.Error())
		}
	}()
	fn()
}

// TestLiveVeth creates a network namespace holding a veth pair, opens the
// probe on one end, writes crafted frames into the other end with a
// packet socket and checks that the probe counted exactly those frames.
func TestLiveVeth(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("live capture test needs root (network namespace, CAP_NET_RAW)")
	}
	ipBin := requireTool(t, "ip", "iproute2")
	ns := fmt.Sprintf("fsprobe%d", os.Getpid())
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ipBin, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	run("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command(ipBin, "netns", "del", ns).Run() })
	run("-n", ns, "link", "add", "pa", "type", "veth", "peer", "name", "pb")
	run("-n", ns, "link", "set", "pa", "up")
	run("-n", ns, "link", "set", "pb", "up")
	// A fresh veth pair drops frames until both ends have carrier: wait
	// for LOWER_UP on both (bounded) before sending.
	for deadline := time.Now().Add(5 * time.Second); ; {
		out, _ := exec.Command(ipBin, "-n", ns, "link", "show").CombinedOutput()
		if strings.Count(string(out), "LOWER_UP") >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("veth pair never came up:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}

	const n = 25
	frame := frameSpec{src: v4a, dst: v4b, proto: protoUDP, sport: 4242, dport: 2055, payload: 100}.ethernet()
	tagged := frameSpec{src: v4a, dst: v4b, proto: protoUDP, sport: 4343, dport: 2055, payload: 100, vlan: 42}.ethernet()
	var live *Live
	inNetns(t, ns, func() {
		var err error
		if live, err = OpenLive("pb", 1<<20); err != nil {
			t.Fatal(err)
		}
		tx, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(tx)
		ifi, err := hardwareIndex("pa")
		if err != nil {
			t.Fatal(err)
		}
		to := &unix.SockaddrLinklayer{Ifindex: ifi, Halen: 6}
		copy(to.Addr[:], frame[:6])
		for range n {
			if err := unix.Sendto(tx, frame, 0, to); err != nil {
				t.Fatal(err)
			}
		}
		// Tagged frames: veth strips the tag on receive (VLAN offload);
		// the probe must put it back from PACKET_AUXDATA.
		for range 3 {
			if err := unix.Sendto(tx, tagged, 0, to); err != nil {
				t.Fatal(err)
			}
		}
	})
	defer live.Close()
	if live.LinkType() != LinkEthernet {
		t.Fatalf("link type %d", live.LinkType())
	}

	var recs []flow.Record
	p, err := New(Config{InIf: uint32(live.IfIndex()), Emit: func(r []flow.Record) { recs = append(recs, r...) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	if err := live.Run(ctx, p, nil); err != nil {
		t.Fatal(err)
	}
	p.Flush()
	var got *flow.Record
	for i := range recs {
		if recs[i].SrcPort == 4242 && recs[i].DstPort == 2055 {
			got = &recs[i]
		}
	}
	if got == nil {
		t.Fatalf("crafted flow not seen; flows %+v, stats %+v", recs, p.Stats())
	}
	var vlanSeen bool
	for i := range recs {
		if recs[i].SrcPort == 4343 {
			vlanSeen = true
			if recs[i].SrcVLAN != 42 || recs[i].Packets != 3 {
				t.Errorf("tagged flow %+v: want VLAN 42 and 3 packets (tag lost to VLAN offload?)", recs[i])
			}
		}
	}
	if !vlanSeen {
		t.Errorf("tagged flow not seen")
	}
	if got.Packets != n || got.Bytes != n*128 || got.SrcAddr != v4a || got.DstAddr != netip.MustParseAddr("198.51.100.2") || got.InIf != uint32(live.IfIndex()) {
		t.Errorf("flow %+v, want %d packets of 128 bytes", *got, n)
	}
	// Other flows may exist (IPv6 neighbour discovery on the fresh veth);
	// only the crafted key is checked. Live time is the wall clock.
	now := time.Since(got.StartTime())
	if now < 0 || now > time.Minute {
		t.Errorf("live flow time %v is not the clock", got.StartTime())
	}
}

// hardwareIndex returns the interface index of name in the calling
// thread's network namespace.
func hardwareIndex(name string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, err
	}
	return int(ifr.Uint32()), nil
}
