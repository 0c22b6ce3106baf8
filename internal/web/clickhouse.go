package web

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flowscan/flowscan/internal/clickhouse"
	flowquery "github.com/flowscan/flowscan/internal/query"
)

// The ClickHouse backend: module "clickhouse" of the catalog is read from
// flowscan's ClickHouse tables instead of RRD files. Its scopes are "all"
// and one per exporter seen in the last day; its items are the total and
// the top protocols, services, TOS values, AS numbers and (per exporter)
// interfaces of the last day. Every value placed in SQL comes from the
// catalog (integers and addresses parsed from ClickHouse's own answers)
// or from parsed request numbers (times, steps), never from request text.

// ClickHouseModule is the name of the module read from ClickHouse.
const ClickHouseModule = "clickhouse"

// KindInterface is the kind of interface items (ClickHouse only): in is
// the traffic that entered the exporter through the interface, out the
// traffic that left through it.
const KindInterface = "interface"

// Backends of a module, as the catalog reports them.
const (
	BackendRRD        = "rrd"
	BackendClickHouse = "clickhouse"
)

// ClickHouse configures the clickhouse module.
type ClickHouse struct {
	// Clients are the servers to read from, tried in order when one does
	// not answer. On a cluster any server answers for all shards (the
	// Distributed tables), so these are alternatives, not shards.
	Clients []*clickhouse.Client
	// Schema names the database, the cluster and the tables' TTLs.
	Schema *clickhouse.Schema
}

// Discovery bounds: items of each kind and exporters listed.
const (
	chTopItems     = 10
	chMaxExporters = 200
	chDiscoverSpan = 24 * time.Hour
	chQueryTimeout = 60 * time.Second
	// chDiscoverTimeout bounds a catalog build: requests wait for it.
	chDiscoverTimeout = 15 * time.Second
	chMinAutoStep     = time.Minute
)

// chMatch is what a ClickHouse item selects: a kind and a value parsed
// from ClickHouse's answer during discovery.
type chMatch struct {
	kind  string
	value uint64
}

// serviceProtos are the protocols whose ports make services.
const serviceProtos = "proto IN (6, 17, 132)"

// cond returns the SQL condition of the item for direction out (or in,
// which differs only for interfaces).
func (m *chMatch) cond(out bool) string {
	v := strconv.FormatUint(m.value, 10)
	switch m.kind {
	case KindProtocol:
		return "proto = " + v
	case KindService:
		return "least(src_port, dst_port) = " + v + " AND " + serviceProtos
	case KindTOS:
		return "tos = " + v
	case KindAS:
		return "(src_as = " + v + " OR dst_as = " + v + ")"
	case KindInterface:
		if out {
			return "out_if = " + v
		}
		return "in_if = " + v
	}
	return "1"
}

// fields are the flow fields the item needs from a table.
func (m *chMatch) fields() []string {
	switch m.kind {
	case KindProtocol:
		return []string{"proto"}
	case KindService:
		return []string{"proto", "src_port", "dst_port"}
	case KindTOS:
		return []string{"tos"}
	case KindAS:
		return []string{"src_as", "dst_as"}
	case KindInterface:
		return []string{"in_if", "out_if"}
	}
	return nil
}

// chSource reads the clickhouse module.
type chSource struct {
	cfg    ClickHouse
	logger *slog.Logger

	mu   sync.Mutex
	last *Module // last discovered module, kept while ClickHouse fails
}

// rows runs a SELECT on the first server that answers.
func (c *chSource) rows(ctx context.Context, sql string) ([][]string, error) {
	var err error
	for _, cl := range c.cfg.Clients {
		var rows [][]string
		rows, err = cl.QueryRows(ctx, sql)
		if err == nil || !clickhouse.IsUncertain(err) || ctx.Err() != nil {
			return rows, err
		}
	}
	return nil, err
}

func (c *chSource) table(t clickhouse.Table) string { return c.cfg.Schema.Database + "." + t.Name }

// retention is how far back table t holds rows (0: forever).
func (c *chSource) retention(t clickhouse.Table) time.Duration {
	if d, ok := c.cfg.Schema.TTL[t.Name]; ok {
		return d
	}
	return clickhouse.DefaultTTL[t.Name]
}

// exporterCond restricts a query to scope's exporter ("" for all).
func exporterCond(s *Scope) string {
	if !s.exporter.IsValid() {
		return ""
	}
	return " AND exporter = " + clickhouse.AddrLiteral(s.exporter)
}

// discovery describes how one kind's top values are found.
type discovery struct {
	kind, key, where string
	need             []string
	perExporterOnly  bool
}

var discoveries = []discovery{
	{kind: KindProtocol, key: "proto", need: []string{"proto"}},
	{kind: KindService, key: "least(src_port, dst_port)", where: " AND " + serviceProtos, need: []string{"proto", "src_port", "dst_port"}},
	{kind: KindTOS, key: "tos", need: []string{"tos"}},
	{kind: KindAS, key: "arrayJoin(if(src_as = dst_as, [src_as], [src_as, dst_as]))", need: []string{"src_as", "dst_as"}},
	{kind: KindInterface, key: "arrayJoin(if(in_if = out_if, [in_if], [in_if, out_if]))", need: []string{"in_if", "out_if"}, perExporterOnly: true},
}

// discover builds the clickhouse module from the last day of flows. On
// failure it returns the last module built (nil if none) and the error.
func (c *chSource) discover(now time.Time) (*Module, error) {
	ctx, cancel := context.WithTimeout(context.Background(), chDiscoverTimeout)
	defer cancel()
	m, err := c.build(ctx, now)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		return c.last, err
	}
	c.last = m
	return m, nil
}

func (c *chSource) build(ctx context.Context, now time.Time) (*Module, error) {
	to := now.Truncate(time.Minute).Add(time.Minute)
	from := to.Add(-chDiscoverSpan)
	schema := c.cfg.Schema
	m := &Module{Name: ClickHouseModule, Backend: BackendClickHouse, byID: map[string]*Scope{}}
	all := &Scope{ID: "all", Label: "all exporters", byID: map[string]*Item{}}
	addItem(all, &Item{ID: "total", Kind: KindTotal, Label: "total", ch: &chMatch{kind: KindTotal}})
	m.Scopes = append(m.Scopes, all)
	m.byID[all.ID] = all

	t := schema.Pick([]string{"exporter"}, from, to, 0, now)
	rows, err := c.rows(ctx, fmt.Sprintf("SELECT hex(exporter), sum(bytes) AS b FROM %s WHERE %s GROUP BY exporter ORDER BY b DESC LIMIT %d",
		c.table(t), t.TimeRange(from, to), chMaxExporters))
	if err != nil {
		return nil, err
	}
	var exporters []*Scope
	for _, r := range rows {
		a, err := clickhouse.ParseAddrHex(r[0])
		if err != nil {
			return nil, err
		}
		s := &Scope{ID: a.String(), Label: a.String(), exporter: a, byID: map[string]*Item{}}
		if !a.IsValid() {
			// Rows with no exporter address (all zeros, as :: is stored).
			s.ID, s.Label, s.exporter = "unknown", "unknown exporter", netip.IPv6Unspecified()
		}
		addItem(s, &Item{ID: "total", Kind: KindTotal, Label: "total", ch: &chMatch{kind: KindTotal}})
		exporters = append(exporters, s)
	}
	slices.SortFunc(exporters, func(a, b *Scope) int { return a.exporter.Compare(b.exporter) })
	byHex := map[string]*Scope{}
	for _, s := range exporters {
		b := clickhouse.AddrBytes(s.exporter)
		byHex[fmt.Sprintf("%X", b[:])] = s
		m.Scopes = append(m.Scopes, s)
		m.byID[s.ID] = s
	}
	for _, d := range discoveries {
		t := schema.Pick(append([]string{"exporter"}, d.need...), from, to, 0, now)
		base := fmt.Sprintf("FROM %s WHERE %s%s", c.table(t), t.TimeRange(from, to), d.where)
		if !d.perExporterOnly {
			rows, err := c.rows(ctx, fmt.Sprintf("SELECT %s AS k, sum(bytes) AS b %s GROUP BY k ORDER BY b DESC, k LIMIT %d", d.key, base, chTopItems))
			if err != nil {
				return nil, err
			}
			for _, r := range rows {
				if err := addDiscovered(all, d.kind, r[0]); err != nil {
					return nil, err
				}
			}
		}
		if len(exporters) == 0 {
			continue
		}
		rows, err := c.rows(ctx, fmt.Sprintf("SELECT hex(exporter) AS e, %s AS k, sum(bytes) AS b %s GROUP BY e, k ORDER BY e, b DESC, k LIMIT %d BY e",
			d.key, base, chTopItems))
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if len(r) < 2 {
				continue
			}
			if s := byHex[r[0]]; s != nil {
				if err := addDiscovered(s, d.kind, r[1]); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, s := range m.Scopes {
		sortItems(s)
	}
	return m, nil
}

// addDiscovered adds the item of kind for the number text ClickHouse
// returned.
func addDiscovered(s *Scope, kind, text string) error {
	v, err := strconv.ParseUint(text, 10, 32)
	if err != nil {
		return fmt.Errorf("clickhouse: discovery of %s: bad number %q", kind, truncate(text))
	}
	it := &Item{Kind: kind, ch: &chMatch{kind: kind, value: v}}
	n := strconv.FormatUint(v, 10)
	switch kind {
	case KindProtocol:
		it.Label = flowquery.ProtoName(uint8(v))
	case KindService:
		it.Label = n
		if name := flowquery.ServiceName(uint16(v)); name != n {
			it.Label = n + " " + name
		}
	case KindAS:
		it.Label = "AS" + n
	case KindInterface:
		it.Label = "ifIndex " + n
	default:
		it.Label = n
	}
	it.ID = kind + "_" + n
	addItem(s, it)
	return nil
}

func addItem(s *Scope, it *Item) {
	if _, dup := s.byID[it.ID]; dup {
		return
	}
	s.byID[it.ID] = it
	s.Items = append(s.Items, it)
}

// niceSteps are the steps picked when the request names none (or one
// that would give more rows than asked for).
var niceSteps = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 48 * time.Hour, 7 * 24 * time.Hour,
}

// chStep chooses the bucket width: the wanted step (at least one minute
// when none is wanted), widened so that the window has at most points
// buckets, rounded up to a nice step.
func chStep(span, want time.Duration, points int) time.Duration {
	s := want
	if s <= 0 {
		s = chMinAutoStep
	}
	if per := (span + time.Duration(points) - 1) / time.Duration(points); per > s {
		s = per
	}
	s = (s + time.Second - 1).Truncate(time.Second)
	if want > 0 && s == want {
		return s // an exact step asked for and possible
	}
	for _, n := range niceSteps {
		if n >= s {
			return n
		}
	}
	week := 7 * 24 * time.Hour
	return (s + week - 1) / week * week
}

// hasFields reports whether table t keeps every field in need.
func hasFields(t clickhouse.Table, need []string) bool {
	for _, n := range need {
		if !slices.Contains(t.Keys, n) {
			return false
		}
	}
	return true
}

// unitSQL is the aggregate of unit restricted to cond on table t.
func unitSQL(t clickhouse.Table, unit, cond string) string {
	switch unit {
	case "packets":
		return "sumIf(packets, " + cond + ")"
	case "flows":
		if t.Step == 0 {
			return "countIf(" + cond + ")"
		}
		return "sumIf(flows, " + cond + ")"
	}
	return "sumIf(bytes, " + cond + ")"
}

// fetch reads the items' out and in per-second rates (bytes for bits)
// from the table Pick chooses, in one query grouped by time bucket. The
// answer has the shape of xportItems': two columns per item, out then in,
// times the end of each bucket. Buckets with no rows are 0; buckets not
// yet complete at now, or older than the table keeps, are unknown (NaN).
func (c *chSource) fetch(ctx context.Context, scope *Scope, items []*Item, unit string, from, to time.Time, want time.Duration, points int, now time.Time) ([]int64, time.Duration, [][]float64, error) {
	need := []string{}
	if scope.exporter.IsValid() {
		need = append(need, "exporter")
	}
	for _, it := range items {
		need = append(need, it.ch.fields()...)
	}
	step := chStep(to.Sub(from), want, points)
	if want <= 0 {
		// No step asked for: no finer than the finest consolidated table
		// that has the fields, rather than scanning raw flows.
		for _, t := range c.cfg.Schema.Tables() {
			if t.Step > 0 && hasFields(t, need) {
				if t.Step > step {
					step = chStep(to.Sub(from), t.Step, points)
				}
				break
			}
		}
	}
	sec := int64(step / time.Second)
	start := from.Unix() / sec * sec
	end := (to.Unix() + sec - 1) / sec * sec
	n := int((end - start) / sec)
	t := c.cfg.Schema.Pick(need, time.Unix(start, 0), time.Unix(end, 0), step, now)
	var sel []string
	for _, it := range items {
		sel = append(sel, unitSQL(t, unit, it.ch.cond(true)))
		if it.ch.kind == KindInterface {
			sel = append(sel, unitSQL(t, unit, it.ch.cond(false)))
		}
	}
	sql := fmt.Sprintf("SELECT %s AS b, %s FROM %s WHERE %s%s GROUP BY b ORDER BY b",
		t.Bucket(step), strings.Join(sel, ", "), c.table(t), t.TimeRange(time.Unix(start, 0), time.Unix(end, 0)), exporterCond(scope))
	rows, err := c.rows(ctx, sql)
	if err != nil {
		return nil, 0, nil, err
	}
	times := make([]int64, n)
	cols := make([][]float64, 2*len(items))
	for i := range cols {
		cols[i] = make([]float64, n)
	}
	oldest := int64(math.MinInt64)
	if ttl := c.retention(t); ttl > 0 {
		oldest = now.Add(-ttl).Unix()
	}
	for r := range n {
		b := start + int64(r)*sec
		times[r] = b + sec
		if b+sec > now.Unix() || b < oldest {
			for i := range cols {
				cols[i][r] = math.NaN()
			}
		}
	}
	fsec := float64(sec)
	for _, row := range rows {
		b, err := strconv.ParseInt(row[0], 10, 64)
		if err != nil || len(row) != 1+len(sel) {
			return nil, 0, nil, fmt.Errorf("clickhouse: unexpected series row %q", truncate(strings.Join(row, " ")))
		}
		r := int((b - start) / sec)
		if r < 0 || r >= n || math.IsNaN(cols[0][r]) {
			continue
		}
		k := 1
		for i, it := range items {
			v, err := strconv.ParseUint(row[k], 10, 64)
			if err != nil {
				return nil, 0, nil, fmt.Errorf("clickhouse: bad number %q in a series row", truncate(row[k]))
			}
			k++
			cols[2*i][r] = float64(v) / fsec
			if it.ch.kind == KindInterface {
				v, err := strconv.ParseUint(row[k], 10, 64)
				if err != nil {
					return nil, 0, nil, fmt.Errorf("clickhouse: bad number %q in a series row", truncate(row[k]))
				}
				k++
				cols[2*i+1][r] = float64(v) / fsec
			}
		}
	}
	// Everything but an interface is the same traffic in and out: every
	// flow entered the exporter through one interface and left through
	// another.
	for i, it := range items {
		if it.ch.kind != KindInterface {
			copy(cols[2*i+1], cols[2*i])
		}
	}
	return times, step, cols, nil
}
