package flowfile

// The version-2 data block payload ("sections", block codec 2): one
// separately coded section per column, behind a table of section lengths,
// so that a reader decodes only the columns it needs. Inside a section the
// column is split into byte planes as in version 1, and every plane is a
// stream of chunks stored raw, as one repeated byte, or Huffman-coded
// (huff0, zstd's literal coder): the order-0 entropy coding is what zstd
// got out of these planes, at a fraction of its cost.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"net/netip"

	"github.com/klauspost/compress/huff0"

	"github.com/flowscan/flowscan/internal/flow"
)

const (
	numColumns = numAddrColumns + numIntColumns
	// sectionTableLen is the size of the section length table that opens
	// a sections payload: one uint32 per column.
	sectionTableLen = 4 * numColumns
	// streamChunk is the most bytes one chunk of a stream decodes to.
	streamChunk = 1 << 16
)

// Chunk kinds, the low two bits of a chunk header.
const (
	chunkRaw  = 0 // the chunk's bytes as they are
	chunkHuff = 1 // a huff0 table and 4-stream Huffman-coded bytes
	chunkRLE  = 2 // one byte, repeated for the whole chunk
	chunkPack = 3 // a dictionary of up to 16 bytes and bit-packed indices
)

// dictFlag marks an integer section in dictionary form (in its width byte).
const dictFlag = 0x80

// ---- encoder ----

// addrStats is what the encoder's first pass learns about an address
// column: how many addresses of each kind, and which bytes vary.
type addrStats struct {
	n4, n6, nz    int
	or4, and4     uint32
	or6lo, and6lo uint64
	or6hi, and6hi uint64
	firstKind     uint8
	kindsUniform  bool
	kindsInitDone bool
}

func (s *addrStats) reset() {
	*s = addrStats{and4: ^uint32(0), and6lo: ^uint64(0), and6hi: ^uint64(0), kindsUniform: true}
}

func addrKind(a netip.Addr) uint8 {
	switch {
	case !a.IsValid():
		return kindZero
	case a.Is4():
		return kindV4
	case a.Zone() != "":
		return kindV6Zone
	default:
		return kindV6
	}
}

// encodeStats is what the encoder needs to know about a block before it
// lays out the planes: the block header summary and the bits that vary in
// every column. colBlock.add gathers it while it transposes the records;
// finish completes it.
type encodeStats struct {
	sum      blockSummary
	maxStart int64
	or, and  [numIntColumns]uint64
	addrs    [numAddrColumns]addrStats
}

// reset empties st for a new block.
func (st *encodeStats) reset() {
	st.sum = blockSummary{minStart: math.MaxInt64, maxEnd: math.MinInt64}
	st.maxStart = math.MinInt64
	for i := range st.or {
		st.or[i], st.and[i] = 0, ^uint64(0)
	}
	for i := range st.addrs {
		st.addrs[i].reset()
	}
}

// finish completes the statistics of a block of at least one record.
func (st *encodeStats) finish() {
	or, and := &st.or, &st.and
	orPorts, andPorts := or[colSrcPort], and[colSrcPort]
	for k, col := range [4]int{colSrcPort, colDstPort, colSrcVLAN, colDstVLAN} {
		or[col], and[col] = orPorts>>(16*k)&0xffff, andPorts>>(16*k)&0xffff
	}
	orSmall, andSmall := or[colProto], and[colProto]
	for k, col := range [5]int{colProto, colTOS, colTCPFlags, colSrcMask, colDstMask} {
		or[col], and[col] = orSmall>>(8*k)&0xff, andSmall>>(8*k)&0xff
	}
	// The 32-bit columns, two by two.
	for _, col := range [3]int{colDomain, colInIf, colSrcAS} {
		or[col+1], and[col+1] = or[col]>>32, and[col]>>32
		or[col], and[col] = or[col]&math.MaxUint32, and[col]&math.MaxUint32
	}
	// Start is stored as Start-minStart: every plane up to its width may
	// vary (unless all starts are equal, width 0).
	or[colStart], and[colStart] = 1<<bits.Len64(uint64(st.maxStart-st.sum.minStart))-1, 0
}

// planeRef is one byte plane of the encoder's scratch.
type planeRef struct {
	off   int   // in sectionEncoder.planes; -1 when the plane is constant
	shift uint8 // of the plane's byte in the value
}

// sectionEncoder holds the scratch space of the sections encoder.
type sectionEncoder struct {
	block    *colBlock // appendSections' records as columns
	slots    [numSlots]*huffSlot
	padded   []byte // a chunk and allBytes, to build a table from
	huffOut  []byte // the writer's own Huffman coder's output
	planes   []byte
	dicts    [numIntColumns]*valueDict
	dictSkip [numIntColumns]int // blocks before the next dictionary try
	// packIndex maps bytes to dictionary indices while bit-packing.
	packIndex [256]byte
	ints      [numIntColumns]intPlan
	// v4 and v6 planes of each address column: offsets into planes.
	addrOff [numAddrColumns]struct{ p4, p6 int }
}

// appendSections appends the sections payload of recs (len > 0) to dst and
// returns it with the block summary and the size of the column data once
// its streams are decoded (the header's RawLen).
func (c *columnCodec) appendSections(dst []byte, recs []flow.Record) ([]byte, blockSummary, int) {
	if c.enc == nil {
		c.enc = new(sectionEncoder)
	}
	e := c.enc
	if e.block == nil {
		e.block = new(colBlock)
	}
	e.block.grow(len(recs))
	e.block.reset()
	e.block.add(recs)
	return c.appendColBlock(dst, e.block)
}

// appendColBlock is appendSections of the records of b (b.n > 0). It
// finishes b's statistics, so a block is encoded once.
func (c *columnCodec) appendColBlock(dst []byte, b *colBlock) ([]byte, blockSummary, int) {
	if c.enc == nil {
		c.enc = new(sectionEncoder)
	}
	e := c.enc
	st := &b.st
	st.finish()
	n := b.n

	// Lay out the planes that vary (the kinds of an address column are
	// coded from the block itself).
	size := 0
	rawLen := 0
	for col := range numAddrColumns {
		a := &st.addrs[col]
		o := &e.addrOff[col]
		o.p4 = size
		size += 4 * a.n4
		o.p6 = size
		size += 16 * a.n6
		rawLen += n + 4*a.n4 + 16*a.n6
	}
	for col := range numIntColumns {
		ic := &e.ints[col]
		ic.width = (bits.Len64(st.or[col]) + 7) / 8
		vary := st.or[col] ^ st.and[col]
		varying := 0
		for p := range ic.width {
			ic.refs[p] = planeRef{off: -1, shift: uint8(8 * p)}
			if byte(vary>>(8*p)) != 0 {
				ic.refs[p].off = size
				size += n
				varying++
			}
		}
		rawLen += 1 + ic.width*n
		ic.dict, ic.dictFailed = false, false
		if dictColumns[col] && varying >= 2 {
			if e.dictSkip[col] > 0 {
				e.dictSkip[col]--
			} else {
				ic.dict = true
				ic.idxOff = size
				size += n
				if e.dicts[col] == nil {
					e.dicts[col] = new(valueDict)
				}
				e.dicts[col].reset()
			}
		}
	}
	if cap(e.planes) < size {
		e.planes = make([]byte, size+size/4)
	}
	planes := e.planes[:size]

	// Fill them.
	for col := range numAddrColumns {
		a := &st.addrs[col]
		o := &e.addrOff[col]
		if a.n4 > 0 && a.or4 != a.and4 {
			v4 := b.v4[col][:a.n4]
			vary := a.or4 ^ a.and4
			for p := range 4 {
				if byte(vary>>(8*p)) == 0 {
					continue
				}
				plane := planes[o.p4+p*a.n4 : o.p4+(p+1)*a.n4]
				plane = plane[:len(v4)]
				shift := uint(8*p) & 31
				for j, u := range v4 {
					plane[j] = byte(u >> shift)
				}
			}
		}
		if a.n6 > 0 {
			v6 := b.v6[col][:a.n6]
			for p := range 16 {
				if !a.varies6(p) {
					continue
				}
				plane := planes[o.p6+p*a.n6 : o.p6+(p+1)*a.n6]
				plane = plane[:len(v6)]
				for j := range v6 {
					plane[j] = v6[j][p]
				}
			}
		}
	}
	if cap(c.vals) < n {
		c.vals = make([]uint64, n)
	}
	for col := range numIntColumns {
		ic := &e.ints[col]
		if !ic.hasVarying() {
			continue
		}
		if ic.dict {
			vals := b.values(c.vals[:cap(c.vals)], col, st.sum.minStart)
			if e.appendIndices(planes[ic.idxOff:ic.idxOff+n], vals, col) {
				continue
			}
			// Too many values: planes after all.
			ic.dictFailed = true
			e.dictSkip[col] = dictRetry
			scatter(planes, ic, vals)
			continue
		}
		// The narrower columns straight from the block, the others
		// through their stored values.
		switch {
		case col >= colDomain && col <= colDstAS:
			scatter(planes, ic, b.u32[col-colDomain][:n])
		case col >= colSrcPort && col <= colDstVLAN:
			scatter(planes, ic, b.u16[col-colSrcPort][:n])
		case col >= colProto && col <= colDstMask:
			scatter(planes, ic, b.u8[col-colProto][:n])
		default:
			scatter(planes, ic, b.values(c.vals[:cap(c.vals)], col, st.sum.minStart))
		}
	}

	// Encode: the section table, then the sections.
	table := len(dst)
	dst = append(dst, make([]byte, sectionTableLen)...)
	for col := range numAddrColumns {
		start := len(dst)
		a := &st.addrs[col]
		o := &e.addrOff[col]
		if a.kindsUniform {
			dst = appendRLEStream(dst, a.firstKind, n)
		} else {
			dst = e.appendStream(dst, b.kinds[col][:n], addrSlot(col, 0))
		}
		if a.n4 > 0 {
			vary := a.or4 ^ a.and4
			for p := range 4 {
				if byte(vary>>(8*p)) == 0 {
					dst = appendRLEStream(dst, byte(a.and4>>(8*p)), a.n4)
				} else {
					dst = e.appendStream(dst, planes[o.p4+p*a.n4:o.p4+(p+1)*a.n4], addrSlot(col, 1+p))
				}
			}
		}
		if a.n6 > 0 {
			for p := range 16 {
				if !a.varies6(p) {
					and := a.and6lo
					if p >= 8 {
						and = a.and6hi
					}
					dst = appendRLEStream(dst, byte(and>>(8*(p%8))), a.n6)
				} else {
					dst = e.appendStream(dst, planes[o.p6+p*a.n6:o.p6+(p+1)*a.n6], addrSlot(col, 5+p))
				}
			}
		}
		if a.nz > 0 {
			before := len(dst)
			dst = appendZones(dst, b.zones[col])
			rawLen += len(dst) - before
		}
		binary.LittleEndian.PutUint32(dst[table+4*col:], uint32(len(dst)-start))
	}
	for col := range numIntColumns {
		start := len(dst)
		ic := &e.ints[col]
		if ic.dict && !ic.dictFailed {
			// Dictionary form: width|0x80, count-1, the values as width
			// raw planes of count bytes, then the index stream.
			d := e.dicts[col]
			dst = append(dst, byte(ic.width)|dictFlag, byte(d.n-1))
			for p := range ic.width {
				for _, v := range d.vals[:d.n] {
					dst = append(dst, byte(v>>(8*p)))
				}
			}
			dst = e.appendStream(dst, planes[ic.idxOff:ic.idxOff+n], intSlot(col, 8))
			binary.LittleEndian.PutUint32(dst[table+4*(numAddrColumns+col):], uint32(len(dst)-start))
			continue
		}
		dst = append(dst, byte(ic.width))
		for p, ref := range ic.refs[:ic.width] {
			if ref.off < 0 {
				dst = appendRLEStream(dst, byte(st.and[col]>>ref.shift), n)
			} else {
				dst = e.appendStream(dst, planes[ref.off:ref.off+n], intSlot(col, p))
			}
		}
		binary.LittleEndian.PutUint32(dst[table+4*(numAddrColumns+col):], uint32(len(dst)-start))
	}
	return dst, st.sum, rawLen
}

// varies6 reports whether byte p of the column's IPv6 addresses varies.
func (s *addrStats) varies6(p int) bool {
	or, and := s.or6lo, s.and6lo
	if p >= 8 {
		or, and = s.or6hi, s.and6hi
	}
	return byte((or^and)>>(8*(p%8))) != 0
}

// intPlan is how the encoder stores one integer column: its width and
// where its varying planes are, or whether it tries a dictionary and
// where the indices go.
type intPlan struct {
	width      int
	refs       [8]planeRef
	dict       bool // trying a dictionary
	dictFailed bool // more than 256 distinct values: planes after all
	idxOff     int
}

// dictColumns are the integer columns the encoder tries to store as a
// dictionary of at most 256 values and one index plane, when more than one
// of their byte planes vary: identifiers (interfaces, AS numbers, VLANs,
// MAC addresses, sampling rates) that take few distinct multi-byte values
// in a block. One index plane is smaller than several planes each holding
// a byte of the same values, and much cheaper to code.
var dictColumns = [numIntColumns]bool{
	colDomain: true, colSamplingRate: true, colInIf: true, colOutIf: true,
	colSrcAS: true, colDstAS: true, colSrcVLAN: true, colDstVLAN: true,
	colSrcMAC: true, colDstMAC: true,
}

// dictRetry is how many blocks the encoder waits before trying a
// dictionary again for a column that had too many values.
const dictRetry = 32

// dictSlots is the size of the encoder's open-addressing value table, four
// times the largest dictionary so that probes stay short.
const dictSlots = 1024

// valueDict is the encoder's dictionary of one column's values in a block.
type valueDict struct {
	keys  [dictSlots]uint64
	stamp [dictSlots]uint32 // slot is in use when it equals gen
	index [dictSlots]uint8
	gen   uint32
	vals  [256]uint64 // in order of first appearance
	n     int
}

func (d *valueDict) reset() {
	d.gen++
	if d.gen == 0 {
		clear(d.stamp[:])
		d.gen = 1
	}
	d.n = 0
}

// indexOf returns v's index, adding it if new; ok is false when v is new
// and the dictionary already holds 256 values.
func (d *valueDict) indexOf(v uint64) (idx byte, ok bool) {
	h := (v * 0x9e3779b97f4a7c15) >> (64 - 10)
	for {
		if d.stamp[h] != d.gen {
			if d.n == len(d.vals) {
				return 0, false
			}
			d.stamp[h], d.keys[h], d.index[h] = d.gen, v, byte(d.n)
			d.vals[d.n] = v
			d.n++
			return d.index[h], true
		}
		if d.keys[h] == v {
			return d.index[h], true
		}
		h = (h + 1) & (dictSlots - 1)
	}
}

// scatter writes the varying byte planes of the block's values vals of
// the integer column ic describes.
func scatter[T uint8 | uint16 | uint32 | uint64](planes []byte, ic *intPlan, vals []T) {
	for _, ref := range ic.refs[:ic.width] {
		if ref.off < 0 {
			continue
		}
		plane := planes[ref.off : ref.off+len(vals)]
		vs := vals[:len(plane)] // one length for both: no bounds checks
		shift := ref.shift & 63
		for i := range plane {
			plane[i] = byte(vs[i] >> shift)
		}
	}
}

// appendIndices writes the dictionary indices of vals to idx; it fails
// when the column has more values than a dictionary holds.
func (e *sectionEncoder) appendIndices(idx []byte, vals []uint64, col int) bool {
	d := e.dicts[col]
	last, lastIdx := vals[0]+1, byte(0) // runs of one value are common
	for i, v := range vals {
		if v != last {
			x, ok := d.indexOf(v)
			if !ok {
				return false
			}
			last, lastIdx = v, x
		}
		idx[i] = lastIdx
	}
	return true
}

func (ic *intPlan) hasVarying() bool {
	for _, r := range ic.refs[:ic.width] {
		if r.off >= 0 {
			return true
		}
	}
	return false
}

// appendZones appends the zone list of an address column: each zone
// (at most maxZoneLen bytes of it) as a uvarint length and its bytes.
func appendZones(dst []byte, zones []string) []byte {
	for _, z := range zones {
		if len(z) > maxZoneLen {
			z = z[:maxZoneLen]
		}
		dst = binary.AppendUvarint(dst, uint64(len(z)))
		dst = append(dst, z...)
	}
	return dst
}

// appendRLEStream appends a stream of size copies of b.
func appendRLEStream(dst []byte, b byte, size int) []byte {
	for ; size > 0; size -= streamChunk {
		dst = binary.AppendUvarint(dst, 1<<2|chunkRLE)
		dst = append(dst, b)
	}
	return dst
}

// appendStream appends plane as a stream: chunks of at most streamChunk
// bytes, each Huffman-coded when that saves at least a sixteenth, stored
// as one byte when all its bytes are equal, raw otherwise.
func (e *sectionEncoder) appendStream(dst, plane []byte, slot int) []byte {
	for len(plane) > 0 {
		chunk := plane[:min(len(plane), streamChunk)]
		plane = plane[len(chunk):]
		var sample sampleStats
		if len(chunk) >= minSampled {
			sample.take(chunk)
			if sample.bits >= randomBits {
				dst = appendRawChunk(dst, chunk)
				continue
			}
			if w := packWidth(sample.distinct); sample.distinct > 1 && w > 0 && float32(w) <= sample.bits+packSlack {
				if out, ok := e.appendPacked(dst, chunk, w, &sample); ok {
					dst = out
					continue
				}
			}
		}
		table, out, err := e.huffman(chunk, slot, &sample)
		switch {
		case err == nil:
			dst = binary.AppendUvarint(dst, uint64(len(table)+len(out))<<2|chunkHuff)
			dst = append(dst, table...)
			dst = append(dst, out...)
		case errors.Is(err, huff0.ErrUseRLE):
			dst = binary.AppendUvarint(dst, 1<<2|chunkRLE)
			dst = append(dst, chunk[0])
		default:
			dst = appendRawChunk(dst, chunk)
		}
	}
	return dst
}

// Stream slots: each plane of each column keeps its Huffman table from
// block to block.
const (
	addrSlots = 1 + 4 + 16 // kinds, IPv4 planes, IPv6 planes
	intSlots  = 8 + 1      // planes, dictionary indices
	numSlots  = numAddrColumns*addrSlots + numIntColumns*intSlots
)

func addrSlot(col, stream int) int { return col*addrSlots + stream }
func intSlot(col, plane int) int   { return numAddrColumns*addrSlots + col*intSlots + plane }

// huffSlot is one plane's Huffman state across blocks: a table built for
// every byte value (the plane's bytes plus one of each), which later
// blocks reuse while it stays near the sampled entropy of their bytes.
// Building a table costs about as much as coding the plane; the table is
// still stored in every chunk, so blocks and sections stay independent.
type huffSlot struct {
	s     huff0.Scratch
	table []byte   // the serialized table s holds as its previous one
	code  huffCode // the same table for the writer's own coder
	stale bool     // coded too far above the entropy: build anew
	// bias is how much more than the sampled entropy the table took when
	// it was built (at least 1): a sample of a plane of many byte values
	// misses the rare ones and underestimates its entropy, and drift is
	// measured against the estimate corrected by it, so that such a plane
	// does not build a table for every block.
	bias float32
}

// allBytes holds every byte value once.
var allBytes = func() (b [256]byte) {
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

// huffman codes chunk with slot's table, building one first when there is
// none or it no longer fits; it returns the table and the coded bytes, or
// huff0's error (ErrUseRLE, or ErrIncompressible when coding does not save
// a sixteenth). sample is what sampling the chunk found (zero: not
// sampled). A sampled chunk of more than one byte value is coded with the
// writer's own coder (huffenc.go), which skips huff0's byte counting.
func (e *sectionEncoder) huffman(chunk []byte, slot int, sample *sampleStats) (table, out []byte, err error) {
	hs := e.slots[slot]
	if hs == nil {
		hs = &huffSlot{}
		hs.s.WantLogLess = 4
		e.slots[slot] = hs
	}
	estBits := sample.bits
	// The own coder needs a chunk of more than one byte value: sampled
	// with several, or too short to sample and not one repeated byte
	// (which the kept table could code, but a repeat chunk stores in one).
	own := sample.distinct > 1 ||
		sample.distinct == 0 && len(chunk) >= minOwnCoded && bytes.Count(chunk, chunk[:1]) != len(chunk)
	wantSize := len(chunk) - len(chunk)>>hs.s.WantLogLess
	if len(hs.table) > 0 && !hs.stale {
		if own && hs.code.ok {
			out = hs.code.append4X(e.huffOut[:0], chunk)
			e.huffOut = out
			if len(out) < wantSize {
				hs.checkDrift(len(out), len(chunk), estBits)
				return hs.table, out, nil
			}
		} else {
			hs.s.Reuse = huff0.ReusePolicyMust
			out, _, err = huff0.Compress4X(chunk, &hs.s)
			if err == nil {
				hs.checkDrift(len(out), len(chunk), estBits)
				return hs.table, out, nil
			}
			if errors.Is(err, huff0.ErrUseRLE) {
				return nil, nil, err
			}
		}
	}
	e.padded = append(append(e.padded[:0], chunk...), allBytes[:]...)
	hs.s.Reuse = huff0.ReusePolicyNone
	hs.table, hs.stale, hs.code.ok = hs.table[:0], false, false
	if _, _, err = huff0.Compress4X(e.padded, &hs.s); err != nil {
		return nil, nil, err
	}
	hs.table = append(hs.table, hs.s.OutTable...)
	hs.code.fromScratch(&hs.s)
	hs.bias = 1
	if own && hs.code.ok {
		out = hs.code.append4X(e.huffOut[:0], chunk)
		e.huffOut = out
		if len(out) >= wantSize {
			return nil, nil, huff0.ErrIncompressible
		}
		if estBits > 0 {
			hs.bias = min(max(float32(8*len(out))/(estBits*float32(len(chunk))), 1), maxDriftBias)
		}
		return hs.table, out, nil
	}
	hs.s.Reuse = huff0.ReusePolicyMust
	out, _, err = huff0.Compress4X(chunk, &hs.s)
	if err != nil {
		return nil, nil, err
	}
	return hs.table, out, nil
}

// minOwnCoded is the smallest chunk the writer Huffman-codes itself.
const minOwnCoded = 16

// maxDriftBias bounds huffSlot.bias.
const maxDriftBias = 1.5

// checkDrift marks the slot's table stale when coding n bytes took coded
// bytes more than 10 % above the sampled entropy estBits (0: not sampled),
// corrected by the slot's bias: good enough for this block, not for the
// next.
func (hs *huffSlot) checkDrift(coded, n int, estBits float32) {
	if estBits > 0 && float32(8*coded) > estBits*max(hs.bias, 1)*float32(n)*1.10+256 {
		hs.stale = true
	}
}

func appendRawChunk(dst, chunk []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(chunk))<<2|chunkRaw)
	return append(dst, chunk...)
}

// Sampling: sampleStats estimates a chunk's entropy from every
// sampleStride-th byte.
const (
	sampleStride = 8
	maxSamples   = 1024 // larger chunks are sampled with a longer stride
	minSampled   = 1024 // smaller chunks go straight to huff0
	// packSlack is how many bits per byte more than the estimated
	// entropy bit-packing may cost and still be chosen over Huffman
	// coding, which costs several times more CPU to encode and decode.
	packSlack = 1.25
)

// randomBits is the estimated entropy (bits per byte) from which a chunk
// is stored raw. Huffman coding would save up to a quarter there, at a
// cost per byte larger than everything else the encoder does; on the
// BenchmarkBlockCodec data sets storing such planes raw costs 1-3 % more
// bytes for 15 % less encoding CPU than the 7.3 bits at which Huffman
// coding stops paying at all.
const randomBits = 6.0

// cLog2c[c] is c·log2(c), for the entropy estimate.
var cLog2c = func() []float32 {
	t := make([]float32, maxSamples+1)
	for c := 1; c < len(t); c++ {
		t[c] = float32(float64(c) * math.Log2(float64(c)))
	}
	return t
}()

// sampleStats is what a sample of a chunk says: its entropy in bits per
// byte and the distinct bytes seen (the first 17 of them, in order).
type sampleStats struct {
	bits     float32
	distinct int
	symbols  [17]byte
}

// take samples chunk. It costs an eighth (or less) of the histogram that
// huff0 would build before finding out that a random chunk does not compress
// (and of the table and full encoding it pays when the data is just below
// its own cut-off).
func (st *sampleStats) take(chunk []byte) {
	// Four histograms, so that runs of one byte value (common in the
	// skewed planes sampled here) do not wait on one counter.
	var hist [4][256]uint16
	m := 0
	stride := max(sampleStride, (len(chunk)+maxSamples-1)/maxSamples)
	i := 0
	for ; i+3*stride < len(chunk); i += 4 * stride {
		hist[0][chunk[i]]++
		hist[1][chunk[i+stride]]++
		hist[2][chunk[i+2*stride]]++
		hist[3][chunk[i+3*stride]]++
		m += 4
	}
	for ; i < len(chunk); i += stride {
		hist[0][chunk[i]]++
		m++
	}
	// H = log2(m) - Σ c·log2(c) / m
	var sum float32
	st.distinct = 0
	for b := range 256 {
		c := int(hist[0][b]) + int(hist[1][b]) + int(hist[2][b]) + int(hist[3][b])
		if c == 0 {
			continue
		}
		sum += cLog2c[c]
		if st.distinct < len(st.symbols) {
			st.symbols[st.distinct] = byte(b)
		}
		st.distinct++
	}
	st.bits = float32(math.Log2(float64(m))) - sum/float32(m)
}

// packWidth returns the bits per index for a dictionary of distinct
// bytes, or 0 when there are too many to pack.
func packWidth(distinct int) int {
	switch {
	case distinct <= 2:
		return 1
	case distinct <= 4:
		return 2
	case distinct <= 8:
		return 3
	case distinct <= 16:
		return 4
	}
	return 0
}

// appendPacked appends chunk as a bit-packed chunk with the sampled
// symbols as its dictionary: a byte w (bits per index), a byte d and d
// dictionary bytes, then each group of 8 indices as w bytes (a
// little-endian 8w-bit number, first index in the low bits; the last
// group padded with index 0). It fails, appending nothing, when the chunk
// holds a byte the sample missed.
func (e *sectionEncoder) appendPacked(dst, chunk []byte, w int, st *sampleStats) ([]byte, bool) {
	idx := &e.packIndex
	for i := range idx {
		idx[i] = 0xff
	}
	d := st.distinct
	for i, b := range st.symbols[:d] {
		idx[b] = byte(i)
	}
	groups := (len(chunk) + 7) / 8
	body := 2 + d + groups*w
	start := len(dst)
	dst = binary.AppendUvarint(dst, uint64(body)<<2|chunkPack)
	dst = append(dst, byte(w), byte(d))
	dst = append(dst, st.symbols[:d]...)
	at := len(dst)
	dst = grow(dst, groups*w+4) // 4 spare bytes: every group is stored as 4
	out := dst[at:]
	var bad byte
	uw := uint(w) & 7
	full := len(chunk) / 8
	for g := range full {
		c := chunk[8*g : 8*g+8 : 8*g+8]
		i0, i1, i2, i3 := idx[c[0]], idx[c[1]], idx[c[2]], idx[c[3]]
		i4, i5, i6, i7 := idx[c[4]], idx[c[5]], idx[c[6]], idx[c[7]]
		bad |= i0 | i1 | i2 | i3 | i4 | i5 | i6 | i7
		v := uint32(i0) | uint32(i1)<<uw | uint32(i2)<<(2*uw) | uint32(i3)<<(3*uw) |
			uint32(i4)<<(4*uw) | uint32(i5)<<(5*uw) | uint32(i6)<<(6*uw) | uint32(i7)<<(7*uw)
		binary.LittleEndian.PutUint32(out[g*w:], v)
	}
	if full < groups {
		var v uint32
		for k, b := range chunk[8*full:] {
			bad |= idx[b]
			v |= uint32(idx[b]) << (uint(k) * uw)
		}
		binary.LittleEndian.PutUint32(out[full*w:], v)
	}
	if bad&0x80 != 0 {
		return dst[:start], false
	}
	return dst[:at+groups*w], true
}

// grow extends dst by n bytes (contents unspecified).
func grow(dst []byte, n int) []byte {
	if cap(dst)-len(dst) < n {
		bigger := make([]byte, len(dst), 2*cap(dst)+n)
		copy(bigger, dst)
		dst = bigger
	}
	return dst[:len(dst)+n]
}

// ---- decoder ----

// locateSections checks the section table of a sections payload of n
// records and decodes the sections of the columns in cols (Start too when
// End is in cols) into c.layout, for decodeRange. The other sections are
// only checked to lie within the payload: their contents are not read.
func (c *columnCodec) locateSections(payload []byte, n int, base int64, cols Columns) error {
	l := &c.layout
	l.n, l.base = n, base
	if cols&ColEnd != 0 {
		cols |= ColStart
	}
	if len(payload) < sectionTableLen {
		return fmt.Errorf("%w: short section table", errColumns)
	}
	var sections [numColumns][]byte
	rest := payload[sectionTableLen:]
	for col := range numColumns {
		ln := binary.LittleEndian.Uint32(payload[4*col:])
		if uint64(ln) > uint64(len(rest)) {
			return fmt.Errorf("%w: section %d overruns the block", errColumns, col)
		}
		sections[col], rest = rest[:ln], rest[ln:]
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d bytes after the sections", errColumns, len(rest))
	}
	// Room for every stream the selected sections may decode.
	need := 0
	for col := range numColumns {
		if cols&(1<<col) == 0 {
			continue
		}
		if col < numAddrColumns {
			need += 17 * n // n kind bytes and at most 16 plane bytes per record
		} else if len(sections[col]) > 0 {
			need += int(min(sections[col][0], 8)) * n
		}
	}
	if cap(c.arena) < need {
		c.arena = make([]byte, need, need+need/4)
	}
	c.arena = c.arena[:0]
	for col := range numAddrColumns {
		if cols&addrColumn(col) == 0 {
			continue
		}
		if err := c.locateAddrSection(&l.addrs[col], sections[col], n); err != nil {
			return fmt.Errorf("address column %d: %w", col, err)
		}
	}
	for col := range numIntColumns {
		if cols&intColumn(col) == 0 {
			continue
		}
		if err := c.locateIntSection(&l.ints[col], sections[numAddrColumns+col], n, col); err != nil {
			return fmt.Errorf("column %d: %w", col, err)
		}
	}
	return nil
}

func (c *columnCodec) locateAddrSection(a *addrLayout, sec []byte, n int) error {
	kinds, _, sec, err := c.readStream(sec, n, true)
	if err != nil {
		return err
	}
	n4, n6, nz, err := countKinds(kinds)
	if err != nil {
		return err
	}
	*a = addrLayout{kinds: kinds, n4: n4, n6: n6}
	if n4 > 0 {
		for p := range 4 {
			if a.p4[p], _, sec, err = c.readStream(sec, n4, true); err != nil {
				return err
			}
		}
	}
	if n6 > 0 {
		for p := range 16 {
			if a.p6[p], _, sec, err = c.readStream(sec, n6, true); err != nil {
				return err
			}
		}
	}
	zones := sec
	for range nz {
		l, m := binary.Uvarint(sec)
		if m <= 0 || l > maxZoneLen || uint64(len(sec)-m) < l {
			return fmt.Errorf("%w: bad zone", errColumns)
		}
		sec = sec[m+int(l):]
	}
	a.zones = zones[:len(zones)-len(sec)]
	if len(sec) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errColumns, len(sec))
	}
	return nil
}

func (c *columnCodec) locateIntSection(il *intLayout, sec []byte, n, col int) error {
	if len(sec) < 1 {
		return errColumns
	}
	width := sec[0]
	sec = sec[1:]
	dict := width&dictFlag != 0
	width &^= dictFlag
	if width > intColumnWidth[col] {
		return fmt.Errorf("%w: width %d", errColumns, width)
	}
	*il = intLayout{}
	if dict {
		if len(sec) < 1 {
			return errColumns
		}
		d := int(sec[0]) + 1
		sec = sec[1:]
		if len(sec) < int(width)*d {
			return fmt.Errorf("%w: short dictionary", errColumns)
		}
		if c.dicts == nil {
			c.dicts = new([numIntColumns][256]uint64)
		}
		vals := &c.dicts[col]
		clear(vals[:])
		for p := range int(width) {
			for k, b := range sec[p*d : (p+1)*d] {
				vals[k] |= uint64(b) << (8 * p)
			}
		}
		sec = sec[int(width)*d:]
		index, _, rest, err := c.readStream(sec, n, true)
		if err != nil {
			return err
		}
		if len(rest) != 0 {
			return fmt.Errorf("%w: %d trailing bytes", errColumns, len(rest))
		}
		il.dict, il.index = vals, index
		return nil
	}
	for p := range int(width) {
		plane, rle, rest, err := c.readStream(sec, n, false)
		if err != nil {
			return err
		}
		sec = rest
		if rle >= 0 {
			il.fixed |= uint64(rle) << (8 * p)
			continue
		}
		il.planes[il.np], il.shifts[il.np] = plane, uint8(8*p)
		il.np++
	}
	if len(sec) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errColumns, len(sec))
	}
	return nil
}

// readStream reads a stream of size bytes from the front of src. A stream
// that is one repeated byte comes back as that byte in rle (and, with
// materialize, also written out in data); otherwise rle is -1 and data
// holds the bytes, in src itself when the stream is one raw chunk, else
// in c.arena.
func (c *columnCodec) readStream(src []byte, size int, materialize bool) (data []byte, rle int, rest []byte, err error) {
	if size == 0 {
		return nil, -1, src, nil
	}
	single := size <= streamChunk
	start := len(c.arena)
	for done := 0; done < size; {
		want := min(size-done, streamChunk)
		x, m := binary.Uvarint(src)
		if m <= 0 || x>>2 > uint64(len(src)-m) {
			return nil, -1, nil, fmt.Errorf("%w: bad chunk header", errColumns)
		}
		body := src[m : m+int(x>>2)]
		src = src[m+int(x>>2):]
		switch x & 3 {
		case chunkRaw:
			if len(body) != want {
				return nil, -1, nil, fmt.Errorf("%w: raw chunk of %d bytes, want %d", errColumns, len(body), want)
			}
			if single {
				return body, -1, src, nil
			}
			dst, err := c.take(want)
			if err != nil {
				return nil, -1, nil, err
			}
			copy(dst, body)
		case chunkRLE:
			if len(body) != 1 {
				return nil, -1, nil, fmt.Errorf("%w: repeat chunk of %d bytes", errColumns, len(body))
			}
			if single && !materialize {
				return nil, int(body[0]), src, nil
			}
			dst, err := c.take(want)
			if err != nil {
				return nil, -1, nil, err
			}
			for i := range dst {
				dst[i] = body[0]
			}
		case chunkPack:
			dst, err := c.take(want)
			if err != nil {
				return nil, -1, nil, err
			}
			if err := unpack(dst, body); err != nil {
				return nil, -1, nil, err
			}
		case chunkHuff:
			s, in, err := huff0.ReadTable(body, &c.huff)
			if err != nil {
				return nil, -1, nil, fmt.Errorf("%w: %v", errColumns, err)
			}
			dst, err := c.take(want)
			if err != nil {
				return nil, -1, nil, err
			}
			s.Out = dst[:0:want]
			out, err := s.Decompress4X(in, want)
			s.Out = nil
			if err != nil {
				return nil, -1, nil, fmt.Errorf("%w: %v", errColumns, err)
			}
			if len(out) != want {
				return nil, -1, nil, fmt.Errorf("%w: chunk decodes to %d bytes, want %d", errColumns, len(out), want)
			}
			if &out[0] != &dst[0] {
				copy(dst, out)
			}
		}
		done += want
	}
	return c.arena[start:], -1, src, nil
}

// unpack decodes a bit-packed chunk body (see appendPacked) into dst.
// Indices beyond the dictionary decode as 0.
func unpack(dst, body []byte) error {
	if len(body) < 2 {
		return fmt.Errorf("%w: short packed chunk", errColumns)
	}
	w, d := int(body[0]), int(body[1])
	if w < 1 || w > 4 || d < 1 || d > 1<<w {
		return fmt.Errorf("%w: packed chunk of %d bits, %d symbols", errColumns, w, d)
	}
	var dict [16]byte
	if len(body) < 2+d {
		return fmt.Errorf("%w: short packed chunk", errColumns)
	}
	copy(dict[:], body[2:2+d])
	packed := body[2+d:]
	groups := (len(dst) + 7) / 8
	if len(packed) != groups*w {
		return fmt.Errorf("%w: packed chunk of %d bytes, want %d", errColumns, len(packed), groups*w)
	}
	uw := uint(w) & 7
	mask := uint32(1)<<uw - 1
	full := len(dst) / 8
	for g := range full {
		var v uint32
		if g*w+4 <= len(packed) {
			v = binary.LittleEndian.Uint32(packed[g*w:]) // the next group's bits above are masked off
		} else {
			for k, b := range packed[g*w : g*w+w] {
				v |= uint32(b) << (8 * k)
			}
		}
		o := dst[8*g : 8*g+8 : 8*g+8]
		o[0] = dict[v&mask]
		o[1] = dict[v>>uw&mask]
		o[2] = dict[v>>(2*uw)&mask]
		o[3] = dict[v>>(3*uw)&mask]
		o[4] = dict[v>>(4*uw)&mask]
		o[5] = dict[v>>(5*uw)&mask]
		o[6] = dict[v>>(6*uw)&mask]
		o[7] = dict[v>>(7*uw)&mask]
	}
	if full < groups {
		var v uint32
		for k, b := range packed[full*w : full*w+w] {
			v |= uint32(b) << (8 * k)
		}
		for k := range dst[8*full:] {
			dst[8*full+k] = dict[v>>(uint(k)*uw)&mask]
		}
	}
	return nil
}

// take returns the next n bytes of c.arena, which locateSections sized
// for every stream it decodes (growing it would move what earlier streams
// point to).
func (c *columnCodec) take(n int) ([]byte, error) {
	at := len(c.arena)
	if cap(c.arena)-at < n {
		return nil, fmt.Errorf("%w: streams larger than their column", errColumns)
	}
	c.arena = c.arena[:at+n]
	return c.arena[at : at+n], nil
}
