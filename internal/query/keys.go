package query

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/flowscan/flowscan/internal/flow"
)

// KeyField is one field of an aggregation key, optionally masked.
type KeyField struct {
	// Name is the field's name as in flow.Fields (src_addr, dst_port, ...).
	Name string
	// Mask4 and Mask6 are the prefix lengths IPv4 and IPv6 addresses are
	// masked to (address fields only); 0 means unmasked.
	Mask4, Mask6 int
	f            field
}

// keyFields are the fields usable as keys, by name.
var keyFields = map[string]field{
	"src_addr": fieldSrcAddr, "dst_addr": fieldDstAddr, "exporter": fieldExporter, "next_hop": fieldNextHop,
	"src_port": fieldSrcPort, "dst_port": fieldDstPort, "proto": fieldProto, "tos": fieldTOS,
	"tcp_flags": fieldTCPFlags, "in_if": fieldInIf, "out_if": fieldOutIf, "src_as": fieldSrcAS,
	"dst_as": fieldDstAS, "src_mask": fieldSrcMask, "dst_mask": fieldDstMask,
	"src_vlan": fieldSrcVLAN, "dst_vlan": fieldDstVLAN,
}

// KeyFieldNames lists the names ParseKeys accepts.
var KeyFieldNames = []string{"src_addr", "dst_addr", "exporter", "next_hop", "src_port", "dst_port", "proto",
	"tos", "tcp_flags", "in_if", "out_if", "src_as", "dst_as", "src_mask", "dst_mask", "src_vlan", "dst_vlan"}

func isAddrField(f field) bool { return f >= fieldSrcAddr && f <= fieldNextHop }

// maxKeyWords is the size of Key: an address takes two words, any other
// field one.
const maxKeyWords = 8

// ParseKeys parses a comma-separated key list such as
// "src_addr/24,dst_port" or "dst_addr/24/64" (IPv4 / IPv6 prefix
// lengths; a single length above 32 applies to IPv6 only).
func ParseKeys(spec string) ([]KeyField, error) {
	var keys []KeyField
	words := 0
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, masks, _ := strings.Cut(part, "/")
		f, ok := keyFields[name]
		if !ok {
			return nil, fmt.Errorf("unknown key field %q (want one of %s)", name, strings.Join(KeyFieldNames, ", "))
		}
		k := KeyField{Name: name, f: f}
		if masks != "" {
			if !isAddrField(f) {
				return nil, fmt.Errorf("%q: only address fields take a prefix length", part)
			}
			m4, m6, two := strings.Cut(masks, "/")
			a, err1 := strconv.Atoi(m4)
			if err1 != nil || a < 0 || a > 128 {
				return nil, fmt.Errorf("%q: bad prefix length", part)
			}
			if two {
				b, err2 := strconv.Atoi(m6)
				if err2 != nil || a > 32 || b < 0 || b > 128 {
					return nil, fmt.Errorf("%q: want /IPv4LEN/IPv6LEN (0..32, 0..128)", part)
				}
				k.Mask4, k.Mask6 = a, b
			} else if a <= 32 {
				k.Mask4 = a
			} else {
				k.Mask6 = a
			}
		}
		words++
		if isAddrField(f) {
			words++
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("empty key list")
	}
	if words > maxKeyWords {
		return nil, fmt.Errorf("key list %q is too long (at most 4 addresses, or 8 other fields)", spec)
	}
	return keys, nil
}

// Key is the value of a key field list for one flow; it is comparable and
// used as a map key.
type Key struct {
	w [maxKeyWords]uint64
	// fam holds two bits per address field: 0 none, 1 IPv4, 2 IPv6.
	fam uint16
}

// makeKey builds the key of r for keys.
func makeKey(r *flow.Record, keys []KeyField) Key {
	var k Key
	i, a := 0, 0
	for _, kf := range keys {
		if isAddrField(kf.f) {
			hi, lo, is4, ok := addrBits(addrField(r, kf.f))
			if ok {
				if is4 {
					if kf.Mask4 > 0 {
						lo &= uint64(^uint32(0)) &^ (uint64(1)<<(32-kf.Mask4) - 1)
					}
					k.fam |= 1 << (2 * a)
				} else {
					if kf.Mask6 > 0 {
						hi &= maskBits(kf.Mask6)
						lo &= maskBits(kf.Mask6 - 64)
					}
					k.fam |= 2 << (2 * a)
				}
			}
			k.w[i], k.w[i+1] = hi, lo
			i += 2
			a++
			continue
		}
		k.w[i] = numValue(r, kf.f)
		i++
	}
	return k
}

// KeyValue is one decoded key field: an address (Addr valid, Bits the
// mask length or the full length) or a number.
type KeyValue struct {
	Addr netip.Addr
	Bits int
	Num  uint64
}

// Values decodes k for keys.
func (k Key) Values(keys []KeyField) []KeyValue {
	out := make([]KeyValue, len(keys))
	i, a := 0, 0
	for j, kf := range keys {
		if isAddrField(kf.f) {
			switch (k.fam >> (2 * a)) & 3 {
			case 1:
				var b [4]byte
				binary.BigEndian.PutUint32(b[:], uint32(k.w[i+1]))
				out[j].Addr = netip.AddrFrom4(b)
				out[j].Bits = 32
				if kf.Mask4 > 0 {
					out[j].Bits = kf.Mask4
				}
			case 2:
				var b [16]byte
				binary.BigEndian.PutUint64(b[:8], k.w[i])
				binary.BigEndian.PutUint64(b[8:], k.w[i+1])
				out[j].Addr = netip.AddrFrom16(b)
				out[j].Bits = 128
				if kf.Mask6 > 0 {
					out[j].Bits = kf.Mask6
				}
			}
			i += 2
			a++
			continue
		}
		out[j].Num = k.w[i]
		i++
	}
	return out
}

// AppendText appends v as text for field kf: an address or prefix, a
// number, or with names a protocol or service name.
func (v KeyValue) AppendText(dst []byte, kf KeyField, names bool) []byte {
	if isAddrField(kf.f) {
		if !v.Addr.IsValid() {
			return dst
		}
		dst = v.Addr.AppendTo(dst)
		if v.Bits < v.Addr.BitLen() {
			dst = append(dst, '/')
			dst = strconv.AppendInt(dst, int64(v.Bits), 10)
		}
		return dst
	}
	if names {
		switch kf.f {
		case fieldProto:
			return append(dst, ProtoName(uint8(v.Num))...)
		case fieldSrcPort, fieldDstPort:
			return append(dst, ServiceName(uint16(v.Num))...)
		}
	}
	return strconv.AppendUint(dst, v.Num, 10)
}

// IsNumeric reports whether the field's values are numbers (not
// addresses).
func (kf KeyField) IsNumeric() bool { return !isAddrField(kf.f) }
