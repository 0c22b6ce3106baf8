package jkflow

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/report"
	"github.com/flowscan/flowscan/internal/rrd"
)

func init() {
	report.Register("jkflow", func(env *report.Env, decode report.Decoder) (report.Module, error) {
		var cfg Config
		if err := decode(&cfg); err != nil {
			return nil, err
		}
		return New(env, &cfg)
	})
}

// dsNames are the data sources of every RRD file, in order.
var dsNames = []string{"in_bytes", "out_bytes", "in_pkts", "out_pkts", "in_flows", "out_flows"}

// Module is the jkflow report module.
type Module struct {
	env    *report.Env
	cfg    *Config
	outDir string
	m      *model
	file   *report.File
	keys   keys // scratch for Wanted
}

// New builds the module from a configuration.
func New(env *report.Env, cfg *Config) (*Module, error) {
	m, err := compile(cfg)
	if err != nil {
		return nil, fmt.Errorf("jkflow: %w", err)
	}
	if cfg.SampleTime < 0 {
		return nil, fmt.Errorf("jkflow: sample_time %d is negative", cfg.SampleTime)
	}
	if env.Interval < time.Second {
		return nil, fmt.Errorf("jkflow: interval %v shorter than a second", env.Interval)
	}
	out := env.OutputDir
	if cfg.OutputDir != "" {
		out = cfg.OutputDir
		if !filepath.IsAbs(out) && env.BaseDir != "" {
			out = filepath.Join(env.BaseDir, out)
		}
	}
	if out == "" {
		return nil, errors.New("jkflow: no output directory")
	}
	return &Module{env: env, cfg: cfg, outDir: out, m: m}, nil
}

// Name returns "jkflow".
func (*Module) Name() string { return "jkflow" }

// PerFile starts a file: all counters are zeroed.
func (mod *Module) PerFile(f *report.File) error {
	mod.file = f
	for _, d := range mod.m.flat {
		clear(d.counts)
		if d.score != nil {
			d.score.reset()
		}
	}
	return nil
}

// Wanted counts one flow for "all" and every direction it matches. It
// does not allocate (scoreboard maps only grow while a new host or port
// is first seen).
func (mod *Module) Wanted(r *flow.Record) bool {
	hit := false
	parent := wayOut
	k := &mod.keys
	k.src, k.dst = keyOf(r.SrcAddr), keyOf(r.DstAddr)
	if a := mod.m.all; a != nil {
		if w := a.way(r, k, wayOut); w >= 0 {
			a.add(r, w)
			hit = true
			parent = w
		}
	}
	if match(mod.m.top, mod.m.other, r, k, parent) {
		hit = true
	}
	return hit
}

// Report writes the file's counts into the RRD files (creating them as
// needed) and the scoreboards. Updates at an already stored time are
// skipped, so reporting a file again changes nothing.
func (mod *Module) Report() error {
	f := mod.file
	if f == nil {
		return errors.New("jkflow: Report without PerFile")
	}
	step := mod.env.Interval
	ds := rrd.FlowDS(step, dsNames...)
	rras := rrd.FlowScanRRAs(step)
	var errs []error
	skipped := 0
	for _, d := range mod.m.flat {
		for i, n := range d.cs.names {
			path := filepath.Join(mod.outDir, filepath.FromSlash(d.path), n+".rrd")
			if err := mod.env.RRD.Create(path, step, f.Start, ds, rras); err != nil {
				errs = append(errs, err)
				continue
			}
			c := &d.counts[i]
			err := mod.env.RRD.UpdateSpan(path, step, f.Start, f.End,
				float64(c[0]), float64(c[1]), float64(c[2]), float64(c[3]), float64(c[4]), float64(c[5]))
			if errors.Is(err, rrd.ErrPastUpdate) {
				skipped++
				continue
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
		if d.score != nil {
			secs := float64(mod.cfg.SampleTime)
			if secs == 0 {
				secs = f.Duration().Seconds()
			}
			dir := filepath.Join(mod.outDir, filepath.FromSlash(d.path), "scoreboard")
			if err := d.score.write(dir, d.path, f, secs); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if skipped > 0 && mod.env.Logger != nil {
		mod.env.Logger.Info("jkflow: file already reported, RRD updates skipped", "file", f.Path, "rrds", skipped)
	}
	return errors.Join(errs...)
}
