package query

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

type nodeOp uint8

const (
	nodeLeaf nodeOp = iota
	nodeAnd
	nodeOr
	nodeNot
)

// node is the parsed form of a filter before compilation.
type node struct {
	op   nodeOp
	l, r *node
	p    pred
}

func and(l, r *node) *node { return &node{op: nodeAnd, l: l, r: r} }
func or(l, r *node) *node  { return &node{op: nodeOr, l: l, r: r} }
func not(x *node) *node    { return &node{op: nodeNot, l: x} }
func leaf(p pred) *node    { return &node{op: nodeLeaf, p: p} }

type parser struct {
	expr string
	toks []token
	pos  int
}

// parse parses a whole filter expression. An empty (all blank) expression
// matches every flow.
func parse(expr string) (*node, error) {
	toks, err := lex(expr)
	if err != nil {
		return nil, err
	}
	p := &parser{expr: expr, toks: toks}
	if p.peek().kind == tokEOF {
		return leaf(pred{kind: predTrue}), nil
	}
	n, err := p.orExpr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		if t.kind == tokRParen {
			return nil, p.errAt(t, "unbalanced )")
		}
		return nil, p.errAt(t, fmt.Sprintf("expected and, or or end of filter, found %s", t))
	}
	return n, nil
}

func (p *parser) peek() token { return p.toks[p.pos] }
func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tokEOF {
		p.pos++
	}
	return t
}

func (p *parser) errAt(t token, msg string) error {
	return &SyntaxError{Column: t.col, Msg: msg, Expr: p.expr}
}

func (p *parser) isWord(t token, words ...string) bool {
	return t.kind == tokWord && slices.Contains(words, strings.ToLower(t.text))
}

func (p *parser) orExpr() (*node, error) {
	l, err := p.andExpr()
	if err != nil {
		return nil, err
	}
	for t := p.peek(); t.kind == tokOr || p.isWord(t, "or"); t = p.peek() {
		p.next()
		r, err := p.andExpr()
		if err != nil {
			return nil, err
		}
		l = or(l, r)
	}
	return l, nil
}

func (p *parser) andExpr() (*node, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for t := p.peek(); t.kind == tokAnd || p.isWord(t, "and"); t = p.peek() {
		p.next()
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = and(l, r)
	}
	return l, nil
}

func (p *parser) unary() (*node, error) {
	t := p.peek()
	switch {
	case t.kind == tokNot || p.isWord(t, "not"):
		p.next()
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return not(x), nil
	case t.kind == tokLParen:
		p.next()
		x, err := p.orExpr()
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tokRParen {
			return nil, p.errAt(c, fmt.Sprintf("expected ) to close the ( at column %d, found %s", t.col, c))
		}
		return x, nil
	case t.kind == tokWord:
		return p.primitive()
	case t.kind == tokEOF:
		return nil, p.errAt(t, "unexpected end of filter: expected a condition")
	}
	return nil, p.errAt(t, fmt.Sprintf("unexpected %s: expected a condition", t))
}

// direction qualifiers
const (
	dirEither = iota
	dirSrc
	dirDst
)

func (p *parser) primitive() (*node, error) {
	t := p.next()
	kw := strings.ToLower(t.text)
	dir := dirEither
	dirTok := t
	switch kw {
	case "src", "in":
		dir = dirSrc
	case "dst", "out":
		dir = dirDst
	}
	if dir != dirEither {
		t = p.next()
		if t.kind != tokWord {
			return nil, p.errAt(t, fmt.Sprintf("expected host, net, port, as, if, mask or vlan after %q, found %s", dirTok.text, t))
		}
		kw = strings.ToLower(t.text)
		inOut := dirTok.text == "in" || dirTok.text == "out"
		if inOut && kw != "if" {
			return nil, p.errAt(t, fmt.Sprintf("%q qualifies only if (interface), found %s", dirTok.text, t))
		}
	}
	pick := func(src, dst field) (field, field) {
		switch dir {
		case dirSrc:
			return src, fieldNone
		case dirDst:
			return dst, fieldNone
		}
		return src, dst
	}
	noDir := func() error {
		if dir != dirEither {
			return p.errAt(dirTok, fmt.Sprintf("%q takes no src/dst qualifier", t.text))
		}
		return nil
	}
	switch kw {
	case "any", "all", "true":
		return leaf(pred{kind: predTrue}), noDir()
	case "ipv4", "inet":
		return leaf(pred{kind: predIPv4}), noDir()
	case "ipv6", "inet6":
		return leaf(pred{kind: predIPv6}), noDir()
	case "tcp", "udp", "icmp", "icmp6", "gre", "esp", "sctp":
		if err := noDir(); err != nil {
			return nil, err
		}
		v, _ := protoNumber(kw)
		return leaf(pred{kind: predNum, f1: fieldProto, op: opEq, val: uint64(v)}), nil
	case "host", "ip":
		f1, f2 := pick(fieldSrcAddr, fieldDstAddr)
		return p.addrList(t, f1, f2, false)
	case "net":
		f1, f2 := pick(fieldSrcAddr, fieldDstAddr)
		return p.addrList(t, f1, f2, true)
	case "exporter":
		if err := noDir(); err != nil {
			return nil, err
		}
		return p.addrList(t, fieldExporter, fieldNone, true)
	case "nexthop", "next_hop":
		if err := noDir(); err != nil {
			return nil, err
		}
		return p.addrList(t, fieldNextHop, fieldNone, true)
	case "port":
		f1, f2 := pick(fieldSrcPort, fieldDstPort)
		return p.numExpr(t, f1, f2, math.MaxUint16, portNumber)
	case "as":
		f1, f2 := pick(fieldSrcAS, fieldDstAS)
		return p.numExpr(t, f1, f2, math.MaxUint32, nil)
	case "if":
		f1, f2 := pick(fieldInIf, fieldOutIf)
		return p.numExpr(t, f1, f2, math.MaxUint32, nil)
	case "mask":
		f1, f2 := pick(fieldSrcMask, fieldDstMask)
		return p.numExpr(t, f1, f2, 128, nil)
	case "vlan":
		f1, f2 := pick(fieldSrcVLAN, fieldDstVLAN)
		return p.numExpr(t, f1, f2, 4095, nil)
	}
	if err := noDir(); err != nil {
		return nil, err
	}
	switch kw {
	case "proto":
		return p.numExpr(t, fieldProto, fieldNone, math.MaxUint8, protoNumber)
	case "tos":
		return p.numExpr(t, fieldTOS, fieldNone, math.MaxUint8, nil)
	case "flags":
		return p.flags(t)
	case "bytes", "packets", "duration", "bps", "pps", "bpp":
		return p.numExpr(t, counterFields[kw], fieldNone, math.MaxUint64, nil)
	}
	return nil, p.errAt(t, fmt.Sprintf("unknown condition %q (want host, net, port, proto, as, if, exporter, tos, flags, bytes, packets, duration, bps, pps, bpp, ...)", t.text))
}

var counterFields = map[string]field{
	"bytes": fieldBytes, "packets": fieldPackets, "duration": fieldDuration,
	"bps": fieldBPS, "pps": fieldPPS, "bpp": fieldBPP,
}

// listItems reads the items of "in [a b, c]" after "in"; it returns the
// item tokens.
func (p *parser) listItems(kw token) ([]token, error) {
	open := p.next()
	if open.kind != tokLBracket {
		return nil, p.errAt(open, fmt.Sprintf("expected [ after %s in, found %s", kw.text, open))
	}
	var items []token
	for {
		t := p.next()
		switch t.kind {
		case tokRBracket:
			if len(items) == 0 {
				return nil, p.errAt(t, "empty list")
			}
			return items, nil
		case tokComma:
		case tokWord:
			items = append(items, t)
		case tokEOF:
			return nil, p.errAt(t, fmt.Sprintf("expected ] to close the [ at column %d", open.col))
		default:
			return nil, p.errAt(t, fmt.Sprintf("unexpected %s in list", t))
		}
	}
}

// addrList parses ADDR, PREFIX (when prefixes) or in [ ... ] of them.
func (p *parser) addrList(kw token, f1, f2 field, prefixes bool) (*node, error) {
	t := p.peek()
	var items []token
	if p.isWord(t, "in") {
		p.next()
		var err error
		if items, err = p.listItems(kw); err != nil {
			return nil, err
		}
	} else if t.kind == tokWord {
		items = []token{p.next()}
	} else {
		return nil, p.errAt(t, fmt.Sprintf("expected an address after %s, found %s", kw.text, t))
	}
	var out *node
	for _, it := range items {
		pfx, err := parsePrefix(it.text, prefixes)
		if err != nil {
			return nil, p.errAt(it, err.Error())
		}
		n := leaf(prefixPred(pfx, f1, f2))
		if out == nil {
			out = n
		} else {
			out = or(out, n)
		}
	}
	return out, nil
}

func parsePrefix(s string, allowPrefix bool) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		if !allowPrefix {
			return netip.Prefix{}, fmt.Errorf("%q: host takes an address; use net for prefixes", s)
		}
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a prefix", s)
		}
		if pfx.Addr().Is4In6() {
			if pfx.Bits() < 96 {
				return netip.Prefix{}, fmt.Errorf("%q: an IPv4-mapped prefix needs at least /96", s)
			}
			pfx = netip.PrefixFrom(pfx.Addr().Unmap(), pfx.Bits()-96)
		}
		return pfx.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address", s)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q: zones are not allowed", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// numExpr parses [OP] VALUE or in [ VALUE ... ]; name, if set, resolves
// names (protocols, services).
func (p *parser) numExpr(kw token, f1, f2 field, maxVal uint64, name func(string) (uint64, bool)) (*node, error) {
	value := func(t token) (uint64, error) {
		if t.kind != tokWord {
			return 0, p.errAt(t, fmt.Sprintf("expected a number after %s, found %s", kw.text, t))
		}
		v, err := parseNumber(t.text)
		if err != nil && name != nil {
			if nv, ok := name(strings.ToLower(t.text)); ok {
				v, err = nv, nil
			}
		}
		if err != nil {
			return 0, p.errAt(t, fmt.Sprintf("%s: %v", kw.text, err))
		}
		if v > maxVal {
			return 0, p.errAt(t, fmt.Sprintf("%s %d is out of range (max %d)", kw.text, v, maxVal))
		}
		return v, nil
	}
	t := p.peek()
	if p.isWord(t, "in") {
		p.next()
		items, err := p.listItems(kw)
		if err != nil {
			return nil, err
		}
		set := make([]uint64, 0, len(items))
		for _, it := range items {
			v, err := value(it)
			if err != nil {
				return nil, err
			}
			set = append(set, v)
		}
		slices.Sort(set)
		set = slices.Compact(set)
		return leaf(pred{kind: predNumSet, f1: f1, f2: f2, set: set}), nil
	}
	op := opEq
	if t.kind == tokOp {
		op = cmpOps[t.text]
		p.next()
	} else if t.kind == tokWord {
		if o, ok := cmpWords[strings.ToLower(t.text)]; ok {
			op = o
			p.next()
		}
	}
	v, err := value(p.next())
	if err != nil {
		return nil, err
	}
	return leaf(pred{kind: predNum, f1: f1, f2: f2, op: op, val: v}), nil
}

var cmpOps = map[string]cmpOp{"=": opEq, "==": opEq, "!=": opNe, "<": opLt, "<=": opLe, ">": opGt, ">=": opGe}
var cmpWords = map[string]cmpOp{"eq": opEq, "ne": opNe, "lt": opLt, "le": opLe, "gt": opGt, "ge": opGe}

// flags parses flags LETTERS (all of U A P R S F set, X = all six) or a
// number (all of its bits set).
func (p *parser) flags(kw token) (*node, error) {
	t := p.next()
	if t.kind != tokWord {
		return nil, p.errAt(t, fmt.Sprintf("expected TCP flags (letters UAPRSF or a number) after flags, found %s", t))
	}
	var v uint64
	if t.text[0] >= '0' && t.text[0] <= '9' {
		n, err := parseDecimalOrHex(t.text, 8)
		if err != nil {
			return nil, p.errAt(t, fmt.Sprintf("flags %q: not a number 0..255", t.text))
		}
		v = n
	} else {
		for i := 0; i < len(t.text); i++ {
			bit := strings.IndexByte("FSRPAU", t.text[i]&^0x20)
			switch {
			case bit >= 0:
				v |= 1 << bit
			case t.text[i]&^0x20 == 'X':
				v |= 0x3f
			default:
				return nil, &SyntaxError{Column: t.col + i, Msg: fmt.Sprintf("unknown TCP flag %q (want U A P R S F or X)", t.text[i]), Expr: p.expr}
			}
		}
	}
	return leaf(pred{kind: predFlags, f1: fieldTCPFlags, val: v}), nil
}

// parseNumber parses a decimal number with an optional K, M or G suffix
// (powers of 1000), a fraction allowed with a suffix (1.5M), or a 0x hex
// number.
func parseNumber(s string) (uint64, error) {
	mult := uint64(1)
	switch s[len(s)-1] {
	case 'k', 'K':
		mult = 1e3
	case 'm', 'M':
		mult = 1e6
	case 'g', 'G':
		mult = 1e9
	case 't', 'T':
		mult = 1e12
	}
	digits := s
	if mult > 1 {
		digits = s[:len(s)-1]
	}
	if digits == "" || digits[0] == '-' || digits[0] == '+' {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if mult > 1 && strings.Contains(digits, ".") {
		f, err := strconv.ParseFloat(digits, 64)
		if err != nil || f < 0 || f*float64(mult) >= math.MaxUint64 {
			return 0, fmt.Errorf("%q is not a number", s)
		}
		return uint64(f * float64(mult)), nil
	}
	v, err := parseDecimalOrHex(digits, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if v > math.MaxUint64/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return v * mult, nil
}

// parseDecimalOrHex parses a decimal number, or hexadecimal with a 0x
// prefix. Leading zeros are decimal (port 010 is port 10, not octal 8), and
// Go's other literal forms (0b, 0o, underscores) are refused.
func parseDecimalOrHex(s string, bits int) (uint64, error) {
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		return strconv.ParseUint(h, 16, bits)
	}
	return strconv.ParseUint(s, 10, bits)
}
