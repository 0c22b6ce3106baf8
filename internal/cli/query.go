package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/query"
)

func init() {
	register(55, "query", "filter, top-N and aggregate the flows of the archive (nfdump-like)", runQuery)
	register(56, "export", "write the flows of the archive or ClickHouse to Parquet (or CSV/NDJSON) for DuckDB, pandas, Spark", runExport)
}

// queryCommon are the flags shared by query and export.
type queryCommon struct {
	dirs     stringList
	from, to string
	workers  int
	lag      time.Duration
	progress string
	ch       clickhouseFlags
	config   string
}

func (c *queryCommon) register(fs *flag.FlagSet) {
	fs.Var(&c.dirs, "dir", "archive `DIR` of flow files and/or flow-tools files, or one file (repeatable)")
	fs.StringVar(&c.from, "from", "", "window start: RFC 3339, YYYY-MM-DD[ HH:MM] (local), or relative like -1h")
	fs.StringVar(&c.to, "to", "", "window end (exclusive), same forms as --from")
	fs.IntVar(&c.workers, "workers", 0, "parallel readers (default GOMAXPROCS)")
	fs.DurationVar(&c.lag, "lag", query.DefaultLag, "also read files starting up to `DURATION` after --to (long flows exported late)")
	fs.StringVar(&c.progress, "progress", "auto", "progress on stderr: auto (when a terminal), yes or no")
	c.ch.register(fs, false)
	fs.StringVar(&c.config, "config", "", "configuration `FILE` (YAML; its clickhouse: section names the servers when neither --clickhouse nor --dir is given)")
}

// clickhouse returns the ClickHouse backend when --clickhouse (or the
// configuration's clickhouse section) names servers, else nil.
func (c *queryCommon) clickhouse(fs *flag.FlagSet) (*query.ClickHouse, error) {
	cfg, err := loadConfig(c.config)
	if err != nil {
		return nil, err
	}
	// The configuration's servers count only when no --dir says to read
	// the archive.
	if len(c.dirs) == 0 {
		c.ch.merge(fs, cfg)
	}
	if !c.ch.enabled() {
		return nil, nil
	}
	clients, schema, err := c.ch.resolve(cfg)
	if err != nil {
		return nil, err
	}
	// Any server answers for the whole cluster through the Distributed tables.
	return &query.ClickHouse{Client: clients[0], Schema: schema}, nil
}

// build returns the Query for the flags and filter arguments.
func (c *queryCommon) build(filterArgs []string) (*query.Query, error) {
	if len(c.dirs) == 0 && !c.ch.enabled() {
		return nil, errors.New("--dir (or --clickhouse URL) is required")
	}
	// Unreadable files are reported once at the end (leftOut), not
	// logged as the workers meet them.
	q := &query.Query{Dirs: c.dirs, Workers: c.workers, Lag: c.lag, OnSkip: func(query.FileError) {}}
	now := time.Now()
	var err error
	if c.from != "" {
		if q.From, err = query.ParseTime(c.from, now, time.Local); err != nil {
			return nil, fmt.Errorf("--from %w", err)
		}
	}
	if c.to != "" {
		if q.To, err = query.ParseTime(c.to, now, time.Local); err != nil {
			return nil, fmt.Errorf("--to %w", err)
		}
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return nil, fmt.Errorf("--from %s is not before --to %s", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	if q.Filter, err = query.Compile(strings.Join(filterArgs, " ")); err != nil {
		return nil, err
	}
	return q, nil
}

// leftOut prints a warning for each file or block the query could not
// read and left out, and returns an error for the exit status when there
// were any (err itself when the query failed anyway): the output is
// complete except for them, as grep's is when a file cannot be read.
func leftOut(q *query.Query, cmd string, stderr io.Writer, err error) error {
	skipped := q.Skipped()
	for _, fe := range skipped {
		fmt.Fprintf(stderr, "flowscan %s: warning: left out, cannot read it: %v\n", cmd, fe)
	}
	if err != nil || len(skipped) == 0 {
		return err
	}
	return fmt.Errorf("%d unreadable file(s) or block(s) left out of the result", len(skipped))
}

// showProgress prints the query's progress on stderr every 250 ms once it
// has run for a second, when stderr is a terminal (or forced); the
// returned function stops it and clears the line.
func (c *queryCommon) showProgress(q *query.Query, stderr io.Writer) func() {
	on := c.progress == "yes"
	if c.progress == "auto" {
		if f, ok := stderr.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				on = true
			}
		}
	}
	if !on {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		shown := false
		for {
			select {
			case <-done:
				if shown {
					fmt.Fprint(stderr, "\r\033[K")
				}
				return
			case <-t.C:
				if time.Since(start) < time.Second {
					continue
				}
				p := q.Progress()
				fmt.Fprintf(stderr, "\r\033[Kquery: %d/%d units, %d flows read, %d matched, %.0f s", p.UnitsDone, p.Units, p.Read, p.Matched, time.Since(start).Seconds())
				shown = true
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

var errQueryLimit = errors.New("limit reached")

// quietPipe maps a closed output pipe (flowscan query | head) to success.
func quietPipe(err error) error {
	if errors.Is(err, syscall.EPIPE) || errors.Is(err, errQueryLimit) {
		return nil
	}
	return err
}

func runQuery(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("query", "[flags] [FILTER]",
		"Selects flows of the archive in a time window through a filter (tcpdump/nfdump-like, see\n"+
			"docs/query.md) and prints them, or the top N groups by a key, or aggregates.\n\n"+
			"  flowscan query --dir flows --from -1h 'proto tcp and dst port 443'\n"+
			"  flowscan query --dir flows --top 10 --by src_addr --order bytes\n"+
			"  flowscan query --dir flows --top 20 --by src_addr/24,dst_port 'not net 10.0.0.0/8'\n"+
			"  flowscan query --dir flows --aggregate src_addr,dst_addr,dst_port --order bytes --limit 100\n"+
			"  flowscan query --dir flows --summary 'bytes > 1M'\n"+
			"  flowscan query --clickhouse http://127.0.0.1:8123/flowscan --from -1d --top 10 --by dst_port\n\n"+
			"With --clickhouse the same filters and options run as SQL on the coarsest ClickHouse table\n"+
			"that keeps the fields involved (see docs/clickhouse.md).", stderr)
	var c queryCommon
	c.register(fs)
	format := fs.String("format", "table", "output `FORMAT`: table, csv, json (one object per line, as flowscan dump), ndjson, jsonarray")
	limit := fs.Uint64("limit", 0, "print at most `N` flows or aggregate rows (0: all)")
	top := fs.Int("top", 0, "print the top `N` groups of --by (default 10 with --by)")
	by := fs.String("by", "", "top-N `KEYS`: one or two of "+strings.Join(query.KeyFieldNames, ", ")+"; addresses may be masked: src_addr/24, dst_addr/24/64")
	aggregate := fs.String("aggregate", "", "aggregate flows by `KEYS` (any number, as --by) and print every group, largest first")
	orderName := fs.String("order", "bytes", "rank groups by flows, packets, bytes, bps, pps or bpp")
	summary := fs.Bool("summary", false, "print only the summary (flows, bytes, packets, time span, average rates)")
	numeric := fs.Bool("numeric", false, "table: print protocol and port numbers instead of names")
	names := fs.Bool("names", false, "csv/json: print protocol and service names instead of numbers")
	totals := fs.Bool("totals", false, "csv/json: add the other row and the summary after the top rows")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := query.CheckFormat(*format); err != nil {
		return err
	}
	order, err := query.ParseOrder(*orderName)
	if err != nil {
		return err
	}
	ch, err := c.clickhouse(fs)
	if err != nil {
		return err
	}
	if ch != nil && len(c.dirs) > 0 {
		return errors.New("--dir and --clickhouse exclude each other: read the archive or ClickHouse")
	}
	q, err := c.build(fs.Args())
	if err != nil {
		return err
	}
	useNames := *names || (*format == "table" && !*numeric)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProgress := c.showProgress(q, stderr)
	defer stopProgress()

	keySpec := *by
	if *by != "" && *aggregate != "" {
		return errors.New("--by and --aggregate exclude each other")
	}
	if keySpec == "" {
		keySpec = *aggregate
	}
	if keySpec != "" || *summary {
		spec := query.AggregateSpec{Order: order}
		if keySpec != "" {
			if spec.Keys, err = query.ParseKeys(keySpec); err != nil {
				return err
			}
		}
		switch {
		case *by != "":
			if len(spec.Keys) > 2 {
				return errors.New("--by takes one or two fields; use --aggregate for more")
			}
			spec.Limit = *top
			if spec.Limit == 0 {
				spec.Limit = 10
			}
		case *aggregate != "":
			spec.Limit = int(*limit)
		}
		if *summary {
			spec.Keys, spec.Limit = nil, 0
		}
		var res *query.Result
		if ch != nil {
			res, err = q.AggregateClickHouse(ctx, ch, spec)
		} else {
			res, err = q.Aggregate(ctx, spec)
		}
		stopProgress()
		if err != nil {
			return leftOut(q, "query", stderr, err)
		}
		err = quietPipe(query.WriteResult(stdout, res, query.OutputOptions{Format: *format, Names: useNames, Totals: *totals || *summary}))
		return leftOut(q, "query", stderr, err)
	}
	if *top != 0 {
		return errors.New("--top needs --by KEYS")
	}
	fw, err := query.NewFlowWriter(stdout, *format, useNames)
	if err != nil {
		return err
	}
	write := func(batch []flow.Record) error {
		for i := range batch {
			if *limit > 0 && fw.Count() >= *limit {
				return errQueryLimit
			}
			if err := fw.Write(&batch[i]); err != nil {
				return err
			}
		}
		return nil
	}
	if ch != nil {
		err = q.FlowsClickHouse(ctx, ch, int(*limit), write)
	} else {
		err = q.Flows(ctx, write)
	}
	stopProgress()
	if cerr := fw.Close(); err == nil {
		err = cerr
	}
	return leftOut(q, "query", stderr, quietPipe(err))
}

func runExport(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("export", "[flags] --out FILE [FILTER]",
		"Writes the flows of the archive (in the window, through the filter) to one file for\n"+
			"analysis elsewhere: Parquet (zstd columns; DuckDB: SELECT * FROM 'flows.parquet'), CSV or NDJSON\n"+
			"with the field names of flowscan dump. With --clickhouse (or a --config whose clickhouse:\n"+
			"section names servers) and no --dir it exports ClickHouse's raw flows table instead.\n\n"+
			"  flowscan export --dir flows --from -1d --out day.parquet 'proto udp'\n"+
			"  flowscan export --clickhouse http://127.0.0.1:8123/flowscan --from -1d --out day.parquet", stderr)
	var c queryCommon
	c.register(fs)
	format := fs.String("format", "parquet", "file `FORMAT`: parquet, csv or ndjson")
	out := fs.String("out", "", "output `FILE` (- for stdout)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		fs.Usage()
		return errUsage
	}
	switch *format {
	case "parquet", "csv", "ndjson":
	default:
		return fmt.Errorf("--format %q: want parquet, csv or ndjson", *format)
	}
	ch, err := c.clickhouse(fs)
	if err != nil {
		return err
	}
	if ch != nil && len(c.dirs) > 0 {
		return errors.New("--dir and --clickhouse exclude each other: export the archive or ClickHouse")
	}
	q, err := c.build(fs.Args())
	if err != nil {
		return err
	}
	// flows streams the matching flows: from the archive, or from
	// ClickHouse's raw table (in time order, whole-second end times).
	flows := q.Flows
	if ch != nil {
		flows = func(ctx context.Context, fn func([]flow.Record) error) error {
			return q.FlowsClickHouse(ctx, ch, 0, fn)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var w io.Writer = stdout
	var f *os.File
	if *out != "-" {
		if f, err = os.Create(*out + ".tmp"); err != nil {
			return err
		}
		defer func() {
			if f != nil {
				f.Close()
				os.Remove(*out + ".tmp")
			}
		}()
		w = f
	}
	stopProgress := c.showProgress(q, stderr)
	var n uint64
	switch {
	case *format == "parquet" && ch == nil:
		n, err = q.ExportParquet(ctx, w)
	case *format == "parquet":
		n, err = query.WriteParquet(ctx, w, flows)
	default:
		var fw *query.FlowWriter
		if fw, err = query.NewFlowWriter(w, *format, false); err != nil {
			return err
		}
		err = flows(ctx, func(batch []flow.Record) error {
			for i := range batch {
				if err := fw.Write(&batch[i]); err != nil {
					return err
				}
			}
			return nil
		})
		if cerr := fw.Close(); err == nil {
			err = cerr
		}
		n = fw.Count()
	}
	stopProgress()
	if err != nil {
		return leftOut(q, "export", stderr, quietPipe(err))
	}
	if f != nil {
		if err := f.Close(); err != nil {
			return err
		}
		if err := os.Rename(*out+".tmp", *out); err != nil {
			return err
		}
		f = nil
		fmt.Fprintf(stderr, "export: %d flows to %s\n", n, *out)
	}
	return leftOut(q, "export", stderr, nil)
}
