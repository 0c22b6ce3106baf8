package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flowscan/flowscan/internal/collect"
	"github.com/flowscan/flowscan/internal/config"
	"github.com/flowscan/flowscan/internal/counters"
	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/flowfile"
	"github.com/flowscan/flowscan/internal/metrics"
	"github.com/flowscan/flowscan/internal/reexport"
	"github.com/flowscan/flowscan/internal/relay"
)

// collectFlags are the flags of `flowscan collect`, shared with demo.
type collectFlags struct {
	configFile string
	listen     stringList
	dir        string
	interval   time.Duration
	nest       int
	tz         string
	sockets    int
	rcvbuf     string
	allow      prefixList
	sampling   samplingOverrides
	maxSize    string
	maxAge     string
	exec       string
	metrics    string
	flush      time.Duration
	stateDir   string
	logLevel   string
	templates  int
	forward    destinationList
	reexport   reexportList
	clickhouse clickhouseFlags
	// cfg is the configuration file merged into the flags.
	cfg        *config.Config
	execRunner *execRunner
	// listenFlag is the name of the UDP listen flag ("listen" in collect,
	// "flow-listen" in run, whose --listen is the web server's).
	listenFlag string
}

// reexportList is the repeatable --reexport FORMAT@HOST:PORT flag.
type reexportList []reexport.Config

func (r *reexportList) String() string {
	parts := make([]string, len(*r))
	for i, c := range *r {
		parts[i] = c.Format + "@" + c.Target
	}
	return strings.Join(parts, " ")
}

func (r *reexportList) Set(v string) error {
	c, err := reexport.ParseTarget(v)
	if err != nil {
		return err
	}
	*r = append(*r, c)
	return nil
}

// register defines the flags; listenFlag names the UDP listen flag
// ("listen" for collect; run keeps --listen for the web server).
func (f *collectFlags) register(fs *flag.FlagSet, listenFlag string) {
	f.sampling = samplingOverrides{}
	f.listenFlag = listenFlag
	configUsage := "configuration `FILE` (YAML; its collect: and clickhouse: sections); flags given on the command line override it"
	if listenFlag != "listen" {
		configUsage = "configuration `FILE` (YAML; every section: collect:, scan:, modules:, web:, clickhouse:); flags given on the command line override it"
	}
	fs.StringVar(&f.configFile, "config", "", configUsage)
	fs.Var(&f.listen, listenFlag, "UDP `ADDR:PORT` to receive exports on; repeatable, IPv4 or IPv6 (default \":2055\" and \":6343\"); every address accepts NetFlow v5, v9, IPFIX and sFlow; a bare port means all addresses")
	fs.StringVar(&f.dir, "dir", "flows", "`DIR`ectory of the flow-file archive")
	fs.DurationVar(&f.interval, "interval", flowfile.DefaultInterval, "rotate flow files every `DURATION`, aligned to the clock")
	fs.IntVar(&f.nest, "nest", 0, "date subdirectories like flow-capture -N: 0 none, 1 YYYY, 2 YYYY/YYYY-MM, 3 YYYY/YYYY-MM/YYYY-MM-DD")
	fs.StringVar(&f.tz, "tz", "Local", "time `ZONE` of file names and interval alignment (IANA name, Local or UTC)")
	fs.IntVar(&f.sockets, "sockets", 0, "SO_REUSEPORT sockets per listen address (default: one per CPU, at most 4)")
	fs.StringVar(&f.rcvbuf, "rcvbuf", "4MiB", "socket receive buffer `SIZE` (forced past net.core.rmem_max when root)")
	fs.Var(&f.allow, "allow", "accept exports only from these `PREFIX`es or addresses (repeatable; default: all)")
	fs.Var(f.sampling, "sampling", "fixed sampling rate for an exporter, `EXPORTER=RATE` (repeatable); overrides what the exporter announces")
	fs.StringVar(&f.maxSize, "max-size", "", "expire the oldest files while the archive is larger than `SIZE` (e.g. 50GiB)")
	fs.StringVar(&f.maxAge, "max-age", "", "expire files older than `AGE` (e.g. 30d, 12h)")
	fs.StringVar(&f.exec, "exec", "", "run `COMMAND` (via sh -c) on each completed file; the path is $1 and $FLOWSCAN_FILE")
	fs.StringVar(&f.metrics, "metrics", "127.0.0.1:9155", "serve Prometheus metrics on `ADDR:PORT` at /metrics (empty to disable)")
	fs.DurationVar(&f.flush, "flush", 2*time.Second, "write buffered flows to disk at least this often (bounds what a crash can lose)")
	fs.StringVar(&f.stateDir, "state-dir", "", "where templates are kept across restarts (default DIR/.flowscan)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log `LEVEL`: debug, info, warn, error")
	fs.IntVar(&f.templates, "max-templates", 1024, "templates kept per exporter and domain (template-flood bound)")
	fs.Var(&f.forward, "forward", "also copy every accepted datagram, unchanged, to `DEST` (repeatable; flowscan relay's syntax: HOST:PORT[;exporter=PREFIX,...][;format=netflow9,...][;spoof])")
	fs.Var(&f.reexport, "reexport", "also send the decoded flows on as NetFlow v9 or IPFIX: `FORMAT@HOST:PORT` (netflow9@… or ipfix@…; repeatable)")
	f.clickhouse.register(fs, true)
}

// merge fills the flags not given on the command line from the
// configuration file's collect section.
func (f *collectFlags) merge(fs *flag.FlagSet, cfg *config.Config) error {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	f.cfg = cfg
	f.clickhouse.merge(fs, cfg)
	c := cfg.Collect
	str := func(name string, dst *string, v string) {
		if !set[name] && v != "" {
			*dst = v
		}
	}
	if !set[f.listenFlag] && len(c.Listen) > 0 {
		f.listen = c.Listen
	}
	str("dir", &f.dir, cfg.Resolve(c.Dir))
	if !set["interval"] && c.Interval > 0 {
		f.interval = time.Duration(c.Interval)
	}
	if !set["nest"] && c.Nest != 0 {
		f.nest = c.Nest
	}
	str("tz", &f.tz, c.TZ)
	if !set["sockets"] && c.Sockets != 0 {
		f.sockets = c.Sockets
	}
	str("rcvbuf", &f.rcvbuf, c.RcvBuf)
	if !set["allow"] {
		for _, a := range c.Allow {
			if err := f.allow.Set(a); err != nil {
				return fmt.Errorf("%s: collect.allow: %w", cfg.Path(), err)
			}
		}
	}
	if !set["sampling"] {
		for exp, rate := range c.Sampling {
			if err := f.sampling.Set(fmt.Sprintf("%s=%d", exp, rate)); err != nil {
				return fmt.Errorf("%s: collect.sampling: %w", cfg.Path(), err)
			}
		}
	}
	str("max-size", &f.maxSize, c.MaxSize)
	str("max-age", &f.maxAge, c.MaxAge)
	str("exec", &f.exec, c.Exec)
	if !set["metrics"] && c.Metrics != nil {
		f.metrics = *c.Metrics
	}
	if !set["flush"] && c.Flush > 0 {
		f.flush = time.Duration(c.Flush)
	}
	str("state-dir", &f.stateDir, cfg.Resolve(c.StateDir))
	if !set["max-templates"] && c.MaxTemplates > 0 {
		f.templates = c.MaxTemplates
	}
	return nil
}

// config turns the flags into a collector configuration.
func (f *collectFlags) config(logger *slog.Logger) (collect.Config, error) {
	loc, err := loadLocation(f.tz)
	if err != nil {
		return collect.Config{}, err
	}
	rcvbuf, err := config.ParseSize(f.rcvbuf)
	if err != nil {
		return collect.Config{}, fmt.Errorf("--rcvbuf: %w", err)
	}
	var maxSize int64
	if f.maxSize != "" {
		if maxSize, err = config.ParseSize(f.maxSize); err != nil {
			return collect.Config{}, fmt.Errorf("--max-size: %w", err)
		}
	}
	var maxAge time.Duration
	if f.maxAge != "" {
		if maxAge, err = config.ParseDuration(f.maxAge); err != nil {
			return collect.Config{}, fmt.Errorf("--max-age: %w", err)
		}
	}
	if f.interval < time.Second {
		return collect.Config{}, fmt.Errorf("--interval %v: must be at least 1s", f.interval)
	}
	if f.nest < 0 || f.nest > 3 {
		return collect.Config{}, fmt.Errorf("--nest %d: must be 0..3", f.nest)
	}
	listen := []string(f.listen)
	if len(listen) == 0 {
		listen = []string{":" + strconv.Itoa(collect.DefaultPort), ":" + strconv.Itoa(collect.DefaultSFlowPort)}
	}
	for i, l := range listen {
		if listen[i], err = normalizeListen(l, collect.DefaultPort); err != nil {
			return collect.Config{}, err
		}
	}
	cfg := collect.Config{
		Listen:         listen,
		SocketsPerAddr: f.sockets,
		RcvBuf:         int(rcvbuf),
		Allow:          f.allow,
		StateDir:       f.stateDir,
		Logger:         logger,
		Decode:         decode.Options{MaxTemplates: f.templates},
		Archive: flowfile.Config{
			Dir:           f.dir,
			Interval:      f.interval,
			Location:      loc,
			Nest:          f.nest,
			FlushInterval: f.flush,
			MaxBytes:      maxSize,
			MaxAge:        maxAge,
			Logger:        logger,
		},
	}
	if len(f.sampling) > 0 {
		cfg.Decode.SamplingOverride = f.sampling.lookup
	}
	if h, err := os.Hostname(); err == nil {
		cfg.Archive.Hostname = h
	}
	if f.exec != "" {
		f.execRunner = newExecRunner(f.exec, logger)
		cfg.Archive.OnComplete = f.execRunner.onComplete
	}
	return cfg, nil
}

func runCollect(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("collect", "[flags]",
		"Receives NetFlow v5, NetFlow v9, IPFIX and sFlow v5 exports over UDP and writes them to flow files\n"+
			"rotated every --interval. A file in progress ends in .tmp and is renamed when complete.\n"+
			"SIGHUP completes the current file now; SIGTERM or SIGINT flushes, completes it and exits.", stderr)
	var f collectFlags
	f.register(fs, "listen")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (addresses go in --listen)", fs.Arg(0))
	}
	cfgFile, err := loadConfig(f.configFile)
	if err != nil {
		return err
	}
	if err := f.merge(fs, cfgFile); err != nil {
		return err
	}
	logger, err := newLogger(stderr, f.logLevel)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	c, cleanup, err := f.start(ctx, logger, nil)
	if err != nil {
		return err
	}
	err = c.Run(ctx)
	cleanup()
	logger.Info("stopped")
	return err
}

// start builds a collector from the flags (with its --forward and
// --reexport sinks), serves its metrics and rotates it on SIGHUP.
// onComplete, if set, is called for each completed file (after --exec is
// queued). cleanup closes the sinks; call it after the collector's Run.
func (f *collectFlags) start(ctx context.Context, logger *slog.Logger, onComplete func(string, *flowfile.Meta)) (*collect.Collector, func(), error) {
	cfg, err := f.config(logger)
	if err != nil {
		return nil, nil, err
	}
	// Hold the archive before anything touches it (the ClickHouse spool
	// and the counters live there too); collect.New takes the lock over.
	lock, err := flowfile.LockDir(cfg.Archive.Dir)
	if err != nil {
		return nil, nil, err
	}
	cfg.Archive.Lock = lock
	reg := metrics.NewRegistry()
	cfg.Metrics = reg
	var closers []func() error
	cleanup := func() {
		for _, c := range closers {
			if err := c(); err != nil {
				logger.Error("closing", "err", err)
			}
		}
	}
	if len(f.forward) > 0 {
		fw, err := relay.NewForwarder(f.forward, logger)
		if err != nil {
			lock.Release()
			return nil, nil, err
		}
		cfg.Datagrams = append(cfg.Datagrams, fw)
		reg.Register(fw.WriteMetrics)
		closers = append(closers, fw.Close)
	}
	for _, rc := range f.reexport {
		rc.Logger = logger
		ex, err := reexport.New(rc)
		if err != nil {
			cleanup()
			lock.Release()
			return nil, nil, err
		}
		cfg.Flows = append(cfg.Flows, ex)
		reg.Register(ex.WriteMetrics)
		closers = append(closers, ex.Close)
	}
	if f.clickhouse.enabled() {
		stateDir := f.stateDir
		if stateDir == "" {
			stateDir = filepath.Join(f.dir, ".flowscan")
		}
		sink, err := f.clickhouse.sink(f.cfg, stateDir, logger)
		if err != nil {
			cleanup()
			lock.Release()
			return nil, nil, err
		}
		cfg.Flows = append(cfg.Flows, sink)
		reg.Register(sink.WriteMetrics)
		closers = append(closers, func() error { return sink.Close(10 * time.Second) })
	}
	if onComplete != nil {
		if prev := cfg.Archive.OnComplete; prev != nil {
			cfg.Archive.OnComplete = func(p string, m *flowfile.Meta) { prev(p, m); onComplete(p, m) }
		} else {
			cfg.Archive.OnComplete = onComplete
		}
	}
	if f.execRunner != nil {
		closers = append(closers, f.execRunner.close)
	}
	// Catch SIGHUP before recovering the archive, which can take a while,
	// so that an early one rotates instead of killing the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	closers = append(closers, func() error { signal.Stop(hup); return nil })
	cs, err := counters.New(cfg.Archive.Dir, cfg.Archive.Location, cfg.Archive.MaxAge, logger)
	if err != nil {
		cleanup()
		lock.Release()
		return nil, nil, err
	}
	cfg.Counters = cs
	closers = append(closers, cs.Close)
	reg.Register(func(w *metrics.Writer) {
		written, dropped, errs := cs.Stats()
		w.Sample("flowscan_counter_samples_written_total", metrics.Counter, "Interface counter samples (sFlow) written to DIR/counters.", float64(written))
		w.Sample("flowscan_counter_samples_dropped_total", metrics.Counter, "Interface counter samples dropped because the writer fell behind.", float64(dropped))
		w.Sample("flowscan_counter_write_errors_total", metrics.Counter, "Errors writing interface counter samples.", float64(errs))
	})
	c, err := collect.New(ctx, cfg)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	if f.metrics != "" {
		serveMetrics(f.metrics, reg, logger)
	}
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := c.Rotate(); err != nil {
					logger.Error("rotation on SIGHUP failed", "err", err)
				} else {
					logger.Info("rotated on SIGHUP")
				}
			}
		}
	}()
	logger.Info("collecting", "listen", c.Addrs(), "dir", cfg.Archive.Dir, "interval", cfg.Archive.Interval)
	return c, cleanup, nil
}

// serveMetrics serves reg on addr in the background. A busy port is logged,
// not fatal: losing self-monitoring must not stop collection.
func serveMetrics(addr string, reg *metrics.Registry, logger *slog.Logger) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		logger.Warn("metrics endpoint disabled", "addr", addr, "err", err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", reg)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	logger.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	go srv.Serve(ln)
}

// execRunner runs the --exec command for each completed file, one at a
// time, never blocking the writer.
type execRunner struct {
	cmd    string
	logger *slog.Logger
	queue  chan string
	done   chan struct{}
}

func newExecRunner(cmd string, logger *slog.Logger) *execRunner {
	r := &execRunner{cmd: cmd, logger: logger, queue: make(chan string, 1024), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for path := range r.queue {
			c := exec.Command("sh", "-c", cmd, "flowscan-exec", path)
			c.Env = append(os.Environ(), "FLOWSCAN_FILE="+path)
			out, err := c.CombinedOutput()
			if err != nil {
				logger.Error("--exec command failed", "file", path, "err", err, "output", strings.TrimSpace(string(out)))
			}
		}
	}()
	return r
}

// onComplete is the writer's OnComplete hook.
func (r *execRunner) onComplete(path string, _ *flowfile.Meta) {
	select {
	case r.queue <- path:
	default:
		r.logger.Error("--exec queue full; command skipped", "file", path)
	}
}

// close runs what is queued (the file completed at shutdown included),
// waiting at most a minute.
func (r *execRunner) close() error {
	close(r.queue)
	select {
	case <-r.done:
	case <-time.After(time.Minute):
		r.logger.Error("--exec commands still running after a minute; exiting without them")
	}
	return nil
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func loadLocation(name string) (*time.Location, error) {
	if name == "" || strings.EqualFold(name, "local") {
		return time.Local, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("--tz %q: %w", name, err)
	}
	return loc, nil
}

// normalizeListen accepts "ADDR:PORT", "[V6]:PORT", ":PORT", "PORT" and a
// bare address, and returns ADDR:PORT.
func normalizeListen(s string, defPort int) (string, error) {
	addr, err := config.NormalizeListen(s, defPort)
	if err != nil {
		return "", fmt.Errorf("--listen %w", err)
	}
	return addr, nil
}
