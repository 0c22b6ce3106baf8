package web

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/flowscan/flowscan/internal/flowfile"
)

// Exporter figures from the archive: the files of the last hour before the
// newest file's end, at most this many.
const (
	archiveWindow   = time.Hour
	archiveMaxFiles = 120
	archiveTTL      = 15 * time.Second
)

type metaEntry struct {
	path string
	meta *flowfile.Meta
}

// archiveCache reads the metadata of the newest flow files.
type archiveCache struct {
	dir string

	mu     sync.Mutex
	listed time.Time
	recent []metaEntry
	metas  map[string]*flowfile.Meta
}

// recentMetas returns the metadata of the newest files (oldest first).
func (a *archiveCache) recentMetas(now time.Time) ([]metaEntry, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.recent != nil && now.Sub(a.listed) < archiveTTL {
		return a.recent, nil
	}
	entries, err := flowfile.List(a.dir)
	if err != nil {
		return nil, err
	}
	if len(entries) > archiveMaxFiles {
		entries = entries[len(entries)-archiveMaxFiles:]
	}
	metas := map[string]*flowfile.Meta{}
	var out []metaEntry
	for _, e := range entries {
		m := a.metas[e.Path]
		if m == nil {
			r, err := flowfile.Open(e.Path)
			if err != nil {
				continue
			}
			m = r.Meta()
			r.Close()
		}
		metas[e.Path] = m
		out = append(out, metaEntry{path: e.Path, meta: m})
	}
	if len(out) > 0 {
		last := out[len(out)-1].meta.End
		i := 0
		for i < len(out) && out[i].meta.End.Before(last.Add(-archiveWindow)) {
			i++
		}
		out = out[i:]
	}
	if out == nil {
		out = []metaEntry{}
	}
	a.metas, a.recent, a.listed = metas, out, now
	return out, nil
}

// ExporterRow is one exporter on the exporters page.
type ExporterRow struct {
	ExporterStatus
	// LostPercent is lost / (flows + lost) × 100.
	LostPercent float64 `json:"lost_percent"`
	// AgeSeconds is how long ago the exporter was last seen.
	AgeSeconds float64 `json:"age_seconds"`
	// Silent is true when nothing came for more than three intervals
	// (archive) or five minutes (live).
	Silent bool `json:"silent"`
	// Source is "live" (the collector in this process) or "archive"
	// (flow-file metadata of the last hour).
	Source string `json:"source"`
}

// ExportersResponse is the answer of /api/v1/exporters.
type ExportersResponse struct {
	Now       time.Time     `json:"now"`
	Source    string        `json:"source"`
	Files     int           `json:"files"`
	From      time.Time     `json:"from,omitzero"`
	To        time.Time     `json:"to,omitzero"`
	Exporters []ExporterRow `json:"exporters"`
}

// liveSilence is the silence after which a live exporter is flagged.
const liveSilence = 5 * time.Minute

func (s *Server) handleExporters(w http.ResponseWriter, r *http.Request) {
	if _, err := params(r); err != nil {
		s.fail(w, r, err)
		return
	}
	now := s.now()
	resp := ExportersResponse{Now: now, Exporters: []ExporterRow{}}
	if s.cfg.Live != nil {
		resp.Source = "live"
		for _, e := range s.cfg.Live.Exporters() {
			row := ExporterRow{ExporterStatus: e, Source: "live"}
			row.fill(now, liveSilence)
			resp.Exporters = append(resp.Exporters, row)
		}
	} else if s.cfg.FlowDir != "" {
		resp.Source = "archive"
		metas, err := s.archive.recentMetas(now)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		resp.Files = len(metas)
		type acc struct {
			row  ExporterRow
			secs float64
		}
		byKey := map[string]*acc{}
		var interval time.Duration
		for _, me := range metas {
			m := me.meta
			if resp.From.IsZero() || m.Start.Before(resp.From) {
				resp.From = m.Start
			}
			if m.End.After(resp.To) {
				resp.To = m.End
			}
			interval = max(interval, m.End.Sub(m.Start))
			for _, e := range m.Exporters {
				key := e.Addr.String() + "/" + strconv.FormatUint(uint64(e.Domain), 10) + "/" + e.Format
				a := byKey[key]
				if a == nil {
					a = &acc{row: ExporterRow{ExporterStatus: ExporterStatus{Exporter: e.Addr.String(), Domain: e.Domain, Format: e.Format}, Source: "archive"}}
					byKey[key] = a
				}
				a.row.Flows += e.Flows
				a.row.Datagrams += e.Datagrams
				a.row.LostFlows += e.LostFlows
				if e.SamplingRate != 0 {
					a.row.SamplingRate = e.SamplingRate
				}
				if e.Flows > 0 || e.Datagrams > 0 {
					a.row.LastSeen = m.End
				}
			}
		}
		span := resp.To.Sub(resp.From).Seconds()
		for _, a := range byKey {
			if span > 0 {
				a.row.FlowsPerSecond = float64(a.row.Flows) / span
			}
			a.row.fill(now, max(3*interval, liveSilence))
			resp.Exporters = append(resp.Exporters, a.row)
		}
	}
	slices.SortFunc(resp.Exporters, func(a, b ExporterRow) int {
		if c := cmp.Compare(a.Exporter, b.Exporter); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Domain, b.Domain); c != 0 {
			return c
		}
		return cmp.Compare(a.Format, b.Format)
	})
	writeJSON(w, resp)
}

func (r *ExporterRow) fill(now time.Time, silence time.Duration) {
	if total := r.Flows + r.LostFlows; total > 0 {
		r.LostPercent = 100 * float64(r.LostFlows) / float64(total)
	}
	if !r.LastSeen.IsZero() {
		r.AgeSeconds = now.Sub(r.LastSeen).Seconds()
	}
	r.Silent = r.LastSeen.IsZero() || now.Sub(r.LastSeen) > silence
}
