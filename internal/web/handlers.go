package web

import (
	"errors"
	"net/http"
)

// asErr is errors.As for the request error types.
func asErr[T error](err error, target *T) bool { return errors.As(err, target) }

// CatalogResponse is the answer of /api/v1/catalog.
type CatalogResponse struct {
	Title   string    `json:"title"`
	Modules []*Module `json:"modules"`
	Kinds   []string  `json:"kinds"`
	Units   []string  `json:"units"`
	Palette []string  `json:"palette"`
	// Scoreboard tells whether scoreboards can be shown.
	Scoreboard bool `json:"scoreboard"`
	Aggregate  bool `json:"aggregate"`
	Exporters  bool `json:"exporters"`
	// ClickHouse tells whether top talkers can be read from ClickHouse
	// (kind=clickhouse of /api/v1/scoreboard).
	ClickHouse bool `json:"clickhouse"`
	// FlowSources are the sources of the flow explorer (/api/v1/flows),
	// the default first: "files" (the flow archive), "clickhouse".
	FlowSources []string `json:"flow_sources"`
	// JKFlowScoreboards are the jkflow directions that have a scoreboard
	// (kind=jkflow of /api/v1/scoreboard).
	JKFlowScoreboards []string `json:"jkflow_scoreboards"`
}

func (s *Server) handleCatalog(w http.ResponseWriter, r *http.Request) {
	v, err := params(r, "refresh")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	refresh, err := parseBool("refresh", v.Get("refresh"), false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c := s.currentCatalog(refresh)
	mods := c.Modules
	if mods == nil {
		mods = []*Module{}
	}
	writeJSON(w, CatalogResponse{Title: s.cfg.Title, Modules: mods, Kinds: kindOrder,
		Units: []string{"bits", "packets", "flows"}, Palette: palette,
		Scoreboard: s.boards.dir != "", Aggregate: s.boards.aggregate != "",
		Exporters: s.cfg.Live != nil || s.cfg.FlowDir != "", ClickHouse: s.ch != nil,
		FlowSources: s.flowSources(), JKFlowScoreboards: c.jkDirections()})
}

func (s *Server) handleSeries(w http.ResponseWriter, r *http.Request) {
	v, err := params(r, seriesParams...)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q, err := s.parseQuery(v)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q.ctx = r.Context()
	resp, err := s.series(q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, resp)
}
