package jkflow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/fsutil"
	"github.com/flowscan/flowscan/internal/report"
)

type portKey struct {
	proto uint8
	port  uint16
}

// scoreboard accumulates per-host and per-port counters of a direction.
// Hosts are keyed by the "from" side of the direction: the source of an
// out flow, the destination of an in flow. Ports are the lower of the two
// ports of a TCP or UDP flow (usually the service port); other protocols
// count under port 0.
type scoreboard struct {
	topN  int
	hosts map[netip.Addr]counter
	ports map[portKey]counter
}

func newScoreboard(hosts, ports bool, n int) *scoreboard {
	s := &scoreboard{topN: n}
	if hosts {
		s.hosts = map[netip.Addr]counter{}
	}
	if ports {
		s.ports = map[portKey]counter{}
	}
	return s
}

func (s *scoreboard) reset() {
	clear(s.hosts)
	clear(s.ports)
}

func (s *scoreboard) add(r *flow.Record, way int, b, p, f uint64) {
	if s.hosts != nil {
		h := r.SrcAddr
		if way == wayIn {
			h = r.DstAddr
		}
		c := s.hosts[h]
		c.add(way, b, p, f)
		s.hosts[h] = c
	}
	if s.ports != nil {
		k := portKey{proto: r.Proto}
		if r.Proto == 6 || r.Proto == 17 {
			k.port = min(r.SrcPort, r.DstPort)
		}
		c := s.ports[k]
		c.add(way, b, p, f)
		s.ports[k] = c
	}
}

// Entry is one scoreboard line: counts over the file and rates over the
// sample time.
type Entry struct {
	Rank     int     `json:"rank"`
	Key      string  `json:"key"`
	InBytes  uint64  `json:"in_bytes"`
	OutBytes uint64  `json:"out_bytes"`
	InPkts   uint64  `json:"in_pkts"`
	OutPkts  uint64  `json:"out_pkts"`
	InFlows  uint64  `json:"in_flows"`
	OutFlows uint64  `json:"out_flows"`
	InBits   float64 `json:"in_bits_per_second"`
	OutBits  float64 `json:"out_bits_per_second"`
}

// Scores is the content of a scoreboard file.
type Scores struct {
	Direction string    `json:"direction"`
	File      string    `json:"file"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Seconds   float64   `json:"seconds"`
	Hosts     []Entry   `json:"hosts,omitempty"`
	Ports     []Entry   `json:"ports,omitempty"`
}

func top[K comparable](m map[K]counter, n int, name func(K) string, secs float64) []Entry {
	out := make([]Entry, 0, len(m))
	for k, c := range m {
		out = append(out, Entry{Key: name(k), InBytes: c[0], OutBytes: c[1], InPkts: c[2], OutPkts: c[3], InFlows: c[4], OutFlows: c[5],
			InBits: float64(c[0]) * 8 / secs, OutBits: float64(c[1]) * 8 / secs})
	}
	slices.SortFunc(out, func(a, b Entry) int {
		ta, tb := a.InBytes+a.OutBytes, b.InBytes+b.OutBytes
		if ta != tb {
			if ta > tb {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Key, b.Key)
	})
	if len(out) > n {
		out = out[:n]
	}
	for i := range out {
		out[i].Rank = i + 1
	}
	return out
}

var protoNames = func() map[uint8]string {
	m := map[uint8]string{}
	for n, v := range protoNumbers {
		if old, ok := m[v]; !ok || len(n) < len(old) {
			m[v] = n
		}
	}
	return m
}()

func portName(k portKey) string {
	p, ok := protoNames[k.proto]
	if !ok {
		p = fmt.Sprint(k.proto)
	}
	if k.proto == 6 || k.proto == 17 {
		return fmt.Sprintf("%d/%s", k.port, p)
	}
	return p
}

var pageTmpl = template.Must(template.New("score").Funcs(template.FuncMap{
	"table": func(title string, rows []Entry) tableArgs { return tableArgs{title, rows} },
}).Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Direction}} scoreboard {{.Start.Format "2006-01-02 15:04:05"}}</title></head>
<body>
<h1>Direction {{.Direction}}</h1>
<p>{{.File}}: {{.Start.Format "2006-01-02 15:04:05 MST"}} to {{.End.Format "15:04:05"}}, rates over {{.Seconds}} s</p>
{{define "table"}}<table border="1">
<tr><th>#</th><th>{{.Title}}</th><th>bits/s in</th><th>bits/s out</th><th>bytes in</th><th>bytes out</th><th>pkts in</th><th>pkts out</th><th>flows in</th><th>flows out</th></tr>
{{range .Rows}}<tr><td>{{.Rank}}</td><td>{{.Key}}</td><td>{{printf "%.1f" .InBits}}</td><td>{{printf "%.1f" .OutBits}}</td><td>{{.InBytes}}</td><td>{{.OutBytes}}</td><td>{{.InPkts}}</td><td>{{.OutPkts}}</td><td>{{.InFlows}}</td><td>{{.OutFlows}}</td></tr>
{{end}}</table>{{end}}
{{if .Hosts}}<h2>Top hosts by bytes</h2>
{{template "table" (table "Host" .Hosts)}}{{end}}
{{if .Ports}}<h2>Top ports by bytes</h2>
{{template "table" (table "Port" .Ports)}}{{end}}
</body></html>
`))

// write stores scoreboard.json and scoreboard.html in dir, atomically.
func (s *scoreboard) write(dir, direction string, f *report.File, secs float64) error {
	sc := Scores{Direction: direction, File: filepath.Base(f.Path), Start: f.Start.UTC(), End: f.End.UTC(), Seconds: secs}
	if s.hosts != nil {
		sc.Hosts = top(s.hosts, s.topN, func(a netip.Addr) string { return a.String() }, secs)
	}
	if s.ports != nil {
		sc.Ports = top(s.ports, s.topN, portName, secs)
	}
	js, err := json.MarshalIndent(&sc, "", "  ")
	if err != nil {
		return err
	}
	var page bytes.Buffer
	if err := pageTmpl.Execute(&page, &sc); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, "scoreboard.json"), append(js, '\n')); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(dir, "scoreboard.html"), page.Bytes())
}

type tableArgs struct {
	Title string
	Rows  []Entry
}
