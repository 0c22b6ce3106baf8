package clickhouse

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/flowscan/flowscan/internal/flow"
)

// The sink sends its batches in ClickHouse's Native format: a block of
// columns, each stored whole (name, type, then every row's value), which
// the server copies into its columns instead of parsing each row field by
// field as with RowBinary. Every raw column has a fixed width, so a batch
// is one buffer laid out for its capacity: the block header, then for
// each column its header and room for capacity values. A flow is written
// at its row's offset in each column; sealing a batch that is not full
// moves the columns down so that they follow each other.
//
// Block:  uvarint(columns) uvarint(rows)
// Column: uvarint(len(name)) name uvarint(len(type)) type, rows × width bytes (little endian)

// numRawColumns is the number of columns of the raw table.
const numRawColumns = 27

// nativeHeadRoom is the room kept before the first column for the
// block header (1 byte of column count, up to 3 of row count).
const nativeHeadRoom = 4

// rawWidths are the bytes per row of each raw column, in rawColumns order.
var rawWidths = func() (w [numRawColumns]int) {
	if len(rawColumns) != numRawColumns {
		panic("clickhouse: numRawColumns does not match rawColumns")
	}
	for i, c := range rawColumns {
		w[i] = typeWidth(c.typ)
	}
	return w
}()

// rawColumnHeaders are each column's Native header (name and type).
var rawColumnHeaders = func() (h [numRawColumns][]byte) {
	for i, c := range rawColumns {
		b := binary.AppendUvarint(nil, uint64(len(c.name)))
		b = append(b, c.name...)
		b = binary.AppendUvarint(b, uint64(len(c.typ)))
		h[i] = append(b, c.typ...)
	}
	return h
}()

func typeWidth(typ string) int {
	switch typ {
	case "UInt8":
		return 1
	case "UInt16":
		return 2
	case "UInt32", "DateTime('UTC')":
		return 4
	case "UInt64":
		return 8
	case "FixedString(16)":
		return 16
	}
	panic("clickhouse: no fixed width for type " + typ)
}

// nativeSize is the size of a Native block of rows raw-table rows laid
// out for capacity, including the head room.
func nativeSize(rows int) int {
	n := nativeHeadRoom
	for i := range numRawColumns {
		n += len(rawColumnHeaders[i]) + rows*rawWidths[i]
	}
	return n
}

// nativeBlockSize is the size of a sealed Native block of rows rows.
func nativeBlockSize(rows int) int {
	var v [binary.MaxVarintLen64]byte
	return nativeSize(rows) - nativeHeadRoom + 1 + binary.PutUvarint(v[:], uint64(rows))
}

// nativeBuilder writes raw-table rows into a Native block, column by
// column. It does not allocate per row.
type nativeBuilder struct {
	buf  []byte // the whole buffer: head room, then the columns
	cap  int    // rows the buffer is laid out for
	rows int
	cols [numRawColumns][]byte // each column's values (length cap × width)
}

// reset lays out buf (at least nativeSize(capacity) bytes) for capacity
// rows and empties the builder.
func (nb *nativeBuilder) reset(buf []byte, capacity int) {
	nb.buf, nb.cap, nb.rows = buf[:nativeSize(capacity)], capacity, 0
	off := nativeHeadRoom
	for i := range numRawColumns {
		off += copy(nb.buf[off:], rawColumnHeaders[i])
		n := capacity * rawWidths[i]
		nb.cols[i] = nb.buf[off : off+n : off+n]
		off += n
	}
}

// full reports whether the builder holds as many rows as it has room for.
func (nb *nativeBuilder) full() bool { return nb.rows >= nb.cap }

// add writes r as the next row, tagged with batchID (see AppendRow for
// the conversions). The builder must not be full.
func (nb *nativeBuilder) add(r *flow.Record, batchID uint64) {
	n := nb.rows
	c := &nb.cols
	le := binary.LittleEndian
	le.PutUint32(c[0][4*n:], unixSeconds(r.Start))
	le.PutUint32(c[1][4*n:], unixSeconds(r.End))
	d := r.End - r.Start
	if d < 0 {
		d = 0
	} else if d > math.MaxUint32 {
		d = math.MaxUint32
	}
	le.PutUint32(c[2][4*n:], uint32(d))
	putAddr(c[3][16*n:], r.Exporter)
	le.PutUint32(c[4][4*n:], r.Domain)
	putAddr(c[5][16*n:], r.SrcAddr)
	putAddr(c[6][16*n:], r.DstAddr)
	putAddr(c[7][16*n:], r.NextHop)
	le.PutUint16(c[8][2*n:], r.SrcPort)
	le.PutUint16(c[9][2*n:], r.DstPort)
	c[10][n], c[11][n], c[12][n] = r.Proto, r.TOS, r.TCPFlags
	le.PutUint32(c[13][4*n:], r.InIf)
	le.PutUint32(c[14][4*n:], r.OutIf)
	le.PutUint32(c[15][4*n:], r.SrcAS)
	le.PutUint32(c[16][4*n:], r.DstAS)
	c[17][n], c[18][n] = r.SrcMask, r.DstMask
	le.PutUint64(c[19][8*n:], r.Bytes)
	le.PutUint64(c[20][8*n:], r.Packets)
	le.PutUint32(c[21][4*n:], r.SamplingRate)
	le.PutUint16(c[22][2*n:], r.SrcVLAN)
	le.PutUint16(c[23][2*n:], r.DstVLAN)
	le.PutUint64(c[24][8*n:], macUint(r.SrcMAC))
	le.PutUint64(c[25][8*n:], macUint(r.DstMAC))
	le.PutUint64(c[26][8*n:], batchID)
	nb.rows++
}

// seal returns the Native block of the rows added, within the builder's
// buffer: the columns are moved down to follow each other when the
// builder is not full. The builder must be reset before it is used again.
func (nb *nativeBuilder) seal() []byte {
	off := nativeHeadRoom
	for i := range numRawColumns {
		h := rawColumnHeaders[i]
		n := nb.rows * rawWidths[i]
		data := nb.cols[i][:n]
		if nb.rows < nb.cap {
			// Moving down: destination before source, copy is a memmove.
			copy(nb.buf[off:], h)
			copy(nb.buf[off+len(h):], data)
		}
		off += len(h) + n
	}
	var head [nativeHeadRoom]byte
	hl := binary.PutUvarint(head[:], numRawColumns)
	hl += binary.PutUvarint(head[hl:], uint64(nb.rows))
	start := nativeHeadRoom - hl
	copy(nb.buf[start:], head[:hl])
	return nb.buf[start:off]
}

// errNative reports a Native block that is not one of the raw table's.
var errNative = errors.New("clickhouse: not a Native block of the raw table")

// parseNative checks that b is a Native block of raw-table rows as
// nativeBuilder writes them (the same columns, names and types, in the
// same order, nothing after the last column) and returns its row count
// and each column's values.
func parseNative(b []byte) (rows int, cols [numRawColumns][]byte, err error) {
	nc, k := binary.Uvarint(b)
	if k <= 0 || nc != numRawColumns {
		return 0, cols, fmt.Errorf("%w: %d columns", errNative, nc)
	}
	b = b[k:]
	nr, k := binary.Uvarint(b)
	if k <= 0 || nr == 0 || nr > maxBatchRows {
		return 0, cols, fmt.Errorf("%w: %d rows", errNative, nr)
	}
	b = b[k:]
	rows = int(nr)
	for i := range numRawColumns {
		h := rawColumnHeaders[i]
		if len(b) < len(h) || string(b[:len(h)]) != string(h) {
			return 0, cols, fmt.Errorf("%w: column %d is not %s %s", errNative, i, rawColumns[i].name, rawColumns[i].typ)
		}
		b = b[len(h):]
		n := rows * rawWidths[i]
		if len(b) < n {
			return 0, cols, fmt.Errorf("%w: column %s truncated", errNative, rawColumns[i].name)
		}
		cols[i] = b[:n:n]
		b = b[n:]
	}
	if len(b) != 0 {
		return 0, cols, fmt.Errorf("%w: %d bytes after the last column", errNative, len(b))
	}
	return rows, cols, nil
}

// selectNative returns a new Native block of the rows of cols (rows
// each) for which keep is true, and how many; keep gets the row's index.
func selectNative(rows int, cols *[numRawColumns][]byte, keep func(i int) bool) ([]byte, int) {
	var sel []int
	for i := range rows {
		if keep(i) {
			sel = append(sel, i)
		}
	}
	if len(sel) == 0 {
		return nil, 0
	}
	var nb nativeBuilder
	nb.reset(make([]byte, nativeSize(len(sel))), len(sel))
	for c := range numRawColumns {
		w := rawWidths[c]
		for j, i := range sel {
			copy(nb.cols[c][j*w:(j+1)*w], cols[c][i*w:(i+1)*w])
		}
	}
	nb.rows = len(sel)
	return nb.seal(), len(sel)
}

// nativeRow decodes row i of parsed Native columns into r and returns its
// batch id, as DecodeRow does for a RowBinary row.
func nativeRow(cols *[numRawColumns][]byte, i int, r *flow.Record) uint64 {
	var row [RowSize]byte
	off := 0
	for c := range numRawColumns {
		w := rawWidths[c]
		off += copy(row[off:], cols[c][i*w:(i+1)*w])
	}
	id, _ := DecodeRow(row[:], r)
	return id
}
