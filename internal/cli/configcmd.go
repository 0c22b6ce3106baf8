package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/flowscan/flowscan/internal/report"
)

func runConfig(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintf(stderr, "Usage: flowscan config check FILE\n\nChecks a configuration file: syntax, unknown keys, values, and every report module's\nsection (as the scanner would build them). Errors name the file and line.\n")
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h") {
			return nil
		}
		return errUsage
	}
	fs := newFlagSet("config check", "FILE", "Checks a configuration file without starting anything.", stderr)
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
		return fmt.Errorf("%s: collect: %w", path, err)
	}
	// Build the modules the scanner would run, in a scratch output
	// directory, so their sections are checked too.
	for name := range cfg.Modules {
		if _, err := report.Lookup(name); err != nil {
			return fmt.Errorf("%s: modules.%s: %w", path, name, err)
		}
	}
	var errs []error
	classes := cfg.Scan.ReportClasses
	for _, name := range classes {
		if _, err := report.Lookup(name); err != nil {
			errs = append(errs, fmt.Errorf("%s: scan.report_classes: %w", path, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if len(classes) > 0 {
		tmp, err := os.MkdirTemp("", "flowscan-config-check")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		sf := scanFlags{dir: tmp, rrdDir: filepath.Join(tmp, "rrd")}
		s, err := sf.scanner(cfg, logger, defaultInterval(cfg))
		if err != nil {
			return err
		}
		s.Close()
	}
	fmt.Fprintf(stdout, "%s: ok (report modules: %s)\n", path, strings.Join(classes, ", "))
	return nil
}
