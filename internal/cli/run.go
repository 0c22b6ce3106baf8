package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"sync"
	"syscall"

	"github.com/flowscan/flowscan/internal/flowfile"
)

func runRun(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", "[flags]",
		"Runs the collector and the scanner in one process from one configuration file: flows are\n"+
			"received, written to flow files, and each completed file is scanned at once by the report\n"+
			"modules. Without a configuration it collects on :2055 into ./flows and runs cuflow into ./rrd.", stderr)
	var cf collectFlags
	cf.register(fs, "flow-listen")
	var sf scanFlags
	fs.StringVar(&sf.rrdDir, "rrd-dir", "", "`DIR`ectory for RRD files and scoreboards (default: scan.rrd_dir or ./rrd)")
	fs.StringVar(&sf.cuflow, "cuflow", "", "run the cuflow module with this CUFlow.cf `FILE`")
	fs.Var(&sf.classes, "report-classes", "report `MODULES` to run, in order (default: scan.report_classes, else cuflow)")
	fs.StringVar(&sf.after, "after", "", "what to do with a scanned file: keep (default), delete or save")
	fs.StringVar(&sf.cached, "rrdcached", "", "rrdcached `ADDRESS`")
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
	s, err := sf.scanner(cfg, logger, cf.interval)
	if err != nil {
		return err
	}
	defer s.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	c, err := cf.start(ctx, logger, func(string, *flowfile.Meta) { s.Notify() })
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	var scanErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		scanErr = s.Run(ctx)
	}()
	collectErr := c.Run(ctx)
	wg.Wait()
	logger.Info("stopped")
	return errors.Join(collectErr, scanErr)
}
