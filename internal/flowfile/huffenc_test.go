package flowfile

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/huff0"
)

// TestHuffCodeMatchesHuff0 codes chunks with a table huff0 built and
// checks that huff0 decodes them and that the bytes are the ones huff0's
// own coder writes with that table.
func TestHuffCodeMatchesHuff0(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	skewed := func(n int, spread float64) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.ExpFloat64() * spread)
		}
		return b
	}
	tests := []struct {
		name      string
		chunk     []byte
		tableFrom []byte // the bytes the table is built from (nil: chunk)
	}{
		{"two values", bytes.Repeat([]byte{7, 7, 7, 9}, 2048), nil},
		{"skewed 4 KiB", skewed(4096, 3), nil},
		{"skewed odd length", skewed(4099, 10), nil},
		{"wide 64 KiB", skewed(streamChunk, 40), nil},
		{"37 bytes", skewed(37, 1), skewed(4096, 1)},
		{"one symbol dominant", append(bytes.Repeat([]byte{0}, 5000), 1, 2, 3), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s huff0.Scratch
			from := tt.tableFrom
			if from == nil {
				from = tt.chunk
			}
			padded := append(append([]byte(nil), from...), allBytes[:]...)
			if _, _, err := huff0.Compress4X(padded, &s); err != nil {
				t.Fatalf("building the table: %v", err)
			}
			table := append([]byte(nil), s.OutTable...)
			var h huffCode
			h.fromScratch(&s)
			if !h.ok {
				t.Fatal("no code derived from huff0's table")
			}
			ours := h.append4X([]byte{0xee}, tt.chunk)
			if ours[0] != 0xee {
				t.Fatal("append4X overwrote dst")
			}
			ours = ours[1:]

			s.Reuse = huff0.ReusePolicyMust
			s.WantLogLess = 0
			theirs, _, err := huff0.Compress4X(tt.chunk, &s)
			if err == nil && !bytes.Equal(ours, theirs) {
				t.Errorf("coded %d bytes, huff0 %d, contents differ", len(ours), len(theirs))
			}

			var d huff0.Scratch
			ds, rest, err := huff0.ReadTable(append(table, ours...), &d)
			if err != nil {
				t.Fatalf("reading the table: %v", err)
			}
			got, err := ds.Decompress4X(rest, len(tt.chunk))
			if err != nil {
				t.Fatalf("huff0 cannot decode: %v", err)
			}
			if !bytes.Equal(got, tt.chunk) {
				t.Fatal("decoded bytes differ")
			}
		})
	}
}

// TestHuffCodeAssign checks the canonical code assignment on RFC 8878's
// example and rejects incomplete or invalid lengths.
func TestHuffCodeAssign(t *testing.T) {
	complete := func(first []uint8) *[256]uint8 {
		var l [256]uint8
		copy(l[:], first)
		return &l
	}
	var h huffCode
	// 256 codes of 8 bits: code b for byte b.
	eight := complete(nil)
	for i := range eight {
		eight[i] = 8
	}
	if !h.assign(eight) {
		t.Fatal("8-bit lengths rejected")
	}
	for b, e := range h.enc {
		if e != uint32(b)<<8|8 {
			t.Fatalf("byte %d: code %x, want %x", b, e>>8, b)
		}
	}
	// Byte 0 at 1 bit, 1 at 2 bits, ..., 253..255 cannot complete such a
	// tree within 11 bits: rejected.
	bad := complete(nil)
	for i := range bad {
		bad[i] = uint8(min(i+1, 11))
	}
	if h.assign(bad) {
		t.Error("incomplete lengths accepted")
	}
	zero := complete(nil)
	if h.assign(zero) {
		t.Error("zero lengths accepted")
	}
	// Byte 0 at 1 bit and the other 255 at 9 bits leave one 9-bit code
	// unused: incomplete.
	shape := complete(nil)
	shape[0] = 1
	for i := 1; i < 256; i++ {
		shape[i] = 9
	}
	if h.assign(shape) {
		t.Error("incomplete 1+9-bit lengths accepted")
	}
	shape[255] = 8 // 256 + 254 + 2 = 512: complete
	if !h.assign(shape) {
		t.Fatal("complete 1/8/9-bit lengths rejected")
	}
	// 9-bit codes (longest) first: byte 1 = 0, byte 2 = 1, ...; then the
	// 8-bit code of byte 255 = 254>>1 = 127; byte 0 = 1.
	if got := h.enc[1]; got != 0<<8|9 {
		t.Errorf("byte 1: %x", got)
	}
	if got := h.enc[254]; got != 253<<8|9 {
		t.Errorf("byte 254: %x", got)
	}
	if got := h.enc[255]; got != 127<<8|8 {
		t.Errorf("byte 255: %x", got)
	}
	if got := h.enc[0]; got != 1<<8|1 {
		t.Errorf("byte 0: %x", got)
	}
}

// FuzzHuffCode codes arbitrary chunks of 16 bytes or more with a table
// built from another arbitrary sample (plus every byte value, as the
// writer builds them) and checks that huff0 decodes them.
func FuzzHuffCode(f *testing.F) {
	f.Add(bytes.Repeat([]byte{1, 2, 3, 1}, 300), []byte{1, 1, 1, 2})
	f.Add([]byte("a chunk of text, a chunk of text, a chunk of text"), []byte("eeeeeeettttaaaaoooiiinnnssshhrr"))
	f.Fuzz(func(t *testing.T, chunk, sample []byte) {
		if len(chunk) < 16 || len(chunk) > streamChunk {
			return
		}
		var s huff0.Scratch
		padded := append(append(append([]byte(nil), sample...), sample...), allBytes[:]...)
		if _, _, err := huff0.Compress4X(padded, &s); err != nil {
			return // no table for a sample this flat
		}
		table := append([]byte(nil), s.OutTable...)
		var h huffCode
		h.fromScratch(&s)
		if !h.ok {
			t.Fatal("no code derived from huff0's table")
		}
		coded := h.append4X(nil, chunk)
		var d huff0.Scratch
		ds, rest, err := huff0.ReadTable(append(table, coded...), &d)
		if err != nil {
			t.Fatalf("reading the table: %v", err)
		}
		got, err := ds.Decompress4X(rest, len(chunk))
		if err != nil {
			t.Fatalf("huff0 cannot decode: %v", err)
		}
		if !bytes.Equal(got, chunk) {
			t.Fatal("decoded bytes differ")
		}
	})
}

// BenchmarkHuffCode codes a skewed 8 KiB plane with a kept table.
func BenchmarkHuffCode(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	chunk := make([]byte, 8192)
	for i := range chunk {
		chunk[i] = byte(rng.ExpFloat64() * 12)
	}
	var s huff0.Scratch
	if _, _, err := huff0.Compress4X(append(append([]byte(nil), chunk...), allBytes[:]...), &s); err != nil {
		b.Fatal(err)
	}
	var h huffCode
	h.fromScratch(&s)
	var out []byte
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		out = h.append4X(out[:0], chunk)
	}
}
