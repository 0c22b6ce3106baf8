package campusio

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/netip"
	"path/filepath"
	"sort"
	"time"

	"github.com/flowscan/flowscan/internal/fsutil"
	"github.com/flowscan/flowscan/internal/report"
)

// HostIO is one local host's border counters.
type HostIO struct {
	Addr netip.Addr
	IO   IO
}

// Talker is one line of a top talkers list.
type Talker struct {
	Host    string `json:"host"`
	Bytes   uint64 `json:"bytes"`
	Packets uint64 `json:"packets"`
	Flows   uint64 `json:"flows"`
	// BitsPerSec is Bytes*8 over the flow file's real duration.
	BitsPerSec float64 `json:"bits_per_sec"`
}

// TopReport is a top talkers report for one flow file.
type TopReport struct {
	Title    string    `json:"title"`
	File     string    `json:"file"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Seconds  float64   `json:"seconds"`
	In       []Talker  `json:"in"`
	Out      []Talker  `json:"out"`
	InTotal  Counters  `json:"in_total"`
	OutTotal Counters  `json:"out_total"`
}

// NewTopReport ranks hosts by bytes in and out and keeps the n first of
// each list; rates use the file's duration. Ties go to the lower address.
func NewTopReport(title string, f *report.File, hosts []HostIO, n int) *TopReport {
	secs := f.Duration().Seconds()
	r := &TopReport{Title: title, File: filepath.Base(f.Path), Start: f.Start, End: f.End, Seconds: secs,
		In: []Talker{}, Out: []Talker{}}
	for _, d := range []Direction{In, Out} {
		hs := make([]HostIO, 0, len(hosts))
		tot := &r.InTotal
		if d == Out {
			tot = &r.OutTotal
		}
		for _, h := range hosts {
			c := h.IO[d]
			tot.Bytes += c.Bytes
			tot.Packets += c.Packets
			tot.Flows += c.Flows
			if c.Flows > 0 {
				hs = append(hs, h)
			}
		}
		sort.Slice(hs, func(i, j int) bool {
			a, b := hs[i].IO[d].Bytes, hs[j].IO[d].Bytes
			if a != b {
				return a > b
			}
			return hs[i].Addr.Less(hs[j].Addr)
		})
		list := make([]Talker, 0, min(n, len(hs)))
		for _, h := range hs[:min(n, len(hs))] {
			c := h.IO[d]
			list = append(list, Talker{h.Addr.String(), c.Bytes, c.Packets, c.Flows, float64(c.Bytes) * 8 / secs})
		}
		if d == In {
			r.In = list
		} else {
			r.Out = list
		}
	}
	return r
}

var topHTML = template.Must(template.New("top").Funcs(template.FuncMap{
	"rate": func(bps float64) string { return formatRate(bps) },
}).Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:sans-serif}table{border-collapse:collapse;margin-bottom:1em}td,th{border:1px solid #999;padding:2px 6px;text-align:right}td:first-child{text-align:left}</style>
</head><body>
<h1>{{.Title}}</h1>
<p>{{.File}}: {{.Start.Format "2006-01-02 15:04:05 MST"}} to {{.End.Format "15:04:05"}} ({{.Seconds}} s)</p>
{{range $i, $l := .Lists}}<h2>{{$l.Name}}</h2>
<table><tr><th>host</th><th>bits/s</th><th>bytes</th><th>packets</th><th>flows</th></tr>
{{range $l.Talkers}}<tr><td>{{.Host}}</td><td>{{rate .BitsPerSec}}</td><td>{{.Bytes}}</td><td>{{.Packets}}</td><td>{{.Flows}}</td></tr>
{{else}}<tr><td colspan="5">none</td></tr>
{{end}}</table>
{{end}}</body></html>
`))

func formatRate(bps float64) string {
	units := []string{"", "k", "M", "G", "T"}
	i := 0
	for bps >= 1000 && i < len(units)-1 {
		bps /= 1000
		i++
	}
	return trimFloat(bps) + " " + units[i] + "b/s"
}

func trimFloat(v float64) string {
	b, _ := json.Marshal(float64(int64(v*100+0.5)) / 100)
	return string(b)
}

// WriteTopReport writes rep as base.html and base.json, each replaced
// atomically (written to a temporary file, then renamed).
func WriteTopReport(base string, rep *TopReport) error {
	type list struct {
		Name    string
		Talkers []Talker
	}
	var h bytes.Buffer
	err := topHTML.Execute(&h, struct {
		*TopReport
		Lists []list
	}{rep, []list{{"Top talkers in (bytes to local hosts)", rep.In}, {"Top talkers out (bytes from local hosts)", rep.Out}}})
	if err != nil {
		return err
	}
	j, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(base+".html", h.Bytes()); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(base+".json", append(j, '\n'))
}
