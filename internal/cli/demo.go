package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/flowscan/flowscan/internal/collect"
	"github.com/flowscan/flowscan/internal/flowfile"
	"github.com/flowscan/flowscan/internal/gen"
)

func runDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "[flags]",
		"Runs a collector on loopback, feeds it NetFlow v5, NetFlow v9 and IPFIX from the built-in\n"+
			"generator for --duration, then prints what it stored: each flow file's metadata and a few flows.\n"+
			"The files stay in --dir for `flowscan dump`.", stderr)
	dir := fs.String("dir", "flowscan-demo", "`DIR`ectory for the demo's flow files")
	duration := fs.Duration("duration", 20*time.Second, "how long the generators send")
	interval := fs.Duration("interval", 10*time.Second, "flow-file rotation interval")
	rate := fs.Float64("rate", 2000, "flows per second per format")
	show := fs.Int("show", 5, "flows to print per file")
	logLevel := fs.String("log-level", "warn", "collector log `LEVEL`")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *duration <= 0 || *duration > time.Hour {
		return fmt.Errorf("--duration %v: must be between 0 and 1h", *duration)
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	cctx, cancelCollector := context.WithCancel(context.Background())
	defer cancelCollector()
	c, err := collect.New(cctx, collect.Config{
		Listen:  []string{"127.0.0.1:0"},
		Logger:  logger,
		Archive: flowfile.Config{Dir: *dir, Interval: *interval, Location: time.Local, Logger: logger},
	})
	if err != nil {
		return err
	}
	addr := c.Addrs()[0]
	done := make(chan error, 1)
	go func() { done <- c.Run(cctx) }()
	fmt.Fprintf(stdout, "collector listening on %s, writing %s every %v\n", addr, *dir, *interval)
	fmt.Fprintf(stdout, "sending NetFlow v5, v9 and IPFIX at %.0f flows/s each for %v ...\n", *rate, *duration)

	var wg sync.WaitGroup
	var mu sync.Mutex
	var sent gen.Stats
	for i, format := range []string{gen.FormatV5, gen.FormatV9, gen.FormatIPFIX} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := gen.Run(ctx, gen.Config{Target: addr, Format: format, Rate: *rate, Duration: *duration,
				Exporters: 2, Seed: int64(i + 1), IPv6Share: 0.2}, nil)
			if err != nil {
				fmt.Fprintf(stderr, "generator %s: %v\n", format, err)
			}
			mu.Lock()
			sent.Flows += st.Flows
			sent.Datagrams += st.Datagrams
			mu.Unlock()
		}()
	}
	wg.Wait()
	time.Sleep(300 * time.Millisecond) // let the last datagrams through the pipeline
	cancelCollector()
	if err := <-done; err != nil {
		return err
	}
	entries, err := flowfile.List(*dir)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	fmt.Fprintf(w, "\nsent %d flows in %d datagrams; stored %d files:\n\n", sent.Flows, sent.Datagrams, len(entries))
	var stored uint64
	d := dumper{w: w, format: "text"}
	for _, e := range entries {
		r, err := flowfile.Open(e.Path)
		if err != nil {
			return err
		}
		m := r.Meta()
		stored += m.Flows
		d.textMeta(e.Path, m)
		recs, _ := r.Next(nil)
		r.Close()
		w.WriteString(textHeader)
		for i := 0; i < len(recs) && i < *show; i++ {
			d.record(&recs[i])
		}
		w.WriteString("\n")
	}
	abs, _ := filepath.Abs(*dir)
	fmt.Fprintf(w, "stored %d of %d flows sent.\nNext: flowscan dump %s | less   (or --format json)\n", stored, sent.Flows, abs)
	return nil
}
