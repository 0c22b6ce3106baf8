package sflow

import (
	"context"
	"flag"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/testutil"
)

var update = flag.Bool("update", false, "regenerate testdata/captures/pmacct-sflow.tshark.json from the capture with tshark")

// capturePort is the UDP port of testdata/captures/pmacct-sflow.pcap.
const capturePort = 39343

var (
	capturesDir = filepath.Join("..", "..", "..", "testdata", "captures")
	trafficPcap = filepath.Join("..", "..", "..", "testdata", "traffic.pcap")
)

// TestPmacctCapture decodes pmacctd's real sFlow export of
// testdata/traffic.pcap (sfprobe plugin, sampling rate 1) and compares it
// with tshark's decoding of the same datagrams, record by record, and with
// the packets of traffic.pcap itself.
func TestPmacctCapture(t *testing.T) {
	pcapPath := filepath.Join(capturesDir, "pmacct-sflow.pcap")
	oraclePath := filepath.Join(capturesDir, "pmacct-sflow.tshark.json")
	if *update {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		o, err := tsharkOracle(ctx, pcapPath, capturePort)
		if err != nil {
			t.Fatal(err)
		}
		if err := writeOracle(oraclePath, o); err != nil {
			t.Fatal(err)
		}
	}
	o, err := readOracle(oraclePath)
	if err != nil {
		t.Fatal(err)
	}
	dgrams, err := testutil.UDPDatagrams(pcapPath, capturePort)
	if err != nil {
		t.Fatal(err)
	}
	recs := checkAgainstOracle(t, dgrams, o)
	checkAgainstTraffic(t, recs, o)
}

// checkAgainstOracle decodes dgrams and compares every datagram and record
// with tshark's decoding; it returns the records.
func checkAgainstOracle(t *testing.T, dgrams []testutil.Datagram, o *oracle) []flow.Record {
	t.Helper()
	if len(dgrams) != o.Datagrams || o.Datagrams == 0 {
		t.Fatalf("%d datagrams in capture, tshark decoded %d", len(dgrams), o.Datagrams)
	}
	d := New(decode.Options{})
	var recs []flow.Record
	for i, dg := range dgrams {
		before := len(recs)
		var res decode.Result
		var err error
		recs, res, err = d.Decode(recs, &decode.Packet{Data: dg.Payload, Src: dg.Src, Received: dg.Time})
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		want := o.DatagramInfo[i]
		if res.Exporter.String() != want.Agent || res.Domain != want.SubAgent || res.Sequence != want.Sequence ||
			res.Flows != want.Flows || len(recs)-before != want.Flows || res.SeqUnit != decode.SeqDatagrams || res.SeqAdvance != 1 {
			t.Errorf("datagram %d: agent %v sub-agent %d sequence %d flows %d; tshark: %+v", i, res.Exporter, res.Domain, res.Sequence, res.Flows, want)
		}
		for j := before; j < len(recs); j++ {
			if ms := dg.Time.UnixMilli(); recs[j].Start != ms || recs[j].End != ms {
				t.Errorf("datagram %d record %d: start %d end %d, want the arrival time %d", i, j, recs[j].Start, recs[j].End, ms)
			}
		}
	}
	var pkts, bytes uint64
	for _, r := range recs {
		pkts += r.Packets
		bytes += r.Bytes
	}
	if len(recs) != o.Flows || pkts != o.Packets || bytes != o.Bytes {
		t.Errorf("totals: %d flows %d packets %d bytes; tshark: %d flows %d packets %d bytes",
			len(recs), pkts, bytes, o.Flows, o.Packets, o.Bytes)
	}
	if len(recs) != len(o.Records) {
		t.Fatalf("%d records, tshark has %d", len(recs), len(o.Records))
	}
	bad := 0
	for i, r := range recs {
		got := oracleFlow{
			Src: r.SrcAddr.String(), Dst: r.DstAddr.String(), SrcPort: r.SrcPort, DstPort: r.DstPort,
			Proto: r.Proto, TOS: r.TOS, TCPFlags: r.TCPFlags,
			SrcMAC: net.HardwareAddr(r.SrcMAC[:]).String(), DstMAC: net.HardwareAddr(r.DstMAC[:]).String(),
			SrcVLAN: r.SrcVLAN, DstVLAN: r.DstVLAN, InIf: r.InIf, OutIf: r.OutIf, Rate: r.SamplingRate,
			FrameLength: o.Records[i].FrameLength, Packets: r.Packets, Bytes: r.Bytes,
		}
		if got != o.Records[i] {
			if bad++; bad <= 10 {
				t.Errorf("record %d:\n got %+v\nwant %+v", i, got, o.Records[i])
			}
		}
	}
	if bad > 10 {
		t.Errorf("... %d records differ in all", bad)
	}
	return recs
}

// checkAgainstTraffic compares the records of pmacct's export (sampling
// rate 1: one sample per packet, in order) with the packets of
// testdata/traffic.pcap. pmacct keeps the samples of its last, unfilled
// datagram when it is stopped, so up to one datagram's worth of packets at
// the end of the pcap may be missing; nothing else.
func checkAgainstTraffic(t *testing.T, recs []flow.Record, o *oracle) {
	t.Helper()
	lt, frames, err := testutil.ReadFile(trafficPcap)
	if err != nil {
		t.Fatal(err)
	}
	perDatagram := 0
	for _, dg := range o.DatagramInfo {
		perDatagram = max(perDatagram, dg.Samples)
	}
	var pkts []testutil.Packet
	var origLens []int
	for _, fr := range frames {
		p, err := testutil.ParseFrame(lt, fr.Data)
		if err != nil {
			continue // pmacct samples only what it parses as IP too
		}
		pkts = append(pkts, p)
		origLens = append(origLens, fr.OrigLen)
	}
	missing := len(pkts) - len(recs)
	t.Logf("traffic.pcap: %d IP packets; pmacct exported %d samples in %d datagrams (%d left in its buffer at shutdown)",
		len(pkts), len(recs), o.Datagrams, missing)
	if missing < 0 || missing > perDatagram {
		t.Fatalf("%d records for %d IP packets in traffic.pcap: more than one datagram (%d samples) missing or extra records", len(recs), len(pkts), perDatagram)
	}
	bad := 0
	for i, r := range recs {
		p := pkts[i]
		if r.SrcAddr != p.Src || r.DstAddr != p.Dst || r.Proto != p.Proto || r.Bytes != uint64(p.IPLen) || r.Packets != 1 ||
			(p.Proto == 6 || p.Proto == 17) && (r.SrcPort != p.SrcPort || r.DstPort != p.DstPort) ||
			int(o.Records[i].FrameLength) != origLens[i]+4 { // pmacct counts the 4-byte FCS
			if bad++; bad <= 10 {
				t.Errorf("sample %d: %v -> %v proto %d ports %d/%d bytes %d packets %d frame %d; pcap packet: %v -> %v proto %d ports %d/%d IP length %d frame %d",
					i, r.SrcAddr, r.DstAddr, r.Proto, r.SrcPort, r.DstPort, r.Bytes, r.Packets, o.Records[i].FrameLength,
					p.Src, p.Dst, p.Proto, p.SrcPort, p.DstPort, p.IPLen, origLens[i])
			}
		}
	}
	if bad > 10 {
		t.Errorf("... %d samples differ from the pcap in all", bad)
	}
}
