package query

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestKeyTable checks the table against a Go map over enough keys to
// fill several chunks and grow the slots, with keys that differ only in
// their families or in their last word in use.
func TestKeyTable(t *testing.T) {
	for _, words := range []int{1, 2, 3, 8} {
		t.Run(fmt.Sprintf("words=%d", words), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(words), 1))
			table := newKeyTable(words)
			want := map[Key]uint64{}
			for i := range 3 * chunkEntries {
				var k Key
				for j := range words {
					k.w[j] = rng.Uint64N(uint64(1 + i/16)) // repeats
				}
				k.fam = uint16(rng.IntN(3))
				table.get(&k).Flows++
				want[k]++
			}
			if table.len() != len(want) {
				t.Fatalf("%d keys, want %d", table.len(), len(want))
			}
			seen := 0
			for k, c := range table.all() {
				if c.Flows != want[k] {
					t.Fatalf("key %+v: %d flows, want %d", k, c.Flows, want[k])
				}
				seen++
			}
			if seen != len(want) {
				t.Fatalf("all yielded %d keys, want %d", seen, len(want))
			}
			// Counters pointers survive growth.
			var first Key
			p := table.get(&first)
			for i := range 4 * chunkEntries {
				k := Key{w: [maxKeyWords]uint64{uint64(i) + 1<<40}}
				table.get(&k)
			}
			if table.get(&first) != p {
				t.Fatal("counters moved when the table grew")
			}
		})
	}
}

func BenchmarkKeyTable(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make([]Key, 1<<16)
	for i := range keys {
		keys[i] = Key{w: [maxKeyWords]uint64{0, rng.Uint64N(20000)}, fam: 1}
	}
	b.ReportAllocs()
	t := newKeyTable(2)
	for i := 0; b.Loop(); i++ {
		t.get(&keys[i&(len(keys)-1)]).Flows++
	}
}
