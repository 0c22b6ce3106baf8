package web

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/flowscan/flowscan/internal/rrd"
)

// PNG and SVG of the clickhouse module: RRDtool draws images from RRD
// files only, so the series (one ClickHouse query, as for the JSON) are
// written into a temporary RRD file, one GAUGE data source per item and
// direction, and the graph is drawn from it with the same arguments as
// for the report modules' files. The file is removed afterwards.

// chGraph renders q of the clickhouse module.
func (s *Server) chGraph(ctx context.Context, q *query, format string, width, height int) ([]byte, error) {
	gq, cleanup, err := s.chGraphQuery(ctx, q)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	return rrd.New("").Graph(s.graphArgs(gq, format, width, height)...)
}

// chGraphQuery writes q's series into a temporary RRD file and returns
// the same query over that file's data sources, and a function that
// removes the file.
func (s *Server) chGraphQuery(ctx context.Context, q *query) (*query, func(), error) {
	items := append([]*Item(nil), q.items...)
	total := q.scope.byID["total"]
	if total != nil && !containsItem(items, total) {
		items = append(items, total) // for "other" and shares
	}
	ctx, cancel := context.WithTimeout(ctx, chQueryTimeout)
	defer cancel()
	times, step, cols, err := s.ch.fetch(ctx, q.scope, items, q.unit, q.from, q.to, q.step, q.points, s.now())
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "flowscan-web-graph")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	path := filepath.Join(dir, "series.rrd")
	// Direct access: the file is ours and short-lived, never rrdcached's.
	client := rrd.New("")
	ds := make([]rrd.DS, 0, 2*len(items))
	for i := range items {
		for _, d := range []string{"o", "i"} {
			ds = append(ds, rrd.DS{Name: d + strconv.Itoa(i), Type: "GAUGE", Heartbeat: 2 * step, Min: math.NaN(), Max: math.NaN()})
		}
	}
	secs := int64(step / time.Second)
	start := time.Unix(q.from.Unix()-secs, 0)
	if len(times) > 0 {
		start = time.Unix(times[0]-secs-1, 0)
	}
	if err := client.Create(path, step, start, ds, []rrd.RRA{{CF: "AVERAGE", XFF: 0.5, Steps: 1, Rows: max(len(times), 2)}}); err != nil {
		cleanup()
		return nil, nil, err
	}
	row := make([]float64, len(ds))
	for r, t := range times {
		for c := range row {
			row[c] = cols[c][r]
		}
		if err := client.Update(path, time.Unix(t, 0), row...); err != nil {
			cleanup()
			return nil, nil, err
		}
	}
	// The same query over the temporary file's data sources.
	scope := &Scope{ID: q.scope.ID, Label: q.scope.Label, byID: map[string]*Item{}}
	gq := *q
	gq.scope, gq.items, gq.step = scope, nil, step
	byItem := map[*Item]*Item{}
	for i, it := range items {
		name := strconv.Itoa(i)
		f := &rrdFile{path: path, in: map[string]string{q.unit: "i" + name}, out: map[string]string{q.unit: "o" + name}}
		byItem[it] = &Item{ID: it.ID, Kind: it.Kind, Label: it.Label, files: []*rrdFile{f}}
		scope.byID[it.ID] = byItem[it]
	}
	for _, it := range q.items {
		gq.items = append(gq.items, byItem[it])
	}
	return &gq, cleanup, nil
}

func containsItem(items []*Item, it *Item) bool {
	for _, x := range items {
		if x == it {
			return true
		}
	}
	return false
}
