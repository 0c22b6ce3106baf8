package scan

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/flowfile"
	"github.com/flowscan/flowscan/internal/flowfile/flowtools"
	"github.com/flowscan/flowscan/internal/rrd"
)

// TestFlowToolsSameAsNative scans the same flows stored once as a
// flow-tools file (written by the flowtools encoder of the documented
// format) and once as a native file: the modules see the same totals.
func TestFlowToolsSameAsNative(t *testing.T) {
	start := t0
	var recs []flow.Record
	for i := 0; i < 500; i++ {
		ms := start.Add(time.Duration(i) * 100 * time.Millisecond).UnixMilli()
		recs = append(recs, flow.Record{
			Exporter: netip.MustParseAddr("192.0.2.1"),
			SrcAddr:  netip.AddrFrom4([4]byte{10, 0, byte(i / 256), byte(i)}), DstAddr: netip.MustParseAddr("198.51.100.9"),
			Bytes: uint64(40 + i), Packets: uint64(1 + i%7), Start: ms, End: ms + 20,
			SrcPort: uint16(1024 + i), DstPort: 443, Proto: 6,
		})
	}
	var wantBytes uint64
	for _, r := range recs {
		wantBytes += r.Bytes
	}

	ftDir := t.TempDir()
	name := "ft-v05." + start.Format("2006-01-02.150405-0700")
	f, err := os.Create(filepath.Join(ftDir, name))
	if err != nil {
		t.Fatal(err)
	}
	h := flowtools.Header{CaptureStart: start, CaptureEnd: start.Add(step)}
	if err := flowtools.Write(f, h, recs, flowtools.WriteOptions{Compress: true}); err != nil {
		t.Fatal(err)
	}
	f.Close()

	nativeDir := t.TempDir()
	clock := start.Add(time.Second)
	w, err := flowfile.NewWriter(flowfile.Config{Dir: nativeDir, Interval: step, Location: time.UTC, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(recs)
	clock = start.Add(step)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	for _, dir := range []string{ftDir, nativeDir} {
		rec := &recorder{rrd: rrd.New(""), path: filepath.Join(t.TempDir(), "total.rrd")}
		s := newScanner(t, dir, rec, "")
		st, err := s.Pass(context.Background())
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if st.Files != 1 || st.Flows != 500 || rec.bytes != wantBytes || !rec.files[0].Equal(start) {
			t.Errorf("%s: %+v, %d bytes, file start %v; want 1 file, 500 flows, %d bytes, %v", dir, st, rec.bytes, rec.files, wantBytes, start)
		}
		if rec.cur.End.Sub(rec.cur.Start) != step {
			t.Errorf("%s: file interval %v - %v", dir, rec.cur.Start, rec.cur.End)
		}
	}
}
