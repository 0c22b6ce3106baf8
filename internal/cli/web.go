package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/flowscan/flowscan/internal/config"
	"github.com/flowscan/flowscan/internal/report/cuflow"
	"github.com/flowscan/flowscan/internal/rrd"
	"github.com/flowscan/flowscan/internal/web"
)

func init() {
	register(60, "web", "serve the dashboard: graphs of the RRD files, top talkers, exporters, JSON API", runWeb)
}

// webFlags are the web server's flags, shared by web, run and demo.
type webFlags struct {
	listen, htpasswd, tlsCert, tlsKey, title, scoreboard, aggregate string
}

// register adds the web flags to fs.
func (w *webFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&w.listen, "listen", "", "web server `ADDR:PORT` (default: web.listen, else "+web.DefaultListen+": loopback only)")
	fs.StringVar(&w.htpasswd, "htpasswd", "", "require HTTP basic auth with the users of this `FILE` (bcrypt lines, htpasswd -B)")
	fs.StringVar(&w.tlsCert, "tls-cert", "", "serve HTTPS with this certificate `FILE` (PEM; needs --tls-key)")
	fs.StringVar(&w.tlsKey, "tls-key", "", "private key `FILE` for --tls-cert (PEM)")
	fs.StringVar(&w.title, "title", "", "organisation name shown in the page and graphs")
	fs.StringVar(&w.scoreboard, "scoreboard", "", "cuflow scoreboard `DIR`ectory (default: from the configuration, else RRD_DIR/cuflow/scoreboard)")
	fs.StringVar(&w.aggregate, "aggregate", "", "cuflow aggregate score data `FILE` (default: from the configuration)")
}

// moduleOutputs is what the web server needs from a module's section.
type moduleOutputs struct {
	CF         string `yaml:"cf"`
	OutputDir  string `yaml:"output_dir"`
	Scoreboard *struct {
		Dir string `yaml:"dir"`
	} `yaml:"scoreboard"`
	AggregateScore *struct {
		DataFile string `yaml:"data_file"`
	} `yaml:"aggregate_score"`
}

// config builds the web server's configuration: module directories from
// rrdDir and the modules' output_dir settings, cuflow's scoreboard and
// aggregate files from its section (or its CUFlow.cf), flags last.
func (w *webFlags) config(cfg *config.Config, rrdDir, flowDir string, client *rrd.Client, logger *slog.Logger, live web.LiveSource) (web.Config, error) {
	wc := web.Config{
		Listen:   firstNonEmpty(w.listen, cfg.Web.Listen, web.DefaultListen),
		RRDDir:   rrdDir,
		FlowDir:  flowDir,
		RRD:      client,
		HTPasswd: cfg.Resolve(w.htpasswd),
		TLSCert:  w.tlsCert, TLSKey: w.tlsKey,
		Title:   w.title,
		Live:    live,
		Logger:  logger,
		Modules: map[string]string{},
	}
	base := cfg.BaseDir()
	resolve := func(dir, p string) string {
		if p == "" || filepath.IsAbs(p) || dir == "" {
			return p
		}
		return filepath.Join(dir, p)
	}
	for name, node := range cfg.Modules {
		var mo moduleOutputs
		if err := node.Decode(&mo); err != nil {
			return wc, fmt.Errorf("modules.%s: %w", name, err)
		}
		if name == "cuflow" && mo.CF != "" {
			cf, err := cuflow.ParseCF(resolve(base, mo.CF))
			if err != nil {
				return wc, err
			}
			if mo.OutputDir == "" {
				mo.OutputDir = cf.OutputDir
			}
			if mo.Scoreboard == nil && cf.Scoreboard != nil {
				mo.Scoreboard = &struct {
					Dir string `yaml:"dir"`
				}{cf.Scoreboard.Dir}
			}
			if mo.AggregateScore == nil && cf.AggregateScore != nil {
				mo.AggregateScore = &struct {
					DataFile string `yaml:"data_file"`
				}{cf.AggregateScore.DataFile}
			}
		}
		if mo.OutputDir != "" {
			wc.Modules[name] = resolve(base, mo.OutputDir)
		}
		if name == "cuflow" {
			if mo.Scoreboard != nil && mo.Scoreboard.Dir != "" {
				wc.ScoreboardDir = resolve(base, mo.Scoreboard.Dir)
			}
			if mo.AggregateScore != nil && mo.AggregateScore.DataFile != "" {
				wc.AggregateFile = resolve(base, mo.AggregateScore.DataFile)
			}
		}
	}
	if w.scoreboard != "" {
		wc.ScoreboardDir = w.scoreboard
	}
	if w.aggregate != "" {
		wc.AggregateFile = w.aggregate
	}
	if w.htpasswd != "" {
		wc.HTPasswd = w.htpasswd
	}
	return wc, nil
}

// webClickHouse is the web server's ClickHouse backend from the
// --clickhouse flags and the config's clickhouse section (nil when no
// server is configured).
func webClickHouse(f *clickhouseFlags, cfg *config.Config) (*web.ClickHouse, error) {
	if !f.enabled() {
		return nil, nil
	}
	clients, schema, err := f.resolve(cfg)
	if err != nil {
		return nil, err
	}
	return &web.ClickHouse{Clients: clients, Schema: schema}, nil
}

func runWeb(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("web", "[flags]",
		"Serves the dashboard at / : graphs of the report modules' RRD files (out stacked above the\n"+
			"axis, in below, as CUGrapher drew them), cuflow's top talkers, the exporters' health from\n"+
			"the flow files, and the JSON API behind them (/api/v1/...). Read-only; loopback unless\n"+
			"--listen says otherwise. With --clickhouse, the module \"clickhouse\" graphs and ranks the\n"+
			"flows stored in ClickHouse. See docs/web.md.\n\n"+
			"  flowscan web --config flowscan.yaml --listen 127.0.0.1:8080\n"+
			"  flowscan web --clickhouse http://127.0.0.1:8123/flowscan", stderr)
	var wf webFlags
	wf.register(fs)
	var chf clickhouseFlags
	chf.register(fs, false)
	configPath := fs.String("config", "", "configuration `FILE` (YAML); flags override it")
	rrdDirFlag := fs.String("rrd-dir", "", "`DIR`ectory of the RRD files (default: scan.rrd_dir or ./rrd)")
	dirFlag := fs.String("dir", "", "flow `DIR`ectory, for the exporters page (default: scan.dir, collect.dir or ./flows)")
	cached := fs.String("rrdcached", "", "rrdcached `ADDRESS` (unix:/path or host:port)")
	logLevel := fs.String("log-level", "info", "log `LEVEL`")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "flowscan web: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	cfg := &config.Config{}
	if *configPath != "" {
		if cfg, err = config.Load(*configPath); err != nil {
			return err
		}
	}
	chf.merge(fs, cfg)
	rrdDir := firstNonEmpty(*rrdDirFlag, cfg.Resolve(cfg.Scan.RRDDir), "rrd")
	flowDir := firstNonEmpty(*dirFlag, cfg.Resolve(cfg.Scan.Dir), cfg.Resolve(cfg.Collect.Dir), "flows")
	client := rrd.New(firstNonEmpty(*cached, cfg.Scan.RRDCached))
	wc, err := wf.config(cfg, rrdDir, flowDir, client, logger, nil)
	if err != nil {
		return err
	}
	if wc.ClickHouse, err = webClickHouse(&chf, cfg); err != nil {
		return err
	}
	srv, err := web.New(wc)
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	from := rrdSources(wc)
	if wc.ClickHouse != nil {
		from += ", ClickHouse " + wc.ClickHouse.Clients[0].Addr() + " database " + wc.ClickHouse.Schema.Database
	}
	fmt.Fprintf(stdout, "flowscan web: dashboard at %s (%s)\n", srv.URL(), from)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return srv.Serve(ctx)
}

// rrdSources says where the dashboard reads RRD files: each module's
// output_dir from the configuration, and RRD_DIR/<module> for the
// built-in modules without one.
func rrdSources(wc web.Config) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(wc.Modules)) {
		parts = append(parts, name+" in "+wc.Modules[name])
	}
	others := 0
	for _, name := range []string{"cuflow", "jkflow", "campusio", "subnetio"} {
		if _, ok := wc.Modules[name]; !ok {
			others++
		}
	}
	if len(parts) == 0 {
		return "RRD files in " + filepath.Join(wc.RRDDir, "MODULE")
	}
	if others > 0 && wc.RRDDir != "" {
		parts = append(parts, "other modules in "+filepath.Join(wc.RRDDir, "MODULE"))
	}
	return "RRD files of " + strings.Join(parts, ", ")
}
