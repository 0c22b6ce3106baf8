package flowtools

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
)

// BenchmarkRead measures decoding a 31,599-flow file (the size of a busy
// 5-minute flow-capture file) from memory, reusing one batch slice.
func BenchmarkRead(b *testing.B) {
	base := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC).UnixMilli()
	recs := ipv4Only(testFlows(35110, base))[:31599]
	for _, tt := range []struct {
		name string
		opts WriteOptions
	}{
		{"plain", WriteOptions{}},
		{"zlib", WriteOptions{Compress: true}},
		{"zlib-big", WriteOptions{Compress: true, ByteOrder: BigEndian}},
	} {
		var buf bytes.Buffer
		if err := Write(&buf, Header{}, recs, tt.opts); err != nil {
			b.Fatal(err)
		}
		data := buf.Bytes()
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			batch := make([]flow.Record, 0, BatchSize)
			n := 0
			for b.Loop() {
				r, err := NewReader(bytes.NewReader(data))
				if err != nil {
					b.Fatal(err)
				}
				for {
					batch, err = r.Next(batch[:0])
					n += len(batch)
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(len(data))/float64(len(recs)), "bytes/flow")
		})
	}
}
