package sflow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// This file reduces tshark's decoding of captured sFlow datagrams to an
// oracle the tests compare the decoder with. It reads `tshark -T json`
// output in document order (samples and records keep their order, repeated
// keys are kept), so it needs nothing but the standard library.

// oracle is tshark's view of a capture of sFlow datagrams.
type oracle struct {
	// Capture is the base name of the decoded pcap file.
	Capture string `json:"capture"`
	// Port is the UDP port decoded as sflow.
	Port int `json:"port"`
	// Datagrams, FlowSamples and CounterSamples count what tshark saw.
	Datagrams      int `json:"datagrams"`
	FlowSamples    int `json:"flow_samples"`
	CounterSamples int `json:"counter_samples"`
	// Flows counts flow samples whose sampled header holds IPv4 or IPv6;
	// Packets and Bytes sum their scaled counters.
	Flows   int    `json:"flows"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	// DatagramInfo lists the datagrams in capture order.
	DatagramInfo []oracleDatagram `json:"datagram_info"`
	// Records are the flows in capture order.
	Records []oracleFlow `json:"records"`
}

// oracleDatagram is one datagram's header as tshark decoded it.
type oracleDatagram struct {
	Frame    int    `json:"frame"`
	Agent    string `json:"agent"`
	SubAgent uint32 `json:"sub_agent"`
	Sequence uint32 `json:"sequence"`
	Samples  int    `json:"samples"`
	Flows    int    `json:"flows"`
}

// oracleFlow is one flow sample with an IP packet, as tshark decoded it.
// Bytes is the inner IP length (ip.len, or ipv6.plen + 40) times the
// sampling rate; FrameLength is the raw header record's frame length.
type oracleFlow struct {
	Src         string `json:"src_addr"`
	Dst         string `json:"dst_addr"`
	SrcPort     uint16 `json:"src_port"`
	DstPort     uint16 `json:"dst_port"`
	Proto       uint8  `json:"proto"`
	TOS         uint8  `json:"tos"`
	TCPFlags    uint8  `json:"tcp_flags"`
	SrcMAC      string `json:"src_mac"`
	DstMAC      string `json:"dst_mac"`
	SrcVLAN     uint16 `json:"src_vlan"`
	DstVLAN     uint16 `json:"dst_vlan"`
	InIf        uint32 `json:"in_if"`
	OutIf       uint32 `json:"out_if"`
	Rate        uint32 `json:"rate"`
	FrameLength uint32 `json:"frame_length"`
	Packets     uint64 `json:"packets"`
	Bytes       uint64 `json:"bytes"`
}

// errNoTshark means tshark is not installed.
var errNoTshark = errors.New("tshark not found (Debian: apt-get install tshark)")

// tsharkOracle runs tshark on a pcap file, decoding UDP port as sFlow.
func tsharkOracle(ctx context.Context, pcapPath string, port int) (*oracle, error) {
	bin, err := exec.LookPath("tshark")
	if err != nil {
		return nil, errNoTshark
	}
	cmd := exec.CommandContext(ctx, bin, "-r", pcapPath, "-n",
		"-d", fmt.Sprintf("udp.port==%d,sflow", port),
		"-Y", fmt.Sprintf("udp.dstport==%d", port), "-T", "json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("tshark: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	root, err := readTree(dec, "", 0)
	if err != nil {
		return nil, fmt.Errorf("tshark json: %w", err)
	}
	o := &oracle{Capture: filepath.Base(pcapPath), Port: port, DatagramInfo: []oracleDatagram{}, Records: []oracleFlow{}}
	for _, frame := range root.kids {
		layers := frame.find("layers")
		if layers == nil {
			continue
		}
		sf := layers.child("sflow")
		if sf == nil {
			continue
		}
		dg := oracleDatagram{
			Frame:    atoi(layers.child("frame").str("frame.number")),
			Agent:    sf.str("sflow_245.agent") + sf.str("sflow_245.agent.v6"),
			SubAgent: uint32(atoi(sf.str("sflow_245.sub_agent_id"))),
			Sequence: uint32(atoi(sf.str("sflow_245.sequence_number"))),
			Samples:  atoi(sf.str("sflow_245.numsamples")),
		}
		for _, s := range sf.kids {
			switch s.str("sflow_245.sampletype") {
			case "1", "3":
				o.FlowSamples++
				if f, ok := oracleFlowSample(s); ok {
					dg.Flows++
					o.Records = append(o.Records, f)
					o.Packets += f.Packets
					o.Bytes += f.Bytes
				}
			case "2", "4":
				o.CounterSamples++
			}
		}
		o.Datagrams++
		o.Flows += dg.Flows
		o.DatagramInfo = append(o.DatagramInfo, dg)
	}
	return o, nil
}

// oracleFlowSample reduces one flow sample node.
func oracleFlowSample(s *tree) (oracleFlow, bool) {
	var f oracleFlow
	f.Rate = uint32(atoi(s.str("sflow.flow_sample.sampling_rate")))
	// Compact samples: input as one number, output as format and value;
	// expanded samples: format and value for both. Only format 0 is an
	// ifIndex, and a compact 0x3FFFFFFF means unknown.
	compact := func(v uint32) uint32 {
		if v>>30 != 0 || v == 0x3fffffff {
			return 0
		}
		return v
	}
	if v := s.str("sflow.flow_sample.input_interface"); v != "" {
		f.InIf = compact(uint32(atoi(v)))
	} else if s.find("sflow.flow_sample.input_interface_format").val == "0" {
		f.InIf = uint32(atoi(s.find("sflow.flow_sample.input_interface_value").val))
	}
	if t := s.child("sflow.flow_sample.output_interface_tree"); t != nil {
		if t.str("sflow.flow_sample.output_interface_format") == "0" {
			f.OutIf = compact(uint32(atoi(t.str("sflow.flow_sample.output_interface_value"))))
		}
	} else if s.find("sflow.flow_sample.output_interface_format").val == "0" {
		f.OutIf = uint32(atoi(s.find("sflow.flow_sample.output_interface_value").val))
	}
	hasIP := false
	for _, rec := range s.kids {
		switch rec.str("sflow_245.flow_record_format") {
		case "1001":
			f.SrcVLAN = uint16(atoi(rec.str("sflow_245.vlan.in")))
			f.DstVLAN = uint16(atoi(rec.str("sflow_245.vlan.out")))
		case "1":
			f.FrameLength = uint32(atoi(rec.str("sflow_245.header.frame_length")))
			h := rec.child("sflow_245.header_tree")
			if h == nil {
				continue
			}
			if eth := h.child("eth"); eth != nil {
				f.SrcMAC, f.DstMAC = eth.str("eth.src"), eth.str("eth.dst")
			}
			var l4 *tree
			if ip := h.child("ip"); ip != nil {
				hasIP = true
				f.Src, f.Dst = ip.str("ip.src"), ip.str("ip.dst")
				f.Bytes = uint64(atoi(ip.str("ip.len")))
				f.TOS = uint8(atoi(ip.str("ip.dsfield")))
				f.Proto = uint8(atoi(ip.str("ip.proto")))
			} else if ip6 := h.child("ipv6"); ip6 != nil {
				hasIP = true
				f.Src, f.Dst = ip6.str("ipv6.src"), ip6.str("ipv6.dst")
				f.Bytes = uint64(atoi(ip6.str("ipv6.plen"))) + 40
				f.TOS = uint8(atoi(ip6.find("ipv6.tclass").val))
				f.Proto = uint8(atoi(ip6.str("ipv6.nxt")))
			}
			if l4 = h.child("tcp"); l4 != nil {
				f.SrcPort, f.DstPort = uint16(atoi(l4.str("tcp.srcport"))), uint16(atoi(l4.str("tcp.dstport")))
				f.TCPFlags = uint8(atoi(l4.str("tcp.flags")))
			} else if l4 = h.child("udp"); l4 != nil {
				f.SrcPort, f.DstPort = uint16(atoi(l4.str("udp.srcport"))), uint16(atoi(l4.str("udp.dstport")))
			} else if l4 = h.child("icmp"); l4 != nil {
				f.DstPort = uint16(atoi(l4.str("icmp.type"))<<8 | atoi(l4.str("icmp.code")))
			} else if l4 = h.child("icmpv6"); l4 != nil {
				f.DstPort = uint16(atoi(l4.str("icmpv6.type"))<<8 | atoi(l4.str("icmpv6.code")))
			}
		}
	}
	if !hasIP {
		return f, false
	}
	f.Packets = uint64(max(f.Rate, 1))
	f.Bytes *= f.Packets
	return f, true
}

// tree is an order-preserving JSON tree node.
type tree struct {
	key  string
	val  string
	kids []*tree
}

// child returns the first direct child named key, or nil.
func (t *tree) child(key string) *tree {
	if t == nil {
		return nil
	}
	for _, k := range t.kids {
		if k.key == key {
			return k
		}
	}
	return nil
}

// str returns the scalar value of the first direct child named key.
func (t *tree) str(key string) string {
	if c := t.child(key); c != nil {
		return c.val
	}
	return ""
}

// find returns the first descendant named key (depth first), or an empty
// node.
func (t *tree) find(key string) *tree {
	var walk func(n *tree) *tree
	walk = func(n *tree) *tree {
		for _, k := range n.kids {
			if k.key == key {
				return k
			}
			if f := walk(k); f != nil {
				return f
			}
		}
		return nil
	}
	if t != nil {
		if f := walk(t); f != nil {
			return f
		}
	}
	return &tree{}
}

// readTree reads one JSON value into a tree; arrays become children
// sharing the parent's key.
func readTree(dec *json.Decoder, key string, depth int) (*tree, error) {
	if depth > 64 {
		return nil, errors.New("nesting too deep")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	n := &tree{key: key}
	switch t := tok.(type) {
	case json.Delim:
		for dec.More() {
			k := key
			if t == '{' {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ = kt.(string)
			}
			kid, err := readTree(dec, k, depth+1)
			if err != nil {
				return nil, err
			}
			n.kids = append(n.kids, kid)
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
	case string:
		n.val = t
	default:
		n.val = fmt.Sprint(t)
	}
	return n, nil
}

// atoi parses a decimal or 0x-prefixed number, 0 on error.
func atoi(s string) int {
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return 0
	}
	return int(v)
}

// writeOracle writes o with one datagram or record per line.
func writeOracle(path string, o *oracle) error {
	var b bytes.Buffer
	head := *o
	head.DatagramInfo, head.Records = nil, nil
	hb, err := json.Marshal(head)
	if err != nil {
		return err
	}
	// Drop the two empty lists from the head and append them one item a line.
	hb = bytes.TrimSuffix(hb, []byte(`,"datagram_info":null,"records":null}`))
	b.Write(hb)
	b.WriteString(",\n\"datagram_info\": [")
	for i, d := range o.DatagramInfo {
		if i > 0 {
			b.WriteByte(',')
		}
		db, _ := json.Marshal(d)
		b.WriteString("\n  ")
		b.Write(db)
	}
	b.WriteString("\n],\n\"records\": [")
	for i, r := range o.Records {
		if i > 0 {
			b.WriteByte(',')
		}
		rb, _ := json.Marshal(r)
		b.WriteString("\n  ")
		b.Write(rb)
	}
	b.WriteString("\n]}\n")
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// readOracle reads an oracle written by writeOracle.
func readOracle(path string) (*oracle, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	o := &oracle{}
	if err := json.Unmarshal(b, o); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return o, nil
}
