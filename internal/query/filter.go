package query

import (
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/flowfile"
)

// field names a value of flow.Record that predicates and keys read.
type field uint8

const (
	fieldNone field = iota
	fieldSrcAddr
	fieldDstAddr
	fieldExporter
	fieldNextHop
	fieldSrcPort
	fieldDstPort
	fieldProto
	fieldTOS
	fieldTCPFlags
	fieldInIf
	fieldOutIf
	fieldSrcAS
	fieldDstAS
	fieldSrcMask
	fieldDstMask
	fieldSrcVLAN
	fieldDstVLAN
	fieldBytes
	fieldPackets
	fieldDuration
	fieldBPS
	fieldPPS
	fieldBPP
)

// fieldColumns are the flow file columns each field is computed from.
var fieldColumns = [...]flowfile.Columns{
	fieldSrcAddr:  flowfile.ColSrcAddr,
	fieldDstAddr:  flowfile.ColDstAddr,
	fieldExporter: flowfile.ColExporter,
	fieldNextHop:  flowfile.ColNextHop,
	fieldSrcPort:  flowfile.ColSrcPort,
	fieldDstPort:  flowfile.ColDstPort,
	fieldProto:    flowfile.ColProto,
	fieldTOS:      flowfile.ColTOS,
	fieldTCPFlags: flowfile.ColTCPFlags,
	fieldInIf:     flowfile.ColInIf,
	fieldOutIf:    flowfile.ColOutIf,
	fieldSrcAS:    flowfile.ColSrcAS,
	fieldDstAS:    flowfile.ColDstAS,
	fieldSrcMask:  flowfile.ColSrcMask,
	fieldDstMask:  flowfile.ColDstMask,
	fieldSrcVLAN:  flowfile.ColSrcVLAN,
	fieldDstVLAN:  flowfile.ColDstVLAN,
	fieldBytes:    flowfile.ColBytes,
	fieldPackets:  flowfile.ColPackets,
	fieldDuration: flowfile.ColStart | flowfile.ColEnd,
	fieldBPS:      flowfile.ColBytes | flowfile.ColStart | flowfile.ColEnd,
	fieldPPS:      flowfile.ColPackets | flowfile.ColStart | flowfile.ColEnd,
	fieldBPP:      flowfile.ColBytes | flowfile.ColPackets,
}

// numValue returns a numeric field of r.
func numValue(r *flow.Record, f field) uint64 {
	switch f {
	case fieldSrcPort:
		return uint64(r.SrcPort)
	case fieldDstPort:
		return uint64(r.DstPort)
	case fieldProto:
		return uint64(r.Proto)
	case fieldTOS:
		return uint64(r.TOS)
	case fieldTCPFlags:
		return uint64(r.TCPFlags)
	case fieldInIf:
		return uint64(r.InIf)
	case fieldOutIf:
		return uint64(r.OutIf)
	case fieldSrcAS:
		return uint64(r.SrcAS)
	case fieldDstAS:
		return uint64(r.DstAS)
	case fieldSrcMask:
		return uint64(r.SrcMask)
	case fieldDstMask:
		return uint64(r.DstMask)
	case fieldSrcVLAN:
		return uint64(r.SrcVLAN)
	case fieldDstVLAN:
		return uint64(r.DstVLAN)
	case fieldBytes:
		return r.Bytes
	case fieldPackets:
		return r.Packets
	case fieldDuration:
		return uint64(durationMillis(r))
	case fieldBPS:
		return rate(r.Bytes*8, durationMillis(r))
	case fieldPPS:
		return rate(r.Packets, durationMillis(r))
	case fieldBPP:
		if r.Packets == 0 {
			return 0
		}
		return r.Bytes / r.Packets
	}
	return 0
}

func durationMillis(r *flow.Record) int64 {
	if r.End <= r.Start {
		return 0
	}
	return r.End - r.Start
}

// rate returns n per second over ms milliseconds; 0 for a zero duration
// (as nfdump).
func rate(n uint64, ms int64) uint64 {
	if ms <= 0 {
		return 0
	}
	return uint64(float64(n) * 1000 / float64(ms))
}

func addrField(r *flow.Record, f field) netip.Addr {
	switch f {
	case fieldSrcAddr:
		return r.SrcAddr
	case fieldDstAddr:
		return r.DstAddr
	case fieldExporter:
		return r.Exporter
	case fieldNextHop:
		return r.NextHop
	}
	return netip.Addr{}
}

// addrBits splits a into two 64-bit halves; IPv4 (also mapped) is
// returned in lo with is4 set. ok is false for the zero Addr.
func addrBits(a netip.Addr) (hi, lo uint64, is4, ok bool) {
	if !a.IsValid() {
		return 0, 0, false, false
	}
	if a.Is4() || a.Is4In6() {
		b := a.Unmap().As4()
		return 0, uint64(binary.BigEndian.Uint32(b[:])), true, true
	}
	b := a.As16()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]), false, true
}

type predKind uint8

const (
	predTrue predKind = iota
	predNum
	predNumSet
	predFlags
	predPrefix
	predIPv4
	predIPv6
)

type cmpOp uint8

const (
	opEq cmpOp = iota
	opNe
	opLt
	opLe
	opGt
	opGe
)

// pred is one compiled test. When f2 is set the test matches if either
// field matches (host, port, as, if without src/dst).
type pred struct {
	kind   predKind
	f1, f2 field
	op     cmpOp
	val    uint64
	set    []uint64 // sorted, for predNumSet
	// prefix: value and mask halves; is4 for an IPv4 prefix
	hi, lo, mhi, mlo uint64
	is4              bool
}

func prefixPred(p netip.Prefix, f1, f2 field) pred {
	hi, lo, is4, _ := addrBits(p.Addr())
	bits := p.Bits()
	var mhi, mlo uint64
	if is4 {
		mlo = uint64(^uint32(0)) &^ (uint64(1)<<(32-bits) - 1)
	} else {
		mhi = maskBits(bits)
		mlo = maskBits(bits - 64)
	}
	return pred{kind: predPrefix, f1: f1, f2: f2, hi: hi & mhi, lo: lo & mlo, mhi: mhi, mlo: mlo, is4: is4}
}

// maskBits returns a 64-bit mask of the top n bits (n clamped to 0..64).
func maskBits(n int) uint64 {
	switch {
	case n <= 0:
		return 0
	case n >= 64:
		return ^uint64(0)
	}
	return ^(^uint64(0) >> n)
}

func (p *pred) test(r *flow.Record) bool {
	switch p.kind {
	case predTrue:
		return true
	case predIPv4:
		return !r.IsIPv6()
	case predIPv6:
		return r.IsIPv6()
	case predPrefix:
		return p.prefixMatch(addrField(r, p.f1)) || (p.f2 != fieldNone && p.prefixMatch(addrField(r, p.f2)))
	case predFlags:
		return numValue(r, p.f1)&p.val == p.val
	case predNum:
		return p.cmp(numValue(r, p.f1)) || (p.f2 != fieldNone && p.cmp(numValue(r, p.f2)))
	case predNumSet:
		return p.inSet(numValue(r, p.f1)) || (p.f2 != fieldNone && p.inSet(numValue(r, p.f2)))
	}
	return false
}

func (p *pred) prefixMatch(a netip.Addr) bool {
	hi, lo, is4, ok := addrBits(a)
	return ok && is4 == p.is4 && hi&p.mhi == p.hi && lo&p.mlo == p.lo
}

func (p *pred) cmp(v uint64) bool {
	switch p.op {
	case opEq:
		return v == p.val
	case opNe:
		return v != p.val
	case opLt:
		return v < p.val
	case opLe:
		return v <= p.val
	case opGt:
		return v > p.val
	case opGe:
		return v >= p.val
	}
	return false
}

func (p *pred) inSet(v uint64) bool {
	if len(p.set) <= 8 {
		for _, x := range p.set {
			if x == v {
				return true
			}
		}
		return false
	}
	_, found := slices.BinarySearch(p.set, v)
	return found
}

// Jump targets beyond the program's instructions.
const (
	jumpAccept = -1
	jumpReject = -2
)

// instr is one step of a compiled filter: run the test, continue at jt
// when it holds and at jf otherwise. Jumps only go forward.
type instr struct {
	pred
	jt, jf int32
}

// Filter is a compiled filter expression. Match is safe for concurrent
// use and does not allocate.
type Filter struct {
	expr string
	prog []instr
	// chainKeep is set when prog is a chain (see chain): per
	// instruction, whether it keeps the records its test holds for.
	chainKeep []bool
}

// Compile parses and compiles a filter expression; errors are
// *SyntaxError with the column. An empty expression matches all flows.
func Compile(expr string) (*Filter, error) {
	n, err := parse(expr)
	if err != nil {
		return nil, err
	}
	c := &compiler{}
	c.emit(n, jumpAccept, jumpReject)
	c.resolve()
	f := &Filter{expr: expr, prog: c.prog}
	if keep, ok := f.chain(); ok {
		f.chainKeep = keep
	}
	return f, nil
}

// MustCompile is Compile that panics on error, for fixed expressions.
func MustCompile(expr string) *Filter {
	f, err := Compile(expr)
	if err != nil {
		panic(err)
	}
	return f
}

// String returns the source expression.
func (f *Filter) String() string { return f.expr }

// MatchAll reports whether the filter accepts every flow.
func (f *Filter) MatchAll() bool {
	return f == nil || len(f.prog) == 1 && f.prog[0].kind == predTrue && f.prog[0].jt == jumpAccept
}

// columns returns the flow file columns the filter reads.
func (f *Filter) columns() flowfile.Columns {
	var cols flowfile.Columns
	if f == nil {
		return 0
	}
	for i := range f.prog {
		p := &f.prog[i].pred
		switch p.kind {
		case predIPv4, predIPv6:
			cols |= flowfile.ColSrcAddr // Record.IsIPv6
		}
		cols |= fieldColumns[p.f1] | fieldColumns[p.f2]
	}
	return cols
}

// Match reports whether r passes the filter. A nil Filter matches all.
func (f *Filter) Match(r *flow.Record) bool {
	if f == nil {
		return true
	}
	prog := f.prog
	pc := int32(0)
	for {
		in := &prog[pc]
		next := in.jf
		if in.test(r) {
			next = in.jt
		}
		switch next {
		case jumpAccept:
			return true
		case jumpReject:
			return false
		}
		pc = next
	}
}

// compiler lowers the tree to instructions with symbolic labels: label
// values >= 0 are label ids until resolve maps them to instruction
// indexes.
type compiler struct {
	prog   []instr
	labels []int32 // label id -> instruction index
}

func (c *compiler) newLabel() int32 {
	c.labels = append(c.labels, -1)
	return int32(len(c.labels) - 1)
}

func (c *compiler) place(l int32) { c.labels[l] = int32(len(c.prog)) }

func (c *compiler) emit(n *node, t, f int32) {
	switch n.op {
	case nodeLeaf:
		c.prog = append(c.prog, instr{pred: n.p, jt: t, jf: f})
	case nodeNot:
		c.emit(n.l, f, t)
	case nodeAnd:
		l := c.newLabel()
		c.emit(n.l, l, f)
		c.place(l)
		c.emit(n.r, t, f)
	case nodeOr:
		l := c.newLabel()
		c.emit(n.l, t, l)
		c.place(l)
		c.emit(n.r, t, f)
	}
}

func (c *compiler) resolve() {
	for i := range c.prog {
		in := &c.prog[i]
		if in.jt >= 0 {
			in.jt = c.labels[in.jt]
		}
		if in.jf >= 0 {
			in.jf = c.labels[in.jf]
		}
	}
}
