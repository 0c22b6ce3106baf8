package probe

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Classic pcap file constants.
const (
	pcapMagicMicro  = 0xa1b2c3d4
	pcapMagicNano   = 0xa1b23c4d
	pcapngMagic     = 0x0a0d0d0a
	pcapFileHeader  = 24
	pcapRecordHdr   = 16
	pcapMaxCaptured = 1 << 18 // bound on one record, whatever the file says
)

// PcapReader reads a classic libpcap file (either byte order, micro- or
// nanosecond timestamps) without allocating per packet: Next returns a
// slice of an internal buffer that the following call overwrites.
type PcapReader struct {
	r        *bufio.Reader
	order    binary.ByteOrder
	nano     bool
	linkType uint32
	hdr      [pcapRecordHdr]byte
	buf      []byte
}

// NewPcapReader reads the file header from r.
func NewPcapReader(r io.Reader) (*PcapReader, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var h [pcapFileHeader]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return nil, fmt.Errorf("pcap file header: %w", err)
	}
	pr := &PcapReader{r: br, buf: make([]byte, 0, 2048)}
	le, be := binary.LittleEndian.Uint32(h[:]), binary.BigEndian.Uint32(h[:])
	switch {
	case le == pcapMagicMicro:
		pr.order = binary.LittleEndian
	case be == pcapMagicMicro:
		pr.order = binary.BigEndian
	case le == pcapMagicNano:
		pr.order, pr.nano = binary.LittleEndian, true
	case be == pcapMagicNano:
		pr.order, pr.nano = binary.BigEndian, true
	case le == pcapngMagic:
		return nil, errors.New("pcap: file is pcapng; convert it with editcap -F pcap or capture with tshark -F pcap")
	default:
		return nil, fmt.Errorf("pcap: bad magic %#08x", le)
	}
	pr.linkType = pr.order.Uint32(h[20:]) & 0x0fffffff // upper bits: FCS info
	return pr, nil
}

// LinkType returns the file's link-layer header type (LINKTYPE_*).
func (r *PcapReader) LinkType() uint32 { return r.linkType }

// Next returns the next frame and its timestamp in Unix nanoseconds, or
// io.EOF at the end of the file. A file cut inside a record yields
// io.ErrUnexpectedEOF. The frame is valid until the next call.
func (r *PcapReader) Next() (frame []byte, ts int64, err error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		return nil, 0, err
	}
	sec := int64(r.order.Uint32(r.hdr[0:]))
	frac := int64(r.order.Uint32(r.hdr[4:]))
	capLen := r.order.Uint32(r.hdr[8:])
	if capLen > pcapMaxCaptured {
		return nil, 0, fmt.Errorf("pcap: record length %d too large", capLen)
	}
	if int(capLen) > cap(r.buf) {
		r.buf = make([]byte, 0, capLen)
	}
	r.buf = r.buf[:capLen]
	if _, err := io.ReadFull(r.r, r.buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, 0, err
	}
	if !r.nano {
		frac *= 1000
	}
	return r.buf, sec*1e9 + frac, nil
}

// ReadPcap feeds every frame of a pcap file to p (without flushing it) and
// returns the first read error other than io.EOF.
func ReadPcap(p *Probe, r io.Reader) error {
	pr, err := NewPcapReader(r)
	if err != nil {
		return err
	}
	lt := pr.LinkType()
	for {
		frame, ts, err := pr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		p.Packet(lt, frame, ts)
	}
}
