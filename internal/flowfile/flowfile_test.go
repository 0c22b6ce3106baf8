package flowfile

import (
	"bytes"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/flow"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, testLoc)

// writeOneFile writes recs into one file through a Writer and returns its
// path after Close.
func writeOneFile(t *testing.T, recs []flow.Record, blockRecords int) string {
	t.Helper()
	dir := t.TempDir()
	clock := newFakeClock(t0.Add(time.Minute))
	w := testWriter(t, dir, clock, func(c *Config) { c.BlockRecords = blockRecords })
	if err := w.Write(recs); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := List(dir)
	if err != nil || len(files) != 1 {
		t.Fatalf("List = %v, %v; want one file", files, err)
	}
	return files[0].Path
}

func TestRoundTripTable(t *testing.T) {
	v4 := netip.MustParseAddr("198.51.100.7")
	v6 := netip.MustParseAddr("2001:db8::1234:5678")
	mapped := netip.MustParseAddr("::ffff:192.0.2.1")
	zoned := netip.MustParseAddr("fe80::1%eth0")
	tests := []struct {
		name string
		rec  flow.Record
	}{
		{"zero record", flow.Record{}},
		{"ipv4", flow.Record{Exporter: v4, SrcAddr: v4, DstAddr: netip.MustParseAddr("10.0.0.1"), NextHop: v4,
			Start: 1_780_000_000_000, End: 1_780_000_005_000, Bytes: 1500, Packets: 1, Proto: 6, SrcPort: 443, DstPort: 50000}},
		{"ipv6", flow.Record{Exporter: v6, SrcAddr: v6, DstAddr: netip.IPv6Loopback(), NextHop: netip.IPv6Unspecified(),
			Start: 1, End: 2, Proto: 58}},
		{"zero addresses with ipv4 exporter", flow.Record{Exporter: v4}},
		{"ipv4-mapped ipv6 stays mapped", flow.Record{SrcAddr: mapped, DstAddr: v4}},
		{"ipv6 zone", flow.Record{SrcAddr: zoned, DstAddr: v6}},
		{"unspecified v4", flow.Record{SrcAddr: netip.IPv4Unspecified(), DstAddr: netip.IPv4Unspecified()}},
		{"macs and vlans", flow.Record{SrcMAC: [6]byte{0, 1, 2, 3, 4, 5}, DstMAC: [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
			SrcVLAN: 4094, DstVLAN: 1}},
		{"maximum values", flow.Record{Start: math.MaxInt64, End: math.MaxInt64, Bytes: math.MaxUint64, Packets: math.MaxUint64,
			Domain: math.MaxUint32, SamplingRate: math.MaxUint32, InIf: math.MaxUint32, OutIf: math.MaxUint32,
			SrcAS: math.MaxUint32, DstAS: math.MaxUint32, SrcPort: math.MaxUint16, DstPort: math.MaxUint16,
			SrcVLAN: math.MaxUint16, DstVLAN: math.MaxUint16, Proto: 255, TOS: 255, TCPFlags: 255, SrcMask: 255, DstMask: 255}},
		{"minimum times", flow.Record{Start: math.MinInt64, End: math.MaxInt64}},
		{"end before start", flow.Record{Start: 1_780_000_000_000, End: 1_779_000_000_000}},
		{"negative times", flow.Record{Start: -5, End: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Alone, and mixed into a block with other kinds of records.
			for _, recs := range [][]flow.Record{
				{tc.rec},
				{tests[1].rec, tc.rec, tests[2].rec, tc.rec},
			} {
				path := writeOneFile(t, recs, 0)
				got, m := readAll(t, path)
				equalRecords(t, got, recs)
				if !m.Complete || m.Flows != uint64(len(recs)) {
					t.Errorf("meta = %+v", m)
				}
			}
		})
	}
}

func TestRoundTripRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	recs := make([]flow.Record, 5500)
	for i := range recs {
		recs[i] = randomRecord(rng)
	}
	path := writeOneFile(t, recs, 1000)
	got, m := readAll(t, path)
	equalRecords(t, got, recs)
	var packets, byteCount uint64
	for _, r := range recs {
		packets += r.Packets
		byteCount += r.Bytes
	}
	if m.Flows != 5500 || m.Packets != packets || m.Bytes != byteCount || !m.Complete || m.Hostname != "test" {
		t.Errorf("meta = %+v", m)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if n := len(r.Blocks()); n != 6 {
		t.Errorf("%d blocks, want 6", n)
	}
}

func TestFileNameAndParseName(t *testing.T) {
	tests := []struct {
		start time.Time
		name  string
	}{
		{time.Date(2026, 11, 23, 12, 45, 0, 0, time.FixedZone("CET", 3600)), "flows.2026-11-23.124500+0100.fsf"},
		{time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "flows.2026-01-02.030405+0000.fsf"},
		{time.Date(2026, 7, 1, 23, 55, 0, 0, time.FixedZone("", -(9*3600+30*60))), "flows.2026-07-01.235500-0930.fsf"},
	}
	for _, tc := range tests {
		if got := FileName(tc.start); got != tc.name {
			t.Errorf("FileName(%v) = %q, want %q", tc.start, got, tc.name)
		}
		got, ok := ParseName(tc.name)
		if !ok || !got.Equal(tc.start) {
			t.Errorf("ParseName(%q) = %v, %v; want %v", tc.name, got, ok, tc.start)
		}
		if _, off := got.Zone(); ok && func() bool { _, o := tc.start.Zone(); return o != off }() {
			t.Errorf("ParseName(%q) zone offset %d", tc.name, off)
		}
	}
	for _, bad := range []string{
		"", "flows.2026-11-23.124500+0100.fsf.tmp", "ft-v05.2026-11-23.124500+0100",
		"flows.2026-11-23.124500+0100.fsfx", "flows.2026-13-23.124500+0100.fsf", "flows.2026-11-23.124500*0100.fsf",
		"flows.2026-11-23.124500+2500.fsf", "flows.2026-11-23.124500+01000.fsf", "flows.2026-11-23.124500+-100.fsf",
	} {
		if _, ok := ParseName(bad); ok {
			t.Errorf("ParseName(%q) accepted", bad)
		}
	}
}

func TestRotationAlignedWithNest(t *testing.T) {
	tests := []struct {
		nest   int
		subdir string
	}{
		{0, ""},
		{1, "2026"},
		{2, "2026/2026-11"},
		{3, "2026/2026-11/2026-11-23"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint("nest", tc.nest), func(t *testing.T) {
			dir := t.TempDir()
			clock := newFakeClock(t0.Add(2*time.Minute + 13*time.Second))
			var completed []string
			w := testWriter(t, dir, clock, func(c *Config) {
				c.Nest = tc.nest
				c.OnComplete = func(path string, m *Meta) { completed = append(completed, path) }
			})
			rng := rand.New(rand.NewPCG(3, 4))
			// 16 minutes, one Tick a second, 10 records a second.
			var written int
			for range 16 * 60 {
				clock.Add(time.Second)
				if err := w.Tick(); err != nil {
					t.Fatal(err)
				}
				if err := w.Write(synthV5(rng, 10, clock.Now())); err != nil {
					t.Fatal(err)
				}
				written += 10
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			files, err := List(dir)
			if err != nil {
				t.Fatal(err)
			}
			wantStarts := []string{"120000", "120500", "121000", "121500"}
			if len(files) != len(wantStarts) {
				t.Fatalf("got %d files: %v", len(files), files)
			}
			if len(completed) != len(files) {
				t.Errorf("OnComplete called %d times for %d files", len(completed), len(files))
			}
			var total uint64
			for i, f := range files {
				wantName := "flows.2026-11-23." + wantStarts[i] + "+0100.fsf"
				if want := filepath.Join(dir, tc.subdir, wantName); f.Path != want {
					t.Errorf("file %d = %s, want %s", i, f.Path, want)
				}
				_, m := readAll(t, f.Path)
				total += m.Flows
				if !m.Complete || !m.Start.Equal(f.Start) {
					t.Errorf("%s: meta %+v", f.Path, m)
				}
				if i < len(files)-1 && !m.End.Equal(files[i+1].Start) {
					t.Errorf("%s ends %v, next starts %v", f.Path, m.End, files[i+1].Start)
				}
			}
			if total != uint64(written) {
				t.Errorf("files hold %d flows, wrote %d", total, written)
			}
		})
	}
}

func TestRotateNamesUnalignedStart(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock(t0.Add(30 * time.Second))
	w := testWriter(t, dir, clock, nil)
	rng := rand.New(rand.NewPCG(5, 6))
	w.Write(synthV5(rng, 100, clock.Now()))
	clock.Set(t0.Add(2*time.Minute + 17*time.Second + 400*time.Millisecond))
	if err := w.Rotate(); err != nil {
		t.Fatal(err)
	}
	if err := w.Rotate(); err != nil { // same second: ignored
		t.Fatal(err)
	}
	w.Write(synthV5(rng, 50, clock.Now()))
	clock.Set(t0.Add(5*time.Minute + time.Second))
	w.Tick()
	w.Write(synthV5(rng, 7, clock.Now()))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := List(dir)
	want := []struct {
		name  string
		flows uint64
		end   time.Time
	}{
		{"flows.2026-11-23.120000+0100.fsf", 100, t0.Add(2*time.Minute + 17*time.Second)},
		{"flows.2026-11-23.120217+0100.fsf", 50, t0.Add(5 * time.Minute)},
		{"flows.2026-11-23.120500+0100.fsf", 7, t0.Add(5*time.Minute + time.Second)},
	}
	if len(files) != len(want) {
		t.Fatalf("files = %v", files)
	}
	for i, wf := range want {
		_, m := readAll(t, files[i].Path)
		if filepath.Base(files[i].Path) != wf.name || m.Flows != wf.flows || !m.End.Equal(wf.end) {
			t.Errorf("file %d: %s flows %d end %v; want %s %d %v", i, files[i].Path, m.Flows, m.End, wf.name, wf.flows, wf.end)
		}
	}
}

// crashImage runs a writer, lets it flush, and returns the bytes of its
// .tmp as a crash would leave them, plus the records in whole blocks.
func crashImage(t *testing.T, clock *fakeClock, mod func(*Config), steps func(w *Writer)) []byte {
	t.Helper()
	dir := t.TempDir()
	w := testWriter(t, dir, clock, mod)
	steps(w)
	w.waitIdle()
	tmps := listTmp(t, dir)
	if len(tmps) != 1 {
		t.Fatalf("tmp files = %v", tmps)
	}
	img, err := os.ReadFile(tmps[0])
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	return img
}

func TestRecoveryTruncatedAtEveryOffset(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	recs := synthV5(rng, 350, t0)
	clock := newFakeClock(t0.Add(time.Minute))
	img := crashImage(t, clock, func(c *Config) { c.BlockRecords = 100 }, func(w *Writer) {
		w.Write(recs[:250])
		w.Account(ExporterKey{Addr: recs[0].Exporter, Format: uint8(decode.FormatNetFlow5)}, ExporterStats{Datagrams: 9, Flows: 250, LostFlows: 3})
		clock.Add(3 * time.Second)
		w.Tick()               // flush: 2 full blocks were written, now the partial one and a meta block
		w.Write(recs[250:350]) // one more full block, no meta after it
	})
	res, err := scanFile(bytes.NewReader(img), int64(len(img)), true)
	if err != nil || res.validEnd != int64(len(img)) || len(res.blocks) != 4 {
		t.Fatalf("image scan: %v, %+v", err, res)
	}
	lastStart := res.blocks[3].Offset
	name := FileName(t0) + tmpSuffix
	for cut := lastStart; cut <= int64(len(img)); cut++ {
		wantFlows := 250
		if cut == int64(len(img)) {
			wantFlows = 350
		}
		dir := t.TempDir()
		tmp := filepath.Join(dir, name)
		if err := os.WriteFile(tmp, img[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Open(tmp)
		if err != nil {
			t.Fatalf("cut %d: Open: %v", cut, err)
		}
		if m := r.Meta(); m.Flows != uint64(wantFlows) || m.Complete || m.LostFlows() != 3 {
			t.Fatalf("cut %d: tmp meta %+v", cut, m)
		}
		r.Close()
		// Every 7th offset (and the edges) also goes through recovery.
		if (cut-lastStart)%7 != 0 && cut != int64(len(img)) && cut != int64(len(img))-1 {
			continue
		}
		later := newFakeClock(t0.Add(20 * time.Minute))
		w := testWriter(t, dir, later, nil)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got, m := readAll(t, filepath.Join(dir, FileName(t0)))
		equalRecords(t, got, recs[:wantFlows])
		if !m.Recovered || m.LostFlows() != 3 || m.Exporters[0].Datagrams != 9 || m.Exporters[0].Format != "netflow5" {
			t.Fatalf("cut %d: recovered meta %+v", cut, m)
		}
	}
}

func TestResumeCurrentInterval(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	recs := synthV5(rng, 500, t0)
	key := ExporterKey{Addr: netip.MustParseAddr("192.0.2.1"), Domain: 1, Format: uint8(decode.FormatNetFlow9)}
	clock := newFakeClock(t0.Add(time.Minute))
	img := crashImage(t, clock, nil, func(w *Writer) {
		w.Write(recs[:300])
		w.Account(key, ExporterStats{Datagrams: 10, Flows: 300, LostFlows: 5, SamplingRate: 100})
		clock.Add(3 * time.Second)
		w.Tick()
	})
	dir := t.TempDir()
	tmp := filepath.Join(dir, FileName(t0)+tmpSuffix)
	// A torn tail from the crash must be cut before appending.
	if err := os.WriteFile(tmp, append(img, 1, 2, 3, 4, 5), 0o644); err != nil {
		t.Fatal(err)
	}
	clock.Set(t0.Add(2 * time.Minute))
	w := testWriter(t, dir, clock, nil)
	w.Write(recs[300:])
	w.Account(key, ExporterStats{Datagrams: 7, Flows: 200, LostFlows: 1})
	clock.Add(4 * time.Minute) // 12:06: crosses the boundary
	w.Tick()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := List(dir)
	if len(files) != 2 {
		t.Fatalf("files = %v", files)
	}
	got, m := readAll(t, files[0].Path)
	equalRecords(t, got, recs)
	want := ExporterMeta{Addr: key.Addr, Domain: 1, Format: "netflow9",
		ExporterStats: ExporterStats{Datagrams: 17, Flows: 500, LostFlows: 6, SamplingRate: 100}}
	if len(m.Exporters) != 1 || m.Exporters[0] != want || m.Flows != 500 || !m.Complete || !m.Recovered {
		t.Errorf("meta = %+v", m)
	}
	if _, m2 := readAll(t, files[1].Path); m2.Flows != 0 || len(m2.Exporters) != 0 {
		t.Errorf("second file meta = %+v", m2)
	}
}

func TestStaleTmpIsCompleted(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	recs := synthV5(rng, 120, t0)
	clock := newFakeClock(t0.Add(time.Minute))
	img := crashImage(t, clock, nil, func(w *Writer) {
		w.Write(recs)
		clock.Add(3 * time.Second)
		w.Tick()
	})
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, FileName(t0)+tmpSuffix), img, 0o644)
	// A .tmp that holds nothing but a partial header is completed as empty.
	os.WriteFile(filepath.Join(dir, FileName(t0.Add(-5*time.Minute))+tmpSuffix), []byte("FLOW"), 0o644)
	clock.Set(t0.Add(time.Hour))
	done := make(chan string, 4)
	w := testWriter(t, dir, clock, func(c *Config) { c.OnComplete = func(p string, m *Meta) { done <- p } })
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if len(done) != 3 {
		t.Errorf("OnComplete called %d times, want 3", len(done))
	}
	got, m := readAll(t, filepath.Join(dir, FileName(t0)))
	equalRecords(t, got, recs)
	wantEnd := t0.Add(time.Minute + 3*time.Second)
	if !m.Recovered || !m.Complete || !m.End.Equal(wantEnd) {
		t.Errorf("meta = %+v, want recovered, end %v", m, wantEnd)
	}
	if _, m := readAll(t, filepath.Join(dir, FileName(t0.Add(-5*time.Minute)))); m.Flows != 0 || !m.Recovered {
		t.Errorf("empty recovered meta = %+v", m)
	}
	if tmps := listTmp(t, dir); len(tmps) != 0 {
		t.Errorf("left over: %v", tmps)
	}
}

func TestWriteFailureNeverReadsComplete(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock(t0.Add(time.Minute))
	w := testWriter(t, dir, clock, func(c *Config) { c.BlockRecords = 50 })
	rng := rand.New(rand.NewPCG(13, 14))
	w.Write(synthV5(rng, 100, t0))
	clock.Set(t0.Add(6 * time.Minute))
	w.Tick() // completes the first file
	w.waitIdle()
	// Swap the new file's descriptor for a read-only one: writes fail.
	ro, err := os.Open(w.cur.tmpPath)
	if err != nil {
		t.Fatal(err)
	}
	w.cur.f.Close()
	w.cur.f = ro
	w.Write(synthV5(rng, 100, t0))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	if st.Errors == 0 || st.DroppedRecords != 100 {
		t.Errorf("stats = %+v", st)
	}
	files, _ := List(dir)
	if len(files) != 2 {
		t.Fatalf("files = %v", files)
	}
	if got, m := readAll(t, files[0].Path); len(got) != 100 || !m.Complete {
		t.Errorf("first file: %d records, meta %+v", len(got), m)
	}
	if got, m := readAll(t, files[1].Path); len(got) != 0 || m.Complete {
		t.Errorf("failed file reads complete: %d records, meta %+v", len(got), m)
	}
}

func TestListAndExpire(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	var paths []string
	for i := range 6 { // hourly files, oldest first, 1000 bytes each
		start := now.Add(time.Duration(i-6) * time.Hour)
		sub := filepath.Join(dir, nestDir(start, 3))
		os.MkdirAll(sub, 0o755)
		p := filepath.Join(sub, FileName(start))
		os.WriteFile(p, make([]byte, 1000), 0o644)
		paths = append(paths, p)
	}
	os.WriteFile(filepath.Join(dir, FileName(now)+tmpSuffix), make([]byte, 5000), 0o644)
	os.WriteFile(filepath.Join(dir, "README"), []byte("foreign"), 0o644)
	os.WriteFile(filepath.Join(dir, "ft-v05.2026-11-23.124500+0100"), nil, 0o644)
	entries, err := List(dir)
	if err != nil || len(entries) != 6 {
		t.Fatalf("List = %v, %v", entries, err)
	}
	for i, e := range entries {
		if e.Path != paths[i] {
			t.Errorf("entry %d = %s, want %s", i, e.Path, paths[i])
		}
	}
	tests := []struct {
		name     string
		maxBytes int64
		maxAge   time.Duration
		removed  int
	}{
		{"off", 0, 0, 0},
		{"by age", 0, 4*time.Hour + 30*time.Minute, 2},
		{"by size", 3500, 0, 1},
		{"size under limit", 3500, 0, 0},
		{"age then size", 1500, 150 * time.Minute, 2},
	}
	gone := 0
	for _, tc := range tests {
		removed, err := Expire(dir, tc.maxBytes, tc.maxAge, now)
		if err != nil || len(removed) != tc.removed {
			t.Fatalf("%s: removed %v, %v; want %d", tc.name, removed, err, tc.removed)
		}
		for i, p := range removed {
			if p != paths[gone+i] {
				t.Errorf("%s: removed %s, want oldest %s", tc.name, p, paths[gone+i])
			}
		}
		gone += len(removed)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName(now)+tmpSuffix)); err != nil {
		t.Errorf("expiry touched the .tmp: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(paths[5])); err != nil {
		t.Errorf("day directory of the remaining file: %v", err)
	}
	// The newest file is never expired, however small the limit: the
	// scanner and --exec have yet to see it.
	if removed, _ := Expire(dir, 1, 0, now); len(removed) != 0 {
		t.Errorf("removed %v, want the newest file kept", removed)
	}
	if _, err := os.Stat(paths[5]); err != nil {
		t.Errorf("newest file: %v", err)
	}
}

func TestOpenRejectsGarbage(t *testing.T) {
	valid := appendFileHeader(nil)
	wrongVersion := bytes.Clone(valid)
	wrongVersion[8] = 9
	tests := []struct {
		name, data, wantErr string
	}{
		{"empty", "", "not a flowscan flow file"},
		{"short", "FLOW", "not a flowscan flow file"},
		{"text", "hello, this is not a flow file at all", "not a flowscan flow file"},
		{"wrong version", string(wrongVersion), "unsupported flow file version 9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "x.fsf")
			os.WriteFile(p, []byte(tc.data), 0o644)
			_, err := Open(p)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Open error = %v, want %q", err, tc.wantErr)
			}
		})
	}
	// A header followed by garbage opens as an empty, incomplete file.
	p := filepath.Join(t.TempDir(), "y.fsf")
	os.WriteFile(p, append(valid, bytes.Repeat([]byte{0xAB}, 100)...), 0o644)
	r, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if m := r.Meta(); m.Complete || m.Flows != 0 {
		t.Errorf("meta = %+v", m)
	}
	r.Close()
}

func TestAlignment(t *testing.T) {
	loc := testLoc
	tests := []struct {
		interval    time.Duration
		at          time.Time
		start, next time.Time
	}{
		{5 * time.Minute, time.Date(2026, 1, 1, 10, 7, 59, 0, loc), time.Date(2026, 1, 1, 10, 5, 0, 0, loc), time.Date(2026, 1, 1, 10, 10, 0, 0, loc)},
		{time.Hour, time.Date(2026, 1, 1, 23, 59, 0, 0, loc), time.Date(2026, 1, 1, 23, 0, 0, 0, loc), time.Date(2026, 1, 2, 0, 0, 0, 0, loc)},
		{7 * time.Hour, time.Date(2026, 1, 1, 22, 0, 0, 0, loc), time.Date(2026, 1, 1, 21, 0, 0, 0, loc), time.Date(2026, 1, 2, 0, 0, 0, 0, loc)},
		{time.Minute, time.Date(2026, 1, 1, 0, 0, 0, 0, loc), time.Date(2026, 1, 1, 0, 0, 0, 0, loc), time.Date(2026, 1, 1, 0, 1, 0, 0, loc)},
	}
	for _, tc := range tests {
		if s := intervalStart(tc.at, tc.interval, loc); !s.Equal(tc.start) {
			t.Errorf("intervalStart(%v, %v) = %v, want %v", tc.at, tc.interval, s, tc.start)
		}
		if n := nextBoundary(tc.at, tc.interval, loc); !n.Equal(tc.next) {
			t.Errorf("nextBoundary(%v, %v) = %v, want %v", tc.at, tc.interval, n, tc.next)
		}
	}
}

func TestFullQueueDropsAndCounts(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock(t0.Add(time.Minute))
	w := testWriter(t, dir, clock, func(c *Config) { c.BlockRecords = 10; c.QueueBlocks = 2 })
	w.waitIdle()
	// Stall the background writer: it blocks handing over this barrier.
	stall := make(chan error)
	w.q.push(job{kind: jobBarrier, done: stall})
	rng := rand.New(rand.NewPCG(15, 16))
	recs := synthV5(rng, 50, t0)
	if err := w.Write(recs); err != nil { // 5 full blocks, room for 2
		t.Fatal(err)
	}
	b, a := netip.MustParseAddr("192.0.2.20"), netip.MustParseAddr("192.0.2.10")
	w.Account(ExporterKey{Addr: b, Format: uint8(decode.FormatIPFIX)}, ExporterStats{Datagrams: 1, LostFlows: 2})
	w.Account(ExporterKey{Addr: a, Domain: 7, Format: uint8(decode.FormatSFlow5)}, ExporterStats{Datagrams: 3, LostFlows: 4})
	w.Account(ExporterKey{Addr: a, Domain: 2, Format: uint8(decode.FormatNetFlow5)}, ExporterStats{Datagrams: 5})
	if st := w.Stats(); st.DroppedRecords != 30 || st.QueuedBlocks != 2 {
		t.Errorf("stats while stalled = %+v", st)
	}
	<-stall
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := List(dir)
	got, m := readAll(t, files[0].Path)
	equalRecords(t, got, recs[:20])
	if m.Complete || m.DroppedFlows != 30 || m.LostFlows() != 6 {
		t.Errorf("meta = %+v", m)
	}
	order := []string{"192.0.2.10/2/netflow5", "192.0.2.10/7/sflow5", "192.0.2.20/0/ipfix"}
	for i, e := range m.Exporters {
		if s := fmt.Sprintf("%v/%d/%s", e.Addr, e.Domain, e.Format); s != order[i] {
			t.Errorf("exporter %d = %s, want %s", i, s, order[i])
		}
	}
}

func TestRecoveryNeverReplacesCompletedFile(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	recs := synthV5(rng, 30, t0)
	clock := newFakeClock(t0.Add(time.Minute))
	img := crashImage(t, clock, nil, func(w *Writer) {
		w.Write(recs)
		clock.Add(3 * time.Second)
		w.Tick()
	})
	dir := t.TempDir()
	completed := filepath.Join(dir, FileName(t0))
	os.WriteFile(completed, []byte("already here"), 0o644)
	os.WriteFile(completed+tmpSuffix, img, 0o644)
	clock.Set(t0.Add(time.Hour))
	w := testWriter(t, dir, clock, nil)
	w.Close()
	if b, _ := os.ReadFile(completed); string(b) != "already here" {
		t.Errorf("completed file replaced")
	}
	got, _ := readAll(t, filepath.Join(dir, FileName(t0.Add(time.Second))))
	equalRecords(t, got, recs)
}

// TestAccountFloodBounded: a flood of exporters (spoofed sources) is folded
// into one row, so the file stays readable and complete.
func TestAccountFloodBounded(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock(t0.Add(time.Second))
	w := testWriter(t, dir, clock, nil)
	recs := synthV5(rand.New(rand.NewPCG(2, 2)), 100, t0)
	w.Write(recs)
	for i := 0; i < MaxFileExporters+5000; i++ {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		w.Account(ExporterKey{Addr: a, Format: 5}, ExporterStats{Datagrams: 1, Flows: 1})
	}
	w.Write(recs)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	entries, err := List(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("%v %v", entries, err)
	}
	r, err := Open(entries[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	m := r.Meta()
	if !m.Complete || m.Flows != 200 || len(m.Exporters) != MaxFileExporters+1 {
		t.Fatalf("complete %v flows %d exporters %d", m.Complete, m.Flows, len(m.Exporters))
	}
	var datagrams uint64
	for _, e := range m.Exporters {
		datagrams += e.Datagrams
	}
	if datagrams != MaxFileExporters+5000 {
		t.Errorf("%d datagrams accounted, want %d", datagrams, MaxFileExporters+5000)
	}
}
