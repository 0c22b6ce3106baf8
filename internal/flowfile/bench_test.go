package flowfile

import (
	"errors"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/gen"
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
	}{
		{"default", 0}, // DefaultBlockRecords per block
		{"blocks 1024", 1024},
		{"blocks 4096", 4096},
		{"blocks 65536", 65536},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, size := writeSynthetic(t, t.TempDir(), n, func(c *Config) {
				c.BlockRecords = tc.blockRecords
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

// threadCPU returns the CPU time the calling OS thread has used, so that
// a benchmark locked to its thread can report CPU time per flow, which
// other processes on a shared machine disturb much less than wall time.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	const rusageThread = 1 // RUSAGE_THREAD (Linux)
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuPerFlow runs body b.N times on one locked thread and reports the
// thread's CPU time per flow (flows per call) as cpu-ns/flow.
func cpuPerFlow(b *testing.B, flows int, body func(i int)) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	cpu := threadCPU()
	for i := 0; b.Loop(); i++ {
		body(i)
	}
	cpu = threadCPU() - cpu
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*flows), "cpu-ns/flow")
}

// codecDatasets are the record sets the block codec benchmarks use: the
// synthetic v5-like records of TestBytesPerFlow, and the traffic model of
// `flowscan gen` with the IPv6 share of its v9 and IPFIX output.
func codecDatasets(n int) []struct {
	name string
	recs []flow.Record
} {
	rng := rand.New(rand.NewPCG(3, 4))
	mix := gen.NewMix(7, gen.MixOptions{IPv6Share: 0.2})
	genRecs := make([]flow.Record, n)
	exporter := netip.MustParseAddr("127.0.0.1")
	now := t0
	for i := range genRecs {
		if i%30 == 0 {
			now = now.Add(37 * time.Microsecond * 30)
		}
		mix.Next(&genRecs[i], now)
		genRecs[i].Exporter = exporter
	}
	return []struct {
		name string
		recs []flow.Record
	}{
		{"synth_v5", synthV5(rng, n, t0)},
		{"gen_v6share20", genRecs},
	}
}

// BenchmarkBlockCodec compares the version-1 block codec (columns, then
// one zstd frame) with the version-2 sections codec, block by block
// (8192 records, the writer's default), on one goroutine: encode ns/flow
// and bytes/flow, and decode of all columns and of two (the source address
// and the bytes, what a top-N by source address reads).
func BenchmarkBlockCodec(b *testing.B) {
	const n = DefaultBlockRecords
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	two := ColSrcAddr | ColBytes
	for _, ds := range codecDatasets(8 * n) {
		blocks := make([][]flow.Record, 0, 8)
		for i := 0; i < len(ds.recs); i += n {
			blocks = append(blocks, ds.recs[i:i+n])
		}
		var c columnCodec
		var v1, v2 [][]byte
		var bases []int64
		for _, blk := range blocks {
			sum := summarize(blk)
			bases = append(bases, sum.minStart)
			v1 = append(v1, enc.EncodeAll(c.appendColumns(nil, blk, sum.minStart), nil))
			p, _, _ := c.appendSections(nil, blk)
			v2 = append(v2, p)
		}
		size := func(ps [][]byte) float64 {
			t := 0
			for _, p := range ps {
				t += len(p)
			}
			return float64(t) / float64(len(ps)*n)
		}
		b.Run(ds.name+"/encode/v1_zstd", func(b *testing.B) {
			var raw, out []byte
			cpuPerFlow(b, n, func(i int) {
				blk := blocks[i%len(blocks)]
				raw = c.appendColumns(raw[:0], blk, summarize(blk).minStart)
				out = enc.EncodeAll(raw, out[:0])
			})
			b.ReportMetric(size(v1), "bytes/flow")
		})
		b.Run(ds.name+"/encode/v2_sections", func(b *testing.B) {
			var out []byte
			cpuPerFlow(b, n, func(i int) {
				out, _, _ = c.appendSections(out[:0], blocks[i%len(blocks)])
			})
			b.ReportMetric(size(v2), "bytes/flow")
		})
		dec := zstdDecoder()
		buf := make([]flow.Record, 1024)
		for _, sel := range []struct {
			name string
			cols Columns
		}{{"all", AllColumns}, {"src_bytes", two}} {
			b.Run(ds.name+"/decode_"+sel.name+"/v1_zstd", func(b *testing.B) {
				var raw []byte
				cpuPerFlow(b, n, func(i int) {
					k := i % len(blocks)
					raw, err = dec.DecodeAll(v1[k], raw[:0])
					if err != nil {
						b.Fatal(err)
					}
					if err := c.locateBlock(raw, false, n, bases[k], sel.cols); err != nil {
						b.Fatal(err)
					}
					c.scanLocated(buf, sel.cols, func([]flow.Record) {})
				})
			})
			b.Run(ds.name+"/decode_"+sel.name+"/v2_sections", func(b *testing.B) {
				cpuPerFlow(b, n, func(i int) {
					k := i % len(blocks)
					if err := c.locateBlock(v2[k], true, n, bases[k], sel.cols); err != nil {
						b.Fatal(err)
					}
					c.scanLocated(buf, sel.cols, func([]flow.Record) {})
				})
			})
		}
	}
}
