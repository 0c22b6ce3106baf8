package cli

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/flowfile"
	"github.com/flowscan/flowscan/internal/testutil"
)

const probeTestPcap = "../../testdata/traffic.pcap"

// pcapTotals sums IP packets and IP lengths of a pcap, split by family.
func pcapTotals(t *testing.T) (pk4, by4, pk, by uint64) {
	t.Helper()
	lt, recs, err := testutil.ReadFile(probeTestPcap)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		p, err := testutil.ParseFrame(lt, r.Data)
		if err != nil {
			t.Fatal(err)
		}
		pk++
		by += uint64(p.IPLen)
		if p.Src.Is4() {
			pk4++
			by4 += uint64(p.IPLen)
		}
	}
	return
}

func TestProbeToFlowFiles(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"probe", "--read", probeTestPcap, "--dir", dir, "--interval", "1m"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	entries, err := flowfile.List(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("no flow files: %v", err)
	}
	var pk, by uint64
	for _, e := range entries {
		r, err := flowfile.Open(e.Path)
		if err != nil {
			t.Fatal(err)
		}
		var recs []flow.Record
		for {
			recs, err = r.Next(recs[:0])
			if err != nil || len(recs) == 0 {
				break
			}
			for _, rec := range recs {
				pk += rec.Packets
				by += rec.Bytes
				// Files follow the capture's clock, not the wall clock.
				if rec.StartTime().Year() != 2024 {
					t.Fatalf("flow time %v is not the capture's", rec.StartTime())
				}
			}
		}
		r.Close()
	}
	_, _, wantPk, wantBy := pcapTotals(t)
	if pk != wantPk || by != wantBy {
		t.Errorf("files hold %d packets %d bytes, capture %d %d", pk, by, wantPk, wantBy)
	}
	if !strings.Contains(stderr.String(), "2504 packets") {
		t.Errorf("summary: %s", stderr.String())
	}
}

func TestProbeExport(t *testing.T) {
	pk4, by4, pk, by := pcapTotals(t)
	for _, tc := range []struct {
		format         string
		wantPk, wantBy uint64
	}{
		{"v5", pk4, by4}, // v5 cannot carry IPv6
		{"v9", pk, by},
		{"ipfix", pk, by},
	} {
		t.Run(tc.format, func(t *testing.T) {
			conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetReadBuffer(8 << 20)
			var stderr bytes.Buffer
			// Exporting from a pcap is a burst; the receive buffer holds it.
			if code := Main([]string{"probe", "--read", probeTestPcap, "--export", conn.LocalAddr().String(), "--format", tc.format, "--engine-id", "5"}, &bytes.Buffer{}, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			mux := decode.NewMux(decode.Options{})
			buf := make([]byte, 65536)
			var recs []flow.Record
			var lastSeq uint32
			for i := 0; ; i++ {
				_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				n, src, err := conn.ReadFromUDPAddrPort(buf)
				if err != nil {
					break
				}
				var res decode.Result
				recs, res, err = mux.Decode(recs, &decode.Packet{Data: buf[:n], Src: src, Received: time.Now()})
				if err != nil {
					t.Fatalf("datagram %d: %v", i, err)
				}
				if res.Domain != 5 {
					t.Errorf("datagram %d: domain %d, want 5", i, res.Domain)
				}
				// Sequence numbers must advance without gaps.
				if i > 0 && res.Sequence != lastSeq {
					t.Errorf("datagram %d: sequence %d, want %d", i, res.Sequence, lastSeq)
				}
				lastSeq = res.Sequence + res.SeqAdvance
			}
			var gotPk, gotBy uint64
			for _, r := range recs {
				gotPk += r.Packets
				gotBy += r.Bytes
			}
			if gotPk != tc.wantPk || gotBy != tc.wantBy {
				t.Errorf("decoded %d flows, %d packets %d bytes; want %d packets %d bytes\n%s", len(recs), gotPk, gotBy, tc.wantPk, tc.wantBy, stderr.String())
			}
		})
	}
}

func TestProbeUsage(t *testing.T) {
	for _, args := range [][]string{
		{"probe"},
		{"probe", "--read", "x.pcap"},
		{"probe", "--read", "x.pcap", "--interface", "lo", "--dir", "d"},
		{"probe", "--read", "x.pcap", "--export", "127.0.0.1:9", "--dir", "d"},
	} {
		if code := Main(args, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	var stderr bytes.Buffer
	if code := Main([]string{"probe", "--read", probeTestPcap, "--export", "127.0.0.1:9", "--format", "v7"}, &bytes.Buffer{}, &stderr); code != 1 || !strings.Contains(stderr.String(), "v7") {
		t.Errorf("bad format: exit %d, %s", code, stderr.String())
	}
}
