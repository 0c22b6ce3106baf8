// Package flowfile is flowscan's flow-file archive: a Writer that stores
// flow.Records in time-aligned, compressed, crash-safe files with rotation,
// recovery and expiry, a Reader, and helpers to name, list and expire files.
//
// # File format (version 2; version 1 is still read)
//
// All integers are little-endian. A file is a 16-byte file header followed by
// a sequence of self-delimiting blocks:
//
//	file header (16 bytes)
//	  0  [8]byte  magic "FLOWSCAN"
//	  8  uint32   format version (2; 1 for files of older writers)
//	  12 uint32   reserved, 0
//
//	block header (56 bytes), then CompLen payload bytes
//	  0  uint8    type: 1 data, 2 meta
//	  1  uint8    codec: 0 none, 1 zstd, 2 sections (data blocks, version 2)
//	  2  uint16   reserved, 0
//	  4  uint32   records in the block (0 for meta blocks)
//	  8  uint32   RawLen, payload length before compression (sections: the
//	              size of the column data once its streams are decoded)
//	  12 uint32   CompLen, payload length on disk
//	  16 int64    MinStart, smallest record Start (Unix ms) in the block
//	  24 int64    MaxEnd, largest record End (Unix ms) in the block
//	  32 uint64   sum of Packets over the block's records
//	  40 uint64   sum of Bytes over the block's records
//	  48 uint32   CRC-32C (Castagnoli) of the CompLen payload bytes
//	  52 uint32   CRC-32C of header bytes 0..51
//
// Only a block whose header and payload checksums both verify counts; a reader
// stops at the first block that does not (a torn tail after a crash). The
// header checksum is verified before any length in it is trusted, and lengths
// are bounded (maxBlockRecords, maxRawLen) before anything is allocated.
//
// Data blocks hold their records column-wise, one column per field, in this
// order:
//
//	4 address columns:  Exporter, SrcAddr, DstAddr, NextHop
//	21 integer columns: Start, End, Bytes, Packets, Domain, SamplingRate,
//	                    InIf, OutIf, SrcAS, DstAS, SrcPort, DstPort,
//	                    SrcVLAN, DstVLAN, Proto, TOS, TCPFlags, SrcMask,
//	                    DstMask, SrcMAC, DstMAC (MACs as 48-bit values,
//	                    first octet least significant)
//
// Both versions split columns into byte planes. An address column is n kind
// bytes (0 zero Addr, 1 IPv4, 2 IPv6, 3 IPv6 with zone), the IPv4 addresses
// as 4 byte planes (all first bytes, then all second bytes, ...), the IPv6
// addresses (kinds 2 and 3) as 16 byte planes, then for each kind-3 address
// its zone as a uvarint length and bytes. An integer column is a width byte
// w (0..8, the bytes needed for the largest value; 0 when every value is 0)
// and w byte planes of n bytes, least significant plane first. Start is
// stored as Start-MinStart (MinStart from the block header), End as the
// zigzag-encoded End-Start (the flow duration); all other fields as they
// are.
//
// Version 2 data blocks (codec 2, "sections"): the payload opens with a
// table of 25 uint32 section lengths, one per column in the order above,
// followed by the sections, which must fill the payload exactly. A section
// is its column as above, except that every byte plane (and the kind bytes)
// is a stream: chunks of up to 65536 bytes of the plane, each a uvarint
// header h (kind h&3, stored length h>>2) and h>>2 bytes: kind 0 raw bytes,
// kind 1 a huff0 table and 4-stream Huffman code (zstd's literal format),
// kind 2 one byte repeated for the whole chunk, kind 3 bit-packed (a byte
// w of 1..4 bits per index, a byte d of 1..2^w and d dictionary bytes, then
// groups of 8 indices as w-byte little-endian numbers, first index lowest;
// out-of-dictionary indices decode as 0). An integer section whose width
// byte has bit 7 set is in dictionary form: width w = byte&0x7f, a byte
// d-1, d values as w raw planes of d bytes, then one stream of n indices.
// A reader decodes only the sections of the columns it selects (Start too
// for End); the others are only checked to lie inside the payload.
//
// Version 1 data blocks (codec 0 or 1): the columns as above, concatenated,
// as one zstd frame (codec 1) or uncompressed (codec 0).
//
// A meta block payload is the JSON encoding of Meta (the cumulative state of
// the file), except that FirstFlow and LastFlow are Unix milliseconds, plus
// "Final": true on the meta block that ends a completed file. The writer
// appends a meta block with every flush, so a recovered file has its exporter
// statistics as of the last flush. A file is complete when its last valid
// block is a final meta block and nothing follows it; its Meta.Complete is
// true unless records were dropped (DroppedFlows > 0), so a file that lost
// blocks to a write error never reads as complete.
//
// Totals (flows, packets, bytes, first and last flow time) of a file that is
// not complete are recomputed from the data block headers, so a meta block
// lost in a crash costs only exporter statistics of the last flush interval.
package flowfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// FormatVersion is the file format version this package writes. Readers
// also read version 1 (data blocks with codec 0 or 1).
const FormatVersion = 2

const (
	fileMagic         = "FLOWSCAN"
	fileHeaderLen     = 16
	blockHeaderLen    = 56
	maxBlockRecords   = 1 << 18  // records in one data block
	maxRawLen         = 64 << 20 // uncompressed payload of one block
	maxMetaLen        = 16 << 20 // meta block payload (JSON)
	maxZoneLen        = 255      // IPv6 zone name
	minBytesPerRecord = 4        // four address kind bytes
)

// BlockType says what a block holds.
type BlockType uint8

// Block types.
const (
	BlockData BlockType = 1
	BlockMeta BlockType = 2
)

const (
	codecNone     uint8 = 0
	codecZstd     uint8 = 1
	codecSections uint8 = 2 // data blocks of version 2: see sections.go
)

// ErrNotFlowFile is returned (wrapped) by Open for a file that does not start
// with a flow-file header.
var ErrNotFlowFile = errors.New("not a flowscan flow file")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// blockHeader is the decoded form of a block header.
type blockHeader struct {
	Type     BlockType
	Codec    uint8
	Records  uint32
	RawLen   uint32
	CompLen  uint32
	MinStart int64
	MaxEnd   int64
	Packets  uint64
	Bytes    uint64
	CRC      uint32
}

func appendFileHeader(dst []byte) []byte {
	dst = append(dst, fileMagic...)
	dst = binary.LittleEndian.AppendUint32(dst, FormatVersion)
	return binary.LittleEndian.AppendUint32(dst, 0)
}

func parseFileHeader(b []byte) (version uint32, err error) {
	if len(b) < fileHeaderLen || string(b[:8]) != fileMagic {
		return 0, fmt.Errorf("%w (bad magic)", ErrNotFlowFile)
	}
	version = binary.LittleEndian.Uint32(b[8:])
	if version != 1 && version != FormatVersion {
		return version, fmt.Errorf("unsupported flow file version %d (want 1 or %d)", version, FormatVersion)
	}
	return version, nil
}

func (h *blockHeader) put(b []byte) {
	_ = b[blockHeaderLen-1]
	b[0] = byte(h.Type)
	b[1] = h.Codec
	b[2], b[3] = 0, 0
	binary.LittleEndian.PutUint32(b[4:], h.Records)
	binary.LittleEndian.PutUint32(b[8:], h.RawLen)
	binary.LittleEndian.PutUint32(b[12:], h.CompLen)
	binary.LittleEndian.PutUint64(b[16:], uint64(h.MinStart))
	binary.LittleEndian.PutUint64(b[24:], uint64(h.MaxEnd))
	binary.LittleEndian.PutUint64(b[32:], h.Packets)
	binary.LittleEndian.PutUint64(b[40:], h.Bytes)
	binary.LittleEndian.PutUint32(b[48:], h.CRC)
	binary.LittleEndian.PutUint32(b[52:], crc32.Checksum(b[:52], castagnoli))
}

// parseBlockHeader checks the header checksum and the bounds of every length
// field of a block in a file of the given format version; it does not look
// at the payload.
func parseBlockHeader(b []byte, version uint32) (blockHeader, error) {
	var h blockHeader
	if len(b) < blockHeaderLen {
		return h, errors.New("short block header")
	}
	if crc32.Checksum(b[:52], castagnoli) != binary.LittleEndian.Uint32(b[52:]) {
		return h, errors.New("block header checksum mismatch")
	}
	h = blockHeader{
		Type:     BlockType(b[0]),
		Codec:    b[1],
		Records:  binary.LittleEndian.Uint32(b[4:]),
		RawLen:   binary.LittleEndian.Uint32(b[8:]),
		CompLen:  binary.LittleEndian.Uint32(b[12:]),
		MinStart: int64(binary.LittleEndian.Uint64(b[16:])),
		MaxEnd:   int64(binary.LittleEndian.Uint64(b[24:])),
		Packets:  binary.LittleEndian.Uint64(b[32:]),
		Bytes:    binary.LittleEndian.Uint64(b[40:]),
		CRC:      binary.LittleEndian.Uint32(b[48:]),
	}
	switch {
	case h.Codec == codecSections && (version < 2 || h.Type != BlockData):
		return h, fmt.Errorf("block codec %d in a version %d file's block of type %d", h.Codec, version, h.Type)
	case h.Codec != codecNone && h.Codec != codecZstd && h.Codec != codecSections:
		return h, fmt.Errorf("unknown block codec %d", h.Codec)
	case h.Codec == codecNone && h.CompLen != h.RawLen:
		return h, errors.New("uncompressed block with differing lengths")
	case h.CompLen > maxRawLen:
		return h, fmt.Errorf("block length %d too large", h.CompLen)
	}
	switch h.Type {
	case BlockData:
		if h.Records == 0 || h.Records > maxBlockRecords {
			return h, fmt.Errorf("data block with %d records", h.Records)
		}
		if h.RawLen > maxRawLen || uint64(h.RawLen) < uint64(h.Records)*minBytesPerRecord {
			return h, fmt.Errorf("data block length %d does not fit %d records", h.RawLen, h.Records)
		}
	case BlockMeta:
		if h.Records != 0 || h.RawLen > maxMetaLen {
			return h, errors.New("malformed meta block header")
		}
	default:
		return h, fmt.Errorf("unknown block type %d", h.Type)
	}
	return h, nil
}
