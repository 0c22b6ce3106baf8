package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/flowscan/flowscan/internal/config"
	"github.com/flowscan/flowscan/internal/flowfile"
	"github.com/flowscan/flowscan/internal/report"
	"github.com/flowscan/flowscan/internal/rrd"
	"github.com/flowscan/flowscan/internal/scan"
)

// scanFlags are the flags of `flowscan scan`, shared with run.
type scanFlags struct {
	config   string
	dir      string
	rrdDir   string
	cuflow   string
	classes  stringList
	after    string
	cached   string
	poll     time.Duration
	logLevel string
	// stateDir keeps the scan journal (default: scan.state_dir, else
	// DIR/.flowscan).
	stateDir string
}

func runScan(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("scan", "[flags]",
		"Runs report modules (cuflow, jkflow, campusio, subnetio) over each completed flow file, once\n"+
			"and in time order, and keeps their RRD files and scoreboards. Without --once it keeps\n"+
			"watching the directory. Reads flowscan's own files and flow-tools (flow-capture) files.\n\n"+
			"  flowscan scan --dir FLOWDIR --cuflow CUFlow.cf --once", stderr)
	var f scanFlags
	fs.StringVar(&f.config, "config", "", "configuration `FILE` (YAML); flags override it")
	fs.StringVar(&f.dir, "dir", "", "flow `DIR`ectory to scan (default: scan.dir, collect.dir, or ./flows)")
	fs.StringVar(&f.rrdDir, "rrd-dir", "", "`DIR`ectory for RRD files and scoreboards (default: scan.rrd_dir or ./rrd)")
	fs.StringVar(&f.cuflow, "cuflow", "", "run the cuflow module with this CUFlow.cf `FILE`")
	fs.Var(&f.classes, "report-classes", "report `MODULES` to run, in order (comma-separated; default: scan.report_classes)")
	fs.StringVar(&f.after, "after", "", "what to do with a scanned file: keep (default), delete or save (move into DIR/saved/)")
	fs.StringVar(&f.cached, "rrdcached", "", "rrdcached `ADDRESS` (unix:/path or host:port)")
	fs.DurationVar(&f.poll, "poll", 0, "how often to look for new files (default 5s)")
	fs.StringVar(&f.stateDir, "state-dir", "", "`DIR`ectory of the scan journal, the record of scanned files (default: scan.state_dir, else DIR/.flowscan); give another one to scan the same files again, with other modules")
	once := fs.Bool("once", false, "scan what is there, then exit (for cron and scripts)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `LEVEL`")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	logger, err := newLogger(stderr, f.logLevel)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(f.config)
	if err != nil {
		return err
	}
	dir := firstNonEmpty(f.dir, cfg.Resolve(cfg.Scan.Dir), cfg.Resolve(cfg.Collect.Dir), "flows")
	s, err := f.scanner(cfg, logger, scanInterval(cfg, dir))
	if err != nil {
		return err
	}
	defer s.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *once {
		st, err := s.Pass(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "scanned %d files, %d flows\n", st.Files, st.Flows)
		return nil
	}
	return s.Run(ctx)
}

// loadConfig reads the configuration file, or returns an empty one.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Parse("", nil)
	}
	return config.Load(path)
}

func defaultInterval(cfg *config.Config) time.Duration {
	if cfg.Collect.Interval > 0 {
		return time.Duration(cfg.Collect.Interval)
	}
	return flowfile.DefaultInterval
}

// scanInterval is the RRD step for scanning dir: collect.interval when the
// configuration sets it, else the interval of the archive's recent native
// files (the longest of the last five: a SIGHUP makes files shorter),
// else five minutes.
func scanInterval(cfg *config.Config, dir string) time.Duration {
	if cfg.Collect.Interval > 0 {
		return time.Duration(cfg.Collect.Interval)
	}
	entries, err := flowfile.List(dir)
	if err != nil || len(entries) == 0 {
		return flowfile.DefaultInterval
	}
	var longest time.Duration
	for _, e := range entries[max(0, len(entries)-5):] {
		r, err := flowfile.Open(e.Path)
		if err != nil {
			continue
		}
		if m := r.Meta(); m.Complete {
			longest = max(longest, m.End.Sub(m.Start).Round(time.Second))
		}
		r.Close()
	}
	if longest < time.Second || longest > 24*time.Hour {
		return flowfile.DefaultInterval
	}
	return longest
}

// scanner builds a scanner from the configuration and the flags.
func (f *scanFlags) scanner(cfg *config.Config, logger *slog.Logger, interval time.Duration) (*scan.Scanner, error) {
	dir := firstNonEmpty(f.dir, cfg.Resolve(cfg.Scan.Dir), cfg.Resolve(cfg.Collect.Dir), "flows")
	rrdDir := firstNonEmpty(f.rrdDir, cfg.Resolve(cfg.Scan.RRDDir), "rrd")
	classes := []string(f.classes)
	fromConfig := len(classes) == 0
	if fromConfig {
		classes = cfg.Scan.ReportClasses
	}
	if f.cuflow != "" {
		if err := setModuleKey(cfg, "cuflow", "cf", absPath(f.cuflow)); err != nil {
			return nil, err
		}
		if !contains(classes, "cuflow") {
			classes = append(classes, "cuflow")
		}
	}
	if len(classes) == 0 {
		return nil, errors.New("no report modules: give --cuflow CUFlow.cf, --report-classes, or scan.report_classes in --config")
	}
	client := rrd.New(firstNonEmpty(f.cached, cfg.Scan.RRDCached))
	var modules []report.Module
	for i, name := range classes {
		factory, err := report.Lookup(name)
		if err != nil {
			if fromConfig {
				return nil, cfg.LocateItem(err, i, "scan", "report_classes")
			}
			return nil, err
		}
		// Relative paths resolve against the configuration file's
		// directory; with only --cuflow, against the CUFlow.cf's, where
		// FlowScan ran from.
		base := cfg.BaseDir()
		if base == "" && f.cuflow != "" {
			base = filepath.Dir(absPath(f.cuflow))
		}
		if base == "" {
			base, _ = os.Getwd()
		}
		m, err := factory(&report.Env{RRD: client, Logger: logger.With("module", name), Interval: interval,
			OutputDir: filepath.Join(rrdDir, name), BaseDir: base}, cfg.ModuleDecoder(name))
		if err != nil {
			return nil, cfg.LocateModuleError(name, fmt.Errorf("module %s: %w", name, err))
		}
		modules = append(modules, m)
	}
	poll := f.poll
	if poll == 0 {
		poll = time.Duration(cfg.Scan.Poll)
	}
	return scan.New(scan.Config{Dir: dir, StateDir: firstNonEmpty(f.stateDir, cfg.Resolve(cfg.Scan.StateDir)), Modules: modules,
		After: firstNonEmpty(f.after, cfg.Scan.After), Poll: poll, Logger: logger, MaxAttempts: cfg.Scan.MaxAttempts})
}

// setModuleKey sets key: value in module name's configuration section.
func setModuleKey(cfg *config.Config, name, key, value string) error {
	if cfg.Modules == nil {
		cfg.Modules = map[string]yaml.Node{}
	}
	n := cfg.Modules[name]
	if n.Kind == 0 {
		n = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("modules.%s in %s is not a mapping", name, cfg.Path())
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			n.Content[i+1] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
			cfg.Modules[name] = n
			return nil
		}
	}
	n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value})
	cfg.Modules[name] = n
	return nil
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
