package web

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowscan/flowscan/internal/rrd"
)

// Units the graphs show, and the factor from the stored per-second value.
var unitFactor = map[string]float64{"bits": 8, "packets": 1, "flows": 1}

// Values is a series of numbers; NaN (unknown) encodes as JSON null.
type Values []float64

// MarshalJSON writes the values compactly, with null for unknown.
func (v Values) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 2+len(v)*8)
	b = append(b, '[')
	for i, x := range v {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			b = append(b, "null"...)
			continue
		}
		b = strconv.AppendFloat(b, x, 'g', 6, 64)
	}
	return append(b, ']'), nil
}

// Stats summarise one direction of a series over the period, in the
// unit per second (total: in the unit, e.g. bits).
type Stats struct {
	Avg     float64 `json:"avg"`
	Max     float64 `json:"max"`
	P95     float64 `json:"p95"`
	Total   float64 `json:"total"`
	Percent float64 `json:"percent"`
}

// SeriesData is one plotted item: out above the axis (positive), in below
// it (negative).
type SeriesData struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	Label string `json:"label"`
	// Other is true for the computed remainder of a kind.
	Other    bool   `json:"other,omitempty"`
	Out      Values `json:"out"`
	In       Values `json:"in"`
	OutStats Stats  `json:"out_stats"`
	InStats  Stats  `json:"in_stats"`
}

// Previous is the comparison period's total (or the sum of the selected
// items when the scope has no total), aligned to the current times.
type Previous struct {
	From int64  `json:"from"`
	To   int64  `json:"to"`
	Out  Values `json:"out"`
	In   Values `json:"in"`
}

// SeriesResponse is the answer of /api/v1/series.
type SeriesResponse struct {
	Module string       `json:"module"`
	Router string       `json:"router"`
	Unit   string       `json:"unit"`
	From   int64        `json:"from"`
	To     int64        `json:"to"`
	Step   int64        `json:"step"`
	Times  []int64      `json:"times"`
	Series []SeriesData `json:"series"`
	// PercentOf says what the percentages are shares of: "total" (the
	// scope's total.rrd) or "selection".
	PercentOf string    `json:"percent_of"`
	Previous  *Previous `json:"previous,omitempty"`
}

// query is a validated series or graph request.
type query struct {
	ctx      context.Context
	module   *Module
	scope    *Scope
	items    []*Item
	unit     string
	from, to time.Time
	step     time.Duration
	points   int
	compare  bool
	other    bool
}

// escapeDEF escapes a path for a DEF argument (':' separates fields).
func escapeDEF(path string) string {
	return strings.ReplaceAll(path, ":", `\:`)
}

// fetchItems reads the items' out and in values from the module's
// backend: RRD files through xport, or ClickHouse.
func (s *Server) fetchItems(q *query, items []*Item, from, to time.Time, step time.Duration) (times []int64, stepOut time.Duration, cols [][]float64, err error) {
	if q.module.Backend == BackendClickHouse {
		if s.ch == nil {
			return nil, 0, nil, errors.New("clickhouse module without a ClickHouse source")
		}
		ctx := q.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		ctx, cancel := context.WithTimeout(ctx, chQueryTimeout)
		defer cancel()
		return s.ch.fetch(ctx, q.scope, items, q.unit, from, to, step, q.points, s.now())
	}
	return s.xportItems(items, q.unit, from, to, step, q.points)
}

// xportItems exports, for each item, the out and in values (stored
// per-second rates summed over the item's files) between from and to.
// The result has 2 columns per item: out then in; a file without out
// gives zeros for out.
func (s *Server) xportItems(items []*Item, unit string, from, to time.Time, step time.Duration, points int) (times []int64, stepOut time.Duration, cols [][]float64, err error) {
	args := []string{"--start", strconv.FormatInt(from.Unix(), 10), "--end", strconv.FormatInt(to.Unix(), 10),
		"--maxrows", strconv.Itoa(points)}
	if step > 0 {
		args = append(args, "--step", strconv.FormatInt(int64(step/time.Second), 10))
	}
	v := 0
	def := func(path, ds string) string {
		name := "d" + strconv.Itoa(v)
		v++
		args = append(args, "DEF:"+name+"="+escapeDEF(path)+":"+ds+":AVERAGE")
		return name
	}
	for i, it := range items {
		var outs, ins []string
		for _, f := range it.files {
			ins = append(ins, def(f.path, f.in[unit]))
			if f.out != nil {
				outs = append(outs, def(f.path, f.out[unit]))
			}
		}
		outExpr := "UNKN"
		if len(outs) > 0 {
			outExpr = sumRPN(outs)
		} else {
			outExpr = ins[0] + ",0,*"
		}
		args = append(args, fmt.Sprintf("CDEF:o%d=%s", i, outExpr), fmt.Sprintf("CDEF:i%d=%s", i, sumRPN(ins)),
			fmt.Sprintf("XPORT:o%d", i), fmt.Sprintf("XPORT:i%d", i))
	}
	res, err := s.cfg.RRD.Xport(args...)
	if err != nil {
		return nil, 0, nil, err
	}
	n := len(res.Rows)
	cols = make([][]float64, len(items)*2)
	for c := range cols {
		cols[c] = make([]float64, n)
	}
	times = make([]int64, n)
	for r, row := range res.Rows {
		times[r] = xportTime(res, r)
		for c := range cols {
			if c < len(row) {
				cols[c][r] = row[c]
			} else {
				cols[c][r] = math.NaN()
			}
		}
	}
	return times, res.Step, cols, nil
}

// xportTime is the end of the step of xport row r (rrdtool's convention,
// as for fetch: a row covers the step ending at its time). TestSeriesValues
// pins it.
func xportTime(res *rrd.Series, r int) int64 {
	return res.Time(r).Unix()
}

// sumRPN adds vnames, an unknown value counting as zero unless all are.
func sumRPN(names []string) string {
	if len(names) == 1 {
		return names[0]
	}
	var sb strings.Builder
	sb.WriteString(names[0])
	for _, n := range names[1:] {
		sb.WriteString("," + n + ",ADDNAN")
	}
	return sb.String()
}

// series answers a validated query.
func (s *Server) series(q *query) (*SeriesResponse, error) {
	items := slices.Clone(q.items)
	total := q.scope.byID["total"]
	totalIdx := slices.Index(items, total)
	if total != nil && totalIdx < 0 {
		items = append(items, total) // for percentages and "other"
	}
	times, step, cols, err := s.fetchItems(q, items, q.from, q.to, q.step)
	if err != nil {
		return nil, err
	}
	factor := unitFactor[q.unit]
	secs := step.Seconds()
	resp := &SeriesResponse{Module: q.module.Name, Router: q.scope.ID, Unit: q.unit,
		From: q.from.Unix(), To: q.to.Unix(), Step: int64(secs), Times: times, PercentOf: "selection"}
	var totOut, totIn []float64
	if total != nil {
		ti := slices.Index(items, total)
		totOut, totIn = cols[2*ti], cols[2*ti+1]
		resp.PercentOf = "total"
	}
	scale := func(c []float64, f float64) {
		for i := range c {
			c[i] *= f
		}
	}
	for c := range cols {
		scale(cols[c], factor)
	}
	for _, it := range q.items {
		i := slices.Index(items, it)
		resp.Series = append(resp.Series, SeriesData{ID: it.ID, Kind: it.Kind, Label: it.Label, Out: cols[2*i], In: cols[2*i+1]})
	}
	if q.other && total != nil {
		for _, kind := range kindOrder {
			if !otherKinds[kind] {
				continue
			}
			var members []int
			for i, it := range q.items {
				if it.Kind == kind {
					members = append(members, i)
				}
			}
			if len(members) == 0 {
				continue
			}
			out, in := remainder(totOut, members, resp.Series, true), remainder(totIn, members, resp.Series, false)
			resp.Series = append(resp.Series, SeriesData{ID: "other_" + kind, Kind: kind, Label: "other " + kindPlural(kind), Other: true, Out: out, In: in})
		}
	}
	// Percentages are of the total, or of the selection's sum.
	if totOut == nil {
		totOut, totIn = make([]float64, len(times)), make([]float64, len(times))
		for _, sd := range resp.Series {
			if sd.Other {
				continue
			}
			for t := range times {
				totOut[t] = addNaN(totOut[t], sd.Out[t])
				totIn[t] = addNaN(totIn[t], sd.In[t])
			}
		}
	}
	totOutAvg, totInAvg := stats(totOut, secs, 0).Avg, stats(totIn, secs, 0).Avg
	for i := range resp.Series {
		sd := &resp.Series[i]
		sd.OutStats = stats(sd.Out, secs, totOutAvg)
		sd.InStats = stats(sd.In, secs, totInAvg)
		neg := make(Values, len(sd.In))
		for t, v := range sd.In {
			neg[t] = -v
		}
		sd.In = neg
	}
	if q.compare {
		span := q.to.Sub(q.from)
		prevItems := []*Item{total}
		if total == nil {
			prevItems = q.items
		}
		_, _, pc, err := s.fetchItems(q, prevItems, q.from.Add(-span), q.to.Add(-span), step)
		if err != nil {
			return nil, err
		}
		p := &Previous{From: q.from.Add(-span).Unix(), To: q.to.Add(-span).Unix(), Out: make(Values, len(times)), In: make(Values, len(times))}
		for t := range times {
			var o, in float64 = math.NaN(), math.NaN()
			for c := 0; c+1 < len(pc); c += 2 {
				if t < len(pc[c]) {
					o, in = addNaN(o, pc[c][t]*factor), addNaN(in, pc[c+1][t]*factor)
				}
			}
			p.Out[t], p.In[t] = o, -in
		}
		resp.Previous = p
	}
	return resp, nil
}

// remainder returns total minus the members' values, at least zero.
func remainder(total []float64, members []int, series []SeriesData, out bool) Values {
	r := make(Values, len(total))
	for t, v := range total {
		if math.IsNaN(v) {
			r[t] = math.NaN()
			continue
		}
		for _, m := range members {
			x := series[m].In[t]
			if out {
				x = series[m].Out[t]
			}
			if !math.IsNaN(x) {
				v -= x
			}
		}
		r[t] = max(v, 0)
	}
	return r
}

func addNaN(a, b float64) float64 {
	switch {
	case math.IsNaN(a):
		return b
	case math.IsNaN(b):
		return a
	}
	return a + b
}

func kindPlural(kind string) string {
	switch kind {
	case KindAS:
		return "AS"
	case KindTOS:
		return "TOS"
	case KindTraffic:
		return "traffic"
	}
	return kind + "s"
}

// stats computes avg, max, 95th percentile (nearest rank over the known
// values), total over the period (value × step) and the average's share
// of whole (percent; 0 when whole is 0).
func stats(v []float64, step float64, whole float64) Stats {
	known := make([]float64, 0, len(v))
	var sum float64
	for _, x := range v {
		if !math.IsNaN(x) {
			known = append(known, x)
			sum += x
		}
	}
	if len(known) == 0 {
		return Stats{}
	}
	slices.Sort(known)
	rank := int(math.Ceil(0.95*float64(len(known)))) - 1
	st := Stats{Avg: sum / float64(len(known)), Max: known[len(known)-1], P95: known[max(rank, 0)], Total: sum * step}
	if whole > 0 {
		st.Percent = 100 * st.Avg / whole
	}
	return st
}
