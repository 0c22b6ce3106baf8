package cuflow

import (
	"encoding/binary"
	"net/netip"
)

// hostSlot is one entry of hostTable: the address (16-byte form, IPv4
// mapped) and its counter, 64 bytes, one cache line.
type hostSlot struct {
	key [2]uint64
	c   counter
}

// used reports whether the slot holds a host: every counted flow adds at
// least one flow, so a used slot has a non-zero flow count.
func (s *hostSlot) used() bool { return s.c.flows[0]|s.c.flows[1] != 0 }

// hostTable is an open-addressing hash table from address to counter for
// the scoreboard. Unlike a map[netip.Addr]int it finds a host's counter
// with one cache miss, and it allocates only when it grows.
type hostTable struct {
	slots []hostSlot
	n     int
}

const hostTableMin = 1 << 12

func hostKey(a netip.Addr) [2]uint64 {
	b := a.As16()
	return [2]uint64{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func hostHash(k [2]uint64) uint64 {
	h := (k[0]^0x9e3779b97f4a7c15)*0xbf58476d1ce4e5b9 ^ k[1]
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}

// counter returns the counter of a, adding the host if new. The caller
// must add at least one flow to it.
func (t *hostTable) counter(a netip.Addr) *counter {
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	k := hostKey(a)
	mask := uint64(len(t.slots) - 1)
	for i := hostHash(k) & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if !s.used() {
			s.key = k
			t.n++
			return &s.c
		}
		if s.key == k {
			return &s.c
		}
	}
}

func (t *hostTable) grow() {
	old := t.slots
	t.slots = make([]hostSlot, max(hostTableMin, 2*len(old)))
	mask := uint64(len(t.slots) - 1)
	for j := range old {
		if !old[j].used() {
			continue
		}
		i := hostHash(old[j].key) & mask
		for t.slots[i].used() {
			i = (i + 1) & mask
		}
		t.slots[i] = old[j]
	}
}

// reset empties the table, keeping its memory unless it is much larger
// than the last file needed.
func (t *hostTable) reset() {
	if len(t.slots) > hostTableMin && 8*t.n < len(t.slots) {
		t.slots = make([]hostSlot, max(hostTableMin, len(t.slots)/4))
	} else {
		clear(t.slots)
	}
	t.n = 0
}
