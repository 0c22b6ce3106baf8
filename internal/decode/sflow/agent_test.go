package sflow

import (
	"net/netip"
	"testing"

	"github.com/flowscan/flowscan/internal/decode"
)

// TestUnspecifiedAgentAddress checks that datagrams whose agent address is
// unspecified (an agent that does not know its address yet) are
// attributed to their UDP source, as the other formats are, rather than
// to 0.0.0.0 or ::, where every such agent would share one exporter and
// one sequence space.
func TestUnspecifiedAgentAddress(t *testing.T) {
	udp := rawHeader(headerIPv4, 28, 0, ipv4Packet(0, 28, protoUDP, v4a, v4b, 0, udpHeader(1, 2, 8)))
	for _, c := range []struct {
		agent netip.Addr
		want  netip.Addr
	}{
		{agent4, agent4},
		{netip.IPv4Unspecified(), udpSrc.Addr()},
		{netip.IPv6Unspecified(), udpSrc.Addr()},
	} {
		out, res := decodeOne(t, New(decode.Options{}), buildDatagram(c.agent, 0, 1, flowSample(1, 1, 1, 2, udp)))
		if res.Exporter != c.want || len(out) != 1 || out[0].Exporter != c.want {
			t.Errorf("agent %v: result exporter %v, %d records (first %v), want %v", c.agent, res.Exporter, len(out), out[0].Exporter, c.want)
		}
	}
}

// TestNonIPSampleSkipped: a flow sample of an ARP frame becomes no flow
// record and is counted in Result.Skipped; an IPv4 sample beside it is
// decoded as usual.
func TestNonIPSampleSkipped(t *testing.T) {
	arp := rawHeader(headerEthernet, 64, 4, ether([6]byte{1}, [6]byte{2}, nil, 0x0806, make([]byte, 28)))
	udp := rawHeader(headerIPv4, 28, 0, ipv4Packet(0, 28, protoUDP, v4a, v4b, 0, udpHeader(1, 2, 8)))
	out, res := decodeOne(t, New(decode.Options{}), buildDatagram(agent4, 0, 1, flowSample(1, 1, 1, 2, arp), flowSample(2, 1, 1, 2, udp)))
	if len(out) != 1 || res.Flows != 1 || res.Skipped != 1 {
		t.Errorf("%d records, result flows %d skipped %d; want 1 flow and 1 skipped sample", len(out), res.Flows, res.Skipped)
	}
}
