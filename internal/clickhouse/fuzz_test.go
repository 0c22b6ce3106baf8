package clickhouse

import (
	"os"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
)

// FuzzSpoolLoad: a damaged spool file (disk error, truncated write of an
// older version) is reported as an error, never a panic or a batch of the
// wrong size.
func FuzzSpoolLoad(f *testing.F) {
	dir := f.TempDir()
	sp, err := openSpool(dir)
	if err != nil {
		f.Fatal(err)
	}
	recs := testFlows(1, 3, time.Now())
	for _, rowBinary := range []bool{false, true} {
		if _, err := sp.put(testBatch(5, recs, rowBinary, false)); err != nil {
			f.Fatal(err)
		}
		good, _ := os.ReadFile(sp.path(5))
		f.Add(good)
		f.Add(good[:len(good)/2])
	}
	f.Add([]byte(spoolMagic))
	f.Add([]byte(spoolMagicRowBinary))
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(sp.path(5), data, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := sp.load(5)
		if err != nil {
			return
		}
		if got.seq() != 5 {
			t.Fatalf("loaded batch %d from the file of batch 5", got.seq())
		}
		if got.rowBinary {
			if len(got.data) != got.rows*RowSize {
				t.Fatalf("loaded an inconsistent batch: %d bytes for %d rows", len(got.data), got.rows)
			}
			return
		}
		if rows, _, err := parseNative(got.data); err != nil || rows != got.rows {
			t.Fatalf("loaded a Native batch of %d rows that parses as %d rows (%v)", got.rows, rows, err)
		}
	})
}

// FuzzParseNative: any bytes are either a Native block of the raw table
// whose rows survive selecting them all again, or an error, never a
// panic.
func FuzzParseNative(f *testing.F) {
	recs := testFlows(3, 4, time.Now())
	good := testBatch(9, recs, false, false).data
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(good[:40])
	f.Add([]byte{27, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, cols, err := parseNative(data)
		if err != nil {
			return
		}
		again, n := selectNative(rows, &cols, func(int) bool { return true })
		if n != rows || string(again) != string(data) {
			t.Fatalf("a block of %d rows does not survive selecting all of them (%d rows, %d vs %d bytes)", rows, n, len(again), len(data))
		}
		var r flow.Record
		for i := range rows {
			nativeRow(&cols, i, &r)
		}
	})
}

// FuzzDecodeRow: any bytes decode or fail cleanly, and a decoded row
// encodes back to the same bytes when its times are whole seconds.
func FuzzDecodeRow(f *testing.F) {
	recs := testFlows(2, 2, time.Now())
	for i := range recs {
		f.Add(AppendRow(nil, &recs[i], 9))
	}
	f.Add(make([]byte, RowSize-1))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r flow.Record
		id, err := DecodeRow(data, &r)
		if err != nil {
			return
		}
		again := AppendRow(nil, &r, id)
		var r2 flow.Record
		if _, err := DecodeRow(again, &r2); err != nil || r2 != r {
			t.Fatalf("row does not survive a second round trip: %+v vs %+v (%v)", r, r2, err)
		}
	})
}
