package flowfile

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/flowscan/flowscan/internal/flow"
)

// scanAll collects what scanSelected hands out, run by run, checking the
// runs' sizes.
func scanAll(t testing.TB, c *columnCodec, raw []byte, n int, base int64, cols Columns, chunk int) ([]flow.Record, error) {
	buf := make([]flow.Record, chunk)
	var got []flow.Record
	err := c.scanSelected(buf, raw, n, base, cols, func(run []flow.Record) {
		if len(run) == 0 || len(run) > chunk {
			t.Fatalf("run of %d records with a buffer of %d", len(run), chunk)
		}
		if len(got)+len(run) < n && len(run) != chunk {
			t.Fatalf("short run of %d records before the end", len(run))
		}
		got = append(got, run...)
	})
	return got, err
}

// TestScanSelectedMatchesFull decodes blocks in runs of many sizes and
// column sets and compares with the reference full decode.
func TestScanSelectedMatchesFull(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	sets := []Columns{AllColumns, ColSrcAddr | ColBytes, ColEnd, ColStart | ColEnd | ColDstPort | ColProto, ColNextHop | ColDstMAC, 0}
	for range 4 {
		sets = append(sets, Columns(rng.Uint32())&AllColumns)
	}
	var enc columnCodec
	for _, n := range []int{1, 9, 1000, 3001} {
		recs := make([]flow.Record, n)
		for i := range recs {
			recs[i] = randomRecord(rng)
			if rng.IntN(5) == 0 {
				recs[i].DstAddr = recs[i].DstAddr.WithZone(fmt.Sprintf("eth%d", i%3))
			}
		}
		base := summarize(recs).minStart
		raw := enc.appendColumns(nil, recs, base)
		var full columnCodec
		want, err := full.decodeColumns(nil, raw, n, base)
		if err != nil {
			t.Fatal(err)
		}
		for _, cols := range sets {
			for _, chunk := range []int{1, 7, 64, 1024, n, n + 3} {
				t.Run(fmt.Sprintf("n=%d/cols=%#x/chunk=%d", n, cols, chunk), func(t *testing.T) {
					var dec columnCodec
					// Twice with one codec: the column cursors restart.
					for round := range 2 {
						got, err := scanAll(t, &dec, raw, n, base, cols, chunk)
						if err != nil {
							t.Fatal(err)
						}
						if len(got) != n {
							t.Fatalf("round %d: %d records, want %d", round, len(got), n)
						}
						for i := range want {
							if p := project(&want[i], cols); got[i] != p {
								t.Fatalf("round %d record %d:\n got %+v\nwant %+v", round, i, got[i], p)
							}
						}
					}
				})
			}
		}
	}
}

// TestScanSelectedRejectsLikeFull corrupts valid blocks: scanning fails
// exactly when the full decode fails, and then hands out no record.
func TestScanSelectedRejectsLikeFull(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	var enc columnCodec
	failures := 0
	for trial := range 2000 {
		raw, n := damagedV1Payload(rng, &enc)
		var full, sel columnCodec
		_, errFull := full.decodeColumns(nil, raw, n, 0)
		cols := Columns(rng.Uint32()) & AllColumns
		runs := 0
		errScan := sel.scanSelected(make([]flow.Record, 1+rng.IntN(8)), raw, n, 0, cols, func([]flow.Record) { runs++ })
		if (errFull == nil) != (errScan == nil) {
			t.Fatalf("trial %d cols %#x: full decode error %v, scan %v", trial, cols, errFull, errScan)
		}
		if errScan != nil {
			failures++
			if runs != 0 {
				t.Fatalf("trial %d: %d runs handed out before error %v", trial, runs, errScan)
			}
		}
	}
	if failures == 0 {
		t.Fatal("no corruption was detected")
	}
}

// TestReaderScanBlock scans a written file's blocks and compares with
// ReadBlock, for a projection and for all columns.
func TestReaderScanBlock(t *testing.T) {
	path, _ := writeSynthetic(t, t.TempDir(), 20_000, func(c *Config) { c.BlockRecords = 3000 })
	for _, cols := range []Columns{AllColumns, ColSrcAddr | ColDstPort | ColEnd | ColBytes} {
		r, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		r.SetColumns(cols)
		if err := r.ScanBlock(r.Blocks()[0], nil, func([]flow.Record) {}); err == nil {
			t.Error("ScanBlock with an empty buffer did not fail")
		}
		buf := make([]flow.Record, 512)
		for _, b := range r.Blocks() {
			want, err := r.ReadBlock(b, nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []flow.Record
			if err := r.ScanBlock(b, buf, func(run []flow.Record) { got = append(got, run...) }); err != nil {
				t.Fatal(err)
			}
			equalRecords(t, got, want)
		}
		r.Close()
	}
}

// FuzzScanSelected: on any payload, scanning in runs fails exactly when
// the full decode fails, and yields the selected fields of it.
func FuzzScanSelected(f *testing.F) {
	rng := rand.New(rand.NewPCG(35, 36))
	var c columnCodec
	for _, n := range []int{1, 3, 17} {
		recs := make([]flow.Record, n)
		for i := range recs {
			recs[i] = randomRecord(rng)
		}
		base := summarize(recs).minStart
		f.Add(uint16(n), uint32(ColSrcAddr|ColBytes), uint8(4), c.appendColumns(nil, recs, base))
	}
	f.Fuzz(func(t *testing.T, n uint16, cols uint32, chunk uint8, raw []byte) {
		if n == 0 || int(n)*minBytesPerRecord > len(raw) {
			return // the block header check rejects these
		}
		var full, sel columnCodec
		want, errFull := full.decodeColumns(nil, raw, int(n), 0)
		got, errScan := scanAll(t, &sel, raw, int(n), 0, Columns(cols)&AllColumns, 1+int(chunk))
		if (errFull == nil) != (errScan == nil) {
			t.Fatalf("full decode error %v, scan %v", errFull, errScan)
		}
		if errFull != nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("%d records, want %d", len(got), len(want))
		}
		for i := range want {
			if p := project(&want[i], Columns(cols)); got[i] != p {
				t.Fatalf("record %d: %+v != %+v", i, got[i], p)
			}
		}
	})
}

// BenchmarkScanBlock scans a file's blocks in runs with the columns of a
// top-N query by source address.
func BenchmarkScanBlock(b *testing.B) {
	path, size := writeSynthetic(b, b.TempDir(), 1<<17, nil)
	r, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	r.SetColumns(ColSrcAddr | ColStart | ColEnd | ColBytes | ColPackets)
	buf := make([]flow.Record, 1024)
	blocks := r.Blocks()
	var bytes uint64
	b.SetBytes(size / int64(len(blocks)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := r.ScanBlock(blocks[i%len(blocks)], buf, func(run []flow.Record) {
			for j := range run {
				bytes += run[j].Bytes
			}
		}); err != nil {
			b.Fatal(err)
		}
	}
	if bytes == 0 {
		b.Fatal("no bytes counted")
	}
}
