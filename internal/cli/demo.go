package cli

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/flowscan/flowscan/internal/collect"
	"github.com/flowscan/flowscan/internal/config"
	"github.com/flowscan/flowscan/internal/flowfile"
	"github.com/flowscan/flowscan/internal/gen"
	"github.com/flowscan/flowscan/internal/rrd"
	"github.com/flowscan/flowscan/internal/web"
)

// demoConfig describes the generator's traffic to the cuflow module: its
// inside networks, and the services and protocols it sends.
const demoConfig = `
scan:
  report_classes: [cuflow]
modules:
  cuflow:
    subnets: [10.0.0.0/16, 2001:db8::/48]
    networks:
      - {name: servers, prefixes: [10.0.0.0/18]}
      - {name: clients, prefixes: [10.0.64.0/18, 10.0.128.0/17]}
      - {name: ipv6, prefixes: ["2001:db8::/48"]}
    services:
      - {name: web, ports: [80/tcp, 443/tcp, 443/udp, 8080/tcp]}
      - {name: dns, ports: [53/udp, 53/tcp]}
      - {name: ssh, ports: [22/tcp]}
      - {name: mail, ports: [25/tcp, 587/tcp, 993/tcp]}
    protocols:
      - {number: "6", name: tcp}
      - {number: "17", name: udp}
      - {number: "1", name: icmp}
    tos:
      - {name: best_effort, values: "0"}
      - {name: marked, values: "1-255"}
    scoreboard: {top_n: 10, dir: %q, current_link: %q}
`

func runDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "[flags]",
		"Runs flowscan end to end on loopback: first --backfill of generated history (flow files,\n"+
			"scanned by the cuflow module into RRD files and scoreboards), then a collector fed with\n"+
			"NetFlow v5, NetFlow v9 and IPFIX by the built-in generator, with the scanner running over\n"+
			"each completed file. After --duration it prints what was stored. The files stay in --dir for\n"+
			"`flowscan dump`, rrdtool and the scoreboard pages.", stderr)
	dir := fs.String("dir", "flowscan-demo", "`DIR`ectory for the demo's flow files (DIR/flows) and RRD files (DIR/rrd)")
	backfillSpan := fs.Duration("backfill", 0, "generate this much history before going live (e.g. 168h for a week of 5-minute files)")
	peak := fs.Int("backfill-flows", 6000, "flows per interval at the daily peak of the backfilled history")
	duration := fs.Duration("duration", 20*time.Second, "how long the generators send live traffic")
	interval := fs.Duration("interval", 5*time.Second, "flow-file rotation interval (and RRD step); with --backfill use 5m")
	rate := fs.Float64("rate", 2000, "live flows per second per format")
	show := fs.Int("show", 3, "flows to print from the middle file")
	logLevel := fs.String("log-level", "warn", "log `LEVEL`")
	var wf webFlags
	wf.register(fs)
	fs.Lookup("listen").Usage = "also serve the dashboard on `ADDR:PORT` (none without this flag); with it --duration defaults to 24h, until Ctrl-C"
	fs.Lookup("duration").Usage = "how long the generators send live traffic (24h, until Ctrl-C, when --listen is given)"
	if err := parse(fs, args); err != nil {
		return err
	}
	serveWeb := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "listen" {
			serveWeb = true
		}
	})
	if serveWeb {
		durationSet := false
		fs.Visit(func(f *flag.Flag) { durationSet = durationSet || f.Name == "duration" })
		if !durationSet {
			*duration = 24 * time.Hour // until interrupted
		}
	}
	if *duration <= 0 || *duration > 24*time.Hour {
		return fmt.Errorf("--duration %v: must be between 0 and 24h", *duration)
	}
	if *interval < time.Second {
		return fmt.Errorf("--interval %v: must be at least 1s", *interval)
	}
	if *backfillSpan < 0 || *backfillSpan > 5*365*24*time.Hour {
		return fmt.Errorf("--backfill %v: must be between 0 and 5 years", *backfillSpan)
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	flowDir, rrdDir := filepath.Join(*dir, "flows"), filepath.Join(*dir, "rrd")
	if err := os.MkdirAll(flowDir, 0o755); err != nil {
		return err
	}
	absRRD, err := filepath.Abs(rrdDir)
	if err != nil {
		return err
	}
	scoreDir := filepath.Join(absRRD, "cuflow", "scoreboard")
	cfg, err := config.Parse("", []byte(fmt.Sprintf(demoConfig, scoreDir, filepath.Join(scoreDir, "current.html"))))
	if err != nil {
		return fmt.Errorf("demo configuration: %w", err)
	}
	sf := scanFlags{dir: flowDir, rrdDir: rrdDir, poll: time.Second}
	s, err := sf.scanner(cfg, logger, *interval)
	if err != nil {
		return err
	}
	defer s.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	liveStart := time.Now()
	if *backfillSpan > 0 {
		to := alignedStart(time.Now(), *interval)
		from := to.Add(-*backfillSpan)
		if entries, _ := flowfile.List(flowDir); len(entries) > 0 {
			if last := entries[len(entries)-1].Start; !last.Before(from) {
				from = alignedStart(last, *interval).Add(*interval)
			}
		}
		if from.Before(to) {
			fmt.Fprintf(stdout, "backfilling %v of history (%s to %s) into %s ...\n", to.Sub(from).Round(time.Minute), from.Format(time.DateTime), to.Format(time.DateTime), flowDir)
			n, err := backfill(flowDir, from, to, *interval, *peak, time.Local, stdout)
			if err != nil {
				return fmt.Errorf("backfill: %w", err)
			}
			fmt.Fprintf(stdout, "wrote %d flows; scanning them with cuflow ...\n", n)
			st, err := s.Pass(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "scanned %d files in %v\n", st.Files, time.Since(liveStart).Round(time.Second))
		}
	}

	cctx, cancelCollector := context.WithCancel(context.Background())
	defer cancelCollector()
	c, err := collect.New(cctx, collect.Config{
		Listen: []string{"127.0.0.1:0"},
		Logger: logger,
		Archive: flowfile.Config{Dir: flowDir, Interval: *interval, Location: time.Local, Logger: logger,
			OnComplete: func(string, *flowfile.Meta) { s.Notify() }},
	})
	if err != nil {
		return err
	}
	addr := c.Addrs()[0]
	collected := make(chan error, 1)
	go func() { collected <- c.Run(cctx) }()
	sctx, cancelScanner := context.WithCancel(context.Background())
	defer cancelScanner()
	scanned := make(chan error, 1)
	go func() { scanned <- s.Run(sctx) }()

	fmt.Fprintf(stdout, "collector on %s writing %s every %v; scanner running cuflow into %s\n", addr, flowDir, *interval, rrdDir)
	webDone := make(chan error, 1)
	if serveWeb {
		wc, err := wf.config(cfg, rrdDir, flowDir, rrd.New(""), logger, newLiveExporters(c))
		if err != nil {
			return err
		}
		srv, err := web.New(wc)
		if err == nil {
			err = srv.Listen()
		}
		if err != nil {
			return fmt.Errorf("web server: %w", err)
		}
		go func() { webDone <- srv.Serve(ctx) }()
		fmt.Fprintf(stdout, "dashboard: %s\n", srv.URL())
	} else {
		webDone <- nil
	}
	fmt.Fprintf(stdout, "sending NetFlow v5, v9 and IPFIX at %.0f flows/s each for %v (Ctrl-C stops) ...\n", *rate, *duration)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sent gen.Stats
	for i, format := range []string{gen.FormatV5, gen.FormatV9, gen.FormatIPFIX} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := gen.Run(ctx, gen.Config{Target: addr, Format: format, Rate: *rate, Duration: *duration,
				Exporters: 2, Seed: int64(i + 1), IPv6Share: 0.2}, nil)
			if err != nil && ctx.Err() == nil {
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
	if err := <-collected; err != nil {
		cancelScanner()
		return err
	}
	// Scan the file the collector completed on exit, then stop.
	cancelScanner()
	<-scanned
	if _, err := s.Pass(context.Background()); err != nil {
		return err
	}
	stop()
	if err := <-webDone; err != nil {
		return err
	}
	return demoSummary(stdout, flowDir, rrdDir, *show, sent, alignedStart(liveStart, *interval))
}

// alignedStart returns the start of the interval containing t, aligned
// like the collector's files (in local time).
func alignedStart(t time.Time, interval time.Duration) time.Time {
	_, off := t.Zone()
	shift := time.Duration(off) * time.Second
	return t.Add(shift).Truncate(interval).Add(-shift)
}

// demoSummary prints the stored files and what cuflow made of them.
func demoSummary(stdout io.Writer, flowDir, rrdDir string, show int, sent gen.Stats, liveStart time.Time) error {
	all, err := flowfile.List(flowDir)
	if err != nil {
		return err
	}
	// The files of the live part; the backfilled ones came before.
	var entries []flowfile.Entry
	for _, e := range all {
		if !e.Start.Before(liveStart) {
			entries = append(entries, e)
		}
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	fmt.Fprintf(w, "\nsent %d flows in %d datagrams; stored %d flow files while live (%d in all):\n\n", sent.Flows, sent.Datagrams, len(entries), len(all))
	var stored, lost uint64
	d := dumper{w: w, format: "text"}
	var first, last time.Time
	for i, e := range entries {
		r, err := flowfile.Open(e.Path)
		if err != nil {
			return err
		}
		m := r.Meta()
		stored += m.Flows
		lost += m.LostFlows()
		if i == 0 {
			first = m.Start
		}
		last = m.End
		fmt.Fprintf(w, "%s  %s - %s  %6d flows  %d exporters  lost %d\n", filepath.Base(e.Path),
			m.Start.Format("15:04:05"), m.End.Format("15:04:05"), m.Flows, len(m.Exporters), m.LostFlows())
		if i == len(entries)/2 && show > 0 {
			recs, _ := r.Next(nil)
			w.WriteString("  " + textHeader)
			for j := 0; j < len(recs) && j < show; j++ {
				w.WriteString("  ")
				d.record(&recs[j])
			}
		}
		r.Close()
	}
	fmt.Fprintf(w, "\nstored %d of %d flows sent (lost according to sequence numbers: %d)\n", stored, sent.Flows, lost)

	total := filepath.Join(rrdDir, "cuflow", "total.rrd")
	step := last.Sub(first)
	if len(entries) > 0 {
		step /= time.Duration(len(entries))
	}
	// The last dozen steps: the live part, and the end of any backfill.
	from := last.Add(-12 * max(step, time.Second))
	series, err := rrd.New("").Fetch(total, "AVERAGE", from, last, 0)
	if err != nil {
		return fmt.Errorf("reading %s: %w", total, err)
	}
	fmt.Fprintf(w, "\ncuflow %s (border traffic per step, as CUGrapher plots it):\n", total)
	fmt.Fprintf(w, "  %-8s %14s %14s %10s %10s\n", "step end", "in bit/s", "out bit/s", "in flow/s", "out flow/s")
	idx := map[string]int{}
	for i, n := range series.Names {
		idx[n] = i
	}
	for i, row := range series.Rows {
		if math.IsNaN(row[idx["in_bytes"]]) {
			continue
		}
		fmt.Fprintf(w, "  %-8s %14.0f %14.0f %10.1f %10.1f\n", series.Time(i).Format("15:04:05"),
			row[idx["in_bytes"]]*8, row[idx["out_bytes"]]*8, row[idx["in_flows"]], row[idx["out_flows"]])
	}
	rrds, _ := filepath.Glob(filepath.Join(rrdDir, "cuflow", "*.rrd"))
	fmt.Fprintf(w, "\n%d RRD files in %s, e.g. rrdtool fetch %s AVERAGE\n", len(rrds), filepath.Dir(total), total)
	fmt.Fprintf(w, "top talkers: %s\n", filepath.Join(rrdDir, "cuflow", "scoreboard", "current.html"))
	abs, _ := filepath.Abs(flowDir)
	fmt.Fprintf(w, "flows: flowscan dump %s | less\n", abs)
	return nil
}
