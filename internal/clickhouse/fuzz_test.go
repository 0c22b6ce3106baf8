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
	b := &batch{id: 5, rows: len(recs)}
	for i := range recs {
		b.data = AppendRow(b.data, &recs[i], b.id)
	}
	if _, err := sp.put(b); err != nil {
		f.Fatal(err)
	}
	good, _ := os.ReadFile(sp.path(5))
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(spoolMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(sp.path(5), data, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := sp.load(5)
		if err == nil && (len(got.data) != got.rows*RowSize || got.seq() != 5) {
			t.Fatalf("loaded an inconsistent batch: %d bytes for %d rows, seq %d", len(got.data), got.rows, got.seq())
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
