package cli

import (
	"context"
	"fmt"
	"io"

	"os/signal"
	"syscall"
	"time"

	"github.com/flowscan/flowscan/internal/gen"
)

// genFlags are the flags of `flowscan gen`.
type genFlags struct {
	cfg      gen.Config
	progress bool
}

func runGen(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gen", "[flags]",
		"Sends a realistic synthetic traffic mix as NetFlow v5, v9 or IPFIX to a collector (flow-gen\n"+
			"with flow-send). A run is always bounded: by --count, by --duration, or by both.", stderr)
	var f genFlags
	fs.StringVar(&f.cfg.Target, "target", gen.DefaultTarget, "collector `HOST:PORT`")
	fs.StringVar(&f.cfg.Format, "format", gen.FormatV9, "export `FORMAT`: v5, v9 or ipfix")
	fs.Float64Var(&f.cfg.Rate, "rate", 1000, "flows per second (0: as fast as possible)")
	fs.Uint64Var(&f.cfg.Count, "count", 0, fmt.Sprintf("flows to send (default %d when --duration is not set)", gen.DefaultCount))
	fs.DurationVar(&f.cfg.Duration, "duration", 0, "stop after `DURATION`")
	fs.IntVar(&f.cfg.Exporters, "exporters", 1, "simulated exporters (engine / source / domain IDs 1..N)")
	fs.Int64Var(&f.cfg.Seed, "seed", 1, "random seed (the same seed sends the same flows)")
	fs.Float64Var(&f.cfg.IPv6Share, "ipv6", 0.2, "share of IPv6 flows, 0..1 (v9 and IPFIX only)")
	var sampling uint
	fs.UintVar(&sampling, "sampling", 0, "announce 1-in-`N` packet sampling (0: unsampled)")
	fs.IntVar(&f.cfg.TemplateEvery, "template-every", 0, "resend v9/IPFIX templates every `N` datagrams per exporter (default: the generator's)")
	fs.BoolVar(&f.progress, "progress", false, "print progress every second")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	f.cfg.SamplingRate = uint32(sampling)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var progress func(gen.Stats)
	if f.progress {
		progress = func(s gen.Stats) {
			fmt.Fprintf(stderr, "sent %d flows in %d datagrams (%.0f flows/s)\n", s.Flows, s.Datagrams, float64(s.Flows)/max(s.Elapsed.Seconds(), 1e-9))
		}
	}
	st, err := gen.Run(ctx, f.cfg, progress)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sent %d flows (%d packets, %d bytes) in %d datagrams to %s in %v (%.0f flows/s)\n",
		st.Flows, st.Packets, st.Bytes, st.Datagrams, f.cfg.Target, st.Elapsed.Round(time.Millisecond), float64(st.Flows)/max(st.Elapsed.Seconds(), 1e-9))
	return nil
}
