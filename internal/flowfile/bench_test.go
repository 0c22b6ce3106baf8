package flowfile

import (
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/flowscan/flowscan/internal/flow"
)

// maxBytesPerFlow is the on-disk budget for synthetic v5-like traffic.
const maxBytesPerFlow = 23

// writeSynthetic writes n synthetic records into one file and returns its
// path and size.
func writeSynthetic(tb testing.TB, dir string, n int, mod func(*Config)) (string, int64) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(42, 43))
	recs := synthV5(rng, n, t0)
	clock := newFakeClock(t0.Add(time.Minute))
	w := testWriter(tb, dir, clock, func(c *Config) {
		c.QueueBlocks = 1 << 10 // never drop in this measurement
		if mod != nil {
			mod(c)
		}
	})
	for i := 0; i < len(recs); i += 30 {
		w.Write(recs[i:min(i+30, len(recs))])
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	files, err := List(dir)
	if err != nil || len(files) != 1 {
		tb.Fatalf("List = %v, %v", files, err)
	}
	st, err := os.Stat(files[0].Path)
	if err != nil {
		tb.Fatal(err)
	}
	return files[0].Path, st.Size()
}

func TestBytesPerFlow(t *testing.T) {
	const n = 200_000
	tests := []struct {
		name         string
		blockRecords int
		level        zstd.EncoderLevel
	}{
		{"default", 0, 0}, // SpeedFastest, 16384 records per block
		{"zstd SpeedDefault", 0, zstd.SpeedDefault},
		{"blocks 4096", 4096, 0},
		{"blocks 65536", 65536, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, size := writeSynthetic(t, t.TempDir(), n, func(c *Config) {
				c.BlockRecords = tc.blockRecords
				c.EncoderLevel = tc.level
			})
			perFlow := float64(size) / n
			t.Logf("%s: %.2f bytes/flow", tc.name, perFlow)
			if tc.name == "default" && perFlow > maxBytesPerFlow {
				t.Errorf("%.2f bytes per flow, budget %d", perFlow, maxBytesPerFlow)
			}
		})
	}
}

func BenchmarkWrite(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	recs := synthV5(rng, 1<<16, t0)
	clock := newFakeClock(t0.Add(time.Minute))
	w := testWriter(b, b.TempDir(), clock, func(c *Config) { c.QueueBlocks = 1 << 12 })
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i += 30 {
		off := i % len(recs)
		w.Write(recs[off:min(off+30, len(recs))])
	}
	caller := time.Since(start)
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	total := time.Since(start)
	b.StopTimer()
	st := w.Stats()
	b.ReportMetric(float64(b.N)/caller.Seconds(), "caller-records/s")
	b.ReportMetric(float64(b.N)/total.Seconds(), "disk-records/s")
	if b.N > 0 && st.BytesWritten > 0 {
		b.ReportMetric(float64(st.BytesWritten)/float64(st.RecordsWritten), "bytes/flow")
	}
	b.ReportMetric(float64(st.DroppedRecords), "dropped")
}

func BenchmarkNext(b *testing.B) {
	path, _ := writeSynthetic(b, b.TempDir(), 1<<17, nil)
	var buf []flow.Record
	b.ReportAllocs()
	b.ResetTimer()
	read := 0
	for read < b.N {
		r, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		for {
			buf, err = r.Next(buf[:0])
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			read += len(buf)
		}
		r.Close()
	}
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkBytesPerFlow(b *testing.B) {
	for range b.N {
		_, size := writeSynthetic(b, b.TempDir(), 100_000, nil)
		b.ReportMetric(float64(size)/100_000, "bytes/flow")
	}
}
