package flowfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/flowscan/flowscan/internal/flow"
)

var (
	decoderOnce   sync.Once
	sharedDecoder *zstd.Decoder
)

// zstdDecoder returns the package's decoder; DecodeAll is safe for
// concurrent use.
func zstdDecoder() *zstd.Decoder {
	decoderOnce.Do(func() {
		d, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(0),
			// The block CRC-32C already covers the compressed payload.
			zstd.IgnoreChecksum(true),
			zstd.WithDecoderMaxMemory(maxRawLen),
			zstd.WithDecoderMaxWindow(maxRawLen))
		if err != nil {
			panic("flowfile: zstd decoder: " + err.Error())
		}
		sharedDecoder = d
	})
	return sharedDecoder
}

// BlockInfo describes one data block, for queries that skip blocks by time.
type BlockInfo struct {
	// Offset is the block header's position in the file.
	Offset  int64
	Records int
	// MinStart and MaxEnd bound the records' Start and End (Unix ms).
	MinStart, MaxEnd int64
	Packets, Bytes   uint64
	header           blockHeader
}

// scanResult is what a pass over a file's blocks found.
type scanResult struct {
	version  uint32
	blocks   []BlockInfo
	lastMeta *Meta // decoded payload of the last valid meta block
	totals   totals
	// validEnd is the offset just past the last valid block.
	validEnd int64
	// final is true when the last valid block is a final (Complete) meta
	// block.
	final bool
	// tornErr says why scanning stopped before the end of the file.
	tornErr error
}

// scanFile reads block headers from the file header to the first invalid
// block. With verify, data block payload checksums are checked too (meta
// payloads are always checked, they are decoded).
func scanFile(f io.ReaderAt, size int64, verify bool) (*scanResult, error) {
	var hdr [blockHeaderLen]byte
	if size < fileHeaderLen {
		return nil, fmt.Errorf("%w (file too short: %d bytes)", ErrNotFlowFile, size)
	}
	if _, err := f.ReadAt(hdr[:fileHeaderLen], 0); err != nil {
		return nil, err
	}
	version, err := parseFileHeader(hdr[:fileHeaderLen])
	if err != nil {
		return nil, err
	}
	res := &scanResult{version: version, validEnd: fileHeaderLen}
	var payload []byte
	off := int64(fileHeaderLen)
	for off < size {
		if size-off < blockHeaderLen {
			res.tornErr = fmt.Errorf("torn block header at offset %d", off)
			break
		}
		if _, err := f.ReadAt(hdr[:], off); err != nil {
			return nil, err
		}
		h, err := parseBlockHeader(hdr[:], version)
		if err != nil {
			res.tornErr = fmt.Errorf("block at offset %d: %w", off, err)
			break
		}
		if int64(h.CompLen) > size-off-blockHeaderLen {
			res.tornErr = fmt.Errorf("torn block payload at offset %d", off)
			break
		}
		if h.Type == BlockMeta || verify {
			payload = readInto(payload, int(h.CompLen))
			if _, err := f.ReadAt(payload, off+blockHeaderLen); err != nil {
				return nil, err
			}
			if crc32.Checksum(payload, castagnoli) != h.CRC {
				res.tornErr = fmt.Errorf("block at offset %d: payload checksum mismatch", off)
				break
			}
		}
		if h.Type == BlockMeta {
			m, err := decodeMeta(payload, h)
			if err != nil {
				res.tornErr = fmt.Errorf("meta block at offset %d: %w", off, err)
				break
			}
			res.lastMeta = m
			res.final = m.final
		} else {
			res.blocks = append(res.blocks, BlockInfo{Offset: off, Records: int(h.Records), MinStart: h.MinStart, MaxEnd: h.MaxEnd, Packets: h.Packets, Bytes: h.Bytes, header: h})
			res.totals.addBlock(h.Records, h.MinStart, h.MaxEnd, h.Packets, h.Bytes)
			res.final = false
		}
		off += blockHeaderLen + int64(h.CompLen)
		res.validEnd = off
	}
	return res, nil
}

// metaJSON is Meta plus writer bookkeeping stored in meta blocks.
type metaJSON struct {
	Meta
	// FirstFlow and LastFlow shadow Meta's: stored as Unix milliseconds
	// because record times may lie outside the years JSON times allow.
	FirstFlow int64 `json:"FirstFlow,omitzero"`
	LastFlow  int64 `json:"LastFlow,omitzero"`
	// Final marks the last block of a completed file (even one whose
	// Complete is false because records were dropped).
	Final bool `json:",omitzero"`
}

// readInto returns buf resized to n bytes, reallocated with room to spare
// when too small (block sizes vary, so an exact fit would be outgrown by
// the next larger block).
func readInto(buf []byte, n int) []byte {
	if cap(buf) < n {
		return make([]byte, n, n+n/4)
	}
	return buf[:n]
}

// payloadBuffers holds the compressed and raw payload buffers of closed
// Readers, so that a query reading many files reuses them instead of
// faulting in fresh memory for every file.
var payloadBuffers sync.Pool // of *readerBuffers

type readerBuffers struct{ comp, raw []byte }

func decodeMeta(payload []byte, h blockHeader) (*Meta, error) {
	raw := payload
	if h.Codec == codecZstd {
		var err error
		raw, err = zstdDecoder().DecodeAll(payload, make([]byte, 0, h.RawLen))
		if err != nil {
			return nil, err
		}
	}
	if len(raw) != int(h.RawLen) {
		return nil, errors.New("meta length mismatch")
	}
	var mj metaJSON
	if err := json.Unmarshal(raw, &mj); err != nil {
		return nil, err
	}
	m := mj.Meta
	m.final = mj.Final
	if m.Flows > 0 {
		m.FirstFlow = time.UnixMilli(mj.FirstFlow).UTC()
		m.LastFlow = time.UnixMilli(mj.LastFlow).UTC()
	}
	return &m, nil
}

// Reader reads one flow file block by block.
type Reader struct {
	f      io.ReaderAt
	closer io.Closer
	path   string
	meta   *Meta
	blocks []BlockInfo
	next   int
	comp   []byte
	raw    []byte
	codec  columnCodec
	cols   Columns
}

// Open opens a flow file (or an in-progress .tmp file, whose Meta then
// reflects its valid blocks with Complete false) and reads its block index.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	r, err := NewReader(f, st.Size(), path)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closer = f
	return r, nil
}

// NewReader reads a flow file of size bytes from f; name (the file's path)
// is used in errors and, for a file without meta blocks, for its start time.
func NewReader(f io.ReaderAt, size int64, name string) (*Reader, error) {
	r, err := newReader(f, size, name)
	if err != nil {
		return nil, fmt.Errorf("flowfile: %s: %w", name, err)
	}
	return r, nil
}

func newReader(f io.ReaderAt, size int64, path string) (*Reader, error) {
	res, err := scanFile(f, size, false)
	if err != nil {
		return nil, err
	}
	complete := res.final && res.validEnd == size
	if !complete && len(res.blocks) > 0 {
		// Not a cleanly completed file: only count data blocks whose
		// payload verifies.
		if res, err = scanFile(f, size, true); err != nil {
			return nil, err
		}
	}
	m := metaFromScan(res, filepath.Base(path), complete)
	if complete && m.Flows != res.totals.flows {
		return nil, fmt.Errorf("meta counts %d flows but blocks hold %d", m.Flows, res.totals.flows)
	}
	return &Reader{f: f, path: path, meta: m, blocks: res.blocks, cols: AllColumns}, nil
}

// metaFromScan builds the Meta of a scanned file: the final meta block of a
// completed file, or the last meta block with totals recomputed from the
// data blocks otherwise.
func metaFromScan(res *scanResult, base string, complete bool) *Meta {
	if complete && res.lastMeta != nil {
		m := *res.lastMeta
		m.Version = int(res.version)
		return &m
	}
	var m Meta
	if res.lastMeta != nil {
		m = *res.lastMeta
	} else if start, ok := parseTmpName(base); ok {
		m.Start, m.End = start, start
	} else if start, ok := ParseName(base); ok {
		m.Start, m.End = start, start
	}
	m.Version = int(res.version)
	m.Complete = false
	m.final = false
	res.totals.apply(&m)
	return &m
}

// Meta returns the file's metadata.
func (r *Reader) Meta() *Meta { return r.meta }

// Blocks returns the data blocks' index.
func (r *Reader) Blocks() []BlockInfo { return r.blocks }

// SetColumns makes Next and ReadBlock decode only the fields in cols (the
// default is AllColumns). The appended records' other fields are not
// written: they keep what the destination slice's spare capacity held,
// which is zero for memory ReadBlock allocates, so a caller reusing one
// buffer with one column set sees them zero. In a version-2 file only the
// sections of the chosen columns are decoded and checked (the block
// checksum covers them all); in a version-1 file skipped columns are still
// checked, so a malformed block fails whatever the set.
func (r *Reader) SetColumns(cols Columns) { r.cols = cols & AllColumns }

// Columns returns the fields Next and ReadBlock decode.
func (r *Reader) Columns() Columns { return r.cols }

// Next appends the records of the next data block to dst and returns it;
// it returns io.EOF after the last block.
func (r *Reader) Next(dst []flow.Record) ([]flow.Record, error) {
	if r.next >= len(r.blocks) {
		return dst, io.EOF
	}
	b := r.blocks[r.next]
	r.next++
	return r.ReadBlock(b, dst)
}

// ReadBlock appends the records of data block b (from Blocks) to dst,
// decoding the fields chosen with SetColumns.
func (r *Reader) ReadBlock(b BlockInfo, dst []flow.Record) ([]flow.Record, error) {
	if err := r.locate(b); err != nil {
		return dst, err
	}
	return r.codec.appendLocated(dst, r.cols), nil
}

// locate reads data block b and prepares the columns chosen with
// SetColumns for decoding.
func (r *Reader) locate(b BlockInfo) error {
	raw, err := r.payload(b)
	if err != nil {
		return err
	}
	h := &b.header
	if err := r.codec.locateBlock(raw, h.Codec == codecSections, int(h.Records), h.MinStart, r.cols); err != nil {
		return fmt.Errorf("flowfile: %s: block at offset %d: %w", r.path, b.Offset, err)
	}
	return nil
}

// ScanBlock decodes data block b (from Blocks) into buf, len(buf) records
// at a time, and calls fn with each run of records in file order; fn must
// not keep the slice. Only the fields chosen with SetColumns are written
// (the others keep what buf held). The whole block is checked before fn
// is first called, so on error fn has seen none of its records. With a
// buf of about a thousand records, each run is used while it is still in
// the CPU cache, which makes scanning faster than ReadBlock.
func (r *Reader) ScanBlock(b BlockInfo, buf []flow.Record, fn func([]flow.Record)) error {
	if len(buf) == 0 {
		return fmt.Errorf("flowfile: %s: ScanBlock needs a non-empty buffer", r.path)
	}
	if err := r.locate(b); err != nil {
		return err
	}
	r.codec.scanLocated(buf, r.cols, fn)
	return nil
}

// payload reads, checks and (for a zstd block) decompresses data block
// b's payload; it is valid until the next call.
func (r *Reader) payload(b BlockInfo) ([]byte, error) {
	h := b.header
	if r.comp == nil && r.raw == nil {
		if bufs, ok := payloadBuffers.Get().(*readerBuffers); ok {
			r.comp, r.raw = bufs.comp, bufs.raw
		}
	}
	r.comp = readInto(r.comp, int(h.CompLen))
	if _, err := r.f.ReadAt(r.comp, b.Offset+blockHeaderLen); err != nil {
		return nil, fmt.Errorf("flowfile: %s: %w", r.path, err)
	}
	if crc32.Checksum(r.comp, castagnoli) != h.CRC {
		return nil, fmt.Errorf("flowfile: %s: block at offset %d: payload checksum mismatch", r.path, b.Offset)
	}
	raw := r.comp
	if h.Codec == codecZstd {
		var err error
		// Room for the whole payload, so DecodeAll does not grow it.
		r.raw = readInto(r.raw, int(h.RawLen))
		r.raw, err = zstdDecoder().DecodeAll(r.comp, r.raw[:0])
		if err != nil {
			return nil, fmt.Errorf("flowfile: %s: block at offset %d: %w", r.path, b.Offset, err)
		}
		raw = r.raw
	}
	if h.Codec != codecSections && len(raw) != int(h.RawLen) {
		return nil, fmt.Errorf("flowfile: %s: block at offset %d: length %d, header says %d", r.path, b.Offset, len(raw), h.RawLen)
	}
	return raw, nil
}

// Close closes the file opened by Open.
func (r *Reader) Close() error {
	if r.comp != nil || r.raw != nil {
		payloadBuffers.Put(&readerBuffers{comp: r.comp, raw: r.raw})
		r.comp, r.raw = nil, nil
	}
	if r.closer == nil {
		return nil
	}
	return r.closer.Close()
}
