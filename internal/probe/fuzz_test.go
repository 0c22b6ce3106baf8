package probe

import (
	"testing"
)

func FuzzParseFrame(f *testing.F) {
	for _, s := range []frameSpec{
		{src: v4a, dst: v4b, proto: protoTCP, sport: 1, dport: 2, tcpFlags: 0x11},
		{src: v6a, dst: v6b, proto: protoUDP, ext6: true, vlan: 5},
		{src: v4a, dst: v4b, proto: protoICMP, dport: 0x0303, vlan: 100},
	} {
		f.Add(uint8(0), s.ethernet())
		f.Add(uint8(1), s.ip())
	}
	links := []uint32{LinkEthernet, LinkRaw, LinkLinuxSLL, LinkLinuxSLL2, LinkNull}
	f.Fuzz(func(t *testing.T, link uint8, data []byte) {
		lt := links[int(link)%len(links)]
		var p Packet
		if err := ParseFrame(&p, lt, data); err != nil {
			return
		}
		if p.IPv6 && p.IPLen < 40 || !p.IPv6 && p.IPLen > 0xffff {
			t.Fatalf("IP length %d for %+v", p.IPLen, p)
		}
		// A parsed frame must be countable in a flow.
		c := &collector{}
		pr, err := New(Config{MaxFlows: 4, Emit: c.emit})
		if err != nil {
			t.Fatal(err)
		}
		pr.Packet(lt, data, sec(0))
		pr.Flush()
		if len(c.recs) != 1 || c.recs[0].Packets != 1 || c.recs[0].Bytes != uint64(p.IPLen) {
			t.Fatalf("flows %+v for packet %+v", c.recs, p)
		}
	})
}

func FuzzPcapReader(f *testing.F) {
	f.Add([]byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0,
		1, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewPcapReader(bytesReader(data))
		if err != nil {
			return
		}
		for range 1000 {
			frame, _, err := r.Next()
			if err != nil {
				return
			}
			if len(frame) > pcapMaxCaptured {
				t.Fatalf("frame of %d bytes", len(frame))
			}
		}
	})
}
