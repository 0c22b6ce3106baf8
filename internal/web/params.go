package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits on requests.
const (
	maxItems      = 200
	minSpan       = time.Minute
	maxSpan       = 6 * 366 * 24 * time.Hour
	defaultPoints = 800
	minPoints     = 10
	maxPoints     = 5000
	maxParamLen   = 4096
)

// earliest is the earliest time a request may ask for.
var earliest = time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)

// badRequest is a validation error (HTTP 400).
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func bad(format string, args ...any) error { return &badRequest{fmt.Sprintf(format, args...)} }

// params checks that the request has only known parameters, each at most
// once, and returns them.
func params(r *http.Request, known ...string) (url.Values, error) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, bad("malformed query string")
	}
	for k, vals := range v {
		if !slices.Contains(known, k) {
			return nil, bad("unknown parameter %q (known: %s)", truncate(k), strings.Join(known, ", "))
		}
		if len(vals) > 1 {
			return nil, bad("parameter %q given more than once", k)
		}
		if len(vals[0]) > maxParamLen {
			return nil, bad("parameter %q too long", k)
		}
	}
	return v, nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// parseRange parses a span such as 1h, 36h, 2d, 1w, 3m (30 days) or 5y
// (365 days each).
func parseRange(s string) (time.Duration, error) {
	if len(s) < 2 || len(s) > 6 {
		return 0, bad("range %q: want a number and h, d, w, m or y (1h ... 5y)", truncate(s))
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || n <= 0 {
		return 0, bad("range %q: want a number and h, d, w, m or y (1h ... 5y)", truncate(s))
	}
	unit := map[byte]time.Duration{'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour,
		'm': 30 * 24 * time.Hour, 'y': 365 * 24 * time.Hour}[s[len(s)-1]]
	if unit == 0 {
		return 0, bad("range %q: unit must be h, d, w, m or y", truncate(s))
	}
	d := time.Duration(n) * unit
	if n > 100000 || d < time.Hour || d > maxSpan {
		return 0, bad("range %q: must be between 1h and 6y", truncate(s))
	}
	return d, nil
}

// parseTime parses Unix seconds.
func parseTime(name, s string) (time.Time, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, bad("%s %q: want Unix seconds", name, truncate(s))
	}
	if n < earliest.Unix() || n > 1<<40 {
		return time.Time{}, bad("%s %q: out of range", name, truncate(s))
	}
	return time.Unix(n, 0), nil
}

// timeWindow reads range/from/to: to defaults to now, from to to-range
// (range defaults to defaultRange).
func (s *Server) timeWindow(v url.Values, defaultRange time.Duration) (from, to time.Time, err error) {
	now := s.now()
	to = now
	if t := v.Get("to"); t != "" {
		if to, err = parseTime("to", t); err != nil {
			return
		}
	}
	span := defaultRange
	if rs := v.Get("range"); rs != "" {
		if v.Get("from") != "" {
			return from, to, bad("give range or from, not both")
		}
		if span, err = parseRange(rs); err != nil {
			return
		}
	}
	from = to.Add(-span)
	if f := v.Get("from"); f != "" {
		if from, err = parseTime("from", f); err != nil {
			return
		}
	}
	switch {
	case to.After(now.Add(24 * time.Hour)):
		return from, to, bad("to is more than a day in the future")
	case !from.Before(to):
		return from, to, bad("from must be before to")
	case to.Sub(from) < minSpan:
		return from, to, bad("time window shorter than %v", minSpan)
	case to.Sub(from) > maxSpan:
		return from, to, bad("time window longer than 6 years")
	case from.Before(earliest):
		return from, to, bad("from before 1990")
	}
	return from, to, nil
}

func parseBool(name, s string, def bool) (bool, error) {
	switch s {
	case "":
		return def, nil
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, bad("%s %q: want 1 or 0", name, truncate(s))
}

func parseInt(name, s string, def, lo, hi int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, bad("%s %q: want an integer from %d to %d", name, truncate(s), lo, hi)
	}
	return n, nil
}

// seriesParams are the parameters of /api/v1/series (graph adds more).
var seriesParams = []string{"module", "router", "items", "unit", "range", "from", "to", "step", "points", "other", "compare"}

// parseQuery validates a series or graph request against the catalog.
func (s *Server) parseQuery(v url.Values) (*query, error) {
	modName := v.Get("module")
	if modName == "" {
		modName = "cuflow"
	}
	if !validName(modName) {
		return nil, bad("module %q: bad name", truncate(modName))
	}
	c := s.currentCatalog(false)
	m := c.module(modName)
	if m == nil {
		c = s.currentCatalog(true)
		if m = c.module(modName); m == nil {
			return nil, &notFound{fmt.Sprintf("module %q has no RRD files", truncate(modName))}
		}
	}
	router := v.Get("router")
	if router == "" {
		router = "all"
	}
	scope := m.byID[router]
	if scope == nil {
		return nil, &notFound{fmt.Sprintf("router %q not found in module %s", truncate(router), m.Name)}
	}
	q := &query{module: m, scope: scope, unit: v.Get("unit")}
	if q.unit == "" {
		q.unit = "bits"
	}
	if _, ok := unitFactor[q.unit]; !ok {
		return nil, bad("unit %q: want bits, packets or flows", truncate(q.unit))
	}
	ids := v.Get("items")
	if ids == "" {
		ids = "total"
	}
	seen := map[string]bool{}
	for _, id := range strings.Split(ids, ",") {
		if seen[id] {
			continue
		}
		seen[id] = true
		it := scope.byID[id]
		if it == nil {
			return nil, &notFound{fmt.Sprintf("item %q not found for router %s of module %s", truncate(id), scope.ID, m.Name)}
		}
		q.items = append(q.items, it)
		if len(q.items) > maxItems {
			return nil, bad("more than %d items", maxItems)
		}
	}
	var err error
	if q.from, q.to, err = s.timeWindow(v, 24*time.Hour); err != nil {
		return nil, err
	}
	span := q.to.Sub(q.from)
	step, err := parseInt("step", v.Get("step"), 0, 1, int(maxSpan/time.Second))
	if err != nil {
		return nil, err
	}
	q.step = time.Duration(step) * time.Second
	if q.step > span {
		return nil, bad("step longer than the time window")
	}
	if q.points, err = parseInt("points", v.Get("points"), defaultPoints, minPoints, maxPoints); err != nil {
		return nil, err
	}
	if q.other, err = parseBool("other", v.Get("other"), true); err != nil {
		return nil, err
	}
	if q.compare, err = parseBool("compare", v.Get("compare"), false); err != nil {
		return nil, err
	}
	return q, nil
}

// notFound is a request for something the catalog does not have (404).
type notFound struct{ msg string }

func (e *notFound) Error() string { return e.msg }

// fail answers an error: 400 for validation, 404 for unknown names, 500
// (logged, with a generic message) otherwise.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var br *badRequest
	var nf *notFound
	switch {
	case asErr(err, &br):
		writeError(w, http.StatusBadRequest, br.msg)
	case asErr(err, &nf):
		writeError(w, http.StatusNotFound, nf.msg)
	default:
		s.cfg.Logger.Warn("web request failed", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error reading the data; see the server log")
	}
}
