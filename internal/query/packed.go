package query

import (
	"encoding/binary"
	"iter"
	"math/bits"
	"unsafe"

	"github.com/flowscan/flowscan/internal/flow"
)

// Most keys fit in one 64-bit word when their addresses are IPv4: an
// IPv4 address (or the zero address) takes 33 bits (a family bit and the
// address), a port 16, an AS 32. For such keys the aggregation packs the
// key into a uint64 and counts it in a packedTable, whose slots hold the
// key and its counters inline: one probe, usually one cache line, per
// flow. Flows whose key does not pack (an IPv6 address) go to the general
// keyTable; a key lives in exactly one of the two tables.

// packedField is where one key field lies in a packed key.
type packedField struct {
	shift, width uint8
}

// maxDirectBits is the widest packed key (a port, a VLAN, two one-byte
// fields) counted in a direct table: one slot per possible key, no hash.
const maxDirectBits = 16

// packedBits is the width of the packed keys of layout.
func packedBits(layout []packedField) int {
	if len(layout) == 0 {
		return 0
	}
	last := layout[len(layout)-1]
	return int(last.shift) + int(last.width)
}

// packLayout places the key fields in a packed key, or is nil when they
// need more than 64 bits.
func packLayout(keys []KeyField) []packedField {
	var out []packedField
	shift := 0
	for _, kf := range keys {
		w := fieldBits(kf.f)
		if w == 0 || shift+w > 64 {
			return nil
		}
		out = append(out, packedField{shift: uint8(shift), width: uint8(w)})
		shift += w
	}
	return out
}

// fieldBits is the number of bits a key field takes packed (0: does not
// pack).
func fieldBits(f field) int {
	switch f {
	case fieldSrcAddr, fieldDstAddr, fieldExporter, fieldNextHop:
		return 33
	case fieldProto, fieldTOS, fieldTCPFlags, fieldSrcMask, fieldDstMask:
		return 8
	case fieldSrcPort, fieldDstPort, fieldSrcVLAN, fieldDstVLAN:
		return 16
	case fieldInIf, fieldOutIf, fieldSrcAS, fieldDstAS:
		return 32
	}
	return 0
}

// unpackKey turns a packed key back into the Key makeKey builds for the
// same flow.
func unpackKey(p uint64, keys []KeyField, layout []packedField) Key {
	var k Key
	i, a := 0, 0
	for j, kf := range keys {
		pf := layout[j]
		v := p >> pf.shift
		if pf.width < 64 {
			v &= 1<<pf.width - 1
		}
		if isAddrField(kf.f) {
			if v>>32 != 0 {
				k.fam |= 1 << (2 * a)
				k.w[i+1] = v & 0xffffffff
			}
			i += 2
			a++
			continue
		}
		k.w[i] = v
		i++
	}
	return k
}

// packedEntry is one slot of a packedTable: a key and its counters.
// Flows is 0 in an empty slot. Its size, 48 bytes, is built into
// prefetch_amd64.s.
type packedEntry struct {
	key uint64
	c   Counters
}

// packedTable maps packed keys to counters with open addressing (linear
// probing) over inline entries.
type packedTable struct {
	slots []packedEntry
	// mem is the mapping that holds slots (nil: the Go heap); release
	// unmaps it.
	mem   []byte
	shift uint8 // 64 - log2(len(slots))
	// direct tables have a slot for every key (see newDirectTable).
	direct bool
	n      int
	// touched sums the keys add read ahead (without prefetching), so
	// that those loads are kept.
	touched uint64
}

// newDirectTable returns a table of one slot per key of up to bits bits
// (at most maxDirectBits): a key's slot is the key itself, so a table
// never probes, collides or grows.
func newDirectTable(bits int) *packedTable {
	t := &packedTable{direct: true}
	t.slots, t.mem = mapEntries(1 << bits)
	return t
}

// newPackedTable returns an empty hashed table of 1<<logSize slots.
func newPackedTable(logSize int) *packedTable {
	t := &packedTable{shift: uint8(64 - logSize)}
	t.slots, t.mem = mapEntries(1 << logSize)
	return t
}

// release frees the table's memory; the table must not be used after.
func (t *packedTable) release() {
	unmapEntries(t.mem)
	t.slots, t.mem, t.n = nil, nil, 0
}

// home is the first slot probed for key k.
func (t *packedTable) home(k uint64) uint64 {
	if t.direct {
		return k
	}
	return (k * 0x9E3779B97F4A7C15) >> t.shift
}

// add counts the flows recs[sel[j]] under keys[j]. When the table has
// room for every key being new, it first prefetches the home slot of
// every key (or, without a prefetch instruction, reads it: loads that do
// not depend on each other), so that their cache misses overlap; the
// counting that follows then mostly finds its slots in the cache, and
// needs no growth check. homes is scratch space of len(sel).
func (t *packedTable) add(recs []flow.Record, sel []int32, keys []uint64, homes []uint32) {
	if !t.direct && 2*(t.n+len(sel)) > len(t.slots) {
		// Maybe not room for all: one at a time, growing as needed (a
		// small table stays small while few keys are new).
		for j, i := range sel {
			r := &recs[i]
			t.merge(keys[j], &Counters{Flows: 1, Packets: r.Packets, Bytes: r.Bytes, First: r.Start, Last: r.End})
		}
		return
	}
	homes = homes[:len(sel)]
	keys = keys[:len(sel)]
	slots := t.slots
	if hasPrefetch {
		for j, k := range keys {
			homes[j] = uint32(t.home(k))
		}
		prefetchEntries(unsafe.Pointer(&slots[0]), homes)
	} else {
		var sum uint64
		for j, k := range keys {
			h := t.home(k)
			homes[j] = uint32(h)
			sum += slots[h].key
		}
		t.touched += sum
	}
	mask := uint32(len(slots) - 1)
	added := 0
	for j, i := range sel {
		k := keys[j]
		r := &recs[i]
		for h := homes[j]; ; h = (h + 1) & mask {
			e := &slots[h]
			if e.c.Flows == 0 {
				e.key = k
				e.c = Counters{Flows: 1, Packets: r.Packets, Bytes: r.Bytes, First: r.Start, Last: r.End}
				added++
				break
			}
			if e.key == k {
				c := &e.c
				c.Flows++
				c.Packets += r.Packets
				c.Bytes += r.Bytes
				c.First = min(c.First, r.Start)
				c.Last = max(c.Last, r.End)
				break
			}
		}
	}
	t.n += added
}

// merge adds c to the counters of k, adding k when it is new.
func (t *packedTable) merge(k uint64, c *Counters) {
	mask := uint64(len(t.slots) - 1)
	for h := t.home(k); ; h = (h + 1) & mask {
		e := &t.slots[h]
		if e.c.Flows == 0 {
			e.key = k
			e.c = *c
			t.n++
			if !t.direct && 2*t.n > len(t.slots) {
				t.grow()
			}
			return
		}
		if e.key == k {
			e.c.Merge(c)
			return
		}
	}
}

// grow makes the table four times larger while it is small (fewer
// rehashes on the way to a large table), then twice.
func (t *packedTable) grow() {
	old, oldMem := t.slots, t.mem
	factor := 2
	if len(old) < 1<<16 {
		factor = 4
	}
	t.slots, t.mem = mapEntries(factor * len(old))
	defer unmapEntries(oldMem)
	t.shift -= uint8(factor / 2)
	mask := uint64(len(t.slots) - 1)
	for i := range old {
		e := &old[i]
		if e.c.Flows == 0 {
			continue
		}
		h := t.home(e.key)
		for t.slots[h].c.Flows != 0 {
			h = (h + 1) & mask
		}
		t.slots[h] = *e
	}
}

// all yields every key and its counters.
func (t *packedTable) all() iter.Seq2[uint64, *Counters] {
	return func(yield func(uint64, *Counters) bool) {
		for i := range t.slots {
			e := &t.slots[i]
			if e.c.Flows != 0 && !yield(e.key, &e.c) {
				return
			}
		}
	}
}

// packKeys sets keys[j] to the packed key of recs[sel[j]]; for a flow
// whose key does not pack (an IPv6 address) it sets skip[j] and returns
// true among its results.
func packKeys(recs []flow.Record, sel []int32, keyFields []KeyField, layout []packedField, keys []uint64, skip []bool) (anySkipped bool) {
	keys = keys[:len(sel)]
	clear(keys)
	for f, kf := range keyFields {
		shift := layout[f].shift
		if isAddrField(kf.f) {
			mask := uint64(0xffffffff)
			if kf.Mask4 > 0 {
				mask &^= uint64(1)<<(32-kf.Mask4) - 1
			}
			if packAddrs(kf.f, recs, sel, keys, skip, shift, mask) {
				anySkipped = true
			}
			continue
		}
		packNums(kf.f, recs, sel, keys, shift)
	}
	return anySkipped
}

// packNums ors numeric field f of recs[sel[j]] into keys[j] at shift.
func packNums(f field, recs []flow.Record, sel []int32, keys []uint64, shift uint8) {
	switch f {
	case fieldSrcPort:
		for j, i := range sel {
			keys[j] |= uint64(recs[i].SrcPort) << shift
		}
	case fieldDstPort:
		for j, i := range sel {
			keys[j] |= uint64(recs[i].DstPort) << shift
		}
	case fieldProto:
		for j, i := range sel {
			keys[j] |= uint64(recs[i].Proto) << shift
		}
	default:
		for j, i := range sel {
			keys[j] |= numValue(&recs[i], f) << shift
		}
	}
}

// packAddrs ors address field f of recs[sel[j]] (family bit, IPv4 address
// and mask) into keys[j] at shift, or sets skip[j] for an IPv6 address.
func packAddrs(f field, recs []flow.Record, sel []int32, keys []uint64, skip []bool, shift uint8, mask uint64) (anySkipped bool) {
	for j, i := range sel {
		a := addrField(&recs[i], f)
		switch {
		case a.Is4():
			b := a.As4()
			keys[j] |= (1<<32 | uint64(binary.BigEndian.Uint32(b[:]))&mask) << shift
		case !a.IsValid():
		case a.Is4In6():
			b := a.Unmap().As4()
			keys[j] |= (1<<32 | uint64(binary.BigEndian.Uint32(b[:]))&mask) << shift
		default:
			skip[j] = true
			anySkipped = true
		}
	}
	return anySkipped
}

// logSizeFor is the log2 of a slot count that holds n entries at most half
// full.
func logSizeFor(n int) int { return max(10, bits.Len(uint(2*n))) }

// The entry size prefetch_amd64.s multiplies by.
var _ [48]byte = [unsafe.Sizeof(packedEntry{})]byte{}
