package clickhouse

import (
	"bytes"
	"encoding/binary"
	"slices"
)

// The server writes every insert into the raw table as a part sorted by
// the table's key, (toStartOfHour(time_end), exporter, time_end); it
// skips that sort when the block is already in order. A sender puts its
// batch in that order first, with a counting sort over the few distinct
// (hour, exporter, second) values of a batch: it costs the collector a
// small fraction of what the server's comparison sort of the same rows
// costs the server.

// maxOrderExporters and maxOrderBuckets bound the counting sort; a batch
// with more distinct exporters, or spread over more seconds × exporters,
// is sent as it is (the server sorts it).
const (
	maxOrderExporters = 256
	maxOrderBuckets   = 1 << 20
)

// rawOrder is a sender's scratch space for putting batches in the raw
// table's order; it keeps its buffers from one batch to the next.
type rawOrder struct {
	// buf receives the ordered block; it is swapped with the batch's own
	// buffer, which becomes the next batch's scratch.
	buf       []byte
	exporters [][16]byte
	rank      []uint16 // by index in exporters: rank in sorted order
	bucket    []uint32 // per row
	dest      []uint32 // per row: its position in the ordered block
	count     []uint32 // per bucket
}

// order puts b's rows in the raw table's order (see sortBlock), in the
// scratch buffer, which then becomes b's, and b's the scratch one.
func (o *rawOrder) order(b *batch, batchRows int) {
	if b.rowBinary {
		return
	}
	if o.buf == nil {
		o.buf = make([]byte, nativeSize(batchRows))
	}
	out, ok := o.sortBlock(b.data, o.buf)
	if !ok {
		return
	}
	if len(o.buf) >= nativeSize(b.rows) { // out is in o.buf
		o.buf, b.build.buf = b.build.buf, o.buf
	}
	b.data = out
}

// sortBlock returns a Native block with the rows of block (a raw-table
// block, see parseNative) in the raw table's key order, written into
// dst if it is large enough (else into a new buffer), and true; or
// block itself and false when it is in order already or cannot be
// ordered cheaply.
func (o *rawOrder) sortBlock(block, dst []byte) ([]byte, bool) {
	rows, cols, err := parseNative(block)
	if err != nil || rows < 2 {
		return block, false
	}
	timeEnd, exporter := cols[1], cols[3]
	// Distinct exporters, with a shortcut for runs of the same one (the
	// flows of one datagram).
	o.exporters = o.exporters[:0]
	o.bucket = slices.Grow(o.bucket[:0], rows)[:rows]
	last := -1
	minT, maxT := ^uint32(0), uint32(0)
	for i := range rows {
		e := (*[16]byte)(exporter[16*i:])
		if last < 0 || o.exporters[last] != *e {
			last = slices.Index(o.exporters, *e)
			if last < 0 {
				if len(o.exporters) == maxOrderExporters {
					return block, false
				}
				o.exporters = append(o.exporters, *e)
				last = len(o.exporters) - 1
			}
		}
		o.bucket[i] = uint32(last)
		t := binary.LittleEndian.Uint32(timeEnd[4*i:])
		minT, maxT = min(minT, t), max(maxT, t)
	}
	n := uint64(len(o.exporters))
	span := uint64(maxT-minT) + 1
	if n*span > maxOrderBuckets {
		return block, false
	}
	// Exporters by their bytes (FixedString compares as memcmp).
	byBytes := make([]int, len(o.exporters))
	for i := range byBytes {
		byBytes[i] = i
	}
	slices.SortFunc(byBytes, func(a, b int) int { return bytes.Compare(o.exporters[a][:], o.exporters[b][:]) })
	o.rank = slices.Grow(o.rank[:0], len(byBytes))[:len(byBytes)]
	for r, i := range byBytes {
		o.rank[i] = uint16(r)
	}
	// Buckets in key order: seconds are grouped by hour; within an hour,
	// all seconds of the first exporter, then of the second, ...
	sorted := true
	prev := uint32(0)
	for i := range rows {
		t := binary.LittleEndian.Uint32(timeEnd[4*i:])
		hourStart := max(t-t%3600, minT)
		// In 64 bits: the last hour of DateTime ends past 2^32-1.
		hourLen := uint32(min(uint64(t-t%3600)+3599, uint64(maxT)) - uint64(hourStart) + 1)
		b := uint32(n)*(hourStart-minT) + uint32(o.rank[o.bucket[i]])*hourLen + (t - hourStart)
		o.bucket[i] = b
		if b < prev {
			sorted = false
		}
		prev = b
	}
	if sorted {
		return block, false
	}
	// Counting sort: each row's destination, stable within a bucket.
	buckets := int(n * span)
	o.count = slices.Grow(o.count[:0], buckets)[:buckets]
	clear(o.count)
	for _, b := range o.bucket[:rows] {
		o.count[b]++
	}
	pos := uint32(0)
	for b, c := range o.count {
		o.count[b] = pos
		pos += c
	}
	o.dest = slices.Grow(o.dest[:0], rows)[:rows]
	for i, b := range o.bucket[:rows] {
		o.dest[i] = o.count[b]
		o.count[b]++
	}
	if len(dst) < nativeSize(rows) {
		dst = make([]byte, nativeSize(rows))
	}
	var nb nativeBuilder
	nb.reset(dst[:nativeSize(rows)], rows)
	for c := range numRawColumns {
		if constant(cols[c], rawWidths[c]) {
			// Every row has the same value (the batch id, often the
			// exporter, VLANs, MACs, ...): any order is this one.
			copy(nb.cols[c], cols[c])
			continue
		}
		scatter(nb.cols[c], cols[c], rawWidths[c], o.dest[:rows])
	}
	nb.rows = rows
	return nb.seal(), true
}

// constant reports whether every width-byte value of col is the same.
func constant(col []byte, width int) bool {
	return bytes.Equal(col[width:], col[:len(col)-width])
}

// scatter copies value i of src (width bytes each) to position dest[i]
// of dst. (Scattering measured faster than gathering: the writes go to
// as many sequential streams as a batch has (hour, exporter, second)
// values, few enough for the caches.)
func scatter(dst, src []byte, width int, dest []uint32) {
	le := binary.LittleEndian
	switch width {
	case 1:
		for i, d := range dest {
			dst[d] = src[i]
		}
	case 2:
		for i, d := range dest {
			le.PutUint16(dst[2*d:], le.Uint16(src[2*i:]))
		}
	case 4:
		for i, d := range dest {
			le.PutUint32(dst[4*d:], le.Uint32(src[4*i:]))
		}
	case 8:
		for i, d := range dest {
			le.PutUint64(dst[8*d:], le.Uint64(src[8*i:]))
		}
	case 16:
		for i, d := range dest {
			le.PutUint64(dst[16*d:], le.Uint64(src[16*i:]))
			le.PutUint64(dst[16*d+8:], le.Uint64(src[16*i+8:]))
		}
	default:
		panic("clickhouse: no raw column is this wide")
	}
}
