package web

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowscan/flowscan/internal/clickhouse"
)

// Top talkers from ClickHouse: for a window (and optionally one
// exporter), the top N source addresses (direction "out": what a host
// sent) and destination addresses (direction "in": what it received) by
// bytes, packets and flows, as a ScoreboardPage of kind "clickhouse".

// chTopMetrics are the ranked metrics, in the scoreboard's order.
var chTopMetrics = []string{"bytes", "packets", "flows"}

// chTalkers answers kind=clickhouse of /api/v1/scoreboard.
func (s *Server) chTalkers(ctx context.Context, v url.Values, n int) (*ScoreboardPage, error) {
	if s.ch == nil {
		return nil, &notFound{"no ClickHouse configured"}
	}
	from, to, err := s.timeWindow(v, time.Hour)
	if err != nil {
		return nil, err
	}
	scope, err := s.chScope(v.Get("router"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, chQueryTimeout)
	defer cancel()
	return s.ch.talkers(ctx, scope, from, to, n, s.now())
}

// chScope finds a scope of the clickhouse module by id ("" is all).
func (s *Server) chScope(id string) (*Scope, error) {
	if id == "" {
		id = "all"
	}
	m := s.currentCatalog(false).module(ClickHouseModule)
	if m == nil {
		if m = s.currentCatalog(true).module(ClickHouseModule); m == nil {
			return nil, &notFound{"the clickhouse module is not available (ClickHouse did not answer)"}
		}
	}
	scope := m.byID[id]
	if scope == nil {
		return nil, &notFound{fmt.Sprintf("router %q not found in module %s", truncate(id), ClickHouseModule)}
	}
	return scope, nil
}

// talkers ranks addresses in [from, to) in two queries: the candidates
// (top n of each direction and metric), then their amounts in both
// directions and the window's totals.
func (c *chSource) talkers(ctx context.Context, scope *Scope, from, to time.Time, n int, now time.Time) (*ScoreboardPage, error) {
	need := []string{"src_addr", "dst_addr"}
	if scope.exporter.IsValid() {
		need = append(need, "exporter")
	}
	t := c.cfg.Schema.Pick(need, from, to, 0, now)
	where := "WHERE " + t.TimeRange(from, to) + exporterCond(scope)
	flows := t.FlowsExpr()
	var parts []string
	for d, col := range []string{"src_addr", "dst_addr"} {
		for k, metric := range []string{"sum(bytes)", "sum(packets)", flows} {
			parts = append(parts, fmt.Sprintf("SELECT * FROM (SELECT %d AS t, hex(%s) AS a, %s AS v FROM %s %s GROUP BY %s ORDER BY v DESC, a LIMIT %d)",
				3*d+k, col, metric, c.table(t), where, col, n))
		}
	}
	rows, err := c.rows(ctx, strings.Join(parts, " UNION ALL "))
	if err != nil {
		return nil, err
	}
	var cands []string
	for _, r := range rows {
		if len(r) != 3 {
			return nil, fmt.Errorf("clickhouse: unexpected top-N row %q", truncate(strings.Join(r, " ")))
		}
		a, err := clickhouse.ParseAddrHex(r[1])
		if err != nil {
			return nil, err
		}
		lit := clickhouse.AddrLiteral(a)
		if !slices.Contains(cands, lit) {
			cands = append(cands, lit)
		}
	}
	page := &ScoreboardPage{ID: "clickhouse", Kind: "clickhouse", Start: from, End: to,
		DurationSeconds: to.Sub(from).Seconds(), TopN: n}
	page.Title = fmt.Sprintf("Top %d talkers of %s from ClickHouse (%s)", n, scope.Label, t.Name)
	// Amounts of the candidates as source (d 0) and destination (d 1),
	// and the window's totals (d 2).
	totals := fmt.Sprintf("SELECT 2 AS d, '' AS a, sum(bytes) AS b, sum(packets) AS p, %s AS f FROM %s %s", flows, c.table(t), where)
	sql := totals
	if len(cands) > 0 {
		in := strings.Join(cands, ", ")
		sql = fmt.Sprintf("SELECT 0 AS d, hex(src_addr) AS a, sum(bytes) AS b, sum(packets) AS p, %[1]s AS f FROM %[2]s %[3]s AND src_addr IN (%[4]s) GROUP BY src_addr "+
			"UNION ALL SELECT 1 AS d, hex(dst_addr) AS a, sum(bytes) AS b, sum(packets) AS p, %[1]s AS f FROM %[2]s %[3]s AND dst_addr IN (%[4]s) GROUP BY dst_addr "+
			"UNION ALL %[5]s", flows, c.table(t), where, in, totals)
	}
	rows, err = c.rows(ctx, sql)
	if err != nil {
		return nil, err
	}
	type amounts struct{ out, in [3]uint64 }
	hosts := map[string]*amounts{}
	var total [3]uint64
	for _, r := range rows {
		if len(r) != 5 {
			return nil, fmt.Errorf("clickhouse: unexpected top-N row %q", truncate(strings.Join(r, " ")))
		}
		var v [3]uint64
		for i := range v {
			if v[i], err = strconv.ParseUint(r[2+i], 10, 64); err != nil {
				return nil, fmt.Errorf("clickhouse: bad number %q in a top-N row", truncate(r[2+i]))
			}
		}
		if r[0] == "2" {
			total = v
			continue
		}
		a, err := clickhouse.ParseAddrHex(r[1])
		if err != nil {
			return nil, err
		}
		key := addrText(a)
		h := hosts[key]
		if h == nil {
			h = &amounts{}
			hosts[key] = h
		}
		if r[0] == "0" {
			h.out = v
		} else {
			h.in = v
		}
	}
	secs := max(to.Sub(from).Seconds(), 1)
	toAmounts := func(v [3]uint64) Amounts {
		pct := func(x, t uint64) float64 {
			if t == 0 {
				return 0
			}
			return 100 * float64(x) / float64(t)
		}
		return Amounts{Bytes: v[0], Packets: v[1], Flows: v[2],
			BitsPerSec: 8 * float64(v[0]) / secs, PacketsPerSec: float64(v[1]) / secs, FlowsPerSec: float64(v[2]) / secs,
			BytesPercent: pct(v[0], total[0]), PacketsPercent: pct(v[1], total[1]), FlowsPercent: pct(v[2], total[2])}
	}
	// Every flow is sent by one address and received by one.
	page.TotalIn, page.TotalOut = toAmounts(total), toAmounts(total)
	keys := make([]string, 0, len(hosts))
	for k := range hosts {
		keys = append(keys, k)
	}
	for _, dir := range []string{"in", "out"} {
		for k, metric := range chTopMetrics {
			val := func(key string) uint64 {
				if dir == "in" {
					return hosts[key].in[k]
				}
				return hosts[key].out[k]
			}
			ranked := slices.Clone(keys)
			slices.SortStableFunc(ranked, func(x, y string) int {
				if a, b := val(x), val(y); a != b {
					if a > b {
						return -1
					}
					return 1
				}
				return strings.Compare(x, y)
			})
			tb := Table{Direction: dir, Metric: metric, Hosts: []HostRow{}}
			for _, key := range ranked {
				if len(tb.Hosts) == n || val(key) == 0 {
					break
				}
				h := hosts[key]
				tb.Hosts = append(tb.Hosts, HostRow{Rank: len(tb.Hosts) + 1, Address: key, In: toAmounts(h.in), Out: toAmounts(h.out)})
			}
			page.Tables = append(page.Tables, tb)
		}
	}
	return page, nil
}

// addrText is an address as the scoreboards show it ("unknown" for
// flows without one).
func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	return a.String()
}

// chHostPoints bounds the buckets of a host's ClickHouse history.
const chHostPoints = 300

// chHost answers /api/v1/host?source=clickhouse: the host's traffic as
// source (out) and destination (in) per time bucket, one point per bucket
// with traffic, in one query.
func (s *Server) chHost(ctx context.Context, router string, addr netip.Addr, from, to time.Time) (*HostResponse, error) {
	if s.ch == nil {
		return nil, &notFound{"no ClickHouse configured"}
	}
	scope, err := s.chScope(router)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, chQueryTimeout)
	defer cancel()
	c := s.ch
	step := chStep(to.Sub(from), 0, chHostPoints)
	sec := int64(step / time.Second)
	start := time.Unix(from.Unix()/sec*sec, 0)
	end := time.Unix((to.Unix()+sec-1)/sec*sec, 0)
	need := []string{"src_addr", "dst_addr"}
	if scope.exporter.IsValid() {
		need = append(need, "exporter")
	}
	t := c.cfg.Schema.Pick(need, start, end, step, s.now())
	lit := clickhouse.AddrLiteral(addr)
	var sel []string
	for _, col := range []string{"src_addr", "dst_addr"} {
		cond := col + " = " + lit
		sel = append(sel, unitSQL(t, "bits", cond), unitSQL(t, "packets", cond), unitSQL(t, "flows", cond))
	}
	rows, err := c.rows(ctx, fmt.Sprintf("SELECT %s AS b, %s FROM %s WHERE %s%s AND (src_addr = %s OR dst_addr = %s) GROUP BY b ORDER BY b",
		t.Bucket(step), strings.Join(sel, ", "), c.table(t), t.TimeRange(start, end), exporterCond(scope), lit, lit))
	if err != nil {
		return nil, err
	}
	resp := &HostResponse{Source: "clickhouse", Address: addrText(addr), From: from.Unix(), To: to.Unix(), Points: []HostPoint{}}
	fsec := float64(sec)
	for _, r := range rows {
		if len(r) != 7 {
			return nil, fmt.Errorf("clickhouse: unexpected host row %q", truncate(strings.Join(r, " ")))
		}
		b, err := strconv.ParseInt(r[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("clickhouse: bad time %q in a host row", truncate(r[0]))
		}
		var v [6]uint64
		for i := range v {
			if v[i], err = strconv.ParseUint(r[1+i], 10, 64); err != nil {
				return nil, fmt.Errorf("clickhouse: bad number %q in a host row", truncate(r[1+i]))
			}
		}
		amounts := func(x []uint64) Amounts {
			return Amounts{Bytes: x[0], Packets: x[1], Flows: x[2],
				BitsPerSec: 8 * float64(x[0]) / fsec, PacketsPerSec: float64(x[1]) / fsec, FlowsPerSec: float64(x[2]) / fsec}
		}
		resp.Points = append(resp.Points, HostPoint{Start: time.Unix(b, 0).UTC(), End: time.Unix(b+sec, 0).UTC(),
			Out: amounts(v[0:3]), In: amounts(v[3:6]), Ranks: map[string]int{}})
	}
	resp.Pages = int((end.Unix() - start.Unix()) / sec) // buckets searched
	return resp, nil
}
