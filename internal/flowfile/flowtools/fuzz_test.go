package flowtools

import (
	"bytes"
	"compress/zlib"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowscan/flowscan/internal/flow"
)

func fuzzSeeds(f *testing.F) {
	for _, big := range []bool{false, true} {
		o := handOrder{big: big}
		f.Add(append(handHeader(o, FlagDone), handRecords(o)...))
		var zb bytes.Buffer
		zw := zlib.NewWriter(&zb)
		zw.Write(handRecords(o))
		zw.Close()
		f.Add(append(handHeader(o, FlagDone|FlagCompress), zb.Bytes()...))
	}
	if b, err := os.ReadFile(filepath.Join("testdata", "ft-v05.2026-11-23.120000+0000")); err == nil {
		f.Add(b)
	}
	f.Add([]byte{0xCF, 0x10, 1, 3, 8, 0, 0, 0})
	f.Add([]byte{0xCF, 0x10, 2, 3, 0, 0, 0, 12, 0, 2, 0, 2})
}

// maxFuzzRecords bounds how much of a (possibly highly compressed) body
// one fuzz input may decode.
const maxFuzzRecords = 1 << 16

// FuzzReader feeds arbitrary bytes to NewReader and reads the records: it
// must never panic, and the counts must be consistent.
func FuzzReader(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		h := r.Header()
		if h.Size < fixedLen || h.Size > MaxHeaderSize || h.Size > len(data) {
			t.Fatalf("header size %d of %d bytes", h.Size, len(data))
		}

		n := 0
		for n < maxFuzzRecords {
			batch := make([]flow.Record, 0, 8)
			batch, err = r.Next(batch)
			if len(batch) > BatchSize {
				t.Fatalf("batch of %d", len(batch))
			}
			n += len(batch)
			if err != nil {
				break
			}
		}
		if err == nil || err == io.EOF {
			if uint64(n) != r.Records() {
				t.Fatalf("read %d, Records() = %d", n, r.Records())
			}
		}
		r.Close()
	})
}

// FuzzOpen is FuzzReader through a file, as the scanner opens them.
func FuzzOpen(f *testing.F) {
	fuzzSeeds(f)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "ft-v05.2026-11-23.120000+0000")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Open(path)
		if err != nil {
			return
		}
		defer r.Close()
		var buf []flow.Record
		for i := 0; i < maxFuzzRecords/BatchSize; i++ {
			if buf, err = r.Next(buf[:0]); err != nil {
				return
			}
		}
	})
}
