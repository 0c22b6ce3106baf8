package web

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// palette is the band colours, in order (the front end uses the same).
var palette = []string{
	"1f77b4", "ff7f0e", "2ca02c", "d62728", "9467bd", "8c564b", "e377c2", "7f7f7f", "bcbd22", "17becf",
	"393b79", "e6550d", "31a354", "843c39", "756bb1", "637939", "d6616b", "3182bd", "fd8d3c", "74c476", "9e9ac8",
}

// unitLabel is the vertical axis label of a unit.
var unitLabel = map[string]string{"bits": "bits per second", "packets": "packets per second", "flows": "flows per second"}

// legendText escapes text for an rrdtool legend or comment (':' ends a
// field, '\' starts an escape, '%' a format in GPRINT).
// legendLabel fits a legend label to width characters: the raw label is
// cut (by runes) before it is escaped, since cutting the escaped text could
// end it in a lone backslash that swallows the `:STACK` after it.
func legendLabel(s string, width int) string {
	r := []rune(s)
	if len(r) > width {
		r = r[:width]
	}
	return legendText(string(r)) + strings.Repeat(" ", width-len(r))
}

func legendText(s string) string {
	var sb strings.Builder
	for _, c := range s {
		switch {
		case c == ':':
			sb.WriteString(`\:`)
		case c == '\\' || c == '%':
			// dropped: no escapes or formats from names
		case c < 0x20 || c == 0x7f:
		default:
			sb.WriteRune(c)
		}
	}
	return sb.String()
}

// graphArgs builds rrdtool graph arguments for a query: out stacked above
// the axis and in below it, as CUGrapher drew them, the total as a line,
// "other" bands for the kinds selected, and a legend with average,
// maximum, 95th percentile, total and share of the whole per direction.
func (s *Server) graphArgs(q *query, format string, width, height int) []string {
	unit := q.unit
	factor := strconv.FormatFloat(unitFactor[unit], 'g', -1, 64)
	title := fmt.Sprintf("%s %s/%s, %s, +out/-in", s.cfg.Title, q.module.Name, q.scope.ID, unit)
	args := []string{"--imgformat", format, "--start", strconv.FormatInt(q.from.Unix(), 10),
		"--end", strconv.FormatInt(q.to.Unix(), 10), "--width", strconv.Itoa(width), "--height", strconv.Itoa(height),
		"--title", legendText(title), "--vertical-label", unitLabel[unit], "--alt-autoscale", "--slope-mode",
		"--font", "DEFAULT:7:", "--color", "BACK#FFFFFF", "--border", "0"}
	if q.step > 0 {
		args = append(args, "--step", strconv.FormatInt(int64(q.step.Seconds()), 10))
	}
	n := 0
	def := func(path, ds string) string {
		v := "d" + strconv.Itoa(n)
		n++
		args = append(args, "DEF:"+v+"="+escapeDEF(path)+":"+ds+":AVERAGE")
		return v
	}
	// vnames of each item's out and in values in the unit (positive).
	itemVars := func(it *Item, i int, prefix string) (string, string) {
		var outs, ins []string
		for _, f := range it.files {
			ins = append(ins, def(f.path, f.in[unit]))
			if f.out != nil {
				outs = append(outs, def(f.path, f.out[unit]))
			}
		}
		o, in := fmt.Sprintf("%so%d", prefix, i), fmt.Sprintf("%si%d", prefix, i)
		outExpr := ins[0] + ",0,*"
		if len(outs) > 0 {
			outExpr = sumRPN(outs) + "," + factor + ",*"
		}
		args = append(args, "CDEF:"+o+"="+outExpr, "CDEF:"+in+"="+sumRPN(ins)+","+factor+",*")
		return o, in
	}
	type band struct {
		label, out, in, color string
		line                  bool
	}
	var bands []band
	total := q.scope.byID["total"]
	var totOut, totIn string
	if total != nil {
		totOut, totIn = itemVars(total, 0, "T")
	}
	byKind := map[string][]int{}
	for i, it := range q.items {
		o, in := itemVars(it, i, "")
		b := band{label: it.Label, out: o, in: in, color: palette[i%len(palette)], line: it.Kind == KindTotal}
		if it.Kind != KindTotal {
			b.label = it.Kind + " " + it.Label
		}
		bands = append(bands, b)
		if otherKinds[it.Kind] {
			byKind[it.Kind] = append(byKind[it.Kind], len(bands)-1)
		}
	}
	if q.other && total != nil {
		for _, kind := range kindOrder {
			members := byKind[kind]
			if len(members) == 0 {
				continue
			}
			var outs, ins []string
			for _, m := range members {
				outs, ins = append(outs, bands[m].out), append(ins, bands[m].in)
			}
			o, in := "oo"+kind, "oi"+kind
			args = append(args, "CDEF:"+o+"="+totOut+","+sumRPN(outs)+",-,0,MAX", "CDEF:"+in+"="+totIn+","+sumRPN(ins)+",-,0,MAX")
			bands = append(bands, band{label: "other " + kindPlural(kind), out: o, in: in, color: "c8c8c8"})
		}
	}
	// The share of the whole: of the total when the scope has one, else of
	// the selection's sum.
	wholeOut, wholeIn := totOut, totIn
	if total == nil {
		var outs, ins []string
		for _, b := range bands {
			outs, ins = append(outs, b.out), append(ins, b.in)
		}
		wholeOut, wholeIn = "wo", "wi"
		args = append(args, "CDEF:wo="+sumRPN(outs), "CDEF:wi="+sumRPN(ins))
	}
	args = append(args, "VDEF:wavgo="+wholeOut+",AVERAGE", "VDEF:wavgi="+wholeIn+",AVERAGE")
	for i, b := range bands {
		args = append(args, fmt.Sprintf("CDEF:neg%d=%s,-1,*", i, b.in))
	}
	// Legend statistics per band and direction.
	for i, b := range bands {
		for d, v := range []string{b.out, b.in} {
			name := fmt.Sprintf("%s%d", []string{"o", "i"}[d], i)
			whole := []string{"wavgo", "wavgi"}[d]
			args = append(args,
				"VDEF:va"+name+"="+v+",AVERAGE", "VDEF:vm"+name+"="+v+",MAXIMUM",
				"VDEF:vp"+name+"="+v+",95,PERCENT", "VDEF:vt"+name+"="+v+",TOTAL",
				"CDEF:vs"+name+"="+v+",POP,va"+name+","+whole+",/,100,*", "VDEF:vS"+name+"=vs"+name+",AVERAGE")
		}
	}
	legend := func(i int, b band) {
		for d, dir := range []string{"out", "in "} {
			name := fmt.Sprintf("%s%d", []string{"o", "i"}[d], i)
			if d == 1 {
				args = append(args, "COMMENT:"+pad("", 27))
			}
			args = append(args, "COMMENT:"+dir,
				"GPRINT:va"+name+":%8.2lf%s", "GPRINT:vm"+name+":%8.2lf%s", "GPRINT:vp"+name+":%8.2lf%s",
				"GPRINT:vt"+name+":%8.2lf%s", "GPRINT:vS"+name+`:%6.1lf%%\l`)
		}
	}
	label := func(b band) string { return legendLabel(b.label, 24) }
	args = append(args, "COMMENT:"+legendText(fmt.Sprintf("%-28s %-3s %9s %9s %9s %9s %7s", "", "", "average", "maximum", "95th pct", "total", "share"))+`\l`)
	// Out stacked above the axis (with the legend), then in stacked below
	// it, then the lines.
	first := true
	for i, b := range bands {
		if b.line {
			continue
		}
		a := "AREA:" + b.out + "#" + b.color + ":" + label(b)
		if !first {
			a += ":STACK"
		}
		first = false
		args = append(args, a)
		legend(i, b)
	}
	first = true
	for i, b := range bands {
		if b.line {
			continue
		}
		a := fmt.Sprintf("AREA:neg%d#%s", i, b.color)
		if !first {
			a += "::STACK"
		}
		first = false
		args = append(args, a)
	}
	for i, b := range bands {
		if b.line {
			args = append(args, "LINE1:"+b.out+"#000000:"+label(b), fmt.Sprintf("LINE1:neg%d#000000", i))
			legend(i, b)
		}
	}
	args = append(args, "HRULE:0#000000")
	return args
}

func pad(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return s + strings.Repeat(" ", n-len(s))
}

// handleGraph renders PNG or SVG through RRDtool.
func (s *Server) handleGraph(format string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := params(r, append(slices.Clone(seriesParams), "width", "height")...)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		q, err := s.parseQuery(v)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if q.compare {
			s.fail(w, r, bad("compare is not drawn in images; use the series API"))
			return
		}
		width, err := parseInt("width", v.Get("width"), 800, 200, 3000)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		height, err := parseInt("height", v.Get("height"), 300, 100, 2000)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if len(q.items) > 60 {
			s.fail(w, r, bad("an image shows at most 60 items"))
			return
		}
		var img []byte
		if q.module.Backend == BackendClickHouse {
			img, err = s.chGraph(r.Context(), q, format, width, height)
		} else {
			img, err = s.cfg.RRD.Graph(s.graphArgs(q, format, width, height)...)
		}
		if err != nil {
			s.fail(w, r, errors.Join(errors.New("graph"), err))
			return
		}
		ct := "image/png"
		if format == "SVG" {
			ct = "image/svg+xml"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Disposition", fmt.Sprintf("inline; filename=%q", "flowscan-"+q.module.Name+"."+strings.ToLower(format)))
		w.Write(img)
	}
}
