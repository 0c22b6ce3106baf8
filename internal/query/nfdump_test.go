package query

import (
	"context"
	"encoding/csv"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/gen"
	"github.com/flowscan/flowscan/internal/testutil"
)

// TestTopNAgainstNfdump sends the same generated flows as NetFlow v5 to
// nfcapd and writes them to a flowscan archive, then compares nfdump's
// "-s srcip/bytes -n 10" with Aggregate by src_addr ordered by bytes: the
// same addresses with the same bytes, flows and packets, and equal totals.
func TestTopNAgainstNfdump(t *testing.T) {
	for _, tool := range []string{"nfcapd", "nfdump"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt nfdump): %v", tool, err)
		}
	}
	const n = 30000
	now := time.Now().Truncate(time.Second)
	boot := now.Add(-time.Hour)
	mix := gen.NewMix(7, gen.MixOptions{IPv6Share: 0, InsideHosts: 50, OutsideHosts: 500})
	recs := make([]flow.Record, n)
	for i := range recs {
		mix.Next(&recs[i], now)
		recs[i].Bytes %= 1 << 31
		recs[i].Packets = max(recs[i].Packets%(1<<31), 1)
		recs[i].Exporter = netip.MustParseAddr("127.0.0.1")
	}

	// nfcapd on a free loopback port.
	nfDir := t.TempDir()
	capd := testutil.StartNfcapd(t, nfDir, 300)
	conn, err := net.Dial("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(capd.Port)))
	if err != nil {
		t.Fatal(err)
	}
	var seq uint32
	var dgram []byte
	for i := 0; i < n; i += 30 {
		batch := recs[i:min(i+30, n)]
		dgram = gen.AppendNetFlow5(dgram[:0], gen.NewV5Header(now, boot, seq), batch)
		seq += uint32(len(batch))
		if _, err := conn.Write(dgram); err != nil {
			t.Fatal(err)
		}
		if i%3000 == 0 {
			time.Sleep(2 * time.Millisecond) // stay well under nfcapd's buffer
		}
	}
	conn.Close()
	time.Sleep(500 * time.Millisecond)
	if !capd.Stop(10 * time.Second) {
		t.Fatal("nfcapd did not stop on SIGTERM")
	}

	// The same flows in a flowscan archive.
	fsDir := t.TempDir()
	writeArchive(t, fsDir, now, recs)

	out, err := exec.Command("nfdump", "-R", nfDir, "-o", "csv", "-s", "srcip/bytes", "-n", "10").CombinedOutput()
	if err != nil {
		t.Fatalf("nfdump: %v\n%s", err, out)
	}
	type row struct{ flows, packets, bytes uint64 }
	nf := map[string]row{}
	var order []string
	rd := csv.NewReader(strings.NewReader(string(out)))
	rd.FieldsPerRecord = -1
	lines, _ := rd.ReadAll()
	col := map[string]int{}
	for _, l := range lines {
		if len(l) > 5 && l[0] == "ts" {
			for i, c := range l {
				col[c] = i
			}
			continue
		}
		if len(col) == 0 || len(l) < len(col) {
			continue
		}
		num := func(name string) uint64 { v, _ := strconv.ParseUint(l[col[name]], 10, 64); return v }
		addr := l[col["val"]]
		nf[addr] = row{num("fl"), num("pkt"), num("byt")}
		order = append(order, addr)
	}
	if len(order) != 10 || col["val"] == col["ibyt"] {
		t.Fatalf("parsed %d nfdump rows from:\n%s", len(order), out)
	}

	keys, _ := ParseKeys("src_addr")
	res, err := (&Query{Dirs: []string{fsDir}}).Aggregate(context.Background(), AggregateSpec{Keys: keys, Order: ByBytes, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total.Flows != n {
		t.Fatalf("flowscan archive holds %d flows, want %d", res.Total.Flows, n)
	}
	var nfBytes, fsBytes uint64
	for i := range res.Rows {
		addr := string(res.Values(&res.Rows[i])[0].AppendText(nil, keys[0], false))
		got := row{res.Rows[i].Flows, res.Rows[i].Packets, res.Rows[i].Bytes}
		if want, ok := nf[addr]; !ok || want != got {
			t.Errorf("row %d %s: flowscan %+v, nfdump %+v (present %v)", i, addr, got, want, ok)
		}
		fsBytes += got.bytes
		nfBytes += nf[order[i]].bytes
	}
	if fsBytes != nfBytes {
		t.Errorf("top-10 bytes: flowscan %d, nfdump %d", fsBytes, nfBytes)
	}
	t.Logf("top-10 of %d flows agree; nfdump files in %s", n, filepath.Base(nfDir))
}
