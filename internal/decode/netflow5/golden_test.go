package netflow5_test

import (
	"path/filepath"
	"testing"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/decode/netflow5"
	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/testutil"
)

// TestSoftflowdCapture decodes softflowd's real NetFlow v5 export of
// testdata/traffic.pcap and compares every record with tshark's decoding of
// the same datagrams.
func TestSoftflowdCapture(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "testdata", "captures")
	oracle, err := testutil.ReadOracle(filepath.Join(dir, "softflowd-v5.tshark.json"))
	if err != nil {
		t.Fatal(err)
	}
	dgrams, err := testutil.UDPDatagrams(filepath.Join(dir, "softflowd-v5.pcap"), uint16(oracle.Port))
	if err != nil {
		t.Fatal(err)
	}
	if len(dgrams) != oracle.Datagrams {
		t.Fatalf("%d datagrams in capture, oracle says %d", len(dgrams), oracle.Datagrams)
	}
	d := netflow5.New(decode.Options{})
	var recs []flow.Record
	for i, dg := range dgrams {
		before := len(recs)
		var res decode.Result
		recs, res, err = d.Decode(recs, &decode.Packet{Data: dg.Payload, Src: dg.Src, Received: dg.Time})
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if want := oracle.DatagramInfo[i]; res.Sequence != want.Sequence || res.Flows != want.Flows || len(recs)-before != want.Flows {
			t.Errorf("datagram %d: sequence %d flows %d, tshark: sequence %d flows %d", i, res.Sequence, res.Flows, want.Sequence, want.Flows)
		}
	}
	var pkts, bytes uint64
	got := make([]testutil.OracleFlow, 0, len(recs))
	for _, r := range recs {
		pkts += r.Packets
		bytes += r.Bytes
		got = append(got, testutil.OracleFlow{
			Src: r.SrcAddr.String(), Dst: r.DstAddr.String(), SrcPort: r.SrcPort, DstPort: r.DstPort,
			Proto: r.Proto, TOS: r.TOS, TCPFlags: r.TCPFlags, Packets: r.Packets, Bytes: r.Bytes,
			Start: string(flow.AppendTime(nil, r.Start)), End: string(flow.AppendTime(nil, r.End)),
		})
	}
	if len(recs) != oracle.Flows || pkts != oracle.Packets || bytes != oracle.Bytes {
		t.Errorf("totals: %d flows %d packets %d bytes; tshark: %d flows %d packets %d bytes",
			len(recs), pkts, bytes, oracle.Flows, oracle.Packets, oracle.Bytes)
	}
	testutil.SortOracleFlows(got)
	want := append([]testutil.OracleFlow(nil), oracle.Records...)
	testutil.SortOracleFlows(want)
	if len(got) != len(want) {
		t.Fatalf("%d records, oracle has %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}
