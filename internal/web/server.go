// Package web is flowscan's web server, the successor of CUGrapher and
// JKGrapher: a dashboard of the report modules' RRD files (stacked graphs,
// out above the axis and in below, with a legend of average, maximum, 95th
// percentile, total and share), cuflow's scoreboards, the exporters'
// health, and the JSON API behind every view. The page's assets (uPlot
// included) are embedded, so it works without internet access.
//
// The server is read-only. Requests name modules, routers and items by the
// identifiers of a catalog discovered by walking the module directories,
// and scoreboards by the names found in the scoreboard directory; no
// request parameter is ever used as a path. It listens on loopback unless
// told otherwise and can require HTTP basic authentication (bcrypt hashes
// in an htpasswd file) and TLS.
package web

import (
	"context"
	"crypto/tls"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/flowscan/flowscan/internal/rrd"
)

// DefaultListen is the address the server listens on when Config.Listen is
// empty: loopback only.
const DefaultListen = "127.0.0.1:8080"

// Config configures the server.
type Config struct {
	// Listen is ADDR:PORT; default DefaultListen. Port 0 picks a free port
	// (see Addr).
	Listen string
	// RRDDir is scan.rrd_dir: module RRDs live in RRDDir/<module>/
	// (cuflow, jkflow, campusio, subnetio) unless Modules says otherwise.
	RRDDir string
	// Modules optionally maps a module name to its output directory,
	// overriding RRDDir/<module>.
	Modules map[string]string
	// FlowDir is the flow archive, read for the exporters page.
	FlowDir string
	// RRD reads the RRD files (through rrdcached when configured).
	RRD *rrd.Client
	// HTPasswd is an optional file of "user:$2y$..." bcrypt lines; when
	// set, every request needs HTTP basic authentication.
	HTPasswd string
	// TLSCert and TLSKey are optional PEM files; both set means HTTPS.
	TLSCert, TLSKey string
	// Title is the organisation name shown in the page and graphs.
	Title string
	// Live optionally gives live exporter status from a collector in the
	// same process.
	Live LiveSource
	// Logger receives request errors; nil discards.
	Logger *slog.Logger
	// ScoreboardDir is cuflow's scoreboard.dir (per-file JSON pages);
	// empty means the module directory's "scoreboard" when it exists.
	ScoreboardDir string
	// AggregateFile is cuflow's aggregate_score.data_file; optional.
	AggregateFile string
	// Now returns the current time (tests); nil means time.Now.
	Now func() time.Time
	// ClickHouse optionally adds the module "clickhouse", whose graphs
	// and top talkers are read from flowscan's ClickHouse tables.
	ClickHouse *ClickHouse
}

// ExporterStatus is one exporter's health as the exporters page shows it.
type ExporterStatus struct {
	Exporter       string    `json:"exporter"`
	Format         string    `json:"format"`
	Domain         uint32    `json:"domain"`
	Flows          uint64    `json:"flows"`
	Datagrams      uint64    `json:"datagrams"`
	LostFlows      uint64    `json:"lost_flows"`
	FlowsPerSecond float64   `json:"flows_per_second"`
	SamplingRate   uint32    `json:"sampling_rate"`
	Templates      int       `json:"templates"`
	LastSeen       time.Time `json:"last_seen"`
}

// LiveSource gives the live status of a collector's exporters.
type LiveSource interface {
	Exporters() []ExporterStatus
}

//go:embed assets
var assetFS embed.FS

// Server is the web server.
type Server struct {
	cfg   Config
	users map[string][]byte
	dummy []byte
	// authCache spares bcrypt for credentials verified within a minute.
	authCache authCache
	handler   http.Handler
	builder   *catalogBuilder
	now       func() time.Time

	mu       sync.Mutex
	catalog  *Catalog
	building chan struct{}

	boards  *scoreboards
	archive *archiveCache
	ch      *chSource
	// flowLimit bounds the flow explorer's queries (/api/v1/flows).
	flowLimit *flowLimiter
	// maxGroups overrides flowMaxGroups (tests).
	maxGroups int
	listener  net.Listener
	addr      string
}

// Catalog lifetime: rebuilt when older than catalogTTL, or when a request
// names something unknown and the catalog is older than catalogRetry.
const (
	catalogTTL   = time.Minute
	catalogRetry = 5 * time.Second
)

// New checks the configuration and returns a server (not yet listening).
func New(cfg Config) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.RRD == nil {
		cfg.RRD = rrd.New("")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Title == "" {
		cfg.Title = "flowscan"
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("web: TLS needs both a certificate and a key file")
	}
	s := &Server{cfg: cfg, now: cfg.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.HTPasswd != "" {
		users, err := loadHTPasswd(cfg.HTPasswd)
		if err != nil {
			return nil, err
		}
		s.users = users
		s.dummy = dummyHash(users)
	}
	dirs := map[string]string{}
	if cfg.RRDDir != "" {
		for _, m := range []string{"cuflow", "jkflow", "campusio", "subnetio"} {
			dirs[m] = filepath.Join(cfg.RRDDir, m)
		}
	}
	for m, d := range cfg.Modules {
		if !validName(m) {
			return nil, fmt.Errorf("web: bad module name %q", m)
		}
		dirs[m] = d
	}
	if cfg.ClickHouse != nil {
		if len(cfg.ClickHouse.Clients) == 0 || cfg.ClickHouse.Schema == nil {
			return nil, errors.New("web: ClickHouse needs at least one client and a schema")
		}
		if _, ok := dirs[ClickHouseModule]; ok {
			return nil, fmt.Errorf("web: module name %q is taken by the ClickHouse backend", ClickHouseModule)
		}
		s.ch = &chSource{cfg: *cfg.ClickHouse, logger: cfg.Logger}
	}
	if len(dirs) == 0 && s.ch == nil && cfg.FlowDir == "" {
		return nil, errors.New("web: nothing to serve: no RRD directory (RRDDir or Modules), no flow archive (FlowDir) and no ClickHouse")
	}
	s.builder = &catalogBuilder{dirs: dirs, names: func(path string) ([]string, error) {
		now := s.now()
		res, err := cfg.RRD.Fetch(path, "AVERAGE", now.Add(-time.Hour), now, 0)
		if err != nil {
			return nil, err
		}
		return res.Names, nil
	}}
	sbDir := cfg.ScoreboardDir
	if sbDir == "" {
		if d, ok := dirs["cuflow"]; ok {
			if st, err := os.Stat(filepath.Join(d, "scoreboard")); err == nil && st.IsDir() {
				sbDir = filepath.Join(d, "scoreboard")
			}
		}
	}
	s.boards = &scoreboards{dir: sbDir, aggregate: cfg.AggregateFile, now: s.now}
	s.archive = &archiveCache{dir: cfg.FlowDir}
	s.flowLimit = newFlowLimiter()
	s.handler = s.routes()
	return s, nil
}

// validName accepts identifiers made of letters, digits and _ . + -.
func validName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '+' || c == '-') {
			return false
		}
	}
	return s != "." && s != ".."
}

// Handler returns the server's HTTP handler (authentication, security
// headers, routes).
func (s *Server) Handler() http.Handler { return s.handler }

// Listen opens the listening socket; Serve calls it when it was not
// called before. Call it first to learn the address (port 0) from Addr.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("web: %w", err)
	}
	s.listener = ln
	s.addr = ln.Addr().String()
	return nil
}

// Addr returns the address the server listens on, once Listen (or Serve)
// has opened it; "" before.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URL returns the dashboard's URL once listening ("" before).
func (s *Server) URL() string {
	a := s.Addr()
	if a == "" {
		return ""
	}
	if s.cfg.TLSCert != "" {
		return "https://" + a + "/"
	}
	return "http://" + a + "/"
}

// Serve listens (if Listen was not called) and serves until ctx is
// cancelled, then shuts down gracefully (in-flight requests get up to 5
// seconds).
func (s *Server) Serve(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
	ln := s.listener
	if s.cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("web: TLS: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-done
	return err
}

// currentCatalog returns the catalog, rebuilding it when stale (force:
// when the caller did not find a name and the catalog is not brand new).
func (s *Server) currentCatalog(force bool) *Catalog {
	s.mu.Lock()
	c := s.catalog
	now := s.now()
	stale := c == nil || now.Sub(c.Built) > catalogTTL || force && now.Sub(c.Built) > catalogRetry
	if !stale {
		s.mu.Unlock()
		return c
	}
	if s.building != nil { // another request is building: wait for it
		ch := s.building
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
		c = s.catalog
		s.mu.Unlock()
		return c
	}
	ch := make(chan struct{})
	s.building = ch
	s.mu.Unlock()
	nc := s.builder.build(now)
	if s.ch != nil {
		// Last, so that the RRD modules stay the page's default.
		m, err := s.ch.discover(now)
		if err != nil {
			s.cfg.Logger.Warn("clickhouse: discovering the catalog", "err", err)
		}
		if m != nil {
			nc.Modules = append(nc.Modules, m)
			nc.byName[m.Name] = m
		}
	}
	s.mu.Lock()
	s.catalog = nc
	s.building = nil
	s.mu.Unlock()
	close(ch)
	return nc
}

// routes builds the handler tree.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/catalog", s.handleCatalog)
	mux.HandleFunc("GET /api/v1/series", s.handleSeries)
	mux.HandleFunc("GET /api/v1/graph.png", s.handleGraph("PNG"))
	mux.HandleFunc("GET /api/v1/graph.svg", s.handleGraph("SVG"))
	mux.HandleFunc("GET /api/v1/scoreboard", s.handleScoreboard)
	mux.HandleFunc("GET /api/v1/scoreboards", s.handleScoreboardList)
	mux.HandleFunc("GET /api/v1/host", s.handleHost)
	mux.HandleFunc("GET /api/v1/exporters", s.handleExporters)
	mux.HandleFunc("GET /api/v1/flows", s.handleFlows)
	mux.HandleFunc("GET /api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API route")
	})
	static, _ := fs.Sub(assetFS, "assets")
	files := http.FileServerFS(static)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { s.serveIndex(w, r, static) })
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheFor(files, time.Hour)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	return s.secure(mux)
}

func cacheFor(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(d.Seconds())))
		h.ServeHTTP(w, r)
	})
}

func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request, static fs.FS) {
	b, err := fs.ReadFile(static, "index.html")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "index missing")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(b)
}

// secure wraps every request: read-only methods, authentication, and
// headers that keep the page from being framed or sniffed.
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "read-only: GET and HEAD only")
			return
		}
		if s.users != nil && !s.authorized(r) {
			h.Set("WWW-Authenticate", `Basic realm="flowscan", charset="UTF-8"`)
			writeError(w, http.StatusUnauthorized, "authentication required")
			return
		}
		if len(r.URL.RawQuery) > 8192 {
			writeError(w, http.StatusRequestURITooLong, "query too long")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// apiError is the JSON body of every API error.
type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(apiError{Error: msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.Encode(v)
}
