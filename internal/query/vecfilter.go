package query

import (
	"encoding/binary"
	"net/netip"

	"github.com/flowscan/flowscan/internal/flow"
)

// Filters are evaluated a run of records at a time: each instruction of
// the program tests every record that reaches it in one loop specialized
// for its field and operator (the field's values are first copied into a
// scratch slice), instead of interpreting the whole program record by
// record. A program that is a chain (every instruction either rejects or
// goes on to the next, as `a and b and not c` compiles) narrows one
// selection in place; other programs route record indexes to the
// instructions they jump to and mark the accepted ones.

// runScratch is one worker's space for evaluating a filter over runs.
type runScratch struct {
	vals, vals2 []uint64
	res         []uint8
	// pending[pc] holds the records that reach instruction pc (general
	// programs only); accepted marks the records accepted.
	pending  [][]int32
	accepted []bool
}

func (s *runScratch) grow(n, prog int) {
	if cap(s.vals) < n {
		s.vals = make([]uint64, n)
		s.vals2 = make([]uint64, n)
		s.res = make([]uint8, n)
		s.accepted = make([]bool, n)
		s.pending = nil
	}
	if len(s.pending) < prog {
		s.pending = make([][]int32, prog)
		for i := range s.pending {
			s.pending[i] = make([]int32, 0, cap(s.vals))
		}
	}
}

// chain reports whether every instruction rejects or continues with the
// next one (the last accepts instead), so that evaluation can narrow one
// selection; keep[i] is true when instruction i keeps the records its test
// holds for, false when it keeps the others.
func (f *Filter) chain() (keep []bool, ok bool) {
	keep = make([]bool, len(f.prog))
	for i, in := range f.prog {
		next := int32(i + 1)
		if i == len(f.prog)-1 {
			next = jumpAccept
		}
		switch {
		case in.jt == next && in.jf == jumpReject:
			keep[i] = true
		case in.jf == next && in.jt == jumpReject:
			keep[i] = false
		default:
			return nil, false
		}
	}
	return keep, true
}

// selectRun narrows sel (indexes into recs, increasing) to the records
// that pass the filter, keeping their order, and returns it; it reuses
// sel's array. A nil filter keeps everything.
func (f *Filter) selectRun(recs []flow.Record, sel []int32, s *runScratch) []int32 {
	if f == nil || f.MatchAll() || len(sel) == 0 {
		return sel
	}
	s.grow(len(recs), len(f.prog))
	if f.chainKeep != nil {
		for i := range f.prog {
			res := s.res[:len(sel)]
			f.prog[i].pred.eval(recs, sel, res, s)
			sel = compact(sel, res, f.chainKeep[i])
			if len(sel) == 0 {
				break
			}
		}
		return sel
	}
	accepted := s.accepted[:len(recs)]
	pending := s.pending[:len(f.prog)]
	for pc := range pending {
		pending[pc] = pending[pc][:0]
	}
	pending[0] = append(pending[0], sel...)
	for pc := range f.prog {
		in := &f.prog[pc]
		list := pending[pc]
		if len(list) == 0 {
			continue
		}
		res := s.res[:len(list)]
		in.pred.eval(recs, list, res, s)
		for j, i := range list {
			to := in.jf
			if res[j] != 0 {
				to = in.jt
			}
			switch to {
			case jumpAccept:
				accepted[i] = true
			case jumpReject:
			default:
				pending[to] = append(pending[to], i)
			}
		}
	}
	out := sel[:0]
	for _, i := range sel {
		if accepted[i] {
			accepted[i] = false
			out = append(out, i)
		}
	}
	return out
}

// compact keeps the entries of sel whose res is 1 (keep) or 0 (!keep),
// in place, without branching on the results.
func compact(sel []int32, res []uint8, keep bool) []int32 {
	var flip uint8
	if !keep {
		flip = 1
	}
	n := 0
	for j, i := range sel {
		sel[n] = i
		n += int(res[j] ^ flip)
	}
	return sel[:n]
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// eval sets res[j] to 1 when p holds for recs[idx[j]], else 0.
func (p *pred) eval(recs []flow.Record, idx []int32, res []uint8, s *runScratch) {
	switch p.kind {
	case predTrue:
		for j := range res {
			res[j] = 1
		}
	case predIPv4, predIPv6:
		want := p.kind == predIPv6
		for j, i := range idx {
			res[j] = b2u(recs[i].IsIPv6() == want)
		}
	case predPrefix:
		p.evalPrefix(p.f1, recs, idx, res, false)
		if p.f2 != fieldNone {
			p.evalPrefix(p.f2, recs, idx, res, true)
		}
	case predFlags:
		vals := s.vals[:len(idx)]
		extractNum(p.f1, recs, idx, vals)
		for j, v := range vals {
			res[j] = b2u(v&p.val == p.val)
		}
	case predNum:
		vals := s.vals[:len(idx)]
		extractNum(p.f1, recs, idx, vals)
		if p.f2 != fieldNone {
			vals2 := s.vals2[:len(idx)]
			extractNum(p.f2, recs, idx, vals2)
			compareEither(p.op, p.val, vals, vals2, res)
			return
		}
		compare(p.op, p.val, vals, res)
	case predNumSet:
		vals := s.vals[:len(idx)]
		extractNum(p.f1, recs, idx, vals)
		for j, v := range vals {
			res[j] = b2u(p.inSet(v))
		}
		if p.f2 != fieldNone {
			extractNum(p.f2, recs, idx, vals)
			for j, v := range vals {
				res[j] |= b2u(p.inSet(v))
			}
		}
	default:
		for j, i := range idx {
			res[j] = b2u(p.test(&recs[i]))
		}
	}
}

// compare sets res[j] to vals[j] op x.
func compare(op cmpOp, x uint64, vals []uint64, res []uint8) {
	res = res[:len(vals)]
	switch op {
	case opEq:
		for j, v := range vals {
			res[j] = b2u(v == x)
		}
	case opNe:
		for j, v := range vals {
			res[j] = b2u(v != x)
		}
	case opLt:
		for j, v := range vals {
			res[j] = b2u(v < x)
		}
	case opLe:
		for j, v := range vals {
			res[j] = b2u(v <= x)
		}
	case opGt:
		for j, v := range vals {
			res[j] = b2u(v > x)
		}
	case opGe:
		for j, v := range vals {
			res[j] = b2u(v >= x)
		}
	}
}

// compareEither sets res[j] to (a[j] op x) || (b[j] op x).
func compareEither(op cmpOp, x uint64, a, b []uint64, res []uint8) {
	res = res[:len(a)]
	b = b[:len(a)]
	switch op {
	case opEq:
		for j, v := range a {
			res[j] = b2u(v == x) | b2u(b[j] == x)
		}
	case opNe:
		for j, v := range a {
			res[j] = b2u(v != x) | b2u(b[j] != x)
		}
	case opLt:
		for j, v := range a {
			res[j] = b2u(v < x) | b2u(b[j] < x)
		}
	case opLe:
		for j, v := range a {
			res[j] = b2u(v <= x) | b2u(b[j] <= x)
		}
	case opGt:
		for j, v := range a {
			res[j] = b2u(v > x) | b2u(b[j] > x)
		}
	case opGe:
		for j, v := range a {
			res[j] = b2u(v >= x) | b2u(b[j] >= x)
		}
	}
}

// evalPrefix sets (or with or, ors into) res[j] whether field f of
// recs[idx[j]] lies in p's prefix, with one loop per field.
func (p *pred) evalPrefix(f field, recs []flow.Record, idx []int32, res []uint8, or bool) {
	var m uint8
	switch f {
	case fieldSrcAddr:
		for j, i := range idx {
			m = b2u(p.addrMatch(recs[i].SrcAddr))
			res[j] = m | res[j]&b2u(or)
		}
	case fieldDstAddr:
		for j, i := range idx {
			m = b2u(p.addrMatch(recs[i].DstAddr))
			res[j] = m | res[j]&b2u(or)
		}
	default:
		for j, i := range idx {
			m = b2u(p.addrMatch(addrField(&recs[i], f)))
			res[j] = m | res[j]&b2u(or)
		}
	}
}

// addrMatch is prefixMatch with a short path for an IPv4 address and an
// IPv4 prefix, the common case.
func (p *pred) addrMatch(a netip.Addr) bool {
	if p.is4 && a.Is4() {
		b := a.As4()
		return uint64(binary.BigEndian.Uint32(b[:]))&p.mlo == p.lo
	}
	return p.prefixMatch(a)
}

// extractNum sets out[j] to numeric field f of recs[idx[j]] (as numValue),
// with one loop per field.
func extractNum(f field, recs []flow.Record, idx []int32, out []uint64) {
	out = out[:len(idx)]
	switch f {
	case fieldSrcPort:
		for j, i := range idx {
			out[j] = uint64(recs[i].SrcPort)
		}
	case fieldDstPort:
		for j, i := range idx {
			out[j] = uint64(recs[i].DstPort)
		}
	case fieldProto:
		for j, i := range idx {
			out[j] = uint64(recs[i].Proto)
		}
	case fieldTOS:
		for j, i := range idx {
			out[j] = uint64(recs[i].TOS)
		}
	case fieldTCPFlags:
		for j, i := range idx {
			out[j] = uint64(recs[i].TCPFlags)
		}
	case fieldInIf:
		for j, i := range idx {
			out[j] = uint64(recs[i].InIf)
		}
	case fieldOutIf:
		for j, i := range idx {
			out[j] = uint64(recs[i].OutIf)
		}
	case fieldSrcAS:
		for j, i := range idx {
			out[j] = uint64(recs[i].SrcAS)
		}
	case fieldDstAS:
		for j, i := range idx {
			out[j] = uint64(recs[i].DstAS)
		}
	case fieldSrcMask:
		for j, i := range idx {
			out[j] = uint64(recs[i].SrcMask)
		}
	case fieldDstMask:
		for j, i := range idx {
			out[j] = uint64(recs[i].DstMask)
		}
	case fieldSrcVLAN:
		for j, i := range idx {
			out[j] = uint64(recs[i].SrcVLAN)
		}
	case fieldDstVLAN:
		for j, i := range idx {
			out[j] = uint64(recs[i].DstVLAN)
		}
	case fieldBytes:
		for j, i := range idx {
			out[j] = recs[i].Bytes
		}
	case fieldPackets:
		for j, i := range idx {
			out[j] = recs[i].Packets
		}
	default:
		for j, i := range idx {
			out[j] = numValue(&recs[i], f)
		}
	}
}
