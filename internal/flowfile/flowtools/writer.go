package flowtools

import (
	"bufio"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
)

// WriteOptions controls Write.
type WriteOptions struct {
	// ByteOrder of the header values and records; 0 means LittleEndian.
	ByteOrder ByteOrder
	// Compress deflates the body with zlib, as flow-capture -z does.
	Compress bool
	// Level is the zlib level (1-9) when compressing; 0 means
	// zlib.DefaultCompression.
	Level int
	// Skipped, when not nil, is set to the number of records left out
	// because they cannot be stored as v5 (IPv6 addresses).
	Skipped *int
}

// asTrans is the 16-bit stand-in for a 32-bit AS number (RFC 6793).
const asTrans = 23456

// bootLead is how long before the earliest flow start the writer's
// imaginary router booted, so that no uptime is near zero.
const bootLead = time.Hour

// Write writes a complete flow-tools stream (stream version 3, NetFlow v5
// records, FlagDone set) holding recs to w.
//
// From h it takes Exporter, CaptureStart, CaptureEnd, Rotation, the loss
// counters, Hostname, Comments, Vendor and the interface maps; ByteOrder,
// Flags, Flows, ExportVersion and Size are derived. Records that are not
// IPv4 are skipped and counted in opts.Skipped. Values wider than v5's
// fields are narrowed: counters saturate at 2^32-1, ifIndexes above 65535
// are stored as 65535, 32-bit AS numbers as AS_TRANS (23456). Times keep
// millisecond precision when a flow lasts less than 2^31 ms.
func Write(w io.Writer, h Header, recs []flow.Record, opts WriteOptions) error {
	bo := opts.ByteOrder
	if bo == 0 {
		bo = LittleEndian
	}
	order, ok := bo.binary()
	if !ok {
		return fmt.Errorf("flowtools: invalid byte order %d", bo)
	}
	level := opts.Level
	if level == 0 {
		level = zlib.DefaultCompression
	}
	count, boot := 0, int64(math.MaxInt64)
	for i := range recs {
		if storable(&recs[i]) {
			count++
			boot = min(boot, recs[i].Start, recs[i].End)
		}
	}
	if opts.Skipped != nil {
		*opts.Skipped = len(recs) - count
	}
	boot -= bootLead.Milliseconds()

	h.ByteOrder = bo
	h.ExportVersion = 5
	h.Flags = FlagDone
	if opts.Compress {
		h.Flags |= FlagCompress
	}
	h.Flows = uint32(min(count, math.MaxUint32))
	hdr, err := encodeHeader(&h, order)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.Write(hdr); err != nil {
		return err
	}
	var body io.Writer = bw
	var zw *zlib.Writer
	if opts.Compress {
		if zw, err = zlib.NewWriterLevel(bw, level); err != nil {
			return err
		}
		body = zw
	}
	var rec [64]byte
	for i := range recs {
		if !storable(&recs[i]) {
			continue
		}
		encodeRecord(rec[:], &recs[i], order, boot)
		if _, err := body.Write(rec[:]); err != nil {
			return err
		}
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func storable(r *flow.Record) bool {
	return r.SrcAddr.Unmap().Is4() && r.DstAddr.Unmap().Is4()
}

// encodeHeader returns the v3 header: the generic prefix, its length, the
// TLVs in flow-tools' order, and zero padding to a multiple of 4 bytes.
func encodeHeader(h *Header, order byteOrder) ([]byte, error) {
	b := []byte{magic1, magic2, byte(h.ByteOrder), StreamVersion, 0, 0, 0, 0}
	tlv := func(t uint16, v []byte) {
		b = order.AppendUint16(b, t)
		b = order.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
	}
	u32 := func(t uint16, v uint32) { tlv(t, order.AppendUint32(nil, v)) }
	str := func(t uint16, s string) { tlv(t, append([]byte(s), 0)) }
	if h.Vendor != 0 {
		tlv(tlvVendor, []byte{byte(h.Vendor)})
	}
	tlv(tlvExportVersion, order.AppendUint16(nil, h.ExportVersion))
	if h.Exporter.IsValid() {
		u32(tlvExporterIP, ip4(h.Exporter))
	}
	if !h.CaptureStart.IsZero() {
		u32(tlvCapStart, uint32(h.CaptureStart.Unix()))
	}
	if !h.CaptureEnd.IsZero() {
		u32(tlvCapEnd, uint32(h.CaptureEnd.Unix()))
	}
	u32(tlvHeaderFlags, h.Flags)
	if h.Rotation != 0 {
		u32(tlvRotSchedule, h.Rotation)
	}
	u32(tlvFlowCount, h.Flows)
	u32(tlvFlowLost, h.LostFlows)
	u32(tlvFlowMisordered, h.MisorderedFlows)
	u32(tlvPktCorrupt, h.CorruptPackets)
	u32(tlvSeqReset, h.SequenceResets)
	if h.Hostname != "" {
		str(tlvCapHostname, h.Hostname)
	}
	if h.Comments != "" {
		str(tlvComments, h.Comments)
	}
	for _, n := range h.InterfaceNames {
		v := order.AppendUint32(nil, ip4(n.Device))
		v = order.AppendUint16(v, n.IfIndex)
		tlv(tlvIfName, append(append(v, n.Name...), 0))
	}
	for _, a := range h.InterfaceAliases {
		v := order.AppendUint32(nil, ip4(a.Device))
		v = order.AppendUint16(v, uint16(len(a.IfIndexes)))
		for _, x := range a.IfIndexes {
			v = order.AppendUint16(v, x)
		}
		tlv(tlvIfAlias, append(append(v, a.Name...), 0))
	}
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	if len(b) > MaxHeaderSize {
		return nil, errors.New("flowtools: header too large")
	}
	for _, s := range []string{h.Hostname, h.Comments} {
		if len(s) >= math.MaxUint16 {
			return nil, errors.New("flowtools: header string too long")
		}
	}
	order.PutUint32(b[4:], uint32(len(b)))
	return b, nil
}

// encodeRecord stores r as fts3rec_v5 in b. The wall clock is the flow's
// end, and the uptimes are counted from boot (Unix ms).
func encodeRecord(b []byte, r *flow.Record, o binary.ByteOrder, boot int64) {
	b = b[:64]
	clear(b)
	secs := r.End / 1000
	ms := r.End % 1000
	if ms < 0 {
		secs, ms = secs-1, ms+1000
	}
	o.PutUint32(b[0:], uint32(secs))
	o.PutUint32(b[4:], uint32(ms)*1_000_000)
	o.PutUint32(b[8:], uint32(r.End-boot))
	o.PutUint32(b[12:], ip4(r.Exporter))
	o.PutUint32(b[16:], ip4(r.SrcAddr))
	o.PutUint32(b[20:], ip4(r.DstAddr))
	o.PutUint32(b[24:], ip4(r.NextHop))
	o.PutUint16(b[28:], sat16(r.InIf))
	o.PutUint16(b[30:], sat16(r.OutIf))
	o.PutUint32(b[32:], uint32(min(r.Packets, math.MaxUint32)))
	o.PutUint32(b[36:], uint32(min(r.Bytes, math.MaxUint32)))
	o.PutUint32(b[40:], uint32(r.Start-boot))
	o.PutUint32(b[44:], uint32(r.End-boot))
	o.PutUint16(b[48:], r.SrcPort)
	o.PutUint16(b[50:], r.DstPort)
	b[52] = r.Proto
	b[53] = r.TOS
	b[54] = r.TCPFlags
	b[56] = byte(r.Domain >> 8)
	b[57] = byte(r.Domain)
	b[58] = r.SrcMask
	b[59] = r.DstMask
	o.PutUint16(b[60:], as16(r.SrcAS))
	o.PutUint16(b[62:], as16(r.DstAS))
}

func sat16(v uint32) uint16 { return uint16(min(v, math.MaxUint16)) }

func as16(as uint32) uint16 {
	if as > math.MaxUint16 {
		return asTrans
	}
	return uint16(as)
}
