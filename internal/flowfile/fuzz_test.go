package flowfile

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
)

// fuzzSeedFiles returns the bytes of a small completed file and of an
// in-progress one.
func fuzzSeedFiles(f *testing.F) (complete, partial []byte) {
	rng := rand.New(rand.NewPCG(21, 22))
	recs := make([]flow.Record, 10)
	for i := range recs {
		recs[i] = randomRecord(rng)
	}
	clock := newFakeClock(t0.Add(time.Minute))
	dir := f.TempDir()
	w := testWriter(f, dir, clock, func(c *Config) { c.BlockRecords = 4 })
	w.Write(recs)
	clock.Add(3 * time.Second)
	w.Tick()
	w.waitIdle()
	tmp := listTmp(f, dir)[0]
	partial, _ = os.ReadFile(tmp)
	w.Close()
	files, _ := List(dir)
	complete, _ = os.ReadFile(files[0].Path)
	return complete, partial
}

// FuzzOpen feeds arbitrary file contents to the reader: it must not panic,
// and whatever it accepts must read to the end or fail cleanly.
func FuzzOpen(f *testing.F) {
	complete, partial := fuzzSeedFiles(f)
	f.Add(complete)
	f.Add(partial)
	f.Add(complete[:len(complete)-3])
	f.Add(appendFileHeader(nil))
	if v1, err := os.ReadFile(v1File); err == nil {
		f.Add(v1)
	}
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), int64(len(data)), "fuzz.fsf")
		if err != nil {
			return
		}
		m := r.Meta()
		var total uint64
		var recs []flow.Record
		for range len(r.Blocks()) + 1 {
			recs, err = r.Next(recs[:0])
			if err != nil {
				break
			}
			total += uint64(len(recs))
		}
		if errors.Is(err, io.EOF) && total != m.Flows {
			t.Errorf("read %d records, meta says %d", total, m.Flows)
		}
	})
}

// FuzzReader feeds arbitrary bytes to the column decoder (past the
// checksums a file-level fuzzer rarely gets through).
func FuzzReader(f *testing.F) {
	rng := rand.New(rand.NewPCG(23, 24))
	var c columnCodec
	for _, n := range []int{1, 3, 17} {
		recs := make([]flow.Record, n)
		for i := range recs {
			recs[i] = randomRecord(rng)
		}
		base := summarize(recs).minStart
		f.Add(uint16(n), c.appendColumns(nil, recs, base))
	}
	f.Fuzz(func(t *testing.T, n uint16, raw []byte) {
		if n == 0 || int(n)*minBytesPerRecord > len(raw) {
			return // the block header check rejects these
		}
		var d columnCodec
		out, err := d.decodeColumns(nil, raw, int(n), 0)
		if err != nil {
			return
		}
		// Whatever decodes must encode back to a block that decodes to
		// the same records.
		again, err := d.decodeColumns(nil, c.appendColumns(nil, out, summarize(out).minStart), len(out), summarize(out).minStart)
		if err != nil {
			t.Fatal(err)
		}
		for i := range out {
			if out[i] != again[i] {
				t.Fatalf("record %d: %+v != %+v", i, out[i], again[i])
			}
		}
	})
}
