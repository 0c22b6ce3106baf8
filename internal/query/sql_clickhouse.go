package query

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/flowscan/flowscan/internal/clickhouse"
	"github.com/flowscan/flowscan/internal/flow"
)

// ClickHouse answers a Query from flowscan's ClickHouse tables instead of
// the flow archive: the filter becomes a WHERE clause, an aggregation a
// GROUP BY on the coarsest table that keeps the fields involved (see
// clickhouse.Schema.Pick), and listing flows a SELECT on the raw table.
type ClickHouse struct {
	Client *clickhouse.Client
	Schema *clickhouse.Schema
	// Now is the current time (default time.Now), for table retention.
	Now func() time.Time
}

// sqlColumns names the table column of each field.
var sqlColumns = map[field]string{
	fieldSrcAddr: "src_addr", fieldDstAddr: "dst_addr", fieldExporter: "exporter", fieldNextHop: "next_hop",
	fieldSrcPort: "src_port", fieldDstPort: "dst_port", fieldProto: "proto", fieldTOS: "tos",
	fieldTCPFlags: "tcp_flags", fieldInIf: "in_if", fieldOutIf: "out_if", fieldSrcAS: "src_as", fieldDstAS: "dst_as",
	fieldSrcMask: "src_mask", fieldDstMask: "dst_mask", fieldSrcVLAN: "src_vlan", fieldDstVLAN: "dst_vlan",
}

// perFlowExprs are per-flow values that only the raw table can answer;
// they need the pseudo-field "duration", which only it has.
var perFlowExprs = map[field]string{
	fieldBytes:    "bytes",
	fieldPackets:  "packets",
	fieldDuration: "duration_ms",
	fieldBPS:      "if(duration_ms = 0, 0, toUInt64(bytes * 8000 / duration_ms))",
	fieldPPS:      "if(duration_ms = 0, 0, toUInt64(packets * 1000 / duration_ms))",
	fieldBPP:      "if(packets = 0, 0, intDiv(bytes, packets))",
}

// ipv4Test is true for an IPv4 (IPv4-mapped) address column.
func ipv4Test(col string) string {
	return "substring(" + col + ", 1, 12) = unhex('00000000000000000000FFFF')"
}

// SQL translates the filter into a ClickHouse condition over flowscan's
// tables and lists the fields it reads (names as in clickhouse.Table.Keys;
// "duration" when it needs per-flow values only the raw table keeps).
func (f *Filter) SQL() (where string, need []string, err error) {
	expr := ""
	if f != nil {
		expr = f.expr
	}
	n, err := parse(expr)
	if err != nil {
		return "", nil, err
	}
	seen := map[string]bool{}
	var b strings.Builder
	if err := sqlNode(&b, n, seen); err != nil {
		return "", nil, err
	}
	for k := range seen {
		need = append(need, k)
	}
	sort.Strings(need)
	return b.String(), need, nil
}

func sqlNode(b *strings.Builder, n *node, seen map[string]bool) error {
	switch n.op {
	case nodeAnd, nodeOr:
		op := " AND "
		if n.op == nodeOr {
			op = " OR "
		}
		b.WriteByte('(')
		if err := sqlNode(b, n.l, seen); err != nil {
			return err
		}
		b.WriteString(op)
		if err := sqlNode(b, n.r, seen); err != nil {
			return err
		}
		b.WriteByte(')')
		return nil
	case nodeNot:
		b.WriteString("NOT (")
		if err := sqlNode(b, n.l, seen); err != nil {
			return err
		}
		b.WriteByte(')')
		return nil
	}
	p := &n.p
	if p.kind == predTrue {
		b.WriteString("1")
		return nil
	}
	if p.kind == predIPv4 || p.kind == predIPv6 {
		// As Record.IsIPv6: a source address that is IPv6 and not
		// IPv4-mapped (an unknown, all-zero address counts as IPv4).
		seen["src_addr"] = true
		if p.kind == predIPv4 {
			b.WriteString("NOT ")
		}
		b.WriteString("(NOT (" + ipv4Test("src_addr") + ") AND src_addr != unhex('" + strings.Repeat("00", 16) + "'))")
		return nil
	}
	one := func(f field) (string, error) {
		col, ok := sqlColumns[f]
		if !ok {
			col, ok = perFlowExprs[f]
			if !ok {
				return "", fmt.Errorf("query: field %d has no ClickHouse column", f)
			}
			seen["duration"] = true
		} else {
			seen[col] = true
		}
		switch p.kind {
		case predPrefix:
			lo, hi := prefixBounds(p)
			cond := fmt.Sprintf("(%s >= %s AND %s <= %s)", col, lo, col, hi)
			if !p.is4 {
				// An IPv6 prefix matches IPv6 addresses only, as in
				// memory: not IPv4-mapped ones, not unknown (all zero).
				cond = fmt.Sprintf("(%s AND NOT (%s) AND %s != unhex('%s'))", cond, ipv4Test(col), col, strings.Repeat("00", 16))
			}
			return cond, nil
		case predFlags:
			return fmt.Sprintf("bitAnd(%s, %d) = %d", col, p.val, p.val), nil
		case predNum:
			return fmt.Sprintf("%s %s %d", col, [...]string{"=", "!=", "<", "<=", ">", ">="}[p.op], p.val), nil
		case predNumSet:
			vals := make([]string, len(p.set))
			for i, v := range p.set {
				vals[i] = strconv.FormatUint(v, 10)
			}
			return fmt.Sprintf("%s IN (%s)", col, strings.Join(vals, ", ")), nil
		}
		return "", fmt.Errorf("query: predicate kind %d has no SQL form", p.kind)
	}
	s1, err := one(p.f1)
	if err != nil {
		return err
	}
	if p.f2 == fieldNone {
		b.WriteString(s1)
		return nil
	}
	s2, err := one(p.f2)
	if err != nil {
		return err
	}
	b.WriteString("(" + s1 + " OR " + s2 + ")")
	return nil
}

// prefixBounds returns the lowest and highest stored 16-byte forms of the
// prefix, as SQL literals.
func prefixBounds(p *pred) (lo, hi string) {
	var a, z [16]byte
	if p.is4 {
		a[10], a[11] = 0xff, 0xff
		z[10], z[11] = 0xff, 0xff
		binary.BigEndian.PutUint32(a[12:], uint32(p.lo))
		binary.BigEndian.PutUint32(z[12:], uint32(p.lo|^p.mlo))
	} else {
		binary.BigEndian.PutUint64(a[:8], p.hi)
		binary.BigEndian.PutUint64(a[8:], p.lo)
		binary.BigEndian.PutUint64(z[:8], p.hi|^p.mhi)
		binary.BigEndian.PutUint64(z[8:], p.lo|^p.mlo)
	}
	return clickhouse.AddrLiteral(netip.AddrFrom16(a)), clickhouse.AddrLiteral(netip.AddrFrom16(z))
}

// keySQL returns the SELECT expressions of one key field: two UInt64
// halves for an address (masked as asked), the column for a number.
func keySQL(kf KeyField) []string {
	col := sqlColumns[kf.f]
	if !isAddrField(kf.f) {
		return []string{col}
	}
	hi := "reinterpretAsUInt64(reverse(substring(" + col + ", 1, 8)))"
	lo := "reinterpretAsUInt64(reverse(substring(" + col + ", 9, 8)))"
	v4 := "reinterpretAsUInt32(reverse(substring(" + col + ", 13, 4)))"
	if kf.Mask4 > 0 && kf.Mask4 < 32 {
		v4 = fmt.Sprintf("bitAnd(%s, %d)", v4, uint32(^uint32(0))&^(uint32(1)<<(32-kf.Mask4)-1))
	}
	if kf.Mask6 > 0 && kf.Mask6 < 128 {
		hi = fmt.Sprintf("bitAnd(%s, %d)", hi, maskBits(kf.Mask6))
		lo = fmt.Sprintf("bitAnd(%s, %d)", lo, maskBits(kf.Mask6-64))
	}
	is4 := ipv4Test(col)
	return []string{
		fmt.Sprintf("if(%s, toUInt64(0), %s)", is4, hi),
		fmt.Sprintf("if(%s, bitOr(toUInt64(281470681743360), toUInt64(%s)), %s)", is4, v4, lo),
	}
}

// window returns the table, the WHERE clause (time and filter) for q.
func (q *Query) clickhouseWhere(ch *ClickHouse, keys []KeyField) (clickhouse.Table, string, error) {
	where, need, err := q.Filter.SQL()
	if err != nil {
		return clickhouse.Table{}, "", err
	}
	for _, k := range keys {
		need = append(need, sqlColumns[k.f])
	}
	now := time.Now()
	if ch.Now != nil {
		now = ch.Now()
	}
	// In ClickHouse a window selects flows by their end time, in the raw
	// table and in the consolidated ones alike (their intervals are those
	// of the flows' ends), so that every table gives the same answer; the
	// table is one whose intervals the window's edges fall on.
	t := ch.Schema.PickExact(need, q.From, q.To, now)
	var conds []string
	if !q.From.IsZero() {
		conds = append(conds, fmt.Sprintf("%s >= toDateTime(%d, 'UTC')", t.Time, q.From.Unix()))
	}
	if !q.To.IsZero() {
		conds = append(conds, fmt.Sprintf("%s < toDateTime(%d, 'UTC')", t.Time, q.To.Unix()))
	}
	if where != "1" {
		conds = append(conds, where)
	}
	if len(conds) == 0 {
		return t, "1", nil
	}
	return t, strings.Join(conds, " AND "), nil
}

// AggregateClickHouse is Aggregate answered by ClickHouse.
func (q *Query) AggregateClickHouse(ctx context.Context, ch *ClickHouse, spec AggregateSpec) (*Result, error) {
	t, where, err := q.clickhouseWhere(ch, spec.Keys)
	if err != nil {
		return nil, err
	}
	table := ch.Schema.Database + "." + t.Name
	first, last := "min(toUInt32(time_start))", "max(toUInt32(time_end))"
	if t.Step > 0 {
		first, last = "min(toUInt32(time))", fmt.Sprintf("max(toUInt32(time)) + %d", int64(t.Step/time.Second))
	}
	counters := fmt.Sprintf("%s, sum(packets), sum(bytes), %s, %s", t.FlowsExpr(), first, last)
	res := &Result{Keys: spec.Keys, Order: spec.Order}
	rows, err := ch.Client.QueryRows(ctx, fmt.Sprintf("SELECT %s FROM %s WHERE %s", counters, table, where))
	if err != nil {
		return nil, err
	}
	if len(rows) != 1 {
		return nil, errors.New("query: no totals from ClickHouse")
	}
	if res.Total, err = parseCounters(rows[0]); err != nil {
		return nil, err
	}
	if len(spec.Keys) == 0 || res.Total.Flows == 0 {
		return res, nil
	}
	var keyExprs []string
	for _, k := range spec.Keys {
		keyExprs = append(keyExprs, keySQL(k)...)
	}
	group := strings.Join(keyExprs, ", ")
	dur := fmt.Sprintf("greatest(toUInt64(%s) - toUInt64(%s), 1)", last, first)
	order := t.FlowsExpr()
	switch spec.Order {
	case ByPackets:
		order = "sum(packets)"
	case ByBytes:
		order = "sum(bytes)"
	case ByBPS:
		order = "sum(bytes) * 8 / " + dur
	case ByPPS:
		order = "sum(packets) / " + dur
	case ByBPP:
		order = "sum(bytes) / greatest(sum(packets), 1)"
	}
	limit := ""
	if spec.Limit > 0 {
		limit = fmt.Sprintf(" LIMIT %d", spec.Limit)
	}
	rows, err = ch.Client.QueryRows(ctx, fmt.Sprintf("SELECT %s, %s FROM %s WHERE %s GROUP BY %s ORDER BY %s DESC, %s%s",
		group, counters, table, where, group, order, group, limit))
	if err != nil {
		return nil, err
	}
	var listed Counters
	for _, r := range rows {
		if len(r) != len(keyExprs)+5 {
			return nil, fmt.Errorf("query: ClickHouse row of %d fields, want %d", len(r), len(keyExprs)+5)
		}
		var rec flow.Record
		i := 0
		for _, k := range spec.Keys {
			if isAddrField(k.f) {
				hi, err1 := strconv.ParseUint(r[i], 10, 64)
				lo, err2 := strconv.ParseUint(r[i+1], 10, 64)
				if err1 != nil || err2 != nil {
					return nil, fmt.Errorf("query: bad address key %q %q from ClickHouse", r[i], r[i+1])
				}
				if hi != 0 || lo != 0 { // all zeros: the address was unknown
					var b [16]byte
					binary.BigEndian.PutUint64(b[:8], hi)
					binary.BigEndian.PutUint64(b[8:], lo)
					setAddrField(&rec, k.f, netip.AddrFrom16(b).Unmap())
				}
				i += 2
				continue
			}
			v, err := strconv.ParseUint(r[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("query: bad key %q from ClickHouse", r[i])
			}
			setNumField(&rec, k.f, v)
			i++
		}
		c, err := parseCounters(r[i:])
		if err != nil {
			return nil, err
		}
		res.Rows = append(res.Rows, Row{Key: makeKey(&rec, spec.Keys), Counters: c})
		listed.Flows += c.Flows
		listed.Packets += c.Packets
		listed.Bytes += c.Bytes
	}
	res.Groups = len(res.Rows)
	if spec.Limit > 0 && len(res.Rows) == spec.Limit {
		g, err := ch.Client.QueryRows(ctx, fmt.Sprintf("SELECT count() FROM (SELECT 1 FROM %s WHERE %s GROUP BY %s)", table, where, group))
		if err == nil && len(g) == 1 {
			res.Groups, _ = strconv.Atoi(g[0][0])
		}
	}
	res.Other = Counters{Flows: res.Total.Flows - listed.Flows, Packets: res.Total.Packets - listed.Packets, Bytes: res.Total.Bytes - listed.Bytes}
	if res.Other.Flows > 0 {
		res.Other.First, res.Other.Last = res.Total.First, res.Total.Last
	}
	return res, nil
}

// parseCounters reads flows, packets, bytes, first and last (Unix s).
func parseCounters(f []string) (Counters, error) {
	var v [5]uint64
	for i := range v {
		x, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return Counters{}, fmt.Errorf("query: bad counter %q from ClickHouse", f[i])
		}
		v[i] = x
	}
	c := Counters{Flows: v[0], Packets: v[1], Bytes: v[2]}
	if c.Flows > 0 {
		c.First, c.Last = int64(v[3])*1000, int64(v[4])*1000
	}
	return c, nil
}

func setAddrField(r *flow.Record, f field, a netip.Addr) {
	switch f {
	case fieldSrcAddr:
		r.SrcAddr = a
	case fieldDstAddr:
		r.DstAddr = a
	case fieldExporter:
		r.Exporter = a
	case fieldNextHop:
		r.NextHop = a
	}
}

func setNumField(r *flow.Record, f field, v uint64) {
	switch f {
	case fieldSrcPort:
		r.SrcPort = uint16(v)
	case fieldDstPort:
		r.DstPort = uint16(v)
	case fieldProto:
		r.Proto = uint8(v)
	case fieldTOS:
		r.TOS = uint8(v)
	case fieldTCPFlags:
		r.TCPFlags = uint8(v)
	case fieldInIf:
		r.InIf = uint32(v)
	case fieldOutIf:
		r.OutIf = uint32(v)
	case fieldSrcAS:
		r.SrcAS = uint32(v)
	case fieldDstAS:
		r.DstAS = uint32(v)
	case fieldSrcMask:
		r.SrcMask = uint8(v)
	case fieldDstMask:
		r.DstMask = uint8(v)
	case fieldSrcVLAN:
		r.SrcVLAN = uint16(v)
	case fieldDstVLAN:
		r.DstVLAN = uint16(v)
	}
}

// FlowsClickHouse is Flows answered by ClickHouse's raw table, in time
// order; limit > 0 stops after that many flows. Times come back in whole
// seconds (the end; the start is the end minus the duration in ms).
func (q *Query) FlowsClickHouse(ctx context.Context, ch *ClickHouse, limit int, fn func(batch []flow.Record) error) error {
	where, _, err := q.Filter.SQL()
	if err != nil {
		return err
	}
	// Listing always reads raw flows, selected by their end time.
	conds := []string{where}
	if !q.From.IsZero() {
		conds = append(conds, fmt.Sprintf("time_end >= toDateTime(%d, 'UTC')", q.From.Unix()))
	}
	if !q.To.IsZero() {
		conds = append(conds, fmt.Sprintf("time_end < toDateTime(%d, 'UTC')", q.To.Unix()))
	}
	stmt := fmt.Sprintf("SELECT %s FROM %s.flows WHERE %s ORDER BY time_end", clickhouse.RawColumnList(), ch.Schema.Database, strings.Join(conds, " AND "))
	if limit > 0 {
		stmt += fmt.Sprintf(" LIMIT %d", limit)
	}
	return ch.Client.QueryStream(ctx, stmt+" FORMAT RowBinary", func(r *bufio.Reader) error {
		row := make([]byte, clickhouse.RowSize)
		batch := make([]flow.Record, 0, scanRecords)
		for {
			_, err := io.ReadFull(r, row)
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("query: reading ClickHouse rows: %w", err)
			}
			batch = batch[:len(batch)+1]
			if _, err := clickhouse.DecodeRow(row, &batch[len(batch)-1]); err != nil {
				return err
			}
			if len(batch) == cap(batch) {
				if err := fn(batch); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if len(batch) > 0 {
			return fn(batch)
		}
		return nil
	})
}
