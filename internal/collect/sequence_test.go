package collect

import (
	"net/netip"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/decode"
)

func TestSequenceTracker(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.1")
	b := netip.MustParseAddr("192.0.2.2")
	type step struct {
		addr    netip.Addr
		format  decode.Format
		seq     uint32
		advance uint32
		flows   int
		exact   bool
		want    SeqOutcome
	}
	flows := func(addr netip.Addr, seq, adv uint32, want SeqOutcome) step {
		return step{addr, decode.FormatNetFlow5, seq, adv, int(adv), true, want}
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"in order", []step{flows(a, 100, 30, SeqOutcome{}), flows(a, 130, 30, SeqOutcome{}), flows(a, 160, 5, SeqOutcome{})}},
		{"gap", []step{flows(a, 100, 30, SeqOutcome{}), flows(a, 160, 30, SeqOutcome{LostFlows: 30})}},
		{"wrap without loss", []step{flows(a, 1<<32-20, 30, SeqOutcome{}), flows(a, 10, 30, SeqOutcome{})}},
		{"wrap with loss", []step{flows(a, 1<<32-20, 30, SeqOutcome{}), flows(a, 40, 30, SeqOutcome{LostFlows: 30})}},
		{"reset to zero", []step{flows(a, 5_000_000, 30, SeqOutcome{}), flows(a, 0, 30, SeqOutcome{Reset: true}), flows(a, 30, 30, SeqOutcome{})}},
		{"misordered", []step{flows(a, 100, 30, SeqOutcome{}), flows(a, 160, 30, SeqOutcome{LostFlows: 30}), flows(a, 130, 30, SeqOutcome{Misordered: true}), flows(a, 190, 30, SeqOutcome{})}},
		{"exporter restart to a lower sequence", []step{
			flows(a, 5970, 30, SeqOutcome{}), flows(a, 0, 30, SeqOutcome{Reset: true}),
			flows(a, 60, 30, SeqOutcome{LostFlows: 30}), flows(a, 90, 30, SeqOutcome{}),
		}},
		{"v5 at one flow per datagram: a lost datagram is not taken for another numbering", []step{
			flows(a, 0, 1, SeqOutcome{}), flows(a, 1, 1, SeqOutcome{}), flows(a, 2, 1, SeqOutcome{}),
			flows(a, 4, 2, SeqOutcome{LostFlows: 1}), // the one-flow datagram 3 was lost
			flows(a, 6, 1, SeqOutcome{}), flows(a, 7, 3, SeqOutcome{}), flows(a, 10, 1, SeqOutcome{}),
		}},
		{"exporter restart soon after its previous start", []step{
			flows(a, 900, 30, SeqOutcome{}), flows(a, 930, 30, SeqOutcome{}),
			flows(a, 0, 30, SeqOutcome{Misordered: true}), flows(a, 30, 30, SeqOutcome{Misordered: true}),
			flows(a, 60, 30, SeqOutcome{Reset: true}), flows(a, 90, 30, SeqOutcome{}),
			flows(a, 150, 30, SeqOutcome{LostFlows: 30}), flows(a, 180, 30, SeqOutcome{}),
		}},
		{"late datagrams among the expected ones are not a restart", []step{
			flows(a, 0, 30, SeqOutcome{}), flows(a, 60, 30, SeqOutcome{LostFlows: 30}),
			flows(a, 30, 30, SeqOutcome{Misordered: true}), flows(a, 90, 30, SeqOutcome{}),
			flows(a, 150, 30, SeqOutcome{LostFlows: 30}), flows(a, 120, 30, SeqOutcome{Misordered: true}),
			flows(a, 180, 30, SeqOutcome{}), flows(a, 150, 30, SeqOutcome{Misordered: true}), // a duplicate
			flows(a, 210, 30, SeqOutcome{}),
		}},
		{"exporters apart", []step{flows(a, 100, 30, SeqOutcome{}), flows(b, 9000, 30, SeqOutcome{}), flows(a, 130, 30, SeqOutcome{}), flows(b, 9030, 30, SeqOutcome{})}},
		{"inexact resyncs", []step{
			{a, decode.FormatIPFIX, 100, 10, 10, false, SeqOutcome{}},
			{a, decode.FormatIPFIX, 150, 10, 10, true, SeqOutcome{}}, // 40 records were undecodable, not lost
			{a, decode.FormatIPFIX, 170, 10, 10, true, SeqOutcome{LostFlows: 10}},
		}},
		{"counted after the message, options records left out (softflowd IPFIX)", []step{
			{a, decode.FormatIPFIX, 20, 21, 20, true, SeqOutcome{}}, // 20 flows + 1 options record
			{a, decode.FormatIPFIX, 46, 26, 26, true, SeqOutcome{}},
			{a, decode.FormatIPFIX, 66, 20, 20, true, SeqOutcome{}},
			{a, decode.FormatIPFIX, 111, 25, 25, true, SeqOutcome{LostFlows: 20}}, // a 20-flow message went missing
			{a, decode.FormatIPFIX, 131, 21, 20, true, SeqOutcome{}},
		}},
		{"RFC 7011 numbering with options records", []step{
			{a, decode.FormatIPFIX, 0, 21, 20, true, SeqOutcome{}},
			{a, decode.FormatIPFIX, 21, 26, 26, true, SeqOutcome{}},
			{a, decode.FormatIPFIX, 47, 20, 20, true, SeqOutcome{}},
			{a, decode.FormatIPFIX, 87, 5, 5, true, SeqOutcome{LostFlows: 20}},
		}},
		{"undecodable records after the message's convention was learned (softflowd IPFIX)", []step{
			{a, decode.FormatIPFIX, 20, 21, 20, true, SeqOutcome{}},
			{a, decode.FormatIPFIX, 46, 26, 26, true, SeqOutcome{}},
			{a, decode.FormatIPFIX, 66, 20, 20, true, SeqOutcome{}},
			// 20 records decoded, 10 of an unknown template: the sequence
			// counts all 30, nothing was lost.
			{a, decode.FormatIPFIX, 96, 20, 20, false, SeqOutcome{}},
			{a, decode.FormatIPFIX, 116, 20, 20, true, SeqOutcome{}},
			{a, decode.FormatIPFIX, 136, 20, 20, true, SeqOutcome{}},
		}},
		{"undecodable records while the convention is undecided", []step{
			{a, decode.FormatIPFIX, 10, 10, 10, true, SeqOutcome{}},
			{a, decode.FormatIPFIX, 20, 10, 10, true, SeqOutcome{}},
			{a, decode.FormatIPFIX, 40, 10, 10, false, SeqOutcome{}}, // 10 more undecodable
			{a, decode.FormatIPFIX, 55, 15, 15, true, SeqOutcome{}},
			{a, decode.FormatIPFIX, 75, 20, 20, true, SeqOutcome{}}, // counted after: Before would see a gap
			{a, decode.FormatIPFIX, 80, 5, 5, true, SeqOutcome{}},
		}},
		{"undecodable records with the RFC 7011 convention still count loss before them", []step{
			{a, decode.FormatIPFIX, 0, 10, 10, true, SeqOutcome{}},
			{a, decode.FormatIPFIX, 10, 20, 20, true, SeqOutcome{}},
			{a, decode.FormatIPFIX, 30, 5, 5, true, SeqOutcome{}},
			{a, decode.FormatIPFIX, 45, 5, 5, false, SeqOutcome{LostFlows: 10}},
		}},
		{"RFC 7011 numbering at one record per message, a lost message taken for softflowd's numbering", []step{
			{a, decode.FormatIPFIX, 0, 1, 1, true, SeqOutcome{}},
			{a, decode.FormatIPFIX, 1, 1, 1, true, SeqOutcome{}},
			{a, decode.FormatIPFIX, 2, 1, 1, true, SeqOutcome{}},
			// Message 3 (one record) was lost; 4 with two records fits
			// "counted up to and including the message" too, so the loss
			// cannot be told from this step alone and is not counted.
			{a, decode.FormatIPFIX, 4, 2, 2, true, SeqOutcome{}},
			// From here on only RFC 7011's numbering fits again.
			{a, decode.FormatIPFIX, 6, 1, 1, true, SeqOutcome{}},
			{a, decode.FormatIPFIX, 7, 3, 3, true, SeqOutcome{}},
			{a, decode.FormatIPFIX, 10, 1, 1, true, SeqOutcome{}},
			{a, decode.FormatIPFIX, 13, 2, 2, true, SeqOutcome{LostFlows: 2}},
		}},
		{"datagram sequence restarted soon after its previous start", []step{
			{a, decode.FormatNetFlow9, 40, 1, 20, true, SeqOutcome{}},
			{a, decode.FormatNetFlow9, 41, 1, 20, true, SeqOutcome{}},
			{a, decode.FormatNetFlow9, 0, 1, 20, true, SeqOutcome{Misordered: true}},
			{a, decode.FormatNetFlow9, 1, 1, 20, true, SeqOutcome{Misordered: true}},
			{a, decode.FormatNetFlow9, 2, 1, 20, true, SeqOutcome{Reset: true}},
			{a, decode.FormatNetFlow9, 3, 1, 20, true, SeqOutcome{}},
			{a, decode.FormatNetFlow9, 5, 1, 20, true, SeqOutcome{LostDatagrams: 1, LostFlows: 20}},
		}},
		{"datagram sequence", []step{
			{a, decode.FormatNetFlow9, 7, 1, 20, true, SeqOutcome{}},
			{a, decode.FormatNetFlow9, 8, 1, 20, true, SeqOutcome{}},
			{a, decode.FormatNetFlow9, 11, 1, 20, true, SeqOutcome{LostDatagrams: 2, LostFlows: 40}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := NewSequenceTracker(10)
			for i, s := range c.steps {
				unit := decode.SeqFlows
				if s.format == decode.FormatNetFlow9 {
					unit = decode.SeqDatagrams
				}
				res := decode.Result{Format: s.format, Exporter: s.addr, Sequence: s.seq, SeqUnit: unit, SeqAdvance: s.advance, SeqExact: s.exact, Flows: s.flows}
				if got := tr.Observe(&res); got != s.want {
					t.Errorf("step %d: got %+v, want %+v", i, got, s.want)
				}
			}
		})
	}
}

func TestSequenceTrackerLimit(t *testing.T) {
	tr := NewSequenceTracker(2)
	for i := 0; i < 10; i++ {
		res := decode.Result{Format: decode.FormatNetFlow5, Exporter: netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), SeqUnit: decode.SeqFlows, SeqAdvance: 1, SeqExact: true}
		tr.Observe(&res)
	}
	if tr.Len() != 2 {
		t.Errorf("tracking %d spaces, limit 2", tr.Len())
	}
}

func TestSequenceTrackerEvict(t *testing.T) {
	tr := NewSequenceTracker(10)
	obs := func(i byte, now int64) {
		tr.Now = now
		res := decode.Result{Format: decode.FormatNetFlow5, Exporter: netip.AddrFrom4([4]byte{10, 0, 0, i}), SeqUnit: decode.SeqFlows, SeqAdvance: 1, SeqExact: true}
		tr.Observe(&res)
	}
	obs(1, 100)
	obs(2, 200)
	obs(1, 300) // exporter 1 is active again
	tr.Evict(time.Unix(250, 0))
	if tr.Len() != 1 {
		t.Fatalf("%d spaces after eviction, want 1 (the active exporter)", tr.Len())
	}
	obs(3, 400)
	if tr.Len() != 2 {
		t.Errorf("%d spaces, want 2", tr.Len())
	}
}
