package testutil

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Oracle is tshark's independent decoding of a capture of NetFlow v5, v9 or
// IPFIX export datagrams, reduced to what tests compare against. It is what
// testdata/captures/*.tshark.json hold.
type Oracle struct {
	// Capture is the base name of the decoded pcap file.
	Capture string `json:"capture"`
	// Port is the UDP destination port decoded as cflow.
	Port int `json:"port"`
	// Version is the NetFlow version of the datagrams (5, 9 or 10).
	Version int `json:"version"`
	// Datagrams is the number of export datagrams.
	Datagrams int `json:"datagrams"`
	// Templates counts template and options template records seen.
	Templates int `json:"templates"`
	// Flows is the number of flow data records (options data records such
	// as softflowd's sampling and system-init records are not counted).
	Flows int `json:"flows"`
	// FlowsIPv4 and FlowsIPv6 split Flows by address family.
	FlowsIPv4 int `json:"flows_ipv4"`
	FlowsIPv6 int `json:"flows_ipv6"`
	// Packets and Bytes sum the flow records' counters.
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	// DatagramInfo lists the datagrams in capture order.
	DatagramInfo []OracleDatagram `json:"datagram_info,omitempty"`
	// Records are all flow records, sorted by start time, then addresses
	// and ports (see SortOracleFlows).
	Records []OracleFlow `json:"records,omitempty"`
}

// OracleDatagram describes one export datagram as tshark saw it.
type OracleDatagram struct {
	// Frame is the 1-based frame number in the capture.
	Frame int `json:"frame"`
	// Count is the header's count field (v5: records, v9: records
	// including templates; 0 for IPFIX, which has a length instead).
	Count int `json:"count"`
	// Sequence is the header's sequence number.
	Sequence uint32 `json:"sequence"`
	// Flows is the number of flow data records in this datagram.
	Flows int `json:"flows"`
	// Templates is the number of template records in this datagram.
	Templates int `json:"templates"`
}

// OracleFlow is one flow record as decoded by tshark.
type OracleFlow struct {
	Src      string `json:"src_addr"`
	Dst      string `json:"dst_addr"`
	SrcPort  uint16 `json:"src_port"`
	DstPort  uint16 `json:"dst_port"`
	Proto    uint8  `json:"proto"`
	TOS      uint8  `json:"tos"`
	TCPFlags uint8  `json:"tcp_flags"`
	// ICMPTypeCode is type<<8|code from v9/IPFIX ICMP_TYPE fields (v5
	// carries it in DstPort instead).
	ICMPTypeCode uint16 `json:"icmp_type_code,omitempty"`
	Packets      uint64 `json:"packets"`
	Bytes        uint64 `json:"bytes"`
	// Start and End are absolute times in RFC 3339 with milliseconds,
	// derived as the export format defines: v5 header time (with
	// nanoseconds) minus uptime plus the flow's uptime offset; v9 the same
	// with whole header seconds; IPFIX systemInitTimeMilliseconds plus the
	// flow's uptime offset, or absolute fields when present. Empty when
	// tshark's output did not allow it.
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

// Key returns a string identifying the flow's 5-tuple and start time,
// suitable for matching records from two decoders.
func (f OracleFlow) Key() string {
	return fmt.Sprintf("%s|%s|%d|%d|%d|%s", f.Src, f.Dst, f.SrcPort, f.DstPort, f.Proto, f.Start)
}

// SortOracleFlows sorts records by start, source, destination, ports and
// protocol.
func SortOracleFlows(fs []OracleFlow) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Start != b.Start {
			return a.Start < b.Start
		}
		if a.Src != b.Src {
			return a.Src < b.Src
		}
		if a.Dst != b.Dst {
			return a.Dst < b.Dst
		}
		if a.SrcPort != b.SrcPort {
			return a.SrcPort < b.SrcPort
		}
		if a.DstPort != b.DstPort {
			return a.DstPort < b.DstPort
		}
		return a.Proto < b.Proto
	})
}

// ErrNoTshark is returned by TsharkDecode when tshark is not installed.
var ErrNoTshark = errors.New("tshark not found in PATH")

// TsharkDecode runs tshark on a capture, decoding UDP port as NetFlow/IPFIX
// (cflow), and reduces its JSON output to an Oracle.
func TsharkDecode(ctx context.Context, pcapPath string, port int) (*Oracle, error) {
	bin, err := exec.LookPath("tshark")
	if err != nil {
		return nil, ErrNoTshark
	}
	cmd := exec.CommandContext(ctx, bin, "-r", pcapPath, "-n",
		"-d", fmt.Sprintf("udp.port==%d,cflow", port),
		"-Y", fmt.Sprintf("udp.dstport==%d", port), "-T", "json")
	// Absolute times in tshark's output are printed in local time.
	cmd.Env = append(os.Environ(), "TZ=UTC")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("tshark: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	o, err := ParseTsharkJSON(bytes.NewReader(out))
	if err != nil {
		return nil, err
	}
	o.Capture = filepath.Base(pcapPath)
	o.Port = port
	return o, nil
}

// jnode is an order-preserving JSON tree node.
type jnode struct {
	key  string
	val  string // for scalars
	kids []*jnode
	obj  bool
}

// get returns the value of the first direct scalar child named key.
func (n *jnode) get(key string) (string, bool) {
	for _, k := range n.kids {
		if k.key == key && k.kids == nil && !k.obj {
			return k.val, true
		}
	}
	return "", false
}

// find returns the first descendant (depth first, self included) with key.
func (n *jnode) find(key string) *jnode {
	if n.key == key {
		return n
	}
	for _, k := range n.kids {
		if f := k.find(key); f != nil {
			return f
		}
	}
	return nil
}

// parseJSONTree reads one JSON value from dec into an ordered tree.
func parseJSONTree(dec *json.Decoder, key string, depth int) (*jnode, error) {
	if depth > 64 {
		return nil, errors.New("tshark json: nesting too deep")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	n := &jnode{key: key}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n.obj = true
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				kid, err := parseJSONTree(dec, k, depth+1)
				if err != nil {
					return nil, err
				}
				n.kids = append(n.kids, kid)
			}
		case '[':
			// Arrays (repeated fields) become children sharing the key.
			n.obj = true
			for dec.More() {
				kid, err := parseJSONTree(dec, key, depth+1)
				if err != nil {
					return nil, err
				}
				n.kids = append(n.kids, kid)
			}
		}
		if _, err := dec.Token(); err != nil { // closing delimiter
			return nil, err
		}
	case string:
		n.val = t
	case nil:
	default:
		n.val = fmt.Sprint(t)
	}
	return n, nil
}

// ParseTsharkJSON reduces tshark -T json output of cflow datagrams.
func ParseTsharkJSON(r io.Reader) (*Oracle, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	root, err := parseJSONTree(dec, "", 0)
	if err != nil {
		return nil, fmt.Errorf("tshark json: %w", err)
	}
	o := &Oracle{}
	var sysInit time.Time // IPFIX systemInitTimeMilliseconds, last seen
	for _, pkt := range root.kids {
		layers := pkt.find("layers")
		if layers == nil {
			continue
		}
		frameNo := 0
		if fr := layers.find("frame"); fr != nil {
			if v, ok := fr.get("frame.number"); ok {
				frameNo, _ = strconv.Atoi(v)
			}
		}
		// A frame normally holds one cflow PDU; tshark nests repeats in an
		// array under the same key.
		var pdus []*jnode
		for _, k := range layers.kids {
			if k.key != "cflow" {
				continue
			}
			if _, ok := k.get("cflow.version"); ok {
				pdus = append(pdus, k)
			} else {
				pdus = append(pdus, k.kids...)
			}
		}
		for _, cf := range pdus {
			dg := OracleDatagram{Frame: frameNo}
			ver, _ := strconv.Atoi(must(cf.get("cflow.version")))
			if o.Version == 0 {
				o.Version = ver
			}
			dg.Count, _ = strconv.Atoi(must(cf.get("cflow.count")))
			seq, _ := strconv.ParseUint(must(cf.get("cflow.sequence")), 10, 32)
			dg.Sequence = uint32(seq)
			// Header clock: export time minus uptime gives boot time.
			var boot time.Time
			haveBoot := false
			if tt := cf.find("cflow.timestamp_tree"); tt != nil {
				secs, ok1 := tt.get("cflow.unix_secs")
				if ok1 {
					s, _ := strconv.ParseInt(secs, 10, 64)
					ns, _ := strconv.ParseInt(must(tt.get("cflow.unix_nsecs")), 10, 64)
					if up, ok := cf.get("cflow.sysuptime"); ok {
						boot = time.Unix(s, ns).Add(-secondsToDuration(up))
						haveBoot = true
					}
				}
			}
			var walk func(n *jnode)
			walk = func(n *jnode) {
				for _, k := range n.kids {
					if !k.obj {
						continue
					}
					if strings.HasPrefix(k.key, "Template (Id") || strings.HasPrefix(k.key, "Options Template (Id") {
						dg.Templates++
						continue
					}
					if v, ok := k.get("cflow.sys_init_time"); ok {
						if t, err := time.Parse("Jan _2, 2006 15:04:05.000000000 MST", v); err == nil {
							sysInit = t
						}
					}
					if _, ok := k.get("cflow.octets"); ok {
						f := flowFromNode(k)
						base, ok := boot, haveBoot
						if ver == 10 {
							base, ok = sysInit, !sysInit.IsZero()
						}
						if tt := k.find("cflow.timedelta_tree"); tt != nil && ok {
							if s, ok := tt.get("cflow.timestart"); ok {
								f.Start = fmtMilli(base.Add(secondsToDuration(s)))
							} else if s, ok := tt.get("cflow.abstimestart"); ok && strings.HasPrefix(s, epochPrefix) {
								// tshark shows an uptime offset of 0 as
								// an absolute time at the epoch.
								f.Start = fmtMilli(base)
							}
							if e, ok := tt.get("cflow.timeend"); ok {
								f.End = fmtMilli(base.Add(secondsToDuration(e)))
							} else if e, ok := tt.get("cflow.abstimeend"); ok && strings.HasPrefix(e, epochPrefix) {
								f.End = fmtMilli(base)
							}
						}
						if s, ok := k.get("cflow.abstimestart"); ok {
							if t, err := time.Parse("Jan _2, 2006 15:04:05.000000000 MST", s); err == nil {
								f.Start = fmtMilli(t)
							}
						}
						if e, ok := k.get("cflow.abstimeend"); ok {
							if t, err := time.Parse("Jan _2, 2006 15:04:05.000000000 MST", e); err == nil {
								f.End = fmtMilli(t)
							}
						}
						dg.Flows++
						o.Records = append(o.Records, f)
						continue
					}
					walk(k)
				}
			}
			walk(cf)
			o.Datagrams++
			o.Templates += dg.Templates
			o.Flows += dg.Flows
			o.DatagramInfo = append(o.DatagramInfo, dg)
		}
	}
	for _, f := range o.Records {
		o.Packets += f.Packets
		o.Bytes += f.Bytes
		if strings.Contains(f.Src, ":") {
			o.FlowsIPv6++
		} else {
			o.FlowsIPv4++
		}
	}
	SortOracleFlows(o.Records)
	return o, nil
}

// epochPrefix is how tshark prints time 0 in UTC.
const epochPrefix = "Jan  1, 1970 00:00:00.000"

// must drops the ok result of jnode.get.
func must(v string, _ bool) string { return v }

// flowFromNode extracts a flow record's fields.
func flowFromNode(n *jnode) OracleFlow {
	var f OracleFlow
	u := func(key string) uint64 {
		v, ok := n.get(key)
		if !ok {
			return 0
		}
		x, err := strconv.ParseUint(v, 0, 64) // base 0 accepts 0x.. for flags and TOS
		if err != nil {
			return 0
		}
		return x
	}
	f.Src = must(n.get("cflow.srcaddr"))
	if v, ok := n.get("cflow.srcaddrv6"); ok {
		f.Src = v
	}
	f.Dst = must(n.get("cflow.dstaddr"))
	if v, ok := n.get("cflow.dstaddrv6"); ok {
		f.Dst = v
	}
	f.SrcPort = uint16(u("cflow.srcport"))
	f.DstPort = uint16(u("cflow.dstport"))
	f.Proto = uint8(u("cflow.protocol"))
	f.TOS = uint8(u("cflow.tos"))
	f.TCPFlags = uint8(u("cflow.tcpflags"))
	f.ICMPTypeCode = uint16(u("cflow.icmp_type_code_ipv4") | u("cflow.icmp_type_code_ipv6") |
		u("cflow.icmp_ipv6_type")<<8 | u("cflow.icmp_ipv6_code"))
	f.Packets = u("cflow.packets")
	f.Bytes = u("cflow.octets")
	return f
}

// secondsToDuration converts tshark's "S.NNNNNNNNN" relative times.
func secondsToDuration(s string) time.Duration {
	x, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return time.Duration(math.Round(x * 1e9))
}

// fmtMilli formats t in UTC RFC 3339 with exactly three fractional digits,
// truncated to the millisecond.
func fmtMilli(t time.Time) string {
	return t.UTC().Truncate(time.Millisecond).Format("2006-01-02T15:04:05.000Z07:00")
}

// MarshalOracle encodes o as indented JSON with one datagram or flow record
// per line, so that golden files stay small and diff well.
func MarshalOracle(o *Oracle) ([]byte, error) {
	var b bytes.Buffer
	head := *o
	head.DatagramInfo, head.Records = nil, nil
	hb, err := json.MarshalIndent(head, "", "  ")
	if err != nil {
		return nil, err
	}
	hb = bytes.TrimSuffix(hb, []byte("\n}"))
	hb = bytes.TrimSuffix(hb, []byte("}"))
	b.Write(bytes.TrimRight(hb, "\n"))
	list := func(name string, n int, item func(i int) any) error {
		fmt.Fprintf(&b, ",\n  %q: [", name)
		for i := 0; i < n; i++ {
			lb, err := json.Marshal(item(i))
			if err != nil {
				return err
			}
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("\n    ")
			b.Write(lb)
		}
		if n > 0 {
			b.WriteString("\n  ")
		}
		b.WriteString("]")
		return nil
	}
	if err := list("datagram_info", len(o.DatagramInfo), func(i int) any { return o.DatagramInfo[i] }); err != nil {
		return nil, err
	}
	if err := list("records", len(o.Records), func(i int) any { return o.Records[i] }); err != nil {
		return nil, err
	}
	b.WriteString("\n}\n")
	return b.Bytes(), nil
}

// ReadOracle reads an Oracle written by MarshalOracle.
func ReadOracle(path string) (*Oracle, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	o := &Oracle{}
	if err := json.Unmarshal(b, o); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return o, nil
}
