package flowtools

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// ByteOrder is the byte order of a stream's header values and records, as
// stored in the third byte of the file.
type ByteOrder uint8

// Byte orders of a stream.
const (
	LittleEndian ByteOrder = 1
	BigEndian    ByteOrder = 2
)

// String returns "little" or "big".
func (o ByteOrder) String() string {
	switch o {
	case LittleEndian:
		return "little"
	case BigEndian:
		return "big"
	}
	return fmt.Sprintf("ByteOrder(%d)", uint8(o))
}

// byteOrder reads and appends in one byte order.
type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

func (o ByteOrder) binary() (byteOrder, bool) {
	switch o {
	case LittleEndian:
		return binary.LittleEndian, true
	case BigEndian:
		return binary.BigEndian, true
	}
	return nil, false
}

// Header flags (the HEADER_FLAGS value).
const (
	// FlagDone marks a file that flow-capture closed cleanly.
	FlagDone uint32 = 0x1
	// FlagCompress marks a zlib-compressed body.
	FlagCompress uint32 = 0x2
	// FlagMultPDU is defined by flow-tools but unused.
	FlagMultPDU uint32 = 0x4
	// FlagStreaming marks a stream written by a filter such as flow-cat.
	FlagStreaming uint32 = 0x8
	// FlagXlate marks a stream translated from an older format.
	FlagXlate uint32 = 0x10
	// FlagPreloaded marks a streaming header preloaded from the inputs.
	FlagPreloaded uint32 = 0x20
)

// Field bits of Header.Fields: which header values the file carried. The
// bit of TLV type t is 1<<(t-1), as in flow-tools.
const (
	FieldVendor         uint32 = 1 << (tlvVendor - 1)
	FieldExportVersion  uint32 = 1 << (tlvExportVersion - 1)
	FieldAggVersion     uint32 = 1 << (tlvAggVersion - 1)
	FieldAggMethod      uint32 = 1 << (tlvAggMethod - 1)
	FieldExporter       uint32 = 1 << (tlvExporterIP - 1)
	FieldCaptureStart   uint32 = 1 << (tlvCapStart - 1)
	FieldCaptureEnd     uint32 = 1 << (tlvCapEnd - 1)
	FieldFlags          uint32 = 1 << (tlvHeaderFlags - 1)
	FieldRotation       uint32 = 1 << (tlvRotSchedule - 1)
	FieldFlows          uint32 = 1 << (tlvFlowCount - 1)
	FieldLostFlows      uint32 = 1 << (tlvFlowLost - 1)
	FieldMisordered     uint32 = 1 << (tlvFlowMisordered - 1)
	FieldCorruptPackets uint32 = 1 << (tlvPktCorrupt - 1)
	FieldSequenceResets uint32 = 1 << (tlvSeqReset - 1)
	FieldHostname       uint32 = 1 << (tlvCapHostname - 1)
	FieldComments       uint32 = 1 << (tlvComments - 1)
	FieldInterfaceNames uint32 = 1 << (tlvIfName - 1)
	FieldInterfaceAlias uint32 = 1 << (tlvIfAlias - 1)
)

// TLV types of a stream version 3 header.
const (
	tlvNull           = 0x0
	tlvVendor         = 0x1
	tlvExportVersion  = 0x2
	tlvAggVersion     = 0x3
	tlvAggMethod      = 0x4
	tlvExporterIP     = 0x5
	tlvCapStart       = 0x6
	tlvCapEnd         = 0x7
	tlvHeaderFlags    = 0x8
	tlvRotSchedule    = 0x9
	tlvFlowCount      = 0xA
	tlvFlowLost       = 0xB
	tlvFlowMisordered = 0xC
	tlvPktCorrupt     = 0xD
	tlvSeqReset       = 0xE
	tlvCapHostname    = 0xF
	tlvComments       = 0x10
	tlvIfName         = 0x11
	tlvIfAlias        = 0x12
)

const (
	magic1 = 0xCF
	magic2 = 0x10
	// StreamVersion is the only stream (container) version read and
	// written.
	StreamVersion = 3
	// MaxHeaderSize bounds the header length a file may declare. flow-tools
	// itself never writes more than 16 KiB of header.
	MaxHeaderSize = 64 << 10
	// genericLen is magic, byte order and stream version; v3 adds a 32-bit
	// header length.
	genericLen = 4
	fixedLen   = genericLen + 4
	// maxInterfaces bounds the interface name and alias entries kept.
	maxInterfaces = 4096
)

// Errors returned by Open and NewReader (wrapped with detail).
var (
	// ErrNotFlowTools means the data does not start with the flow-tools
	// magic number.
	ErrNotFlowTools = errors.New("flowtools: not a flow-tools file")
	// ErrUnsupported means a valid stream this package cannot decode (stream
	// version 1, export versions other than 5, 6 and 7).
	ErrUnsupported = errors.New("flowtools: unsupported stream")
	// ErrCorrupt means the header or body is malformed or truncated.
	ErrCorrupt = errors.New("flowtools: corrupt stream")
	// ErrTruncated means the body ends inside a record or before the end
	// of its zlib stream: an in-progress file, or one cut short.
	ErrTruncated = errors.New("flowtools: truncated stream")
)

// InterfaceName is an IF_NAME header entry: a name for one ifIndex of one
// device.
type InterfaceName struct {
	Device  netip.Addr
	IfIndex uint16
	Name    string
}

// InterfaceAlias is an IF_ALIAS header entry: a name for a set of ifIndex
// values of one device.
type InterfaceAlias struct {
	Device    netip.Addr
	IfIndexes []uint16
	Name      string
}

// Header is a decoded flow-tools stream header.
type Header struct {
	// ByteOrder is the order of header values and record fields.
	ByteOrder ByteOrder
	// StreamVersion is the container version (3).
	StreamVersion uint8
	// Size is the header length in bytes: the offset of the body.
	Size int
	// Fields has a Field* bit for every value the header carried.
	Fields uint32

	// Vendor is 1 for Cisco.
	Vendor uint16
	// ExportVersion is the NetFlow version of the records (5, 6, 7, ...).
	ExportVersion uint16
	// AggVersion and AggMethod describe v8 aggregation streams.
	AggVersion, AggMethod uint8
	// Exporter is the exporter flow-capture accepted (the zero Addr when
	// it accepted any, or when absent).
	Exporter netip.Addr
	// CaptureStart and CaptureEnd bound the capture (seconds precision,
	// UTC), zero when absent.
	CaptureStart, CaptureEnd time.Time
	// Flags holds Flag* bits.
	Flags uint32
	// Rotation is flow-capture's rotation schedule (files per day).
	Rotation uint32
	// Flows is the number of records the writer counted.
	Flows uint32
	// LostFlows estimates flows lost to export sequence gaps.
	LostFlows uint32
	// MisorderedFlows counts flows that arrived out of sequence.
	MisorderedFlows uint32
	// CorruptPackets counts export packets that failed to decode.
	CorruptPackets uint32
	// SequenceResets counts sequence jumps too large to be loss.
	SequenceResets uint32
	// Hostname is the capturing host's name.
	Hostname string
	// Comments is the capture's free-text comment.
	Comments string
	// InterfaceNames and InterfaceAliases are the optional ifIndex maps.
	InterfaceNames   []InterfaceName
	InterfaceAliases []InterfaceAlias
}

// Has reports whether the header carried all the given Field* bits.
func (h *Header) Has(fields uint32) bool { return h.Fields&fields == fields }

// Compressed reports whether the body is zlib-compressed.
func (h *Header) Compressed() bool { return h.Flags&FlagCompress != 0 }

// Done reports whether the writer completed the file.
func (h *Header) Done() bool { return h.Flags&FlagDone != 0 }

// IntervalEnd is the end of the interval of a file that starts at start
// (the time in its name, else its capture start): the header's capture
// end, else start plus flow-capture's rotation period, else five minutes
// after start.
func (h *Header) IntervalEnd(start time.Time) time.Time {
	switch {
	case h.CaptureEnd.After(start):
		return h.CaptureEnd
	case h.Rotation > 0:
		return start.Add(24 * time.Hour / time.Duration(h.Rotation))
	}
	return start.Add(5 * time.Minute)
}

// recordSize returns the stored record length of the header's export
// version, for the versions this package decodes.
func (h *Header) recordSize() (int, error) {
	switch h.ExportVersion {
	case 5:
		return 64, nil
	case 6:
		return 72, nil
	case 7:
		return 68, nil
	}
	return 0, fmt.Errorf("%w: export version %d", ErrUnsupported, h.ExportVersion)
}

// parsePrefix checks the fixed 8-byte start of a file and returns the byte
// order and the declared header length.
func parsePrefix(b []byte) (ByteOrder, byteOrder, int, error) {
	if len(b) < genericLen || b[0] != magic1 || b[1] != magic2 {
		return 0, nil, 0, ErrNotFlowTools
	}
	bo := ByteOrder(b[2])
	order, ok := bo.binary()
	if !ok {
		return 0, nil, 0, fmt.Errorf("%w: byte order %d", ErrCorrupt, b[2])
	}
	if b[3] != StreamVersion {
		return 0, nil, 0, fmt.Errorf("%w: stream version %d", ErrUnsupported, b[3])
	}
	if len(b) < fixedLen {
		return 0, nil, 0, fmt.Errorf("%w: short header", ErrCorrupt)
	}
	size := order.Uint32(b[4:8])
	if size < fixedLen || size > MaxHeaderSize {
		return 0, nil, 0, fmt.Errorf("%w: header length %d", ErrCorrupt, size)
	}
	return bo, order, int(size), nil
}

// parseHeader decodes a complete v3 header (b holds exactly Size bytes).
// Unknown TLV types are skipped; a TLV running past the header ends the
// parse (keeping the values before it), as in flow-tools, and trailing alignment padding is ignored.
func parseHeader(b []byte) (*Header, error) {
	bo, order, size, err := parsePrefix(b)
	if err != nil {
		return nil, err
	}
	if len(b) != size {
		return nil, fmt.Errorf("%w: header length %d, have %d bytes", ErrCorrupt, size, len(b))
	}
	h := &Header{ByteOrder: bo, StreamVersion: b[3], Size: size}
	for p := b[fixedLen:]; len(p) >= 4; {
		t, l := order.Uint16(p), int(order.Uint16(p[2:]))
		if l > len(p)-4 {
			// flow-tools stops decoding here too; the values read so
			// far stand.
			break
		}
		v := p[4 : 4+l]
		p = p[4+l:]
		if err := h.setTLV(order, t, v); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func (h *Header) setTLV(order binary.ByteOrder, t uint16, v []byte) error {
	u32 := func() (uint32, error) {
		if len(v) < 4 {
			return 0, fmt.Errorf("%w: header TLV type %d has %d bytes, want 4", ErrCorrupt, t, len(v))
		}
		return order.Uint32(v), nil
	}
	var err error
	switch t {
	case tlvNull:
		return nil
	case tlvVendor:
		// flow-tools writes one byte but reads two; accept either.
		switch len(v) {
		case 0:
			return fmt.Errorf("%w: empty vendor TLV", ErrCorrupt)
		case 1:
			h.Vendor = uint16(v[0])
		default:
			h.Vendor = order.Uint16(v)
		}
	case tlvExportVersion:
		if len(v) < 2 {
			return fmt.Errorf("%w: export version TLV has %d bytes", ErrCorrupt, len(v))
		}
		h.ExportVersion = order.Uint16(v)
	case tlvAggVersion, tlvAggMethod:
		if len(v) < 1 {
			return fmt.Errorf("%w: empty aggregation TLV", ErrCorrupt)
		}
		if t == tlvAggVersion {
			h.AggVersion = v[0]
		} else {
			h.AggMethod = v[0]
		}
	case tlvExporterIP:
		var ip uint32
		if ip, err = u32(); err == nil && ip != 0 {
			h.Exporter = addr4(ip)
		}
	case tlvCapStart, tlvCapEnd:
		var s uint32
		if s, err = u32(); err == nil {
			tm := time.Unix(int64(s), 0).UTC()
			if t == tlvCapStart {
				h.CaptureStart = tm
			} else {
				h.CaptureEnd = tm
			}
		}
	case tlvHeaderFlags:
		h.Flags, err = u32()
	case tlvRotSchedule:
		h.Rotation, err = u32()
	case tlvFlowCount:
		h.Flows, err = u32()
	case tlvFlowLost:
		h.LostFlows, err = u32()
	case tlvFlowMisordered:
		h.MisorderedFlows, err = u32()
	case tlvPktCorrupt:
		h.CorruptPackets, err = u32()
	case tlvSeqReset:
		h.SequenceResets, err = u32()
	case tlvCapHostname:
		h.Hostname = cString(v)
	case tlvComments:
		h.Comments = cString(v)
	case tlvIfName:
		if len(v) < 6 {
			return fmt.Errorf("%w: interface name TLV has %d bytes", ErrCorrupt, len(v))
		}
		if len(h.InterfaceNames) < maxInterfaces {
			h.InterfaceNames = append(h.InterfaceNames, InterfaceName{
				Device:  addr4(order.Uint32(v)),
				IfIndex: order.Uint16(v[4:]),
				Name:    cString(v[6:]),
			})
		}
	case tlvIfAlias:
		if len(v) < 6 {
			return fmt.Errorf("%w: interface alias TLV has %d bytes", ErrCorrupt, len(v))
		}
		n := int(order.Uint16(v[4:]))
		if 6+2*n > len(v) {
			return fmt.Errorf("%w: interface alias TLV lists %d ifIndexes in %d bytes", ErrCorrupt, n, len(v))
		}
		if len(h.InterfaceAliases) < maxInterfaces {
			a := InterfaceAlias{Device: addr4(order.Uint32(v)), IfIndexes: make([]uint16, n), Name: cString(v[6+2*n:])}
			for i := range a.IfIndexes {
				a.IfIndexes[i] = order.Uint16(v[6+2*i:])
			}
			h.InterfaceAliases = append(h.InterfaceAliases, a)
		}
	default:
		// Unknown (newer) TLV: skipped, its length already bounded.
		return nil
	}
	if err != nil {
		return err
	}
	if t >= 1 && t <= 32 {
		h.Fields |= 1 << (t - 1)
	}
	return nil
}

// cString returns v up to its first NUL byte.
func cString(v []byte) string {
	if i := bytes.IndexByte(v, 0); i >= 0 {
		v = v[:i]
	}
	return string(v)
}

// addr4 converts an IPv4 address held as a number to an Addr.
func addr4(ip uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)})
}

// ip4 converts an IPv4 (or IPv4-mapped) Addr to a number; others give 0.
func ip4(a netip.Addr) uint32 {
	a = a.Unmap()
	if !a.Is4() {
		return 0
	}
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}
