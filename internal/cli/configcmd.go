package cli

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/flowscan/flowscan/internal/report"
)

func runConfig(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintf(stderr, "Usage: flowscan config check FILE\n\nChecks a configuration file without starting anything: syntax, unknown keys, every value\n"+
			"that collect, scan, web or run would refuse, and every report module's section. Errors name\n"+
			"the file and line.\n")
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			return nil
		}
		return errUsage
	}
	fs := newFlagSet("config check", "FILE", "", stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: flowscan config check FILE\n\nChecks a configuration file without starting anything: syntax, unknown keys, every value\n"+
			"that collect, scan, web or run would refuse, and every report module's section. Errors name\n"+
			"the file and line. No flags.\n")
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	path := fs.Arg(0)
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	var cf collectFlags
	cfs := newFlagSet("collect", "", "", io.Discard)
	cf.register(cfs, "listen")
	if err := cf.merge(cfs, cfg); err != nil {
		return err
	}
	logger, _ := newLogger(io.Discard, "error")
	if _, err := cf.config(logger); err != nil {
		return cfg.Locate(err, "collect")
	}
	// Build the modules the scanner would run, and those that have a
	// section (scan --report-classes, or run's default cuflow, may pick
	// them), in a scratch output directory, so their sections are checked
	// too.
	var errs []error
	classes := cfg.Scan.ReportClasses
	for i, name := range classes {
		if _, err := report.Lookup(name); err != nil {
			errs = append(errs, cfg.LocateItem(err, i, "scan", "report_classes"))
		}
	}
	build := append([]string(nil), classes...)
	for _, name := range slices.Sorted(maps.Keys(cfg.Modules)) {
		if _, err := report.Lookup(name); err != nil {
			errs = append(errs, cfg.Locate(err, "modules", name))
			continue
		}
		if !contains(build, name) {
			build = append(build, name)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	tmp, err := os.MkdirTemp("", "flowscan-config-check")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if len(build) > 0 {
		// The journal goes to the scratch directory, not scan.state_dir,
		// which a running scanner may hold.
		scratch := *cfg
		scratch.Scan.StateDir = ""
		sf := scanFlags{dir: tmp, rrdDir: filepath.Join(tmp, "rrd"), classes: build}
		s, err := sf.scanner(&scratch, logger, defaultInterval(cfg))
		if err != nil {
			return err
		}
		s.Close()
	}
	// What the web server reads of the module sections and the
	// clickhouse section.
	var wf webFlags
	if _, err := wf.config(cfg, filepath.Join(tmp, "rrd"), tmp, nil, logger, nil); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var chf clickhouseFlags
	chf.merge(newFlagSet("web", "", "", io.Discard), cfg)
	if chf.enabled() {
		if _, _, err := chf.resolve(cfg); err != nil {
			return cfg.Locate(err, "clickhouse")
		}
	}
	if len(classes) == 0 {
		fmt.Fprintf(stdout, "%s: ok (no scan.report_classes: scan needs --report-classes, run runs cuflow)\n", path)
		return nil
	}
	fmt.Fprintf(stdout, "%s: ok (report modules: %s)\n", path, strings.Join(classes, ", "))
	return nil
}
