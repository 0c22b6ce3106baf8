package clickhouse

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"github.com/flowscan/flowscan/internal/fsutil"
)

// A batch is a run of raw-table rows inserted in one INSERT. Its id,
// written into every row's batch_id, makes re-sending safe: before a
// batch whose earlier attempt failed is sent again, the sink asks the
// server whether the rows with that id are already there.
type batch struct {
	id         uint64
	rows       int
	minT, maxT uint32 // time_end bounds (Unix seconds), to narrow the check
	// data is the batch's rows once sealed: a Native block, or RowBinary
	// rows for a batch spooled by flowscan before the Native format
	// (rowBinary set).
	data      []byte
	rowBinary bool
	// build holds the rows of the batch being filled (Native columns);
	// its buffer is kept for reuse once the batch is sent.
	build nativeBuilder
	// attempted is set once an INSERT of the batch failed: its outcome is
	// unknown and must be checked before sending again.
	attempted bool
}

// format is the INSERT format of the batch's data.
func (b *batch) format() string {
	if b.rowBinary {
		return "RowBinary"
	}
	return "Native"
}

// seq is the batch's sequence number (the low 40 bits of its id).
func (b *batch) seq() uint64 { return b.id & seqMask }

const (
	seqBits  = 40
	seqMask  = 1<<seqBits - 1
	seqChunk = 1 << 16 // sequence numbers reserved on disk at a time

	// maxBatchRows is the largest batch (ClickHouse inserts up to this
	// many rows as one block, atomically).
	maxBatchRows = 1 << 20

	// spoolMagic starts a spool file of a Native batch; spoolMagicRowBinary
	// one of RowBinary rows, as flowscan wrote them before the Native
	// format (still read and sent as they are).
	spoolMagic          = "FSCHSPL2"
	spoolMagicRowBinary = "FSCHSPL1"
	spoolHeader         = 8 + 8 + 4 + 4 + 4 + 4
	spoolSuffix         = ".batch"
)

// errSpoolDamaged marks a spool file that can never be read (as opposed
// to a transient read error).
var errSpoolDamaged = errors.New("clickhouse spool: damaged batch file")

// spool keeps batches on local disk while the server is slow or down,
// one file per batch named by its sequence number, and the state that
// keeps batch ids unique across restarts (the collector id and the
// highest sequence number reserved).
type spool struct {
	dir         string
	collectorID uint32 // 24 bits
	reserved    uint64 // sequence numbers below this may have been used
	files       []uint64
	sizes       map[uint64]int64
	bytes       int64
	enc         *zstd.Encoder
	dec         *zstd.Decoder
}

func openSpool(dir string) (*spool, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("clickhouse spool: %w", err)
	}
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	dec, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(2*maxBatchRows*RowSize))
	s := &spool{dir: dir, sizes: map[uint64]int64{}, enc: enc, dec: dec}
	if err := s.loadState(); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("clickhouse spool: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") { // a temporary file of an interrupted write
			os.Remove(filepath.Join(dir, name))
			continue
		}
		seqStr, ok := strings.CutSuffix(name, spoolSuffix)
		if !ok {
			continue
		}
		seq, err := strconv.ParseUint(seqStr, 10, 64)
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		s.files = append(s.files, seq)
		s.sizes[seq] = info.Size()
		s.bytes += info.Size()
		if seq >= s.reserved {
			s.reserved = seq + 1
		}
	}
	sort.Slice(s.files, func(i, j int) bool { return s.files[i] < s.files[j] })
	return s, nil
}

func (s *spool) statePath() string { return filepath.Join(s.dir, "state") }

// loadState reads "collector-id reserved" or creates a new collector id.
func (s *spool) loadState() error {
	b, err := os.ReadFile(s.statePath())
	if errors.Is(err, os.ErrNotExist) {
		var r [4]byte
		rand.Read(r[:])
		s.collectorID = binary.LittleEndian.Uint32(r[:]) & 0xffffff
		return nil
	}
	if err != nil {
		return fmt.Errorf("clickhouse spool state: %w", err)
	}
	var id uint32
	var res uint64
	if _, err := fmt.Sscanf(string(b), "%d %d", &id, &res); err != nil {
		return fmt.Errorf("clickhouse spool state %s: %q: %w", s.statePath(), b, err)
	}
	s.collectorID, s.reserved = id&0xffffff, res
	return nil
}

// reserve records on disk that sequence numbers below upTo may be used,
// so that a restart, even after kill -9, never reuses a batch id.
func (s *spool) reserve(upTo uint64) error {
	if err := fsutil.WriteFileAtomic(s.statePath(), fmt.Appendf(nil, "%d %d\n", s.collectorID, upTo)); err != nil {
		return fmt.Errorf("clickhouse spool state: %w", err)
	}
	s.reserved = upTo
	return nil
}

func (s *spool) path(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", seq, spoolSuffix))
}

// encode returns b as a spool file's bytes: the header, then the Native
// block compressed with S2 (a batch of RowBinary rows, read from a spool
// file of the old format, is written in that format again: zstd). It
// holds no lock: the encoder may be shared. (S2 measured 2.3 times as fast
// as zstd's fastest level on Native batches of generated flows, 195
// against 457 ns per flow, for 0.25 of the size instead of 0.17: the
// collector spools when the server lags, when its CPU is most needed.)
func (s *spool) encode(b *batch) []byte {
	buf := make([]byte, spoolHeader, spoolHeader+len(b.data)/4)
	copy(buf, spoolMagic)
	if b.rowBinary {
		copy(buf, spoolMagicRowBinary)
	}
	le := binary.LittleEndian
	le.PutUint64(buf[8:], b.id)
	le.PutUint32(buf[16:], uint32(b.rows))
	var flags uint32
	if b.attempted {
		flags |= 1
	}
	le.PutUint32(buf[20:], flags)
	le.PutUint32(buf[24:], b.minT)
	le.PutUint32(buf[28:], b.maxT)
	if b.rowBinary {
		return s.enc.EncodeAll(b.data, buf)
	}
	return append(buf, s2.Encode(nil, b.data)...)
}

// write stores an encoded batch as the spool file of seq (synced,
// renamed into place). It touches only that file: no lock needed.
func (s *spool) write(seq uint64, buf []byte) error {
	if err := fsutil.WriteFileAtomic(s.path(seq), buf); err != nil {
		return fmt.Errorf("clickhouse spool: %w", err)
	}
	return nil
}

// record enters a written file in the bookkeeping (the caller holds the
// sink's lock).
func (s *spool) record(seq uint64, size int64) {
	if _, dup := s.sizes[seq]; !dup {
		i := sort.Search(len(s.files), func(i int) bool { return s.files[i] >= seq })
		s.files = append(s.files, 0)
		copy(s.files[i+1:], s.files[i:])
		s.files[i] = seq
	} else {
		s.bytes -= s.sizes[seq]
	}
	s.sizes[seq] = size
	s.bytes += size
}

// load reads the batch with sequence number seq.
func (s *spool) load(seq uint64) (*batch, error) {
	raw, err := os.ReadFile(s.path(seq))
	if err != nil {
		return nil, fmt.Errorf("clickhouse spool: %w", err)
	}
	return s.decode(raw, seq)
}

// zstdFrameMagic opens a zstd frame.
var zstdFrameMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// decode reads a spool file's bytes (see load); seq is the sequence
// number its name gives.
func (s *spool) decode(raw []byte, seq uint64) (*batch, error) {
	if len(raw) < spoolHeader || string(raw[:8]) != spoolMagic && string(raw[:8]) != spoolMagicRowBinary {
		return nil, fmt.Errorf("%w: %s: not a spooled batch", errSpoolDamaged, s.path(seq))
	}
	le := binary.LittleEndian
	b := &batch{id: le.Uint64(raw[8:]), rows: int(le.Uint32(raw[16:])), attempted: le.Uint32(raw[20:])&1 != 0,
		minT: le.Uint32(raw[24:]), maxT: le.Uint32(raw[28:]), rowBinary: string(raw[:8]) == spoolMagicRowBinary}
	if b.rows <= 0 || b.rows > maxBatchRows {
		return nil, fmt.Errorf("%w: %s: %d rows in one batch", errSpoolDamaged, s.path(seq), b.rows)
	}
	size := b.rows * RowSize
	if !b.rowBinary {
		size = nativeBlockSize(b.rows)
	}
	var err error
	if b.rowBinary {
		b.data, err = s.dec.DecodeAll(raw[spoolHeader:], make([]byte, 0, size))
	} else if bytes.HasPrefix(raw[spoolHeader:], zstdFrameMagic) {
		// A Native batch spooled by the builds that compressed them with
		// zstd (an S2 stream of a Native block never starts so: its
		// first byte is a length of at least 0x80).
		b.data, err = s.dec.DecodeAll(raw[spoolHeader:], make([]byte, 0, size))
	} else {
		var n int
		if n, err = s2.DecodedLen(raw[spoolHeader:]); err == nil && n != size {
			err = fmt.Errorf("%d bytes compressed, %d expected", n, size)
		}
		if err == nil {
			b.data, err = s2.Decode(make([]byte, size), raw[spoolHeader:])
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errSpoolDamaged, s.path(seq), err)
	}
	if len(b.data) != size || b.seq() != seq {
		return nil, fmt.Errorf("%w: %s: %d bytes for %d rows (batch %d)", errSpoolDamaged, s.path(seq), len(b.data), b.rows, b.seq())
	}
	if !b.rowBinary {
		rows, cols, err := parseNative(b.data)
		if err == nil && rows != b.rows {
			err = fmt.Errorf("%d rows in the block, %d in the header", rows, b.rows)
		}
		if err == nil && binary.LittleEndian.Uint64(cols[numRawColumns-1]) != b.id {
			err = fmt.Errorf("rows of batch %d in the file of batch %d", binary.LittleEndian.Uint64(cols[numRawColumns-1]), b.id)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", errSpoolDamaged, s.path(seq), err)
		}
	}
	return b, nil
}

// remove deletes the spooled batch seq (sent, or unreadable).
func (s *spool) remove(seq uint64) error {
	err := os.Remove(s.path(seq))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("clickhouse spool: %w", err)
	}
	for i, v := range s.files {
		if v == seq {
			s.files = append(s.files[:i], s.files[i+1:]...)
			break
		}
	}
	s.bytes -= s.sizes[seq]
	delete(s.sizes, seq)
	return nil
}
