package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/flowscan/flowscan/internal/clickhouse"
	"github.com/flowscan/flowscan/internal/flow"
	flowquery "github.com/flowscan/flowscan/internal/query"
)

// The flow explorer: /api/v1/flows answers top-N aggregations and flow
// listings from the flow archive (internal/query) or from ClickHouse.
// Queries are bounded: the filter's length, the window (the API's usual
// 6 years), the rows asked for, the number of queries running at once and
// their duration.

// Limits of /api/v1/flows.
const (
	maxFilterLen      = 1000
	maxFlowTop        = 1000
	maxFlowList       = 10000
	defaultFlowTop    = 10
	defaultFlowRange  = time.Hour
	flowQuerySlots    = 2
	flowQueryWait     = 2 * time.Second
	flowQueryDeadline = 30 * time.Second
	// flowMaxGroups bounds the groups (distinct keys) a top-N query of
	// the flow archive holds per worker: about 50-100 MB each.
	flowMaxGroups = 500_000
)

// Sources of the flow explorer.
const (
	SourceFiles      = "files"
	SourceClickHouse = "clickhouse"
)

// flowParams are the parameters of /api/v1/flows.
var flowParams = []string{"filter", "range", "from", "to", "by", "order", "top", "list", "source"}

// flowLimiter bounds the flow queries: slots running at once, how long a
// request waits for a slot, and how long a query may run.
type flowLimiter struct {
	slots    chan struct{}
	wait     time.Duration
	deadline time.Duration
}

func newFlowLimiter() *flowLimiter {
	return &flowLimiter{slots: make(chan struct{}, flowQuerySlots), wait: flowQueryWait, deadline: flowQueryDeadline}
}

// acquire takes a slot, waiting at most l.wait; false when none freed up
// (or the client went away).
func (l *flowLimiter) acquire(ctx context.Context) bool {
	select {
	case l.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(l.wait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

func (l *flowLimiter) release() { <-l.slots }

// flowSources lists the sources the explorer can read, the default first.
func (s *Server) flowSources() []string {
	out := []string{}
	if s.cfg.FlowDir != "" {
		if st, err := os.Stat(s.cfg.FlowDir); err == nil && st.IsDir() {
			out = append(out, SourceFiles)
		}
	}
	if s.ch != nil {
		out = append(out, SourceClickHouse)
	}
	return out
}

// FlowCounters are the counters of a row, the rest or the total, with
// their shares of the total (percent).
type FlowCounters struct {
	Flows      uint64  `json:"flows"`
	Packets    uint64  `json:"packets"`
	Bytes      uint64  `json:"bytes"`
	FlowsPct   float64 `json:"flows_pct"`
	PacketsPct float64 `json:"packets_pct"`
	BytesPct   float64 `json:"bytes_pct"`
	// BPS and PPS are rates over the row's span (first start to last end).
	BPS uint64 `json:"bps"`
	PPS uint64 `json:"pps"`
	// First and Last are the earliest start and the latest end (Unix
	// milliseconds; seconds precision from aggregated ClickHouse tables).
	First int64 `json:"first"`
	Last  int64 `json:"last"`
}

func flowCounters(c *flowquery.Counters, total *flowquery.Counters) FlowCounters {
	return FlowCounters{Flows: c.Flows, Packets: c.Packets, Bytes: c.Bytes,
		FlowsPct:   round2(flowquery.Percent(c.Flows, total.Flows)),
		PacketsPct: round2(flowquery.Percent(c.Packets, total.Packets)),
		BytesPct:   round2(flowquery.Percent(c.Bytes, total.Bytes)),
		BPS:        c.BPS(), PPS: c.PPS(), First: c.First, Last: c.Last}
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

// FlowKeyValue is one key field of a row: its value (a JSON string for
// addresses and prefixes, a number otherwise), an optional name (protocol
// or service) and the filter term that selects it ("" when the filter
// language has no exact term for the field).
type FlowKeyValue struct {
	Field string
	Value any
	Name  string
	Term  string
}

// FlowRow is one group of the top N: its key fields by name, then the
// counters. It is marshalled flat: {"src_addr":"10.0.0.1", "flows":...,
// "names":{...}, "terms":{...}}.
type FlowRow struct {
	Key []FlowKeyValue
	FlowCounters
}

// MarshalJSON writes the key fields first, in key order, then the
// counters, the names and the filter terms.
func (r FlowRow) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	names, terms := map[string]string{}, map[string]string{}
	for _, kv := range r.Key {
		b = strconv.AppendQuote(b, kv.Field)
		b = append(b, ':')
		v, err := json.Marshal(kv.Value)
		if err != nil {
			return nil, err
		}
		b = append(append(b, v...), ',')
		if kv.Name != "" {
			names[kv.Field] = kv.Name
		}
		if kv.Term != "" {
			terms[kv.Field] = kv.Term
		}
	}
	c, err := json.Marshal(r.FlowCounters)
	if err != nil {
		return nil, err
	}
	b = append(b, c[1:len(c)-1]...)
	for _, m := range []struct {
		name string
		v    map[string]string
	}{{"names", names}, {"terms", terms}} {
		v, err := json.Marshal(m.v)
		if err != nil {
			return nil, err
		}
		b = append(b, `,"`+m.name+`":`...)
		b = append(b, v...)
	}
	return append(b, '}'), nil
}

// FlowsResponse is the answer of /api/v1/flows: Rows, Other, Total and
// Groups for a top N (by/order/top), Flows and Truncated for a listing
// (list).
type FlowsResponse struct {
	Source    string `json:"source"`
	Filter    string `json:"filter"`
	From      int64  `json:"from"`
	To        int64  `json:"to"`
	ElapsedMS int64  `json:"elapsed_ms"`

	By     []string      `json:"by,omitempty"`
	Order  string        `json:"order,omitempty"`
	Top    int           `json:"top,omitempty"`
	Groups int           `json:"groups"`
	Rows   []FlowRow     `json:"rows,omitempty"`
	Other  *FlowCounters `json:"other,omitempty"`
	Total  *FlowCounters `json:"total,omitempty"`

	List      int               `json:"list,omitempty"`
	Flows     []json.RawMessage `json:"flows,omitempty"`
	Truncated bool              `json:"truncated,omitempty"`

	// Skipped names the flow files, or blocks of them, that could not be
	// read (damaged, empty) and were left out of the answer.
	Skipped []string `json:"skipped,omitempty"`
}

// noteSkipped lists in resp the files and blocks q left out (the query's
// OnSkip has logged each).
func noteSkipped(q *flowquery.Query, resp *FlowsResponse) {
	for _, fe := range q.Skipped() {
		resp.Skipped = append(resp.Skipped, fe.Error())
	}
}

// filterError is a filter syntax error: 400 with the column.
type filterError struct {
	Error  string `json:"error"`
	Column int    `json:"column"`
	Filter string `json:"filter"`
}

// flowRequest is a validated /api/v1/flows request.
type flowRequest struct {
	source   string
	filter   *flowquery.Filter
	from, to time.Time
	keys     []flowquery.KeyField
	order    flowquery.Order
	top      int
	list     int
}

func (s *Server) parseFlowRequest(w http.ResponseWriter, r *http.Request) (*flowRequest, bool) {
	v, err := params(r, flowParams...)
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	fr := &flowRequest{}
	sources := s.flowSources()
	switch src := v.Get("source"); {
	case len(sources) == 0:
		s.fail(w, r, &notFound{"no flow source: the server has neither a flow archive (--dir) nor ClickHouse"})
		return nil, false
	case src == "":
		fr.source = sources[0]
	case src == SourceFiles || src == SourceClickHouse:
		if !strings.Contains(strings.Join(sources, ","), src) {
			s.fail(w, r, bad("source %q is not configured (have: %s)", src, strings.Join(sources, ", ")))
			return nil, false
		}
		fr.source = src
	default:
		s.fail(w, r, bad("source %q: want files or clickhouse", truncate(src)))
		return nil, false
	}
	expr := v.Get("filter")
	if len(expr) > maxFilterLen {
		s.fail(w, r, bad("filter longer than %d bytes", maxFilterLen))
		return nil, false
	}
	if fr.filter, err = flowquery.Compile(expr); err != nil {
		var se *flowquery.SyntaxError
		if errors.As(err, &se) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(filterError{Error: "filter column " + strconv.Itoa(se.Column) + ": " + se.Msg, Column: se.Column, Filter: expr})
			return nil, false
		}
		s.fail(w, r, bad("filter: %v", err))
		return nil, false
	}
	if fr.source == SourceClickHouse {
		if _, _, err := fr.filter.SQL(); err != nil {
			s.fail(w, r, bad("filter cannot be answered by ClickHouse: %v", err))
			return nil, false
		}
	}
	if fr.from, fr.to, err = s.timeWindow(v, defaultFlowRange); err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	if fr.list, err = parseInt("list", v.Get("list"), 0, 1, maxFlowList); err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	if fr.list > 0 {
		if v.Get("by") != "" || v.Get("order") != "" || v.Get("top") != "" {
			s.fail(w, r, bad("list lists flows: give either list or by/order/top"))
			return nil, false
		}
		return fr, true
	}
	by := v.Get("by")
	if by == "" {
		by = "src_addr"
	}
	if fr.keys, err = flowquery.ParseKeys(by); err != nil {
		s.fail(w, r, bad("by: %v", err))
		return nil, false
	}
	order := v.Get("order")
	if order == "" {
		order = "bytes"
	}
	if fr.order, err = flowquery.ParseOrder(order); err != nil {
		s.fail(w, r, bad("order: %v", err))
		return nil, false
	}
	if fr.top, err = parseInt("top", v.Get("top"), defaultFlowTop, 1, maxFlowTop); err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	return fr, true
}

// handleFlows answers /api/v1/flows.
func (s *Server) handleFlows(w http.ResponseWriter, r *http.Request) {
	fr, ok := s.parseFlowRequest(w, r)
	if !ok {
		return
	}
	if !s.flowLimit.acquire(r.Context()) {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusTooManyRequests, fmt.Sprintf("%d flow queries are running; try again in a few seconds", cap(s.flowLimit.slots)))
		return
	}
	defer s.flowLimit.release()
	ctx, cancel := context.WithTimeout(r.Context(), s.flowLimit.deadline)
	defer cancel()
	start := time.Now()
	resp := &FlowsResponse{Source: fr.source, Filter: fr.filter.String(), From: fr.from.Unix(), To: fr.to.Unix()}
	var err error
	if fr.list > 0 {
		err = s.listFlows(ctx, fr, resp)
	} else {
		err = s.topFlows(ctx, fr, resp)
	}
	if err != nil {
		switch {
		case r.Context().Err() != nil:
			return // the client went away
		case errors.Is(err, flowquery.ErrTooManyGroups):
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("more than %d distinct keys in this window: narrow the time window or the filter, or group by a coarser key (for example src_addr/24)", s.flowMaxGroups()))
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("the query ran longer than %v and was stopped: narrow the time window or the filter", s.flowLimit.deadline))
		case fr.source == SourceClickHouse:
			s.cfg.Logger.Warn("flow query on ClickHouse failed", "err", err)
			writeError(w, http.StatusBadGateway, "ClickHouse did not answer the query; see the server log")
		default:
			s.fail(w, r, err)
		}
		return
	}
	resp.ElapsedMS = time.Since(start).Milliseconds()
	writeJSON(w, resp)
}

// flowMaxGroups is the explorer's bound on groups per query worker.
func (s *Server) flowMaxGroups() int {
	if s.maxGroups > 0 {
		return s.maxGroups
	}
	return flowMaxGroups
}

// query returns the engine query of a request.
func (s *Server) flowQuery(fr *flowRequest) *flowquery.Query {
	return &flowquery.Query{Dirs: []string{s.cfg.FlowDir}, From: fr.from, To: fr.to, Filter: fr.filter, Workers: runtime.GOMAXPROCS(0),
		OnSkip: func(fe flowquery.FileError) {
			s.cfg.Logger.Warn("flow explorer: left out a file it cannot read", "err", fe.Error())
		}}
}

// onClickHouse runs fn with each configured server in turn until one
// answers (as the clickhouse module does); started reports whether fn
// already delivered results, after which a failure is final.
func (s *Server) onClickHouse(ctx context.Context, fn func(ch *flowquery.ClickHouse) (started bool, err error)) error {
	var err error
	for _, cl := range s.ch.cfg.Clients {
		var started bool
		started, err = fn(&flowquery.ClickHouse{Client: cl, Schema: s.ch.cfg.Schema, Now: s.now})
		if err == nil || started || !clickhouse.IsUncertain(err) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

func (s *Server) topFlows(ctx context.Context, fr *flowRequest, resp *FlowsResponse) error {
	spec := flowquery.AggregateSpec{Keys: fr.keys, Order: fr.order, Limit: fr.top, MaxGroups: s.flowMaxGroups()}
	q := s.flowQuery(fr)
	var res *flowquery.Result
	var err error
	if fr.source == SourceClickHouse {
		err = s.onClickHouse(ctx, func(ch *flowquery.ClickHouse) (bool, error) {
			res, err = q.AggregateClickHouse(ctx, ch, spec)
			return false, err
		})
	} else {
		res, err = q.Aggregate(ctx, spec)
		noteSkipped(q, resp)
	}
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, k := range fr.keys {
		resp.By = append(resp.By, keyLabel(k))
	}
	resp.Order, resp.Top, resp.Groups = fr.order.String(), fr.top, res.Groups
	resp.Rows = make([]FlowRow, 0, len(res.Rows))
	for i := range res.Rows {
		row := FlowRow{FlowCounters: flowCounters(&res.Rows[i].Counters, &res.Total)}
		for j, kv := range res.Values(&res.Rows[i]) {
			row.Key = append(row.Key, flowKeyValue(res.Keys[j], kv))
		}
		resp.Rows = append(resp.Rows, row)
	}
	other, total := flowCounters(&res.Other, &res.Total), flowCounters(&res.Total, &res.Total)
	resp.Other, resp.Total = &other, &total
	return nil
}

// keyLabel is a key field as ParseKeys reads it (src_addr/24).
func keyLabel(k flowquery.KeyField) string {
	switch {
	case k.Mask4 > 0 && k.Mask6 > 0:
		return fmt.Sprintf("%s/%d/%d", k.Name, k.Mask4, k.Mask6)
	case k.Mask4 > 0:
		return fmt.Sprintf("%s/%d", k.Name, k.Mask4)
	case k.Mask6 > 0:
		return fmt.Sprintf("%s/%d", k.Name, k.Mask6)
	}
	return k.Name
}

// filterWords are the filter primitives that select one value of a key
// field exactly (tcp_flags has none: "flags" tests for set bits).
var filterWords = map[string]string{
	"src_addr": "src host", "dst_addr": "dst host", "exporter": "exporter", "next_hop": "nexthop",
	"src_port": "src port", "dst_port": "dst port", "proto": "proto", "tos": "tos",
	"in_if": "in if", "out_if": "out if", "src_as": "src as", "dst_as": "dst as",
	"src_mask": "src mask", "dst_mask": "dst mask", "src_vlan": "src vlan", "dst_vlan": "dst vlan",
}

// flowKeyValue describes one key value with its name and filter term.
func flowKeyValue(k flowquery.KeyField, v flowquery.KeyValue) FlowKeyValue {
	out := FlowKeyValue{Field: k.Name}
	word := filterWords[k.Name]
	if !k.IsNumeric() {
		if !v.Addr.IsValid() {
			out.Value = ""
			return out
		}
		text := string(v.AppendText(nil, k, false))
		out.Value = text
		if word != "" {
			if v.Bits < v.Addr.BitLen() {
				// A prefix: "src host" becomes "src net"; exporter and
				// nexthop take prefixes as they are.
				word = strings.Replace(word, "host", "net", 1)
			}
			out.Term = word + " " + text
		}
		return out
	}
	out.Value = v.Num
	switch k.Name {
	case "proto":
		if n := flowquery.ProtoName(uint8(v.Num)); n != strconv.FormatUint(v.Num, 10) {
			out.Name = n
		}
	case "src_port", "dst_port":
		if n := flowquery.ServiceName(uint16(v.Num)); n != strconv.FormatUint(v.Num, 10) {
			out.Name = n
		}
	}
	if word != "" {
		out.Term = word + " " + strconv.FormatUint(v.Num, 10)
	}
	return out
}

// errEnough stops a listing once it has one flow more than asked for.
var errEnough = errors.New("enough flows")

func (s *Server) listFlows(ctx context.Context, fr *flowRequest, resp *FlowsResponse) error {
	resp.List = fr.list
	resp.Flows = make([]json.RawMessage, 0, min(fr.list, 1024))
	collect := func(batch []flow.Record) error {
		for i := range batch {
			if len(resp.Flows) == fr.list {
				resp.Truncated = true
				return errEnough
			}
			resp.Flows = append(resp.Flows, flow.AppendJSON(nil, &batch[i]))
		}
		return nil
	}
	q := s.flowQuery(fr)
	var err error
	if fr.source == SourceClickHouse {
		err = s.onClickHouse(ctx, func(ch *flowquery.ClickHouse) (bool, error) {
			err := q.FlowsClickHouse(ctx, ch, fr.list+1, collect)
			return len(resp.Flows) > 0, err
		})
	} else {
		err = q.Flows(ctx, collect)
		noteSkipped(q, resp)
	}
	if errors.Is(err, errEnough) {
		err = nil
	}
	if err != nil {
		return err
	}
	return ctx.Err()
}
