package flowfile

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/flowscan/flowscan/internal/flow"
)

// columnFields copies one column's field between records, by column bit.
var columnFields = []struct {
	col  Columns
	copy func(dst, src *flow.Record)
}{
	{ColExporter, func(d, s *flow.Record) { d.Exporter = s.Exporter }},
	{ColSrcAddr, func(d, s *flow.Record) { d.SrcAddr = s.SrcAddr }},
	{ColDstAddr, func(d, s *flow.Record) { d.DstAddr = s.DstAddr }},
	{ColNextHop, func(d, s *flow.Record) { d.NextHop = s.NextHop }},
	{ColStart, func(d, s *flow.Record) { d.Start = s.Start }},
	{ColEnd, func(d, s *flow.Record) { d.End = s.End }},
	{ColBytes, func(d, s *flow.Record) { d.Bytes = s.Bytes }},
	{ColPackets, func(d, s *flow.Record) { d.Packets = s.Packets }},
	{ColDomain, func(d, s *flow.Record) { d.Domain = s.Domain }},
	{ColSamplingRate, func(d, s *flow.Record) { d.SamplingRate = s.SamplingRate }},
	{ColInIf, func(d, s *flow.Record) { d.InIf = s.InIf }},
	{ColOutIf, func(d, s *flow.Record) { d.OutIf = s.OutIf }},
	{ColSrcAS, func(d, s *flow.Record) { d.SrcAS = s.SrcAS }},
	{ColDstAS, func(d, s *flow.Record) { d.DstAS = s.DstAS }},
	{ColSrcPort, func(d, s *flow.Record) { d.SrcPort = s.SrcPort }},
	{ColDstPort, func(d, s *flow.Record) { d.DstPort = s.DstPort }},
	{ColSrcVLAN, func(d, s *flow.Record) { d.SrcVLAN = s.SrcVLAN }},
	{ColDstVLAN, func(d, s *flow.Record) { d.DstVLAN = s.DstVLAN }},
	{ColProto, func(d, s *flow.Record) { d.Proto = s.Proto }},
	{ColTOS, func(d, s *flow.Record) { d.TOS = s.TOS }},
	{ColTCPFlags, func(d, s *flow.Record) { d.TCPFlags = s.TCPFlags }},
	{ColSrcMask, func(d, s *flow.Record) { d.SrcMask = s.SrcMask }},
	{ColDstMask, func(d, s *flow.Record) { d.DstMask = s.DstMask }},
	{ColSrcMAC, func(d, s *flow.Record) { d.SrcMAC = s.SrcMAC }},
	{ColDstMAC, func(d, s *flow.Record) { d.DstMAC = s.DstMAC }},
}

// project returns r with only the fields in cols, the others zero.
func project(r *flow.Record, cols Columns) flow.Record {
	var out flow.Record
	for _, f := range columnFields {
		if cols&f.col != 0 {
			f.copy(&out, r)
		}
	}
	return out
}

func TestColumnFieldsCoverAll(t *testing.T) {
	var all Columns
	for _, f := range columnFields {
		if bits.OnesCount32(uint32(f.col)) != 1 || all&f.col != 0 {
			t.Fatalf("column %#x is not a new single bit", f.col)
		}
		all |= f.col
	}
	if all != AllColumns {
		t.Fatalf("columns %#x, AllColumns %#x", all, AllColumns)
	}
	// Every field of a record with all fields set is copied.
	rng := rand.New(rand.NewPCG(5, 6))
	for range 100 {
		r := randomRecord(rng)
		if got := project(&r, AllColumns); got != r {
			t.Fatalf("project(all) = %+v, want %+v", got, r)
		}
	}
}

func TestDecodeSelected(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	sets := []struct {
		name string
		cols Columns
	}{
		{"none", 0},
		{"all", AllColumns},
		{"end without start", ColEnd},
		{"start without end", ColStart},
		{"top src by bytes", ColSrcAddr | ColStart | ColEnd | ColBytes | ColPackets},
		{"addresses", ColExporter | ColSrcAddr | ColDstAddr | ColNextHop},
		{"last columns", ColSrcMAC | ColDstMAC | ColDstMask},
	}
	for _, f := range columnFields {
		sets = append(sets, struct {
			name string
			cols Columns
		}{fmt.Sprintf("only %#x", f.col), f.col})
	}
	for range 20 {
		c := Columns(rng.Uint32()) & AllColumns
		sets = append(sets, struct {
			name string
			cols Columns
		}{fmt.Sprintf("random %#x", c), c})
	}
	var enc columnCodec
	for _, n := range []int{1, 7, 8, 9, 64, 1000} {
		recs := make([]flow.Record, n)
		for i := range recs {
			recs[i] = randomRecord(rng)
		}
		base := summarize(recs).minStart
		raw := enc.appendColumns(nil, recs, base)
		var full columnCodec
		want, err := full.decodeColumns(nil, raw, n, base)
		if err != nil {
			t.Fatalf("n=%d: full decode: %v", n, err)
		}
		equalRecords(t, want, recs)
		for _, set := range sets {
			t.Run(fmt.Sprintf("n=%d/%s", n, set.name), func(t *testing.T) {
				var dec columnCodec
				// Twice into the same buffer: fields outside the set
				// stay zero; a prefix already in dst is kept.
				var buf []flow.Record
				for round := range 2 {
					prefix := flow.Record{Bytes: 42}
					buf = append(buf[:0], prefix)
					buf, err = dec.decodeSelected(buf, raw, n, base, set.cols)
					if err != nil {
						t.Fatalf("round %d: %v", round, err)
					}
					if len(buf) != n+1 || buf[0] != prefix {
						t.Fatalf("round %d: %d records, first %+v", round, len(buf), buf[0])
					}
					for i := range want {
						if p := project(&want[i], set.cols); buf[i+1] != p {
							t.Fatalf("round %d record %d:\n got %+v\nwant %+v", round, i, buf[i+1], p)
						}
					}
				}
			})
		}
	}
}

// TestDecodeSelectedRejectsLikeFull corrupts valid blocks and checks that
// a selection fails exactly when the full decode fails.
func TestDecodeSelectedRejectsLikeFull(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	var enc columnCodec
	var failures int
	for trial := range 2000 {
		raw, n := damagedV1Payload(rng, &enc)
		var full, sel columnCodec
		_, errFull := full.decodeColumns(nil, raw, n, 0)
		cols := Columns(rng.Uint32()) & AllColumns
		_, errSel := sel.decodeSelected(nil, raw, n, 0, cols)
		if (errFull == nil) != (errSel == nil) {
			t.Fatalf("trial %d cols %#x: full decode error %v, selected %v", trial, cols, errFull, errSel)
		}
		if errFull != nil {
			failures++
		}
	}
	if failures == 0 {
		t.Fatal("no corrupted block failed: the test corrupts nothing")
	}
}

func TestReaderSetColumns(t *testing.T) {
	path, _ := writeSynthetic(t, t.TempDir(), 20_000, func(c *Config) { c.BlockRecords = 3000 })
	all, _ := readAll(t, path)
	cols := ColSrcAddr | ColDstPort | ColEnd | ColBytes
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Columns() != AllColumns {
		t.Fatalf("default columns %#x", r.Columns())
	}
	r.SetColumns(cols)
	var got []flow.Record
	for {
		got, err = r.Next(got)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	want := make([]flow.Record, len(all))
	for i := range all {
		want[i] = project(&all[i], cols)
	}
	equalRecords(t, got, want)
}

// FuzzDecodeSelected: on any payload, a column selection fails exactly
// when the full decode fails, and yields the selected fields of it.
func FuzzDecodeSelected(f *testing.F) {
	rng := rand.New(rand.NewPCG(25, 26))
	var c columnCodec
	for _, n := range []int{1, 3, 17} {
		recs := make([]flow.Record, n)
		for i := range recs {
			recs[i] = randomRecord(rng)
		}
		base := summarize(recs).minStart
		f.Add(uint16(n), uint32(ColSrcAddr|ColBytes), c.appendColumns(nil, recs, base))
	}
	f.Fuzz(func(t *testing.T, n uint16, cols uint32, raw []byte) {
		if n == 0 || int(n)*minBytesPerRecord > len(raw) {
			return // the block header check rejects these
		}
		var full, sel columnCodec
		want, errFull := full.decodeColumns(nil, raw, int(n), 0)
		got, errSel := sel.decodeSelected(nil, raw, int(n), 0, Columns(cols)&AllColumns)
		if (errFull == nil) != (errSel == nil) {
			t.Fatalf("full decode error %v, selected %v", errFull, errSel)
		}
		for i := range want {
			if p := project(&want[i], Columns(cols)); got[i] != p {
				t.Fatalf("record %d: %+v != %+v", i, got[i], p)
			}
		}
	})
}

// BenchmarkReadBlockColumns reads a file with all columns and with the
// columns of a top-N query by source address.
func BenchmarkReadBlockColumns(b *testing.B) {
	path, _ := writeSynthetic(b, b.TempDir(), 1<<17, nil)
	for _, bc := range []struct {
		name string
		cols Columns
	}{
		{"all", AllColumns},
		{"src_bytes", ColSrcAddr | ColStart | ColEnd | ColBytes | ColPackets},
		{"proto_dport", ColStart | ColEnd | ColBytes | ColPackets | ColProto | ColDstPort},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r, err := Open(path)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			r.SetColumns(bc.cols)
			var buf []flow.Record
			blocks := r.Blocks()
			b.ReportAllocs()
			read := 0
			for i := 0; b.Loop(); i++ {
				buf, err = r.ReadBlock(blocks[i%len(blocks)], buf[:0])
				if err != nil {
					b.Fatal(err)
				}
				read += len(buf)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(read), "ns/record")
		})
	}
}
