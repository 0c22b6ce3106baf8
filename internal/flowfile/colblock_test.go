package flowfile

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestColBlockRecords checks that records added to a colBlock in batches
// of any size come back unchanged (every field, IPv6 and zoned addresses),
// and that the statistics gathered batch by batch equal those of one add.
func TestColBlockRecords(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct {
		name  string
		n     int
		synth bool
		batch int
	}{
		{"random one by one", 50, false, 1},
		{"random in 30s", 1000, false, 30},
		{"synthetic in 30s", 8192, true, 30},
		{"synthetic at once", 8192, true, 8192},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs := sectionsRecords(rng, tc.n, tc.synth)
			b := newColBlock(tc.n + 5)
			for i := 0; i < len(recs); i += tc.batch {
				b.add(recs[i:min(i+tc.batch, len(recs))])
			}
			if b.n != tc.n {
				t.Fatalf("n = %d, want %d", b.n, tc.n)
			}
			got := b.appendRecords(nil)
			for i := range recs {
				if got[i] != recs[i] {
					t.Fatalf("record %d:\n got %+v\nwant %+v", i, got[i], recs[i])
				}
			}
			one := newColBlock(tc.n)
			one.add(recs)
			if one.st != b.st {
				t.Errorf("statistics batch by batch %+v, at once %+v", b.st, one.st)
			}
			// The encodings are the same too.
			var c1, c2 columnCodec
			p1, _, _ := c1.appendColBlock(nil, b)
			p2, _, _ := c2.appendSections(nil, recs)
			if !bytes.Equal(p1, p2) {
				t.Error("a block filled batch by batch encodes differently from its records")
			}
		})
	}
}

// TestColBlockFull checks that add stops at the block's capacity and that
// reset empties it for reuse.
func TestColBlockFull(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	recs := sectionsRecords(rng, 100, false)
	b := newColBlock(64)
	b.add(recs[:40])
	b.add(recs[40:])
	if b.n != 64 {
		t.Fatalf("n = %d after adding 100 to a block of 64", b.n)
	}
	b.reset()
	b.add(recs[50:60])
	got := b.appendRecords(nil)
	if len(got) != 10 || got[0] != recs[50] || got[9] != recs[59] {
		t.Fatalf("after reset: %d records, first %+v", len(got), got[0])
	}
}

// BenchmarkColBlockAdd measures Writer.Write's share of the writer's work:
// transposing the generator's records into a column block, 30 at a time
// (a v5 datagram), with the plane statistics.
func BenchmarkColBlockAdd(b *testing.B) {
	recs := codecDatasets(DefaultBlockRecords)[1].recs
	blk := newColBlock(DefaultBlockRecords)
	cpuPerFlow(b, len(recs), func(int) {
		blk.reset()
		for i := 0; i < len(recs); i += 30 {
			blk.add(recs[i:min(i+30, len(recs))])
		}
	})
}
