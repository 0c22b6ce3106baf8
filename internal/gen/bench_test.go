package gen

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
)

// benchRecords returns n records from a Mix.
func benchRecords(n int, v6 float64) []flow.Record {
	m := NewMix(1, MixOptions{IPv6Share: v6})
	now := time.Now()
	recs := make([]flow.Record, n)
	for i := range recs {
		m.Next(&recs[i], now)
	}
	return recs
}

// reportPerRecord reports ns/record for b.N datagrams of n records.
func reportPerRecord(b *testing.B, n int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}

func BenchmarkAppendNetFlow5(b *testing.B) {
	recs := benchRecords(V5MaxRecordsFor(DefaultMaxDatagram), 0)
	buf := make([]byte, 0, 2048)
	h := NewV5Header(time.Now(), time.Now().Add(-time.Hour), 0)
	b.ReportAllocs()
	b.SetBytes(int64(V5Datagram(len(recs))))
	for b.Loop() {
		buf = AppendNetFlow5(buf[:0], h, recs)
	}
	reportPerRecord(b, len(recs))
}

func BenchmarkV9Append(b *testing.B) {
	e := &V9Encoder{SamplingInterval: 100}
	recs := benchRecords(e.MaxRecords(), 0.2)
	buf := make([]byte, 0, 2048)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		buf = e.Append(buf[:0], now, recs)
	}
	reportPerRecord(b, len(recs))
}

func BenchmarkIPFIXAppend(b *testing.B) {
	e := &IPFIXEncoder{SamplingInterval: 100}
	recs := benchRecords(e.MaxRecords(), 0.2)
	buf := make([]byte, 0, 2048)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		buf = e.Append(buf[:0], now, recs)
	}
	reportPerRecord(b, len(recs))
}

func BenchmarkMixNext(b *testing.B) {
	m := NewMix(1, MixOptions{IPv6Share: 0.2})
	now := time.Now()
	var r flow.Record
	b.ReportAllocs()
	for b.Loop() {
		m.Next(&r, now)
	}
}

// BenchmarkRun sends flat out to a loopback socket nobody reads (the kernel
// drops what overflows its buffer) and reports flows/s, with sendmmsg and
// with one write per datagram.
func BenchmarkRun(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  Config
		ro   runOptions
	}{
		{"v5/sendmmsg", Config{Format: FormatV5}, runOptions{}},
		{"v5/write", Config{Format: FormatV5}, runOptions{noBatch: true}},
		{"v9/sendmmsg", Config{Format: FormatV9, IPv6Share: 0.2}, runOptions{}},
		{"v9/write", Config{Format: FormatV9, IPv6Share: 0.2}, runOptions{noBatch: true}},
		{"ipfix/sendmmsg", Config{Format: FormatIPFIX, IPv6Share: 0.2}, runOptions{}},
		{"ipfix/write", Config{Format: FormatIPFIX, IPv6Share: 0.2}, runOptions{noBatch: true}},
		{"ipfix/sendmmsg/batch8", Config{Format: FormatIPFIX, IPv6Share: 0.2}, runOptions{batch: 8}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			defer sink.Close()
			cfg := bc.cfg
			cfg.Target = sink.LocalAddr().String()
			cfg.Count = 200000
			b.ReportAllocs()
			var flows uint64
			var elapsed time.Duration
			for b.Loop() {
				st, err := run(context.Background(), cfg, nil, bc.ro)
				if err != nil {
					b.Fatal(err)
				}
				flows += st.Flows
				elapsed += st.Elapsed
			}
			b.ReportMetric(float64(flows)/elapsed.Seconds(), "flows/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
