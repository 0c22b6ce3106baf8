package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/flowscan/flowscan/internal/flowfile"
	"github.com/flowscan/flowscan/internal/rrd"
	"github.com/flowscan/flowscan/internal/web"
)

func runRun(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", "[flags]",
		"Runs the collector, the scanner and the web dashboard in one process from one configuration\n"+
			"file: flows are received (--flow-listen, default :2055 and :6343), written to flow files,\n"+
			"each completed file is scanned by the report modules, and the dashboard (--listen, default\n"+
			"127.0.0.1:8080) shows the graphs. Without a configuration it collects into ./flows and runs\n"+
			"cuflow into ./rrd.", stderr)
	var cf collectFlags
	cf.register(fs, "flow-listen")
	var sf scanFlags
	fs.StringVar(&sf.rrdDir, "rrd-dir", "", "`DIR`ectory for RRD files and scoreboards (default: scan.rrd_dir or ./rrd)")
	fs.StringVar(&sf.cuflow, "cuflow", "", "run the cuflow module with this CUFlow.cf `FILE`")
	fs.Var(&sf.classes, "report-classes", "report `MODULES` to run, in order (default: scan.report_classes, else cuflow)")
	fs.StringVar(&sf.after, "after", "", "what to do with a scanned file: keep (default), delete or save")
	fs.StringVar(&sf.cached, "rrdcached", "", "rrdcached `ADDRESS`")
	var wf webFlags
	wf.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg, err := loadConfig(cf.configFile)
	if err != nil {
		return err
	}
	if err := cf.merge(fs, cfg); err != nil {
		return err
	}
	logger, err := newLogger(stderr, cf.logLevel)
	if err != nil {
		return err
	}
	sf.dir = cf.dir
	sf.logLevel = cf.logLevel
	if len(sf.classes) == 0 && len(cfg.Scan.ReportClasses) == 0 && sf.cuflow == "" {
		sf.classes = stringList{"cuflow"}
	}
	// The collector creates the flow directory too, but the scanner
	// opens it first.
	if err := os.MkdirAll(cf.dir, 0o755); err != nil {
		return err
	}
	s, err := sf.scanner(cfg, logger, cf.interval)
	if err != nil {
		return err
	}
	defer s.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	c, cleanup, err := cf.start(ctx, logger, func(string, *flowfile.Meta) { s.Notify() })
	if err != nil {
		return err
	}
	defer cleanup()
	rrdDir := firstNonEmpty(sf.rrdDir, cfg.Resolve(cfg.Scan.RRDDir), "rrd")
	wc, err := wf.config(cfg, rrdDir, cf.dir, rrd.New(firstNonEmpty(sf.cached, cfg.Scan.RRDCached)), logger, newLiveExporters(c))
	if err == nil {
		// The collector's --clickhouse servers also feed the dashboard's
		// clickhouse module.
		wc.ClickHouse, err = webClickHouse(&cf.clickhouse, cfg)
	}
	if err != nil {
		stop()
		c.Run(ctx)
		return err
	}
	srv, err := web.New(wc)
	if err == nil {
		err = srv.Listen()
	}
	if err != nil {
		stop()
		c.Run(ctx)
		return fmt.Errorf("web server: %w", err)
	}
	logger.Info("dashboard", "url", srv.URL())
	var wg sync.WaitGroup
	var scanErr, webErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		scanErr = s.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		webErr = srv.Serve(ctx)
	}()
	collectErr := c.Run(ctx)
	wg.Wait()
	logger.Info("stopped")
	return errors.Join(collectErr, scanErr, webErr)
}
