package cuflow

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flowscan/flowscan/internal/fsutil"
	"github.com/flowscan/flowscan/internal/report"
)

// Resolver looks up the names of an address; *net.Resolver is one.
type Resolver interface {
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// SetResolver replaces the resolver used for the scoreboards' reverse DNS
// (only used when reverse_dns is on). Tests use it to avoid real DNS.
func (m *Module) SetResolver(r Resolver) {
	if m.board != nil {
		m.board.resolver = r
	}
}

// Lifetimes of reverse DNS cache entries.
const (
	dnsCacheHit  = time.Hour
	dnsCacheMiss = 10 * time.Minute
	dnsParallel  = 8
)

type dnsEntry struct {
	name    string
	expires time.Time
}

// hostEntry accumulates one inside host's traffic in a file.
type hostEntry struct {
	addr netip.Addr
	c    counter
}

// scoreboard accumulates per-host counts and writes the tables.
type scoreboard struct {
	m        *Module
	sb       *Scoreboard
	agg      *AggregateScore
	table    hostTable
	hosts    []hostEntry // the table's entries, in report
	resolver Resolver
	dns      map[netip.Addr]dnsEntry
	now      func() time.Time
}

func newScoreboard(m *Module) *scoreboard {
	b := &scoreboard{m: m, sb: m.cfg.Scoreboard, agg: m.cfg.AggregateScore,
		resolver: net.DefaultResolver,
		dns:      map[netip.Addr]dnsEntry{}, now: time.Now}
	return b
}

func (b *scoreboard) reset() {
	b.table.reset()
	b.hosts = nil
}

func (b *scoreboard) add(host netip.Addr, dir int, bytes, pkts, flows uint64) {
	b.table.counter(host).add(dir, bytes, pkts, flows)
}

// Amounts are one direction's counts of a host, rates per second and
// shares of the total.
type Amounts struct {
	Bytes          uint64  `json:"bytes"`
	Packets        uint64  `json:"packets"`
	Flows          uint64  `json:"flows"`
	BitsPerSec     float64 `json:"bits_per_second"`
	PacketsPerSec  float64 `json:"packets_per_second"`
	FlowsPerSec    float64 `json:"flows_per_second"`
	BytesPercent   float64 `json:"bytes_percent"`
	PacketsPercent float64 `json:"packets_percent"`
	FlowsPercent   float64 `json:"flows_percent"`
}

// HostRow is one line of a scoreboard table.
type HostRow struct {
	Rank    int     `json:"rank"`
	Address string  `json:"address"`
	Name    string  `json:"name,omitempty"`
	In      Amounts `json:"in"`
	Out     Amounts `json:"out"`
}

// Table is one top-N table: hosts ranked by one metric of one direction.
type Table struct {
	Direction string    `json:"direction"`
	Metric    string    `json:"metric"`
	Hosts     []HostRow `json:"hosts"`
}

// ScoreboardPage is a file's scoreboard, as written to the .json file.
type ScoreboardPage struct {
	Title           string    `json:"title"`
	Start           time.Time `json:"start"`
	End             time.Time `json:"end"`
	DurationSeconds float64   `json:"duration_seconds"`
	TopN            int       `json:"top_n"`
	TotalIn         Amounts   `json:"total_in"`
	TotalOut        Amounts   `json:"total_out"`
	Tables          []Table   `json:"tables"`
}

var (
	directions = []string{"in", "out"}
	metrics    = []string{"bytes", "packets", "flows"}
)

func metricOf(c *counter, dir, metric int) uint64 {
	switch metric {
	case 0:
		return c.bytes[dir]
	case 1:
		return c.pkts[dir]
	}
	return c.flows[dir]
}

func amounts(c *counter, dir int, secs float64, total *counter) Amounts {
	pct := func(v, t uint64) float64 {
		if t == 0 {
			return 0
		}
		return 100 * float64(v) / float64(t)
	}
	return Amounts{
		Bytes: c.bytes[dir], Packets: c.pkts[dir], Flows: c.flows[dir],
		BitsPerSec:     8 * float64(c.bytes[dir]) / secs,
		PacketsPerSec:  float64(c.pkts[dir]) / secs,
		FlowsPerSec:    float64(c.flows[dir]) / secs,
		BytesPercent:   pct(c.bytes[dir], total.bytes[dir]),
		PacketsPercent: pct(c.pkts[dir], total.pkts[dir]),
		FlowsPercent:   pct(c.flows[dir], total.flows[dir]),
	}
}

// topSlots finds, in one pass over the host table, the n hosts with the
// largest value of each direction and metric (ties by address), leaving
// out hosts with none. It returns the hosts it found, and for each table
// the indexes of its hosts in that list, best first.
func (b *scoreboard) topSlots(n int) ([]hostEntry, [2][3][]int) {
	slots := b.table.slots
	better := func(x, y int, dir, metric int) bool { // slot x ranks above slot y
		vx, vy := metricOf(&slots[x].c, dir, metric), metricOf(&slots[y].c, dir, metric)
		if vx != vy {
			return vx > vy
		}
		kx, ky := slots[x].key, slots[y].key
		return kx[0] < ky[0] || kx[0] == ky[0] && kx[1] < ky[1]
	}
	var top [2][3][]int
	for i := range slots {
		if !slots[i].used() {
			continue
		}
		for d := 0; d < 2; d++ {
			for k := 0; k < 3; k++ {
				if metricOf(&slots[i].c, d, k) == 0 {
					continue
				}
				list := top[d][k]
				if len(list) == n && !better(i, list[n-1], d, k) {
					continue
				}
				pos := len(list)
				for pos > 0 && better(i, list[pos-1], d, k) {
					pos--
				}
				if len(list) < n {
					list = append(list, 0)
				}
				copy(list[pos+1:], list[pos:len(list)-1])
				list[pos] = i
				top[d][k] = list
			}
		}
	}
	var hosts []hostEntry
	index := map[int]int{}
	var tables [2][3][]int
	for d := range top {
		for k := range top[d] {
			for _, slot := range top[d][k] {
				j, ok := index[slot]
				if !ok {
					j = len(hosts)
					index[slot] = j
					s := &slots[slot]
					var a [16]byte
					binary.BigEndian.PutUint64(a[:8], s.key[0])
					binary.BigEndian.PutUint64(a[8:], s.key[1])
					hosts = append(hosts, hostEntry{addr: netip.AddrFrom16(a).Unmap(), c: s.c})
				}
				tables[d][k] = append(tables[d][k], j)
			}
		}
	}
	return hosts, tables
}

// report writes the scoreboard and the aggregate for file f.
func (b *scoreboard) report(f *report.File) error {
	topN := 0
	if b.sb != nil {
		topN = b.sb.TopN
	} else {
		topN = b.agg.TopN
	}
	secs := f.Duration().Seconds()
	total := &b.m.counters[0]
	hosts, tables := b.topSlots(topN)
	b.hosts = hosts
	shown := map[int]bool{}
	for i := range hosts {
		shown[i] = true
	}
	var errs []error
	if b.sb != nil {
		names := b.names(shown)
		page := ScoreboardPage{
			Title:           fmt.Sprintf("Top %d hosts, %s", topN, f.Start.Local().Format("2006-01-02 15:04:05 MST")),
			Start:           f.Start,
			End:             f.End,
			DurationSeconds: secs,
			TopN:            topN,
			TotalIn:         amounts(total, dirIn, secs, total),
			TotalOut:        amounts(total, dirOut, secs, total),
		}
		for d, dn := range directions {
			for k, mn := range metrics {
				t := Table{Direction: dn, Metric: mn, Hosts: []HostRow{}}
				for rank, i := range tables[d][k] {
					h := &b.hosts[i]
					t.Hosts = append(t.Hosts, HostRow{Rank: rank + 1, Address: h.addr.String(), Name: names[h.addr],
						In: amounts(&h.c, dirIn, secs, total), Out: amounts(&h.c, dirOut, secs, total)})
				}
				page.Tables = append(page.Tables, t)
			}
		}
		if err := b.writePage(f, &page); err != nil {
			errs = append(errs, err)
		}
	}
	if b.agg != nil {
		if err := b.aggregate(f, shown); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ScoreboardPath returns where the scoreboard of a file starting at start
// goes below dir: YYYY-MM-DD/HH/HH:MM:SS.html in local time, as CUFlow.
func ScoreboardPath(dir string, start time.Time) string {
	return filepath.Join(dir, start.Local().Format("2006-01-02/15/15:04:05")+".html")
}

func (b *scoreboard) writePage(f *report.File, page *ScoreboardPage) error {
	dir := resolve(b.m.env.BaseDir, b.sb.Dir)
	htmlPath := ScoreboardPath(dir, f.Start)
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, page); err != nil {
		return fmt.Errorf("cuflow scoreboard: %w", err)
	}
	if err := fsutil.WriteFileAtomic(htmlPath, buf.Bytes()); err != nil {
		return err
	}
	js, err := json.MarshalIndent(page, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(strings.TrimSuffix(htmlPath, ".html")+".json", append(js, '\n')); err != nil {
		return err
	}
	if b.sb.CurrentLink != "" {
		return relink(resolve(b.m.env.BaseDir, b.sb.CurrentLink), htmlPath)
	}
	return nil
}

// names resolves the shown hosts' names through the cache, in parallel,
// each lookup bounded by the timeout.
func (b *scoreboard) names(shown map[int]bool) map[netip.Addr]string {
	out := map[netip.Addr]string{}
	if b.sb == nil || !b.sb.ReverseDNS || b.resolver == nil {
		return out
	}
	timeout := b.sb.DNSTimeout
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	now := b.now()
	var todo []netip.Addr
	for i := range shown {
		a := b.hosts[i].addr
		if e, ok := b.dns[a]; ok && now.Before(e.expires) {
			out[a] = e.name
			continue
		}
		todo = append(todo, a)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, dnsParallel)
	for _, a := range todo {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			names, err := b.resolver.LookupAddr(ctx, a.String())
			e := dnsEntry{expires: now.Add(dnsCacheMiss)}
			if err == nil && len(names) > 0 {
				e = dnsEntry{name: strings.TrimSuffix(names[0], "."), expires: now.Add(dnsCacheHit)}
			}
			mu.Lock()
			b.dns[a] = e
			out[a] = e.name
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// relink points the symbolic link link at target atomically (new link,
// then rename over the old one). The target is relative to the link's
// directory when possible.
func relink(link, target string) error {
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return err
	}
	dest := target
	if absLink, err := filepath.Abs(link); err == nil {
		if absTarget, err := filepath.Abs(target); err == nil {
			if rel, err := filepath.Rel(filepath.Dir(absLink), absTarget); err == nil {
				dest = rel
			}
		}
	}
	tmp := link + ".tmp" + strconv.Itoa(os.Getpid())
	os.Remove(tmp)
	if err := os.Symlink(dest, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// aggHost is one host's running totals in the aggregate: how many reports
// it was in, its counts in those reports and their length in seconds.
type aggHost struct {
	count   uint64
	c       counter
	seconds float64
}

// aggKeep is CUFlow's NUMKEEP: past this many reports, the aggregate
// drops hosts seen once and halves everything.
const aggKeep = 50

// aggData is the aggregate data file's content.
type aggData struct {
	samples uint64
	last    int64 // Unix time of the last file added
	hosts   map[netip.Addr]*aggHost
}

const aggHeader = "# flowscan cuflow aggregate score v1: address count in_bytes in_pkts in_flows out_bytes out_pkts out_flows seconds"

func readAggData(path string) (*aggData, error) {
	d := &aggData{hosts: map[netip.Addr]*aggHost{}}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		bad := fmt.Errorf("%s:%d: bad aggregate line %q", path, line, sc.Text())
		switch fields[0] {
		case "samples", "last":
			if len(fields) != 2 {
				return nil, bad
			}
			v, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return nil, bad
			}
			if fields[0] == "samples" {
				d.samples = uint64(v)
			} else {
				d.last = v
			}
			continue
		}
		if len(fields) != 9 {
			return nil, bad
		}
		a, err := netip.ParseAddr(fields[0])
		if err != nil {
			return nil, bad
		}
		var v [7]uint64
		for i := range v {
			if v[i], err = strconv.ParseUint(fields[1+i], 10, 64); err != nil {
				return nil, bad
			}
		}
		secs, err := strconv.ParseFloat(fields[8], 64)
		if err != nil {
			return nil, bad
		}
		d.hosts[a] = &aggHost{count: v[0], seconds: secs, c: counter{
			bytes: [2]uint64{v[1], v[4]}, pkts: [2]uint64{v[2], v[5]}, flows: [2]uint64{v[3], v[6]}}}
	}
	return d, sc.Err()
}

func (d *aggData) write(path string) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s\nsamples %d\nlast %d\n", aggHeader, d.samples, d.last)
	addrs := make([]netip.Addr, 0, len(d.hosts))
	for a := range d.hosts {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	for _, a := range addrs {
		h := d.hosts[a]
		fmt.Fprintf(&sb, "%s %d %d %d %d %d %d %d %s\n", a, h.count,
			h.c.bytes[0], h.c.pkts[0], h.c.flows[0], h.c.bytes[1], h.c.pkts[1], h.c.flows[1],
			strconv.FormatFloat(h.seconds, 'f', -1, 64))
	}
	return fsutil.WriteFileAtomic(path, []byte(sb.String()))
}

// aggregate adds the shown hosts of this file to the running totals
// (unless the data file already includes the file), decays them as
// CUFlow does, and writes the average rankings.
func (b *scoreboard) aggregate(f *report.File, shown map[int]bool) error {
	dataPath := resolve(b.m.env.BaseDir, b.agg.DataFile)
	d, err := readAggData(dataPath)
	if err != nil {
		return err
	}
	if f.Start.Unix() <= d.last && d.samples > 0 {
		return nil // already included (a file scanned again after a crash)
	}
	secs := f.Duration().Seconds()
	for i := range shown {
		h := &b.hosts[i]
		a := d.hosts[h.addr]
		if a == nil {
			a = &aggHost{}
			d.hosts[h.addr] = a
		}
		a.count++
		a.seconds += secs
		for dir := 0; dir < 2; dir++ {
			a.c.add(dir, h.c.bytes[dir], h.c.pkts[dir], h.c.flows[dir])
		}
	}
	d.samples++
	d.last = f.Start.Unix()
	if d.samples > aggKeep {
		for addr, h := range d.hosts {
			if h.count <= 1 {
				delete(d.hosts, addr)
				continue
			}
			h.count /= 2
			h.seconds /= 2
			for dir := 0; dir < 2; dir++ {
				h.c.bytes[dir] /= 2
				h.c.pkts[dir] /= 2
				h.c.flows[dir] /= 2
			}
		}
		d.samples /= 2
	}
	if err := d.write(dataPath); err != nil {
		return err
	}
	return b.writeAggregatePage(d)
}

// AggregatePage is the average-rankings page.
type AggregatePage struct {
	Title   string  `json:"title"`
	Samples uint64  `json:"samples"`
	TopN    int     `json:"top_n"`
	Tables  []Table `json:"tables"`
}

func (b *scoreboard) writeAggregatePage(d *aggData) error {
	page := AggregatePage{
		Title:   fmt.Sprintf("Average rankings for the last %d top-%d reports", d.samples, b.agg.TopN),
		Samples: d.samples,
		TopN:    b.agg.TopN,
	}
	addrs := make([]netip.Addr, 0, len(d.hosts))
	for a := range d.hosts {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	var sum counter
	for _, a := range addrs {
		h := d.hosts[a]
		for dir := 0; dir < 2; dir++ {
			sum.add(dir, h.c.bytes[dir], h.c.pkts[dir], h.c.flows[dir])
		}
	}
	for dir, dn := range directions {
		for k, mn := range metrics {
			ranked := slices.Clone(addrs)
			rate := func(a netip.Addr) float64 {
				h := d.hosts[a]
				if h.seconds <= 0 {
					return 0
				}
				return float64(metricOf(&h.c, dir, k)) / h.seconds
			}
			slices.SortStableFunc(ranked, func(x, y netip.Addr) int { return cmp.Compare(rate(y), rate(x)) })
			t := Table{Direction: dn, Metric: mn, Hosts: []HostRow{}}
			for _, a := range ranked {
				if len(t.Hosts) == b.agg.TopN || rate(a) == 0 {
					break
				}
				h := d.hosts[a]
				t.Hosts = append(t.Hosts, HostRow{Rank: len(t.Hosts) + 1, Address: a.String(),
					In: amounts(&h.c, dirIn, h.seconds, &sum), Out: amounts(&h.c, dirOut, h.seconds, &sum)})
			}
			page.Tables = append(page.Tables, t)
		}
	}
	var buf bytes.Buffer
	if err := aggregateTemplate.Execute(&buf, &page); err != nil {
		return fmt.Errorf("cuflow aggregate: %w", err)
	}
	return fsutil.WriteFileAtomic(resolve(b.m.env.BaseDir, b.agg.OutFile), buf.Bytes())
}

var templateFuncs = template.FuncMap{
	"rate": func(v float64) string {
		switch {
		case v >= 1e9:
			return strconv.FormatFloat(v/1e9, 'f', 2, 64) + " G"
		case v >= 1e6:
			return strconv.FormatFloat(v/1e6, 'f', 2, 64) + " M"
		case v >= 1e3:
			return strconv.FormatFloat(v/1e3, 'f', 2, 64) + " k"
		}
		return strconv.FormatFloat(v, 'f', 2, 64) + " "
	},
	"pct": func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) + "%" },
}

const tablesTemplate = `{{define "tables"}}{{range .Tables}}
<h2>Top {{len .Hosts}} by {{.Metric}} {{.Direction}}</h2>
<table border="1" cellpadding="3">
<tr><th>#</th><th>Host</th><th>bits/s in</th><th>bits/s out</th><th>pkts/s in</th><th>pkts/s out</th><th>flows/s in</th><th>flows/s out</th></tr>
{{range .Hosts}}<tr><td>{{.Rank}}</td><td>{{if .Name}}{{.Name}}<br>{{end}}{{.Address}}</td>
<td>{{rate .In.BitsPerSec}}b/s ({{pct .In.BytesPercent}})</td><td>{{rate .Out.BitsPerSec}}b/s ({{pct .Out.BytesPercent}})</td>
<td>{{rate .In.PacketsPerSec}}p/s ({{pct .In.PacketsPercent}})</td><td>{{rate .Out.PacketsPerSec}}p/s ({{pct .Out.PacketsPercent}})</td>
<td>{{rate .In.FlowsPerSec}}f/s ({{pct .In.FlowsPercent}})</td><td>{{rate .Out.FlowsPerSec}}f/s ({{pct .Out.FlowsPercent}})</td></tr>
{{end}}</table>
{{end}}{{end}}`

var pageTemplate = template.Must(template.New("page").Funcs(templateFuncs).Parse(tablesTemplate + `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body>
<h1>{{.Title}}</h1>
<p>{{.DurationSeconds}} seconds. Total in: {{rate .TotalIn.BitsPerSec}}b/s, {{rate .TotalIn.PacketsPerSec}}p/s, {{rate .TotalIn.FlowsPerSec}}f/s.
Total out: {{rate .TotalOut.BitsPerSec}}b/s, {{rate .TotalOut.PacketsPerSec}}p/s, {{rate .TotalOut.FlowsPerSec}}f/s.</p>
{{template "tables" .}}
</body></html>
`))

var aggregateTemplate = template.Must(template.New("aggregate").Funcs(templateFuncs).Parse(tablesTemplate + `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title></head>
<body>
<h1>{{.Title}}</h1>
<p>Average rates over the reports in which each host was in a top {{.TopN}}; percentages are of the sum over the hosts listed in the data file.</p>
{{template "tables" .}}
</body></html>
`))
