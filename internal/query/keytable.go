package query

// keyTable maps aggregation keys to counters with open addressing. It
// hashes and compares only the key words in use (a Go map would hash and
// compare the whole 70-byte Key for every flow), and grows without
// moving counters' keys.
type keyTable struct {
	words   int      // key words in use
	slots   []uint32 // entry index + 1; 0 means empty
	entries []keyEntry
}

type keyEntry struct {
	key Key
	c   Counters
}

func newKeyTable(words int) *keyTable {
	return &keyTable{words: words, slots: make([]uint32, 1024)}
}

func (t *keyTable) hash(k *Key) uint64 {
	h := uint64(k.fam)*0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019
	for i := 0; i < t.words; i++ {
		h ^= k.w[i]
		h *= 0x9E3779B97F4A7C15
		h ^= h >> 29
	}
	return h
}

func (t *keyTable) equal(a, b *Key) bool {
	if a.fam != b.fam {
		return false
	}
	for i := 0; i < t.words; i++ {
		if a.w[i] != b.w[i] {
			return false
		}
	}
	return true
}

// get returns the counters of k, adding a zero entry when k is new.
func (t *keyTable) get(k *Key) *Counters {
	mask := uint64(len(t.slots) - 1)
	for i := t.hash(k) & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			t.entries = append(t.entries, keyEntry{key: *k})
			t.slots[i] = uint32(len(t.entries))
			if 2*len(t.entries) > len(t.slots) {
				t.grow()
			}
			return &t.entries[len(t.entries)-1].c
		}
		if e := &t.entries[s-1]; t.equal(&e.key, k) {
			return &e.c
		}
	}
}

// lookup returns the counters of k, or nil.
func (t *keyTable) lookup(k *Key) *Counters {
	mask := uint64(len(t.slots) - 1)
	for i := t.hash(k) & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return nil
		}
		if e := &t.entries[s-1]; t.equal(&e.key, k) {
			return &e.c
		}
	}
}

func (t *keyTable) grow() {
	t.slots = make([]uint32, 2*len(t.slots))
	mask := uint64(len(t.slots) - 1)
	for n := range t.entries {
		i := t.hash(&t.entries[n].key) & mask
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = uint32(n + 1)
	}
}

func (t *keyTable) len() int { return len(t.entries) }
