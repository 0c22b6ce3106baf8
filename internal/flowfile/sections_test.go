package flowfile

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
)

// sectionsRecords returns n records for the sections tests: random
// records (every field, zero, IPv4, IPv6, mapped and zoned addresses) or,
// with synth, v5-like ones (constant and low-entropy columns).
func sectionsRecords(rng *rand.Rand, n int, synth bool) []flow.Record {
	if synth {
		return synthV5(rng, n, t0)
	}
	recs := make([]flow.Record, n)
	for i := range recs {
		recs[i] = randomRecord(rng)
		if rng.IntN(5) == 0 && recs[i].DstAddr.Is6() {
			recs[i].DstAddr = recs[i].DstAddr.WithZone(fmt.Sprintf("eth%d", rng.IntN(3)))
		}
	}
	return recs
}

// decodeSections decodes a whole sections payload with the columns cols.
func decodeSections(c *columnCodec, payload []byte, n int, base int64, cols Columns) ([]flow.Record, error) {
	if err := c.locateSections(payload, n, base, cols); err != nil {
		return nil, err
	}
	return c.appendLocated(nil, cols), nil
}

func TestSectionsRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	sets := []Columns{0, AllColumns, ColEnd, ColStart, ColSrcAddr | ColBytes,
		ColExporter | ColSrcAddr | ColDstAddr | ColNextHop, ColSrcMAC | ColDstMAC | ColDstMask}
	for _, f := range columnFields {
		sets = append(sets, f.col)
	}
	for range 10 {
		sets = append(sets, Columns(rng.Uint32())&AllColumns)
	}
	tests := []struct {
		name  string
		n     int
		synth bool
	}{
		{"one random", 1, false},
		{"seven random", 7, false},
		{"random block", 1000, false},
		{"synthetic block", 8192, true},
		{"more than a chunk", streamChunk + 4321, true},
		{"random more than a chunk", streamChunk + 17, false},
	}
	var enc columnCodec
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs := sectionsRecords(rng, tc.n, tc.synth)
			payload, sum, rawLen := enc.appendSections(nil, recs)
			if want := summarize(recs); sum != want {
				t.Fatalf("summary %+v, want %+v", sum, want)
			}
			if rawLen < tc.n*minBytesPerRecord {
				t.Fatalf("raw length %d below %d per record", rawLen, minBytesPerRecord)
			}
			var dec columnCodec
			for _, cols := range sets {
				got, err := decodeSections(&dec, payload, tc.n, sum.minStart, cols)
				if err != nil {
					t.Fatalf("cols %#x: %v", cols, err)
				}
				for i := range recs {
					if p := project(&recs[i], cols); got[i] != p {
						t.Fatalf("cols %#x record %d:\n got %+v\nwant %+v", cols, i, got[i], p)
					}
				}
			}
			// Runs of any size hand out the same records.
			if err := dec.locateSections(payload, tc.n, sum.minStart, AllColumns); err != nil {
				t.Fatal(err)
			}
			var scanned []flow.Record
			dec.scanLocated(make([]flow.Record, 1+rng.IntN(700)), AllColumns, func(run []flow.Record) {
				scanned = append(scanned, run...)
			})
			equalRecords(t, scanned, recs)
		})
	}
}

// TestSectionsCorruption damages valid payloads: decoding must not panic,
// and a selection can only fail when the full decode fails too (it reads
// a subset of the sections).
func TestSectionsCorruption(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	var enc columnCodec
	failures := 0
	for trial := range 3000 {
		n := 1 + rng.IntN(300)
		recs := sectionsRecords(rng, n, trial%2 == 0)
		payload, sum, _ := enc.appendSections(nil, recs)
		switch rng.IntN(3) {
		case 0:
			payload[rng.IntN(len(payload))] ^= byte(1 + rng.IntN(255))
		case 1:
			payload = payload[:rng.IntN(len(payload))]
		default:
			payload = append(payload, byte(rng.Uint32()))
		}
		var full, sel columnCodec
		_, errFull := decodeSections(&full, payload, n, sum.minStart, AllColumns)
		cols := Columns(rng.Uint32()) & AllColumns
		_, errSel := decodeSections(&sel, payload, n, sum.minStart, cols)
		if errSel != nil && errFull == nil {
			t.Fatalf("trial %d cols %#x: selection fails (%v) but the full decode does not", trial, cols, errSel)
		}
		if errFull != nil {
			failures++
		}
	}
	if failures == 0 {
		t.Fatal("no damaged payload failed: the test damages nothing")
	}
}

// FuzzSections feeds arbitrary payloads to the sections decoder: no
// panic; what decodes in full decodes the same in any selection, and
// encodes back to a payload that decodes to the same records.
func FuzzSections(f *testing.F) {
	rng := rand.New(rand.NewPCG(35, 36))
	var c columnCodec
	for _, n := range []int{1, 3, 40, 1500} { // 1500: sampled, so bit-packed chunks
		for _, synth := range []bool{false, true} {
			payload, _, _ := c.appendSections(nil, sectionsRecords(rng, n, synth))
			f.Add(uint16(n), uint32(ColSrcAddr|ColBytes), payload)
		}
	}
	f.Fuzz(func(t *testing.T, n uint16, cols uint32, payload []byte) {
		if n == 0 {
			return // the block header check rejects these
		}
		var full, sel columnCodec
		want, err := decodeSections(&full, payload, int(n), 0, AllColumns)
		if err != nil {
			return
		}
		got, err := decodeSections(&sel, payload, int(n), 0, Columns(cols)&AllColumns)
		if err != nil {
			t.Fatalf("full decode works, selection %#x fails: %v", cols, err)
		}
		for i := range want {
			if p := project(&want[i], Columns(cols)); got[i] != p {
				t.Fatalf("record %d: %+v != %+v", i, got[i], p)
			}
		}
		again, sum, _ := c.appendSections(nil, want)
		back, err := decodeSections(&sel, again, len(want), sum.minStart, AllColumns)
		if err != nil {
			t.Fatal(err)
		}
		equalRecords(t, back, want)
	})
}

// The version-1 file in testdata was written by the version-1 writer
// (commit 7498957): 120 random records and 180 v5-like ones in blocks of
// 100, with v1.txt holding every record as %+v. It cannot be regenerated.
const (
	v1File    = "testdata/v1.fsf"
	v1Records = "testdata/v1.txt"
)

func v1Want(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(v1Records)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func TestReadVersion1File(t *testing.T) {
	want := v1Want(t)
	tests := []struct {
		name string
		cols Columns
		scan bool
	}{
		{"all columns, Next", AllColumns, false},
		{"all columns, ScanBlock", AllColumns, true},
		{"top-N columns, ScanBlock", ColSrcAddr | ColStart | ColEnd | ColBytes, true},
		{"filter columns, Next", ColProto | ColDstPort, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Open(v1File)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if m := r.Meta(); m.Version != 1 || !m.Complete || m.Flows != uint64(len(want)) {
				t.Fatalf("meta %+v", m)
			}
			r.SetColumns(tc.cols)
			var got []flow.Record
			if tc.scan {
				buf := make([]flow.Record, 37)
				for _, b := range r.Blocks() {
					if err := r.ScanBlock(b, buf, func(run []flow.Record) { got = append(got, run...) }); err != nil {
						t.Fatal(err)
					}
				}
			} else {
				for {
					got, err = r.Next(got)
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%d records, want %d", len(got), len(want))
			}
			var full []flow.Record
			if tc.cols != AllColumns {
				full, _ = readAll(t, v1File)
			}
			for i := range got {
				w := want[i]
				if tc.cols != AllColumns {
					if fmt.Sprintf("%+v", full[i]) != w {
						t.Fatalf("record %d: %+v, want %s", i, full[i], w)
					}
					w = fmt.Sprintf("%+v", project(&full[i], tc.cols))
				}
				if s := fmt.Sprintf("%+v", got[i]); s != w {
					t.Fatalf("record %d:\n got %s\nwant %s", i, s, w)
				}
			}
		})
	}
}

// TestVersion1TmpIsCompletedNotResumed: a version-1 .tmp of the current
// interval (left by the old writer's crash) is completed as it is, and new
// records go to a new version-2 file.
func TestVersion1TmpIsCompletedNotResumed(t *testing.T) {
	img, err := os.ReadFile(v1File)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(v1File)
	if err != nil {
		t.Fatal(err)
	}
	blocks := r.Blocks()
	last := blocks[len(blocks)-1]
	end := last.Offset + blockHeaderLen + int64(last.header.CompLen)
	r.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName(t0)+tmpSuffix), img[:end+7], 0o644); err != nil { // plus a torn tail
		t.Fatal(err)
	}
	clock := newFakeClock(t0.Add(2 * time.Minute))
	w := testWriter(t, dir, clock, nil)
	recs := synthV5(rand.New(rand.NewPCG(37, 38)), 1000, t0)
	w.Write(recs)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := List(dir)
	if err != nil || len(files) != 2 {
		t.Fatalf("files %v, %v", files, err)
	}
	old, m := readAll(t, files[0].Path)
	if m.Version != 1 || !m.Recovered || len(old) != len(v1Want(t)) {
		t.Fatalf("old file: %d records, meta %+v", len(old), m)
	}
	got, m := readAll(t, files[1].Path)
	if m.Version != FormatVersion || !m.Complete {
		t.Fatalf("new file meta %+v", m)
	}
	equalRecords(t, got, recs)
}

// TestFlushWithoutRecordsKeepsBuffer: a flush due to exporter statistics
// alone (no buffered records) must not hand the caller's empty block
// buffer to the background writer, which would recycle it while the
// caller fills it, so that two queued blocks shared one array.
func TestFlushWithoutRecordsKeepsBuffer(t *testing.T) {
	const block = 100
	recs := synthV5(rand.New(rand.NewPCG(39, 40)), 20*block, t0)
	clock := newFakeClock(t0.Add(time.Minute))
	w := testWriter(t, t.TempDir(), clock, func(c *Config) { c.BlockRecords = block; c.QueueBlocks = 64 })
	for round := range 10 {
		w.Account(ExporterKey{}, ExporterStats{Flows: 1})
		clock.Add(3 * time.Second)
		w.Tick() // statistics only: nothing buffered
		w.waitIdle()
		w.Write(recs[2*round*block : 2*(round+1)*block]) // two full blocks
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := List(w.cfg.Dir)
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	got, _ := readAll(t, files[0].Path)
	equalRecords(t, got, recs)
}

func TestPackedChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	tests := []struct {
		name     string
		symbols  []byte
		size     int
		wantPack bool
	}{
		{"two symbols", []byte{6, 17}, 4096, true},
		{"four symbols", []byte{0, 1, 2, 200}, 4099, true},
		{"eight symbols", []byte{1, 2, 3, 4, 5, 6, 7, 8}, 5000, true},
		{"sixteen symbols", []byte{0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 250}, 8191, true},
		{"too many symbols", nil, 8192, false},
		{"too small to sample", []byte{6, 17}, 1000, false},
	}
	var e sectionEncoder
	var c columnCodec
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plane := make([]byte, tc.size)
			for i := range plane {
				if tc.symbols == nil {
					plane[i] = byte(rng.Uint32())
				} else {
					plane[i] = tc.symbols[rng.IntN(len(tc.symbols))]
				}
			}
			stream := e.appendStream(nil, plane, 0)
			x, _ := binary.Uvarint(stream)
			if packed := x&3 == chunkPack; packed != tc.wantPack {
				t.Fatalf("chunk kind %d, want packed %v", x&3, tc.wantPack)
			}
			c.arena = make([]byte, 0, tc.size)
			got, rle, rest, err := c.readStream(stream, tc.size, true)
			if err != nil || rle >= 0 || len(rest) != 0 {
				t.Fatalf("readStream: rle %d, %d bytes left, %v", rle, len(rest), err)
			}
			if string(got) != string(plane) {
				t.Fatal("plane decodes differently")
			}
		})
	}
	// A byte the sample missed makes the encoder fall back to Huffman.
	plane := make([]byte, 4096)
	plane[1] = 9 // never sampled (every 8th byte is)
	if out, ok := e.appendPacked(nil, plane, 1, &sampleStats{distinct: 1}); ok || len(out) != 0 {
		t.Fatalf("packed a chunk with an unsampled byte: %v", ok)
	}
}

// TestDictionaryColumns: an identifier column with few distinct multi-byte
// values is stored as a dictionary; one whose values outgrow a dictionary
// part-way through the block falls back to planes (and the next blocks do
// not retry at once); both decode to the records.
func TestDictionaryColumns(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	sectionStart := func(payload []byte, col int) byte {
		off := sectionTableLen
		for c := range numAddrColumns + col {
			off += int(binary.LittleEndian.Uint32(payload[4*c:]))
		}
		return payload[off]
	}
	tests := []struct {
		name     string
		distinct func(i int) uint32 // InIf of record i
		wantDict bool
	}{
		{"few interfaces", func(i int) uint32 { return []uint32{1000, 2000, 70000}[rng.IntN(3)] }, true},
		{"256 interfaces", func(i int) uint32 { return 300 + uint32(rng.IntN(256)) }, true},
		{"many interfaces late", func(i int) uint32 {
			if i < 3000 {
				return 300 + uint32(i%10)
			}
			return 300 + uint32(i)
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var enc, dec columnCodec
			recs := synthV5(rng, 5000, t0)
			for i := range recs {
				recs[i].InIf = tc.distinct(i)
			}
			for round := range 2 {
				payload, sum, _ := enc.appendSections(nil, recs)
				first := sectionStart(payload, colInIf)
				wantDict := tc.wantDict
				if round == 1 && !tc.wantDict {
					wantDict = false // not retried for dictRetry blocks
				}
				if got := first&dictFlag != 0; got != wantDict {
					t.Fatalf("round %d: dictionary form %v (width byte %#x), want %v", round, got, first, wantDict)
				}
				got, err := decodeSections(&dec, payload, len(recs), sum.minStart, AllColumns)
				if err != nil {
					t.Fatal(err)
				}
				equalRecords(t, got, recs)
			}
		})
	}
}
