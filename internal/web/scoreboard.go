package web

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flowscan/flowscan/internal/report/cuflow"
)

// The scoreboard's rows are cuflow's own JSON types: the web reads what
// the module writes.
type (
	// Amounts are one direction of a host in a scoreboard.
	Amounts = cuflow.Amounts
	// HostRow is one line of a scoreboard table.
	HostRow = cuflow.HostRow
	// Table is one top-N table.
	Table = cuflow.Table
)

// ScoreboardPage is one file's scoreboard (cuflow's .json), with the
// page's identifier and its neighbours for navigation.
type ScoreboardPage struct {
	ID              string    `json:"id"`
	Kind            string    `json:"kind"`
	Title           string    `json:"title"`
	Start           time.Time `json:"start"`
	End             time.Time `json:"end"`
	DurationSeconds float64   `json:"duration_seconds"`
	TopN            int       `json:"top_n"`
	Samples         uint64    `json:"samples,omitempty"`
	TotalIn         Amounts   `json:"total_in"`
	TotalOut        Amounts   `json:"total_out"`
	Tables          []Table   `json:"tables"`
	Previous        string    `json:"previous,omitempty"`
	Next            string    `json:"next,omitempty"`
}

// pageName matches cuflow's page paths: YYYY-MM-DD/HH/HH:MM:SS.json.
var pageName = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}/\d{2}/\d{2}:\d{2}:\d{2}$`)

// maxPages bounds the pages listed (the newest ones are kept): about
// two years of 5-minute pages. A variable for tests.
var maxPages = 200000

// Bounds on the scoreboard directory: pages cached, list freshness, size.
const (
	maxCachedPages = 4096
	listTTL        = 10 * time.Second
	maxPageBytes   = 4 << 20
)

type pageRef struct {
	id    string
	start time.Time
}

type cachedPage struct {
	mod  time.Time
	size int64
	page *ScoreboardPage
}

// scoreboards reads cuflow's scoreboard pages and aggregate data file.
type scoreboards struct {
	dir       string
	aggregate string
	now       func() time.Time

	mu     sync.Mutex
	pages  []pageRef // sorted by start
	listed time.Time
	cache  map[string]cachedPage
}

// list returns the pages, oldest first (cached for listTTL).
func (b *scoreboards) list() []pageRef {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pages != nil && b.now().Sub(b.listed) < listTTL {
		return b.pages
	}
	// Walk the day and hour directories newest first, so that the bound
	// keeps the newest pages, not the oldest.
	var out []pageRef
	root := b.dir
	newestFirst := func(dir string) []fs.DirEntry {
		ents, _ := os.ReadDir(dir)
		slices.Reverse(ents) // ReadDir sorts by name: dates and times in order
		return ents
	}
walk:
	for _, day := range newestFirst(root) {
		if !day.IsDir() {
			continue
		}
		for _, hour := range newestFirst(filepath.Join(root, day.Name())) {
			if !hour.IsDir() {
				continue
			}
			for _, f := range newestFirst(filepath.Join(root, day.Name(), hour.Name())) {
				if !f.Type().IsRegular() || !strings.HasSuffix(f.Name(), ".json") {
					continue
				}
				id := day.Name() + "/" + hour.Name() + "/" + strings.TrimSuffix(f.Name(), ".json")
				if !pageName.MatchString(id) {
					continue
				}
				start, err := time.ParseInLocation("2006-01-02/15/15:04:05", id, time.Local)
				if err != nil {
					continue
				}
				out = append(out, pageRef{id: id, start: start})
				if len(out) >= maxPages {
					break walk
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b pageRef) int {
		if c := a.start.Compare(b.start); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	if out == nil {
		out = []pageRef{}
	}
	b.pages, b.listed = out, b.now()
	return out
}

// read returns a page by identifier (one of list's), cached by mtime.
func (b *scoreboards) read(id string) (*ScoreboardPage, error) {
	path := filepath.Join(b.dir, filepath.FromSlash(id)+".json")
	st, err := os.Lstat(path)
	if err != nil || !st.Mode().IsRegular() {
		return nil, &notFound{"scoreboard page gone"}
	}
	if st.Size() > maxPageBytes {
		return nil, fmt.Errorf("scoreboard page %s too large", id)
	}
	b.mu.Lock()
	c, ok := b.cache[id]
	b.mu.Unlock()
	if ok && c.mod.Equal(st.ModTime()) && c.size == st.Size() {
		return c.page, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p := &ScoreboardPage{}
	if err := json.Unmarshal(data, p); err != nil {
		return nil, fmt.Errorf("scoreboard page %s: %w", id, err)
	}
	p.ID, p.Kind = id, "current"
	b.mu.Lock()
	if b.cache == nil || len(b.cache) >= maxCachedPages {
		b.cache = map[string]cachedPage{}
	}
	b.cache[id] = cachedPage{mod: st.ModTime(), size: st.Size(), page: p}
	b.mu.Unlock()
	return p, nil
}

// pageByID returns the page with id, or the newest one when id is empty,
// with its neighbours filled in.
func (b *scoreboards) pageByID(id string) (*ScoreboardPage, error) {
	pages := b.list()
	if len(pages) == 0 {
		return nil, &notFound{"no scoreboard pages yet"}
	}
	i := len(pages) - 1
	if id != "" {
		if !pageName.MatchString(id) {
			return nil, bad("page %q: want YYYY-MM-DD/HH/HH:MM:SS", truncate(id))
		}
		i = slices.IndexFunc(pages, func(p pageRef) bool { return p.id == id })
		if i < 0 {
			return nil, &notFound{fmt.Sprintf("no scoreboard page %s", id)}
		}
	}
	p, err := b.read(pages[i].id)
	if err != nil {
		return nil, err
	}
	cp := *p
	cp.Previous, cp.Next = "", ""
	if i > 0 {
		cp.Previous = pages[i-1].id
	}
	if i+1 < len(pages) {
		cp.Next = pages[i+1].id
	}
	return &cp, nil
}

// aggHost is one host's running totals in cuflow's aggregate data file.
type aggHost struct {
	addr    string
	count   uint64
	v       [6]uint64 // in bytes, pkts, flows, out bytes, pkts, flows
	seconds float64
}

// readAggregate parses cuflow's aggregate data file and ranks it as
// cuflow's aggregate page does: average rates over the reports each host
// was in, top n per direction and metric.
func (b *scoreboards) readAggregate(n int) (*ScoreboardPage, error) {
	f, err := os.Open(b.aggregate)
	if errors.Is(err, os.ErrNotExist) {
		return nil, &notFound{"no aggregate score yet"}
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	page := &ScoreboardPage{ID: "aggregate", Kind: "aggregate", TopN: n, End: st.ModTime()}
	var hosts []aggHost
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch {
		case fields[0] == "samples" && len(fields) == 2:
			page.Samples, _ = strconv.ParseUint(fields[1], 10, 64)
			continue
		case fields[0] == "last" && len(fields) == 2:
			if v, err := strconv.ParseInt(fields[1], 10, 64); err == nil {
				page.Start = time.Unix(v, 0)
			}
			continue
		case len(fields) != 9:
			return nil, fmt.Errorf("aggregate data file: bad line %q", truncate(sc.Text()))
		}
		a, err := netip.ParseAddr(fields[0])
		if err != nil {
			return nil, fmt.Errorf("aggregate data file: bad address %q", truncate(fields[0]))
		}
		h := aggHost{addr: a.String()}
		var u [7]uint64
		for i := range u {
			if u[i], err = strconv.ParseUint(fields[1+i], 10, 64); err != nil {
				return nil, fmt.Errorf("aggregate data file: bad number in %q", truncate(sc.Text()))
			}
		}
		h.count = u[0]
		copy(h.v[:], u[1:])
		if h.seconds, err = strconv.ParseFloat(fields[8], 64); err != nil {
			return nil, fmt.Errorf("aggregate data file: bad seconds in %q", truncate(sc.Text()))
		}
		hosts = append(hosts, h)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	page.Title = fmt.Sprintf("Average rankings over the last %d top-N reports", page.Samples)
	var sum [6]uint64
	for _, h := range hosts {
		for i := range sum {
			sum[i] += h.v[i]
		}
	}
	amounts := func(h *aggHost, dir int) Amounts {
		pct := func(v, t uint64) float64 {
			if t == 0 {
				return 0
			}
			return 100 * float64(v) / float64(t)
		}
		secs := max(h.seconds, 1)
		b, p, fl := h.v[3*dir], h.v[3*dir+1], h.v[3*dir+2]
		return Amounts{Bytes: b, Packets: p, Flows: fl, BitsPerSec: 8 * float64(b) / secs, PacketsPerSec: float64(p) / secs,
			FlowsPerSec: float64(fl) / secs, BytesPercent: pct(b, sum[3*dir]), PacketsPercent: pct(p, sum[3*dir+1]), FlowsPercent: pct(fl, sum[3*dir+2])}
	}
	for dir, dn := range []string{"in", "out"} {
		for k, mn := range []string{"bytes", "packets", "flows"} {
			rate := func(h *aggHost) float64 { return float64(h.v[3*dir+k]) / max(h.seconds, 1) }
			idx := make([]int, len(hosts))
			for i := range idx {
				idx[i] = i
			}
			slices.SortStableFunc(idx, func(x, y int) int {
				if c := cmp.Compare(rate(&hosts[y]), rate(&hosts[x])); c != 0 {
					return c
				}
				return cmp.Compare(hosts[x].addr, hosts[y].addr)
			})
			t := Table{Direction: dn, Metric: mn, Hosts: []HostRow{}}
			for _, i := range idx {
				h := &hosts[i]
				if len(t.Hosts) == n || rate(h) == 0 {
					break
				}
				t.Hosts = append(t.Hosts, HostRow{Rank: len(t.Hosts) + 1, Address: h.addr, In: amounts(h, 0), Out: amounts(h, 1)})
			}
			page.Tables = append(page.Tables, t)
		}
	}
	return page, nil
}

func (s *Server) handleScoreboard(w http.ResponseWriter, r *http.Request) {
	v, err := params(r, "kind", "page", "top", "range", "from", "to", "router", "direction")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if v.Get("kind") != "jkflow" && v.Has("direction") {
		s.fail(w, r, bad("direction applies to kind=jkflow only"))
		return
	}
	if v.Get("kind") != "clickhouse" {
		for _, p := range []string{"range", "from", "to", "router"} {
			if v.Has(p) {
				s.fail(w, r, bad("%s applies to kind=clickhouse only", p))
				return
			}
		}
	}
	switch v.Get("kind") {
	case "clickhouse":
		if v.Get("page") != "" {
			s.fail(w, r, bad("page applies to kind=current only"))
			return
		}
		n, err := parseInt("top", v.Get("top"), 10, 1, 100)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p, err := s.chTalkers(r.Context(), v, n)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, p)
	case "", "current":
		if v.Get("top") != "" {
			s.fail(w, r, bad("top applies to kind=aggregate only"))
			return
		}
		if s.boards.dir == "" {
			s.fail(w, r, &notFound{"no scoreboard directory configured"})
			return
		}
		p, err := s.boards.pageByID(v.Get("page"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, p)
	case "aggregate":
		if v.Get("page") != "" {
			s.fail(w, r, bad("page applies to kind=current only"))
			return
		}
		n, err := parseInt("top", v.Get("top"), 10, 1, 1000)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if s.boards.aggregate == "" {
			s.fail(w, r, &notFound{"no aggregate score configured"})
			return
		}
		p, err := s.boards.readAggregate(n)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, p)
	case "jkflow":
		s.jkScoreboard(w, r, v)
	default:
		s.fail(w, r, bad("kind %q: want current, aggregate, clickhouse or jkflow", truncate(v.Get("kind"))))
	}
}

// PageInfo is one entry of /api/v1/scoreboards.
type PageInfo struct {
	ID    string    `json:"id"`
	Start time.Time `json:"start"`
}

func (s *Server) handleScoreboardList(w http.ResponseWriter, r *http.Request) {
	v, err := params(r, "range", "from", "to", "limit")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	from, to, err := s.timeWindow(v, 24*time.Hour)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	limit, err := parseInt("limit", v.Get("limit"), 500, 1, 5000)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if s.boards.dir == "" {
		s.fail(w, r, &notFound{"no scoreboard directory configured"})
		return
	}
	out := []PageInfo{}
	pages := s.boards.list()
	for i := len(pages) - 1; i >= 0 && len(out) < limit; i-- {
		p := pages[i]
		if !p.start.Before(from) && p.start.Before(to) {
			out = append(out, PageInfo{ID: p.id, Start: p.start})
		}
	}
	writeJSON(w, out)
}

// HostPoint is one scoreboard page's figures for a host.
type HostPoint struct {
	Page  string         `json:"page"`
	Start time.Time      `json:"start"`
	End   time.Time      `json:"end"`
	In    Amounts        `json:"in"`
	Out   Amounts        `json:"out"`
	Ranks map[string]int `json:"ranks"`
}

// HostResponse is the answer of /api/v1/host: what the scoreboards say
// about one host.
type HostResponse struct {
	// Source is "scoreboards" (cuflow's pages) or "clickhouse" (one
	// point per time bucket with traffic of the host).
	Source  string      `json:"source"`
	Address string      `json:"address"`
	Name    string      `json:"name,omitempty"`
	From    int64       `json:"from"`
	To      int64       `json:"to"`
	Pages   int         `json:"pages_searched"`
	Points  []HostPoint `json:"points"`
	// Aggregate is the host's row in the aggregate score, when listed.
	Aggregate *HostRow `json:"aggregate,omitempty"`
}

// maxHostPages bounds the pages one host request reads.
const maxHostPages = 3000

func (s *Server) handleHost(w http.ResponseWriter, r *http.Request) {
	v, err := params(r, "addr", "range", "from", "to", "source", "router")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	addr, err := netip.ParseAddr(v.Get("addr"))
	if err != nil || addr.Zone() != "" {
		s.fail(w, r, bad("addr %q: want an IPv4 or IPv6 address", truncate(v.Get("addr"))))
		return
	}
	addr = addr.Unmap()
	from, to, err := s.timeWindow(v, 24*time.Hour)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	switch v.Get("source") {
	case "", "scoreboards":
		if v.Has("router") {
			s.fail(w, r, bad("router applies to source=clickhouse only"))
			return
		}
	case "clickhouse":
		resp, err := s.chHost(r.Context(), v.Get("router"), addr, from, to)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, resp)
		return
	default:
		s.fail(w, r, bad("source %q: want scoreboards or clickhouse", truncate(v.Get("source"))))
		return
	}
	if s.boards.dir == "" {
		s.fail(w, r, &notFound{"no scoreboard directory configured"})
		return
	}
	key := addr.String()
	resp := HostResponse{Source: "scoreboards", Address: key, From: from.Unix(), To: to.Unix(), Points: []HostPoint{}}
	pages := s.boards.list()
	for i := len(pages) - 1; i >= 0 && resp.Pages < maxHostPages; i-- {
		ref := pages[i]
		if ref.start.Before(from) {
			break
		}
		if !ref.start.Before(to) {
			continue
		}
		resp.Pages++
		p, err := s.boards.read(ref.id)
		if err != nil {
			continue // replaced or removed meanwhile
		}
		var pt *HostPoint
		for _, t := range p.Tables {
			for _, h := range t.Hosts {
				if h.Address != key {
					continue
				}
				if pt == nil {
					pt = &HostPoint{Page: ref.id, Start: p.Start, End: p.End, In: h.In, Out: h.Out, Ranks: map[string]int{}}
					if h.Name != "" {
						resp.Name = h.Name
					}
				}
				pt.Ranks[t.Metric+" "+t.Direction] = h.Rank
			}
		}
		if pt != nil {
			resp.Points = append(resp.Points, *pt)
		}
	}
	slices.Reverse(resp.Points)
	if s.boards.aggregate != "" {
		if agg, err := s.boards.readAggregate(1 << 20); err == nil {
			for _, t := range agg.Tables[:1] {
				for _, h := range t.Hosts {
					if h.Address == key {
						row := h
						resp.Aggregate = &row
					}
				}
			}
			if resp.Aggregate == nil {
				for _, t := range agg.Tables {
					for _, h := range t.Hosts {
						if h.Address == key && resp.Aggregate == nil {
							row := h
							resp.Aggregate = &row
						}
					}
				}
			}
		}
	}
	writeJSON(w, resp)
}
