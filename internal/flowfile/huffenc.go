package flowfile

// The writer's own Huffman coder for chunks coded with a kept table. huff0
// counts every byte of its input before it codes it (its histogram, to
// check that the kept table covers the input and to detect a repeated
// byte), which costs more than the coding itself; a kept table covers
// every byte value and the chunk has been sampled, so the writer codes
// such chunks itself. The output is what huff0's Compress4X would write
// with the same table (the 4-stream format of zstd's literals section,
// RFC 8878 section 4.2), and readers decode it with huff0.

import (
	"encoding/binary"

	"github.com/klauspost/compress/huff0"
)

// maxHuffBits is the longest code a huff0 table holds.
const maxHuffBits = 11

// huffCode is a prefix code for every byte value: for byte b, the code in
// the high bits and its length in the low 8 bits of enc[b].
type huffCode struct {
	enc [256]uint32
	ok  bool // enc holds a code
}

// fromScratch derives the code of the table huff0 keeps in s (the one its
// last Compress4X built), for every byte value. It reads the code lengths
// back through EstimateSize, seven at a time (a count of 8·16^k for byte
// k of a group makes the estimate the lengths' base-16 number), and
// assigns the codes the way a zstd decoder does. It leaves ok false when
// the table does not cover every byte value.
func (h *huffCode) fromScratch(s *huff0.Scratch) {
	h.ok = false
	var lengths [256]uint8
	var hist [256]uint32
	for lo := 0; lo < 256; lo += 7 {
		hi := min(lo+7, 256)
		for b := lo; b < hi; b++ {
			hist[b] = 8 << (4 * (b - lo))
		}
		est := s.EstimateSize(&hist)
		for b := lo; b < hi; b++ {
			hist[b] = 0
		}
		if est < 0 {
			return
		}
		for b := lo; b < hi; b++ {
			lengths[b] = uint8(est >> (4 * (b - lo)) & 15)
		}
	}
	h.ok = h.assign(&lengths)
}

// assign gives every byte value its canonical code of lengths[b] bits as
// RFC 8878 defines them for Huffman-coded literals: the longest codes get
// the smallest values, and codes of one length go to byte values in
// increasing order. It reports false when some length is 0 or too long,
// or the lengths do not make a complete prefix code.
func (h *huffCode) assign(lengths *[256]uint8) bool {
	var count [maxHuffBits + 1]uint32
	longest := 0
	for _, l := range lengths {
		if l == 0 || l > maxHuffBits {
			return false
		}
		count[l]++
		longest = max(longest, int(l))
	}
	// next[l] is the next code of length l, aligned to longest bits.
	var next [maxHuffBits + 1]uint32
	var at uint32
	for l := longest; l >= 1; l-- {
		next[l] = at
		at += count[l] << (longest - l)
	}
	if at != 1<<longest {
		return false
	}
	for b, l := range lengths {
		shift := uint(longest) - uint(l)
		h.enc[b] = (next[l]>>shift)<<8 | uint32(l)
		next[l] += 1 << shift
	}
	return true
}

// append4X appends src (at least 4 bytes) coded with h in 4 streams: a
// 6-byte jump table (the coded sizes of streams 1 to 3 as little-endian
// uint16), then the streams of the four quarters of src (the first three
// (len+3)/4 bytes each, the last the rest).
func (h *huffCode) append4X(dst, src []byte) []byte {
	quarter := (len(src) + 3) / 4
	at := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0)
	for k := range 4 {
		seg := src[min(k*quarter, len(src)):min((k+1)*quarter, len(src))]
		before := len(dst)
		dst = h.appendStream(dst, seg)
		if k < 3 {
			binary.LittleEndian.PutUint16(dst[at+2*k:], uint16(len(dst)-before))
		}
	}
	return dst
}

// appendStream appends one backward bit stream of src: the codes of the
// last byte first, each code's most significant bit highest, so that a
// decoder reading from the end meets the first byte's code first; then a
// 1 bit marking the end, padded with zeros to a byte.
func (h *huffCode) appendStream(dst, src []byte) []byte {
	// Room for every code at the longest length, plus 8 bytes that a
	// whole-word store may write past the end.
	at := len(dst)
	dst = grow(dst, (len(src)*maxHuffBits+7)/8+16)
	out := dst[at:]
	pos := 0
	var acc uint64
	var n uint
	enc := &h.enc
	i := len(src)
	for ; i >= 4; i -= 4 {
		// 4 codes of at most 11 bits on top of at most 7 pending bits,
		// joined in pairs first so that only the last step waits for n.
		s := src[i-4 : i : i]
		e3, e2, e1, e0 := enc[s[3]], enc[s[2]], enc[s[1]], enc[s[0]]
		l3, l1 := uint(e3&0xff), uint(e1&0xff)
		lo := uint64(e3>>8) | uint64(e2>>8)<<l3
		hi := uint64(e1>>8) | uint64(e0>>8)<<l1
		llo := l3 + uint(e2&0xff)
		acc |= (lo | hi<<llo) << n
		n += llo + l1 + uint(e0&0xff)
		binary.LittleEndian.PutUint64(out[pos:], acc)
		pos += int(n >> 3)
		acc >>= n &^ 7
		n &= 7
	}
	for i > 0 {
		i--
		e := enc[src[i]]
		acc |= uint64(e>>8) << n
		n += uint(e & 0xff)
	}
	acc |= 1 << n
	n++
	binary.LittleEndian.PutUint64(out[pos:], acc)
	pos += int(n+7) >> 3
	return dst[:at+pos]
}
