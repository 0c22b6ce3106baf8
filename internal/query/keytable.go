package query

import (
	"iter"
	"unsafe"
)

// keyTable maps aggregation keys to counters with open addressing. It
// hashes and compares only the key words in use (a Go map would hash and
// compare the whole 70-byte Key for every flow). An entry is the key's
// words in use, its families and its Counters, padded to whole cache
// lines (64 bytes for keys of up to two words, such as one address), so
// counting a flow of a known key touches one slot and one entry line.
// Entries live in fixed-size chunks that never move: growing allocates a
// new chunk instead of copying every entry, and counters' addresses stay
// valid.
type keyTable struct {
	words  int // key words in use
	stride int // words per entry
	// slots hold the entry index + 1 in the low 32 bits (0: empty) and
	// the key's hash tag in the high 32 bits; the tag picks the home slot
	// and spares comparing keys of other tags (and rehashing on growth).
	slots   []uint64
	n       int
	entries [][]uint64 // chunks of chunkEntries entries
	// touched sums what touch read, so that its loads are kept.
	touched uint64
}

const (
	chunkBits    = 12
	chunkEntries = 1 << chunkBits
	// counterWords is the size of Counters in words.
	counterWords = int(unsafe.Sizeof(Counters{}) / 8)
	// lineWords is the number of words in a cache line.
	lineWords = 8
)

// Counters must be plain words to be stored in an entry.
var _ [5]uint64 = [counterWords]uint64{}

func newKeyTable(words int) *keyTable {
	stride := (words + 1 + counterWords + lineWords - 1) / lineWords * lineWords
	return &keyTable{words: words, stride: stride, slots: make([]uint64, 1024)}
}

// tag hashes the words in use and the families of k.
func (t *keyTable) tag(k *Key) uint32 {
	h := uint64(k.fam)*0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019
	for i := 0; i < t.words; i++ {
		h ^= k.w[i]
		h *= 0x9E3779B97F4A7C15
		h ^= h >> 29
	}
	return uint32(h >> 32)
}

// entry returns the words of entry n: the key words in use, the
// families, then the counters.
func (t *keyTable) entry(n int) []uint64 {
	off := (n & (chunkEntries - 1)) * t.stride
	return t.entries[n>>chunkBits][off : off+t.stride : off+t.stride]
}

// counters returns the Counters stored in entry e.
func (t *keyTable) counters(e []uint64) *Counters {
	c := e[t.words+1 : t.words+1+counterWords]
	// Counters is counterWords plain 64-bit words (no pointers), so the
	// words of a []uint64 can hold one.
	return (*Counters)(unsafe.Pointer(&c[0]))
}

func (t *keyTable) equal(e []uint64, k *Key) bool {
	if e[t.words] != uint64(k.fam) {
		return false
	}
	for i := 0; i < t.words; i++ {
		if e[i] != k.w[i] {
			return false
		}
	}
	return true
}

// get returns the counters of k, adding a zero entry when k is new. The
// pointer stays valid while the table grows.
func (t *keyTable) get(k *Key) *Counters { return t.getTagged(k, t.tag(k)) }

// touch reads the home slots of tags and the entries they point to,
// without changing anything: independent loads whose cache misses the CPU
// serves in parallel, so that the lookups that follow find them cached.
func (t *keyTable) touch(tags []uint32) {
	mask := uint32(len(t.slots) - 1)
	var sum uint64
	for _, tag := range tags {
		if s := t.slots[tag&mask]; s != 0 {
			n := int(uint32(s)) - 1
			sum += t.entries[n>>chunkBits][(n&(chunkEntries-1))*t.stride]
		}
	}
	t.touched += sum
}

// getTagged is get for a key whose tag is known.
func (t *keyTable) getTagged(k *Key, tag uint32) *Counters {
	mask := uint32(len(t.slots) - 1)
	for i := tag & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			e := t.add(k)
			t.slots[i] = uint64(tag)<<32 | uint64(t.n)
			if 2*t.n > len(t.slots) {
				t.grow()
			}
			return t.counters(e)
		}
		if uint32(s>>32) == tag {
			if e := t.entry(int(uint32(s)) - 1); t.equal(e, k) {
				return t.counters(e)
			}
		}
	}
}

// add stores k as a new entry with zero counters and returns it.
func (t *keyTable) add(k *Key) []uint64 {
	n := t.n
	if n&(chunkEntries-1) == 0 {
		t.entries = append(t.entries, make([]uint64, chunkEntries*t.stride))
	}
	t.n++
	e := t.entry(n)
	copy(e, k.w[:t.words])
	e[t.words] = uint64(k.fam)
	return e
}

func (t *keyTable) grow() {
	old := t.slots
	t.slots = make([]uint64, 2*len(old))
	mask := uint32(len(t.slots) - 1)
	for _, s := range old {
		if s == 0 {
			continue
		}
		i := uint32(s>>32) & mask
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}

func (t *keyTable) len() int { return t.n }

// all yields every key and its counters, in insertion order.
func (t *keyTable) all() iter.Seq2[Key, *Counters] {
	return func(yield func(Key, *Counters) bool) {
		for n := range t.n {
			e := t.entry(n)
			var k Key
			copy(k.w[:], e[:t.words])
			k.fam = uint16(e[t.words])
			if !yield(k, t.counters(e)) {
				return
			}
		}
	}
}
