package sflow

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/flow"
)

var (
	udpSrc   = netip.MustParseAddrPort("192.0.2.99:40000")
	agent4   = netip.MustParseAddr("192.0.2.1")
	agent6   = netip.MustParseAddr("2001:db8::1")
	received = time.Date(2026, 11, 23, 12, 0, 0, 250_000_000, time.UTC)
	ms       = received.UnixMilli()
	macA     = [6]byte{0x02, 0, 0, 0, 0, 0x0a}
	macB     = [6]byte{0x02, 0, 0, 0, 0, 0x0b}
	v4a      = netip.MustParseAddr("10.0.0.1")
	v4b      = netip.MustParseAddr("198.51.100.7")
	v6a      = netip.MustParseAddr("2001:db8:1::10")
	v6b      = netip.MustParseAddr("2001:db8:2::20")
)

func decodeOne(t *testing.T, d *Decoder, data []byte) ([]flow.Record, decode.Result) {
	t.Helper()
	out, res, err := d.Decode(nil, &decode.Packet{Data: data, Src: udpSrc, Received: received})
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return out, res
}

func TestDecodeFlowSamples(t *testing.T) {
	tcp4 := ipv4Packet(0x28, 1500, protoTCP, v4a, v4b, 0x4000, append(tcpHeader(51000, 443, 0x18), make([]byte, 60)...))
	base := flow.Record{Exporter: agent4, Domain: 7, Start: ms, End: ms}
	with := func(f func(r *flow.Record)) flow.Record { r := base; f(&r); return r }
	cases := []struct {
		name   string
		sample []byte
		want   []flow.Record // nil: no record
	}{
		{"compact Ethernet IPv4 TCP",
			flowSample(1, 100, 3, 5, rawHeader(headerEthernet, 1518, 4, ether(macB, macA, nil, etherIPv4, tcp4)[:80])),
			[]flow.Record{with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.TOS, r.SrcPort, r.DstPort, r.TCPFlags = v4a, v4b, protoTCP, 0x28, 51000, 443, 0x18
				r.Bytes, r.Packets, r.SamplingRate, r.InIf, r.OutIf = 150000, 100, 100, 3, 5
				r.SrcMAC, r.DstMAC = macA, macB
			})}},
		{"compact interfaces unknown, discarded, multiple",
			flowSample(1, 1, compactIfUnknown, 1<<30|7, rawHeader(headerIPv4, 1500, 0, tcp4)),
			[]flow.Record{with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.TOS, r.SrcPort, r.DstPort, r.TCPFlags = v4a, v4b, protoTCP, 0x28, 51000, 443, 0x18
				r.Bytes, r.Packets, r.SamplingRate = 1500, 1, 1
			})}},
		{"expanded 32-bit interfaces, VLAN tag, UDP, extended switch wins",
			flowSampleExpanded(9, 10, 0, 0x12345678, 0, 0xfedcba98,
				rawHeader(headerEthernet, 100, 4, ether(macB, macA, []uint16{42}, etherIPv4,
					ipv4Packet(0, 82, protoUDP, v4a, v4b, 0, udpHeader(5353, 53, 62)))),
				extSwitch(100, 0, 200, 0)),
			[]flow.Record{with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.SrcPort, r.DstPort = v4a, v4b, protoUDP, 5353, 53
				r.Bytes, r.Packets, r.SamplingRate, r.InIf, r.OutIf = 820, 10, 10, 0x12345678, 0xfedcba98
				r.SrcMAC, r.DstMAC, r.SrcVLAN, r.DstVLAN = macA, macB, 100, 200
			})}},
		{"expanded output multiple interfaces, QinQ, VLAN from tag",
			flowSampleExpanded(9, 1, 0, 4, 2, 3,
				rawHeader(headerEthernet, 100, 4, ether(macB, macA, []uint16{42, 43}, etherIPv4,
					ipv4Packet(0, 82, protoUDP, v4a, v4b, 0, udpHeader(5353, 53, 62))))),
			[]flow.Record{with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.SrcPort, r.DstPort = v4a, v4b, protoUDP, 5353, 53
				r.Bytes, r.Packets, r.SamplingRate, r.InIf = 82, 1, 1, 4
				r.SrcMAC, r.DstMAC, r.SrcVLAN = macA, macB, 42
			})}},
		{"ICMP echo request",
			flowSample(1, 1, 1, 2, rawHeader(headerEthernet, 102, 4, ether(macB, macA, nil, etherIPv4,
				ipv4Packet(0, 84, protoICMP, v4a, v4b, 0, icmpHeader(8, 0))))),
			[]flow.Record{with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.DstPort = v4a, v4b, protoICMP, 8<<8
				r.Bytes, r.Packets, r.SamplingRate, r.InIf, r.OutIf, r.SrcMAC, r.DstMAC = 84, 1, 1, 1, 2, macA, macB
			})}},
		{"IPv4 later fragment has no ports",
			flowSample(1, 1, 1, 2, rawHeader(headerIPv4, 600, 0, ipv4Packet(0, 600, protoUDP, v4a, v4b, 185, udpHeader(1, 2, 3)))),
			[]flow.Record{with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.Bytes, r.Packets, r.SamplingRate, r.InIf, r.OutIf = v4a, v4b, protoUDP, 600, 1, 1, 1, 2
			})}},
		{"IPv4 total length 0 (offload) uses the frame length",
			flowSample(1, 2, 1, 2, rawHeader(headerEthernet, 9018, 4, ether(macB, macA, nil, etherIPv4, ipv4Packet(0, 0, protoTCP, v4a, v4b, 0, tcpHeader(1, 2, 0x10))))),
			[]flow.Record{with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.SrcPort, r.DstPort, r.TCPFlags = v4a, v4b, protoTCP, 1, 2, 0x10
				r.Bytes, r.Packets, r.SamplingRate, r.InIf, r.OutIf, r.SrcMAC, r.DstMAC = 2*9000, 2, 2, 1, 2, macA, macB
			})}},
		{"Ethernet IPv6 TCP with hop-by-hop and fragment headers",
			flowSample(1, 4, 1, 2, rawHeader(headerEthernet, 1018, 4, ether(macB, macA, nil, etherIPv6,
				ipv6Packet(0xb8, 960, 0, v6a, v6b, append(append(
					[]byte{44, 0, 1, 4, 0, 0, 0, 0},           // hop-by-hop, next fragment
					[]byte{protoTCP, 0, 0, 1, 0, 0, 0, 9}...), // first fragment, more follow
					tcpHeader(22, 40000, 0x12)...))))),
			[]flow.Record{with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.TOS, r.SrcPort, r.DstPort, r.TCPFlags = v6a, v6b, protoTCP, 0xb8, 22, 40000, 0x12
				r.Bytes, r.Packets, r.SamplingRate, r.InIf, r.OutIf, r.SrcMAC, r.DstMAC = 4*1000, 4, 4, 1, 2, macA, macB
			})}},
		{"raw IPv6 header ICMPv6",
			flowSample(1, 1, 1, 2, rawHeader(headerIPv6, 104, 0, ipv6Packet(0, 64, protoICMPv6, v6a, v6b, icmpHeader(128, 0)))),
			[]flow.Record{with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.DstPort = v6a, v6b, protoICMPv6, 128<<8
				r.Bytes, r.Packets, r.SamplingRate, r.InIf, r.OutIf = 104, 1, 1, 1, 2
			})}},
		{"IPv6 later fragment",
			flowSample(1, 1, 1, 2, rawHeader(headerIPv6, 1040, 0, ipv6Packet(0, 1000, 44, v6a, v6b, []byte{protoUDP, 0, 0x05, 0xa8, 0, 0, 0, 9, 1, 2, 3, 4}))),
			[]flow.Record{with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto = v6a, v6b, protoUDP
				r.Bytes, r.Packets, r.SamplingRate, r.InIf, r.OutIf = 1040, 1, 1, 1, 2
			})}},
		{"sampled IPv4 with router and gateway",
			flowSample(1, 512, 1, 2,
				sampledIPv4(1400, protoTCP, v4a, v4b, 80, 1234, 0x11, 0x10),
				extRouter(netip.MustParseAddr("10.0.0.254"), 8, 24),
				extGateway(netip.MustParseAddr("10.0.0.253"), 64500, 64501, 64502, [][]uint32{{64510, 64511, 15169}, {65000}}, []uint32{1, 2})),
			[]flow.Record{with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.TOS, r.SrcPort, r.DstPort, r.TCPFlags = v4a, v4b, protoTCP, 0x10, 80, 1234, 0x11
				r.Bytes, r.Packets, r.SamplingRate, r.InIf, r.OutIf = 512*1400, 512, 512, 1, 2
				r.NextHop, r.SrcMask, r.DstMask, r.SrcAS, r.DstAS = netip.MustParseAddr("10.0.0.254"), 8, 24, 64501, 65000 // the origin: the last AS of the last segment
			})}},
		{"sampled IPv6, Ethernet record, IPv6 router, local gateway, unknown switch VLANs",
			flowSample(1, 1, 1, 2,
				sampledEthernet(1100, macA, macB, etherIPv6),
				sampledIPv6(1080, protoUDP, v6a, v6b, 443, 50000, 0, 3),
				extRouter(netip.MustParseAddr("fe80::1"), 48, 64),
				extGateway(netip.Addr{}, 64500, 0, 0, nil, nil),
				extSwitch(0xffffffff, 0, 0xffffffff, 0)),
			[]flow.Record{with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.TOS, r.SrcPort, r.DstPort = v6a, v6b, protoUDP, 3, 443, 50000
				r.Bytes, r.Packets, r.SamplingRate, r.InIf, r.OutIf = 1080, 1, 1, 1, 2
				r.NextHop, r.SrcMask, r.DstMask, r.DstAS = netip.MustParseAddr("fe80::1"), 48, 64, 64500
				r.SrcMAC, r.DstMAC = macA, macB
			})}},
		{"raw header wins over a later sampled IPv4 record; router next hop 0.0.0.0 is unknown",
			flowSample(1, 1, 1, 2,
				rawHeader(headerIPv4, 1500, 0, tcp4),
				sampledIPv4(99, protoUDP, v4b, v4a, 1, 2, 0, 0),
				extRouter(netip.IPv4Unspecified(), 16, 16)),
			[]flow.Record{with(func(r *flow.Record) {
				r.SrcAddr, r.DstAddr, r.Proto, r.TOS, r.SrcPort, r.DstPort, r.TCPFlags = v4a, v4b, protoTCP, 0x28, 51000, 443, 0x18
				r.Bytes, r.Packets, r.SamplingRate, r.InIf, r.OutIf, r.SrcMask, r.DstMask = 1500, 1, 1, 1, 2, 16, 16
			})}},
		{"ARP gives no record",
			flowSample(1, 1, 1, 2, rawHeader(headerEthernet, 64, 4, ether(macB, macA, nil, 0x0806, make([]byte, 28)))), nil},
		{"IPv4 header cut short gives no record",
			flowSample(1, 1, 1, 2, rawHeader(headerEthernet, 64, 4, ether(macB, macA, nil, etherIPv4, tcp4[:19]))), nil},
		{"unknown header protocol and enterprise record skipped",
			flowSample(1, 1, 1, 2, rawHeader(7, 64, 4, tcp4), tagged(9<<12|1, []byte{1, 2, 3, 4, 5}), tagged(1004, nil)), nil},
		{"only extended data gives no record",
			flowSample(1, 1, 1, 2, extSwitch(1, 0, 2, 0)), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := New(decode.Options{})
			out, res := decodeOne(t, d, buildDatagram(agent4, 7, 99, c.sample))
			if res.Flows != len(c.want) || len(out) != len(c.want) {
				t.Fatalf("%d records (result %d), want %d: %+v", len(out), res.Flows, len(c.want), out)
			}
			for i := range c.want {
				if out[i] != c.want[i] {
					t.Errorf("record %d\n got %+v\nwant %+v", i, out[i], c.want[i])
				}
			}
		})
	}
}

func TestDecodeDatagram(t *testing.T) {
	udp := rawHeader(headerIPv4, 28, 0, ipv4Packet(0, 28, protoUDP, v4a, v4b, 0, udpHeader(1, 2, 8)))
	data := buildDatagram(agent6, 3, 4242,
		flowSample(1, 1, 1, 2, udp),
		counterSample(false, 1, genericIf(ifCounters{index: 1})),
		tagged(7<<12|1, []byte{9, 9, 9, 9}), // enterprise sample: skipped
		tagged(5, []byte{0, 0, 0, 0}),       // discarded packet sample: skipped
		flowSampleExpanded(2, 1, 0, 1, 0, 2, udp))
	d := New(decode.Options{})
	out, res := decodeOne(t, d, data)
	want := decode.Result{Format: decode.FormatSFlow5, Exporter: agent6, Domain: 3, Sequence: 4242,
		SeqUnit: decode.SeqDatagrams, SeqAdvance: 1, SeqExact: true, Flows: 2}
	if res != want {
		t.Errorf("result\n got %+v\nwant %+v", res, want)
	}
	for i, r := range out {
		if r.Exporter != agent6 || r.Domain != 3 {
			t.Errorf("record %d: exporter %v domain %d, want the agent %v and sub-agent 3", i, r.Exporter, r.Domain, agent6)
		}
	}
	// Appending keeps what dst held.
	prev := []flow.Record{{Bytes: 1}}
	out, _, err := d.Decode(prev, &decode.Packet{Data: data, Src: udpSrc, Received: received})
	if err != nil || len(out) != 3 || out[0].Bytes != 1 {
		t.Errorf("append to a non-empty slice: %d records, err %v", len(out), err)
	}
}

func TestDecodeSamplingOverride(t *testing.T) {
	data := buildDatagram(agent4, 0, 1, flowSample(1, 64, 1, 2, sampledIPv4(100, protoUDP, v4a, v4b, 1, 2, 0, 0)))
	for _, c := range []struct {
		name             string
		override         func(netip.Addr) (uint32, bool)
		rate             uint32
		packets, byteSum uint64
	}{
		{"announced", nil, 64, 64, 6400},
		{"override for the agent", func(a netip.Addr) (uint32, bool) { return 1000, a == agent4 }, 1000, 1000, 100000},
		{"override keyed by UDP source does not apply", func(a netip.Addr) (uint32, bool) { return 1000, a == udpSrc.Addr() }, 64, 64, 6400},
		{"rate 0 counts one packet", func(netip.Addr) (uint32, bool) { return 0, true }, 0, 1, 100},
	} {
		out, _ := decodeOne(t, New(decode.Options{SamplingOverride: c.override}), data)
		if r := out[0]; r.SamplingRate != c.rate || r.Packets != c.packets || r.Bytes != c.byteSum {
			t.Errorf("%s: rate %d packets %d bytes %d, want %d %d %d", c.name, r.SamplingRate, r.Packets, r.Bytes, c.rate, c.packets, c.byteSum)
		}
	}
}

func TestDecodeCounters(t *testing.T) {
	c1 := ifCounters{index: 5, typ: 6, speed: 10_000_000_000, direction: 1, status: 3,
		inOctets: 1 << 40, inUcast: 11, inMcast: 12, inBcast: 13, inDiscards: 14, inErrors: 15, inUnknown: 16,
		outOctets: 1<<33 + 7, outUcast: 21, outMcast: 22, outBcast: 23, outDiscards: 24, outErrors: 25, promisc: 2}
	c2 := ifCounters{index: 0x80000001, typ: 161, speed: 1000}
	ethernetCounters := tagged(2, make([]byte, 52)) // dot3 counters: skipped
	data := buildDatagram(agent4, 1, 10,
		counterSample(false, 77, ethernetCounters, genericIf(c1)),
		counterSample(true, 78, genericIf(c2), tagged(1005, make([]byte, 16))))
	d := New(decode.Options{})
	out, res := decodeOne(t, d, data)
	if len(out) != 0 || res.Flows != 0 {
		t.Errorf("counter samples gave %d flows", len(out))
	}
	got := d.DrainCounters(nil)
	want := []decode.IfCounters{
		{Exporter: agent4, Domain: 1, Time: received, Sequence: 77, IfIndex: 5, IfType: 6, Speed: 10_000_000_000, Direction: 1, Status: 3,
			InOctets: 1 << 40, InUcastPkts: 11, InMulticastPkts: 12, InBroadcastPkts: 13, InDiscards: 14, InErrors: 15, InUnknownProtos: 16,
			OutOctets: 1<<33 + 7, OutUcastPkts: 21, OutMulticastPkts: 22, OutBroadcastPkts: 23, OutDiscards: 24, OutErrors: 25, Promiscuous: 2},
		{Exporter: agent4, Domain: 1, Time: received, Sequence: 78, IfIndex: 0x80000001, IfType: 161, Speed: 1000},
	}
	if len(got) != len(want) {
		t.Fatalf("%d counters, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("counters %d\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if again := d.DrainCounters(nil); len(again) != 0 {
		t.Errorf("second drain returned %d counters", len(again))
	}
	// A datagram that fails halfway leaves no counters behind.
	bad := buildDatagram(agent4, 1, 11, counterSample(false, 79, genericIf(c1)), flowSample(1, 1, 1, 2, tagged(recordIPv4, make([]byte, 8))))
	if _, _, err := d.Decode(nil, &decode.Packet{Data: bad, Received: received}); err == nil {
		t.Fatal("short sampled IPv4 record accepted")
	}
	if n := len(d.DrainCounters(nil)); n != 0 {
		t.Errorf("failed datagram left %d counters", n)
	}
}

func TestCounterBufferBound(t *testing.T) {
	d := New(decode.Options{})
	recs := make([][]byte, 100)
	for i := range recs {
		recs[i] = genericIf(ifCounters{index: uint32(i)})
	}
	data := buildDatagram(agent4, 0, 1, counterSample(true, 1, recs...))
	const datagrams = MaxBufferedCounters/100 + 2
	for i := 0; i < datagrams; i++ {
		decodeOne(t, d, data)
	}
	if got := len(d.DrainCounters(nil)); got != MaxBufferedCounters {
		t.Errorf("buffered %d counters, want the bound %d", got, MaxBufferedCounters)
	}
	if got, want := d.DroppedCounters(), uint64(datagrams*100-MaxBufferedCounters); got != want {
		t.Errorf("dropped %d counters, want %d", got, want)
	}
	decodeOne(t, d, data)
	if got := len(d.DrainCounters(nil)); got != 100 {
		t.Errorf("after draining, %d counters buffered, want 100", got)
	}
}

func TestDecodeErrors(t *testing.T) {
	ip := sampledIPv4(100, protoUDP, v4a, v4b, 1, 2, 0, 0)
	good := buildDatagram(agent4, 0, 1, flowSample(1, 1, 1, 2, ip), counterSample(false, 1, genericIf(ifCounters{})))
	mod := func(b []byte, f func(b []byte) []byte) []byte { return f(append([]byte(nil), b...)) }
	put := func(off int, v uint32) func([]byte) []byte {
		return func(b []byte) []byte { binary.BigEndian.PutUint32(b[off:], v); return b }
	}
	// Offsets in good: header 28 bytes; sample 1 tag at 28, length at 32,
	// body at 36 (record count at 36+28, first record tag at 68, length 72).
	cases := []struct {
		name string
		data []byte
		want decode.Reason
	}{
		{"empty", nil, decode.ReasonShort},
		{"version only", good[:4], decode.ReasonShort},
		{"header cut", good[:27], decode.ReasonShort},
		{"IPv6 header cut", buildDatagram(agent6, 0, 1)[:39], decode.ReasonShort},
		{"version 4", mod(good, put(0, 4)), decode.ReasonVersion},
		{"agent address type 0", mod(good, put(4, 0)), decode.ReasonVersion},
		{"absurd sample count", mod(good, put(24, 1<<31)), decode.ReasonCount},
		{"sample count one too many", mod(good, put(24, 3)), decode.ReasonShort},
		{"sample length beyond datagram", mod(good, put(32, 1<<20)), decode.ReasonLength},
		{"sample length 2^32-1", mod(good, put(32, 0xffffffff)), decode.ReasonLength},
		{"truncated in a sample", good[:60], decode.ReasonLength},
		{"truncated counter record", good[:len(good)-4], decode.ReasonLength},
		{"flow sample shorter than its fields", buildDatagram(agent4, 0, 1, tagged(sampleFlow, make([]byte, 28))), decode.ReasonSample},
		{"expanded flow sample shorter than its fields", buildDatagram(agent4, 0, 1, tagged(sampleFlowExpanded, make([]byte, 40))), decode.ReasonSample},
		{"counter sample shorter than its fields", buildDatagram(agent4, 0, 1, tagged(sampleCounters, make([]byte, 8))), decode.ReasonSample},
		{"expanded counter sample shorter than its fields", buildDatagram(agent4, 0, 1, tagged(sampleCountersExpanded, make([]byte, 12))), decode.ReasonSample},
		{"absurd record count", mod(good, put(64, 0x7fffffff)), decode.ReasonCount},
		{"record length beyond sample", mod(good, put(72, 1000)), decode.ReasonLength},
		{"record length 2^32-1", mod(good, put(72, 0xffffffff)), decode.ReasonLength},
		{"absurd counter record count", buildDatagram(agent4, 0, 1, tagged(sampleCounters, xdr(nil).u32(1).u32(2).u32(1<<30))), decode.ReasonCount},
		{"short generic counters", buildDatagram(agent4, 0, 1, counterSample(false, 1, tagged(counterGenericIf, make([]byte, 84)))), decode.ReasonSample},
		{"raw header length beyond record", buildDatagram(agent4, 0, 1, flowSample(1, 1, 1, 2,
			tagged(recordRawHeader, xdr(nil).u32(1).u32(100).u32(4).u32(200).fixed(make([]byte, 20))))), decode.ReasonLength},
		{"raw header record too short", buildDatagram(agent4, 0, 1, flowSample(1, 1, 1, 2, tagged(recordRawHeader, make([]byte, 12)))), decode.ReasonSample},
		{"sampled IPv6 too short", buildDatagram(agent4, 0, 1, flowSample(1, 1, 1, 2, tagged(recordIPv6, make([]byte, 52)))), decode.ReasonSample},
		{"sampled Ethernet too short", buildDatagram(agent4, 0, 1, flowSample(1, 1, 1, 2, tagged(recordEthernet, make([]byte, 20)))), decode.ReasonSample},
		{"switch too short", buildDatagram(agent4, 0, 1, flowSample(1, 1, 1, 2, tagged(recordSwitch, make([]byte, 12)))), decode.ReasonSample},
		{"router bad address type", buildDatagram(agent4, 0, 1, flowSample(1, 1, 1, 2, tagged(recordRouter, xdr(nil).u32(3).u32(0).u32(0).u32(0)))), decode.ReasonSample},
		{"router IPv6 next hop cut", buildDatagram(agent4, 0, 1, flowSample(1, 1, 1, 2, tagged(recordRouter, xdr(nil).u32(2).u32(0).u32(0).u32(0)))), decode.ReasonSample},
		{"gateway AS path count beyond record", buildDatagram(agent4, 0, 1, flowSample(1, 1, 1, 2,
			tagged(recordGateway, xdr(nil).addr(v4a).u32(1).u32(2).u32(3).u32(1).u32(2).u32(1<<30).u32(5)))), decode.ReasonLength},
		{"gateway AS path segment missing", buildDatagram(agent4, 0, 1, flowSample(1, 1, 1, 2,
			tagged(recordGateway, xdr(nil).addr(v4a).u32(1).u32(2).u32(3).u32(1)))), decode.ReasonSample},
	}
	for _, c := range cases {
		d := New(decode.Options{})
		out, _, err := d.Decode(make([]flow.Record, 0, 4), &decode.Packet{Data: c.data, Src: udpSrc, Received: received})
		var de *decode.Error
		if !errors.As(err, &de) || de.Reason != c.want || de.Format != decode.FormatSFlow5 {
			t.Errorf("%s: error %v, want reason %s", c.name, err, c.want)
		}
		if len(out) != 0 {
			t.Errorf("%s: %d records appended on error", c.name, len(out))
		}
		if n := len(d.DrainCounters(nil)); n != 0 {
			t.Errorf("%s: %d counters kept on error", c.name, n)
		}
	}
	// Sanity: the unmodified datagram decodes.
	if _, _, err := New(decode.Options{}).Decode(nil, &decode.Packet{Data: good}); err != nil {
		t.Errorf("good datagram: %v", err)
	}
}

func TestMatch(t *testing.T) {
	v5 := make([]byte, 24)
	v5[1] = 5
	for _, c := range []struct {
		name string
		data []byte
		want bool
	}{
		{"sFlow IPv4 agent", buildDatagram(agent4, 0, 1), true},
		{"sFlow IPv6 agent", buildDatagram(agent6, 0, 1), true},
		{"NetFlow v5", v5, false},
		{"sFlow v4", []byte{0, 0, 0, 4, 0, 0, 0, 1}, false},
		{"unknown agent type", []byte{0, 0, 0, 5, 0, 0, 0, 3}, false},
		{"short", []byte{0, 0, 0, 5, 0, 0, 0}, false},
		{"empty", nil, false},
	} {
		if got := Match(c.data); got != c.want {
			t.Errorf("%s: Match = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestRegistered checks that the Mux sends sFlow datagrams to this decoder.
func TestRegistered(t *testing.T) {
	m := decode.NewMux(decode.Options{})
	data := buildDatagram(agent4, 0, 1, flowSample(1, 1, 1, 2, sampledIPv4(100, protoUDP, v4a, v4b, 1, 2, 0, 0)))
	out, res, err := m.Decode(nil, &decode.Packet{Data: data, Src: udpSrc})
	if err != nil || res.Format != decode.FormatSFlow5 || len(out) != 1 {
		t.Fatalf("mux: format %v, %d records, err %v", res.Format, len(out), err)
	}
	if m.Decoder(decode.FormatSFlow5) == nil {
		t.Fatal("no sFlow decoder in the mux")
	}
}

func FuzzDecode(f *testing.F) {
	tcp4 := ipv4Packet(0, 1500, protoTCP, v4a, v4b, 0, tcpHeader(1, 2, 3))
	f.Add(buildDatagram(agent4, 1, 2,
		flowSample(1, 10, 1, 2, rawHeader(headerEthernet, 1518, 4, ether(macA, macB, []uint16{5}, etherIPv4, tcp4)), extSwitch(1, 0, 2, 0)),
		counterSample(false, 1, genericIf(ifCounters{index: 1}))))
	f.Add(buildDatagram(agent6, 1, 2,
		flowSampleExpanded(1, 10, 0, 1, 0, 2, rawHeader(headerIPv6, 100, 0, ipv6Packet(0, 60, 0, v6a, v6b, []byte{protoUDP, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2})),
			extRouter(v6a, 1, 2), extGateway(v4a, 1, 2, 3, [][]uint32{{4, 5}}, []uint32{6})),
		counterSample(true, 1, genericIf(ifCounters{index: 1}))))
	f.Add(buildDatagram(agent4, 0, 0, flowSample(1, 1, 1, 1, sampledIPv4(1, 1, v4a, v4b, 0, 0, 0, 0), sampledIPv6(1, 1, v6a, v6b, 0, 0, 0, 0), sampledEthernet(1, macA, macB, 1))))
	d := New(decode.Options{})
	buf := make([]flow.Record, 0, 16)
	f.Fuzz(func(t *testing.T, data []byte) {
		out, res, err := d.Decode(buf[:0], &decode.Packet{Data: data, Src: udpSrc, Received: received})
		counters := d.DrainCounters(nil)
		if err != nil {
			if len(out) != 0 || len(counters) != 0 {
				t.Fatalf("%d records and %d counters returned with error %v", len(out), len(counters), err)
			}
			var de *decode.Error
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *decode.Error", err)
			}
			return
		}
		// Every record or counter needs at least a sample header and a
		// record header on the wire.
		if len(out) != res.Flows || (len(out)+len(counters))*16 > len(data) {
			t.Fatalf("inconsistent result: %d records, %d counters, %+v, %d bytes", len(out), len(counters), res, len(data))
		}
		for _, r := range out {
			if !r.SrcAddr.IsValid() || !r.DstAddr.IsValid() || r.Exporter != res.Exporter {
				t.Fatalf("record without addresses or with another exporter: %+v", r)
			}
		}
	})
}

// benchDatagram is a typical switch datagram: 8 compact flow samples of
// Ethernet/IPv4/TCP headers (128 bytes) with extended switch data.
func benchDatagram() []byte {
	var samples [][]byte
	for i := range 8 {
		pkt := ether(macB, macA, nil, etherIPv4, ipv4Packet(0, 1500, protoTCP, netip.AddrFrom4([4]byte{10, 0, byte(i), 1}), v4b, 0x4000,
			append(tcpHeader(uint16(1024+i), 443, 0x10), make([]byte, 80)...)))
		samples = append(samples, flowSample(uint32(i+1), 1000, 3, 5, rawHeader(headerEthernet, 1518, 4, pkt[:128]), extSwitch(10, 0, 20, 0)))
	}
	return buildDatagram(agent4, 0, 1, samples...)
}

func BenchmarkDecode(b *testing.B) {
	data := benchDatagram()
	d := New(decode.Options{})
	buf := make([]flow.Record, 0, 8)
	pkt := &decode.Packet{Data: data, Src: udpSrc, Received: received}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		out, _, err := d.Decode(buf[:0], pkt)
		if err != nil || len(out) != 8 {
			b.Fatalf("%d records, %v", len(out), err)
		}
	}
	b.ReportMetric(float64(b.N)*8/b.Elapsed().Seconds(), "samples/s")
}

func BenchmarkDecodeCounters(b *testing.B) {
	recs := make([][]byte, 8)
	for i := range recs {
		recs[i] = counterSample(false, uint32(i), genericIf(ifCounters{index: uint32(i)}))
	}
	data := buildDatagram(agent4, 0, 1, recs...)
	d := New(decode.Options{})
	pkt := &decode.Packet{Data: data, Src: udpSrc, Received: received}
	var drained []decode.IfCounters
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := d.Decode(nil, pkt); err != nil {
			b.Fatal(err)
		}
		drained = d.DrainCounters(drained[:0])
	}
	b.ReportMetric(float64(b.N)*8/b.Elapsed().Seconds(), "samples/s")
}

// TestDecodeAllocations checks the no-allocation promise of the hot path.
func TestDecodeAllocations(t *testing.T) {
	data := benchDatagram()
	d := New(decode.Options{})
	buf := make([]flow.Record, 0, 8)
	pkt := &decode.Packet{Data: data, Src: udpSrc, Received: received}
	if n := testing.AllocsPerRun(100, func() { d.Decode(buf[:0], pkt) }); n != 0 {
		t.Errorf("%.1f allocations per datagram, want 0", n)
	}
}
