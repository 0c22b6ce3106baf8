package flowtools

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zlib"
	"io"
	"os"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/flow"
)

// BatchSize is the most records one Next call appends.
const BatchSize = 1024

// Reader reads the records of one flow-tools stream.
type Reader struct {
	closer  io.Closer
	name    string
	hdr     *Header
	order   binary.ByteOrder
	recSize int
	body    io.Reader
	zr      io.ReadCloser
	buf     []byte
	records uint64
	err     error // sticky error returned after the records before it
}

// Open opens a flow-tools file (completed or in progress) and reads its
// header.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r.closer = f
	r.name = path
	return r, nil
}

// NewReader reads a flow-tools stream header from src and returns a reader
// of its records. Closing the Reader does not close src.
func NewReader(src io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(src, 64<<10)
	prefix, err := br.Peek(fixedLen)
	if err != nil {
		if len(prefix) >= 2 && (prefix[0] != magic1 || prefix[1] != magic2) {
			return nil, ErrNotFlowTools
		}
		if len(prefix) >= 4 {
			if _, _, _, perr := parsePrefix(prefix); perr != nil {
				return nil, perr
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF || err == bufio.ErrBufferFull {
			return nil, fmt.Errorf("%w: %d-byte file", ErrCorrupt, len(prefix))
		}
		return nil, err
	}
	_, order, size, err := parsePrefix(prefix)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, size)
	if _, err := io.ReadFull(br, raw); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("%w: header of %d bytes is truncated", ErrCorrupt, size)
		}
		return nil, err
	}
	h, err := parseHeader(raw)
	if err != nil {
		return nil, err
	}
	recSize, err := h.recordSize()
	if err != nil {
		return nil, err
	}
	r := &Reader{hdr: h, order: order, recSize: recSize, body: br, buf: make([]byte, recSize*BatchSize)}
	if h.Compressed() {
		zr, err := zlib.NewReader(br)
		if err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				// A compressed in-progress file with nothing flushed
				// yet has no records; a completed one is damaged.
				r.err = io.EOF
				if h.Done() {
					r.err = fmt.Errorf("%w: compressed body is missing", ErrTruncated)
				}
				return r, nil
			}
			return nil, fmt.Errorf("%w: zlib: %v", ErrCorrupt, err)
		}
		r.zr, r.body = zr, zr
	}
	return r, nil
}

// Header returns the stream header.
func (r *Reader) Header() *Header { return r.hdr }

// Records returns the number of records returned so far.
func (r *Reader) Records() uint64 { return r.records }

// Next appends up to BatchSize records to dst and returns it. After the
// last record it returns io.EOF. A truncated body (an in-progress file, or
// a damaged one) yields the complete records before the damage and then an
// error wrapping ErrTruncated; a damaged compressed body gives one
// wrapping ErrCorrupt. Read errors are returned as they are. Next
// allocates only when dst must grow.
func (r *Reader) Next(dst []flow.Record) ([]flow.Record, error) {
	if r.err != nil {
		return dst, r.err
	}
	n, err := 0, error(nil)
	for n < len(r.buf) && err == nil {
		var m int
		m, err = r.body.Read(r.buf[n:])
		n += m
	}
	whole := n / r.recSize
	if err != nil {
		r.err = r.bodyError(err, n%r.recSize, r.records+uint64(whole))
	}
	if whole == 0 {
		return dst, r.err
	}
	base := len(dst)
	dst = grow(dst, whole)
	for i := 0; i < whole; i++ {
		decodeRecord(&dst[base+i], r.buf[i*r.recSize:(i+1)*r.recSize], r.order)
	}
	r.records += uint64(whole)
	return dst, nil
}

// bodyError classifies the error that ended the body after the given
// number of complete records, with partial bytes of the next one.
func (r *Reader) bodyError(err error, partial int, records uint64) error {
	var ce flate.CorruptInputError
	switch {
	case err == io.EOF && partial == 0:
		return io.EOF
	case err == io.EOF:
		err = fmt.Errorf("%w: %d bytes of a partial record after record %d", ErrTruncated, partial, records)
	case err == io.ErrUnexpectedEOF:
		err = fmt.Errorf("%w: compressed body ends after record %d", ErrTruncated, records)
	case errors.As(err, &ce), errors.Is(err, zlib.ErrChecksum), errors.Is(err, zlib.ErrHeader), errors.Is(err, zlib.ErrDictionary):
		err = fmt.Errorf("%w: after record %d: %v", ErrCorrupt, records, err)
	}
	if r.name != "" {
		err = fmt.Errorf("%s: %w", r.name, err)
	}
	return err
}

// grow extends s by n elements, reallocating only when capacity runs out.
func grow(s []flow.Record, n int) []flow.Record {
	if need := len(s) + n; need > cap(s) {
		ns := make([]flow.Record, len(s), max(need, 2*cap(s)))
		copy(ns, s)
		s = ns
	}
	return s[:len(s)+n]
}

// decodeRecord decodes the common v5/v6/v7 prefix of a stored record
// (fts3rec_v5 layout, 64 bytes) into r.
func decodeRecord(r *flow.Record, b []byte, o binary.ByteOrder) {
	b = b[:64]
	up := o.Uint32(b[8:])
	wall := int64(o.Uint32(b[0:]))*1000 + int64(o.Uint32(b[4:])/1_000_000)
	*r = flow.Record{
		Exporter: addr4(o.Uint32(b[12:])),
		SrcAddr:  addr4(o.Uint32(b[16:])),
		DstAddr:  addr4(o.Uint32(b[20:])),
		InIf:     uint32(o.Uint16(b[28:])),
		OutIf:    uint32(o.Uint16(b[30:])),
		Packets:  uint64(o.Uint32(b[32:])),
		Bytes:    uint64(o.Uint32(b[36:])),
		Start:    decode.UptimeToUnixMilli(o.Uint32(b[40:]), up, wall),
		End:      decode.UptimeToUnixMilli(o.Uint32(b[44:]), up, wall),
		SrcPort:  o.Uint16(b[48:]),
		DstPort:  o.Uint16(b[50:]),
		Proto:    b[52],
		TOS:      b[53],
		TCPFlags: b[54],
		Domain:   uint32(b[56])<<8 | uint32(b[57]),
		SrcMask:  b[58],
		DstMask:  b[59],
		SrcAS:    uint32(o.Uint16(b[60:])),
		DstAS:    uint32(o.Uint16(b[62:])),
	}
	if nh := o.Uint32(b[24:]); nh != 0 {
		r.NextHop = addr4(nh)
	}
}

// Close releases the reader and closes the file opened by Open.
func (r *Reader) Close() error {
	var err error
	if r.zr != nil {
		r.zr.Close()
	}
	if r.closer != nil {
		err = r.closer.Close()
		r.closer = nil
	}
	r.err = errors.New("flowtools: reader closed")
	return err
}
