package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flowscan/flowscan/internal/clickhouse"
	"github.com/flowscan/flowscan/internal/config"
	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/query"
)

func init() {
	register(75, "clickhouse", "set up and maintain the ClickHouse schema; load flow files into it", runClickHouse)
}

// clickhouseFlags are the flags naming the ClickHouse servers, shared by
// collect, query and the clickhouse command.
type clickhouseFlags struct {
	urls      stringList
	cluster   string
	spoolDir  string
	spoolMax  string
	batchRows int
	senders   int
}

// register defines --clickhouse and --clickhouse-cluster (and, when
// withSpool, the spool flags of the collector).
func (f *clickhouseFlags) register(fs *flag.FlagSet, withSpool bool) {
	fs.Var(&f.urls, "clickhouse", "ClickHouse HTTP `URL`, http://[user:pass@]host:8123/database (repeatable: one per shard of a cluster)")
	fs.StringVar(&f.cluster, "clickhouse-cluster", "", "`NAME` of the cluster (the servers' remote_servers) behind Distributed tables")
	if withSpool {
		fs.StringVar(&f.spoolDir, "clickhouse-spool", "", "`DIR` keeping batches while ClickHouse is unreachable (default STATE-DIR/clickhouse-spool)")
		fs.StringVar(&f.spoolMax, "clickhouse-spool-max", "1GiB", "most `SIZE` the spool may take; batches beyond it are dropped and counted")
		fs.IntVar(&f.batchRows, "clickhouse-batch-rows", 0, "most flows per INSERT (default 262144, at most 1048576)")
		fs.IntVar(&f.senders, "clickhouse-senders", 1, "`N` concurrent INSERTs per shard; more use more server cores, but after a server crash the views may need flowscan clickhouse rebuild")
	}
}

// merge fills what the command line left out from the config's
// clickhouse section.
func (f *clickhouseFlags) merge(fs *flag.FlagSet, cfg *config.Config) {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	c := cfg.ClickHouse
	if !set["clickhouse"] {
		if len(c.Shards) > 0 {
			f.urls = c.Shards
		} else if c.URL != "" {
			f.urls = stringList{c.URL}
		}
	}
	if !set["clickhouse-cluster"] && c.Cluster != "" {
		f.cluster = c.Cluster
	}
	if !set["clickhouse-spool"] && c.SpoolDir != "" {
		f.spoolDir = cfg.Resolve(c.SpoolDir)
	}
	if !set["clickhouse-spool-max"] && c.SpoolMax != "" {
		f.spoolMax = c.SpoolMax
	}
	if !set["clickhouse-batch-rows"] && c.BatchRows > 0 {
		f.batchRows = c.BatchRows
	}
	if !set["clickhouse-senders"] && c.Senders > 0 {
		f.senders = c.Senders
	}
}

// enabled reports whether any server is configured.
func (f *clickhouseFlags) enabled() bool { return len(f.urls) > 0 }

// resolve builds the clients (one per shard) and the schema.
func (f *clickhouseFlags) resolve(cfg *config.Config) ([]*clickhouse.Client, *clickhouse.Schema, error) {
	if !f.enabled() {
		return nil, nil, errors.New("no ClickHouse server: give --clickhouse URL (or clickhouse.url in the config)")
	}
	var clients []*clickhouse.Client
	for _, u := range f.urls {
		c, err := clickhouse.NewClient(u)
		if err != nil {
			return nil, nil, err
		}
		if len(clients) > 0 && c.Database != clients[0].Database {
			return nil, nil, fmt.Errorf("--clickhouse %s: database %q differs from the first server's %q", u, c.Database, clients[0].Database)
		}
		clients = append(clients, c)
	}
	if len(clients) > 1 && f.cluster == "" {
		return nil, nil, errors.New("several --clickhouse servers need --clickhouse-cluster NAME (the cluster their Distributed tables span)")
	}
	s := &clickhouse.Schema{Database: clients[0].Database, Cluster: f.cluster, TTL: map[string]time.Duration{}}
	if cfg != nil {
		for name, d := range cfg.ClickHouse.TTL {
			if !slices.Contains(clickhouse.TableNames(), name) {
				return nil, nil, fmt.Errorf("%s: clickhouse.ttl: unknown table %q (tables: %s)", cfg.Path(), name, strings.Join(clickhouse.TableNames(), ", "))
			}
			s.TTL[name] = time.Duration(d)
		}
	}
	return clients, s, nil
}

// sink builds the collector's ClickHouse sink; stateDir is the default
// home of the spool.
func (f *clickhouseFlags) sink(cfg *config.Config, stateDir string, logger *slog.Logger) (*clickhouse.Sink, error) {
	clients, schema, err := f.resolve(cfg)
	if err != nil {
		return nil, err
	}
	spool := f.spoolDir
	if spool == "" {
		spool = filepath.Join(stateDir, "clickhouse-spool")
	}
	max, err := config.ParseSize(f.spoolMax)
	if err != nil {
		return nil, fmt.Errorf("--clickhouse-spool-max: %w", err)
	}
	sc := clickhouse.SinkConfig{Shards: clients, Schema: schema, SpoolDir: spool, SpoolMax: max, BatchRows: f.batchRows, SendersPerShard: f.senders, Logger: logger}
	return clickhouse.NewSink(sc)
}

func runClickHouse(args []string, stdout, stderr io.Writer) error {
	const synopsis = "init|migrate|status|expire|rebuild|load [flags] [FILE|DIR...]"
	fs := newFlagSet("clickhouse", synopsis,
		"Manages flowscan's tables in ClickHouse (see docs/clickhouse.md):\n"+
			"  init     create the database, the raw flows table, the 1m/5m/1h consolidated tables\n"+
			"           and their materialized views (and Distributed tables with --clickhouse-cluster)\n"+
			"           on every server given; running it again is harmless\n"+
			"  migrate  bring an existing schema to this flowscan's version\n"+
			"  status   show each server's version, schema version, features and table sizes\n"+
			"  expire   drop partitions older than the TTLs (servers before 19.6 have no table TTL;\n"+
			"           collect --clickhouse does this hourly by itself)\n"+
			"  rebuild  recompute the 1m/5m/1h tables of closed hours (--from, --to) from the raw flows\n"+
			"           (repairs views an interrupted insert left short; see docs/clickhouse.md)\n"+
			"  load     insert the flows of flow files (backfill an archive into a database; loading the\n"+
			"           same files twice counts them twice)", stderr)
	var f clickhouseFlags
	f.register(fs, false)
	configFile := fs.String("config", "", "configuration `FILE` (YAML, section clickhouse:)")
	fromFlag := fs.String("from", "", "rebuild: window start (whole hours; RFC 3339, YYYY-MM-DD[ HH:MM] or relative like -6h)")
	toFlag := fs.String("to", "", "rebuild: window end (exclusive; default: the start of the current hour)")
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fs.Usage()
			return nil
		}
		fmt.Fprintf(stderr, "flowscan clickhouse: name an action: %s\n", synopsis)
		return errUsage
	}
	action := args[0]
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := loadConfig(*configFile)
	if err != nil {
		return err
	}
	f.merge(fs, cfg)
	clients, schema, err := f.resolve(cfg)
	if err != nil {
		return err
	}
	ctx := context.Background()
	switch action {
	case "init", "migrate":
		if fs.NArg() > 0 {
			return fmt.Errorf("clickhouse %s: unexpected argument %q", action, fs.Arg(0))
		}
		for _, c := range clients {
			res, err := schema.Migrate(ctx, c)
			if err != nil {
				return err
			}
			for _, n := range res.Features.Notes() {
				fmt.Fprintf(stdout, "%s: note: %s\n", res.Server, n)
			}
			switch {
			case len(res.Applied) == 0:
				fmt.Fprintf(stdout, "%s: ClickHouse %s, schema %s.* already at version %d\n", res.Server, res.Features.Version, schema.Database, res.To)
			default:
				fmt.Fprintf(stdout, "%s: ClickHouse %s, schema %s.* version %d -> %d (%s)\n", res.Server, res.Features.Version,
					schema.Database, res.From, res.To, strings.Join(res.Applied, "; "))
			}
		}
	case "status":
		for _, c := range clients {
			if err := clickhouseStatus(ctx, stdout, c, schema); err != nil {
				return err
			}
		}
	case "expire":
		for _, c := range clients {
			dropped, err := schema.Expire(ctx, c, time.Now())
			if err != nil {
				return fmt.Errorf("clickhouse %s: %w", c.Addr(), err)
			}
			fmt.Fprintf(stdout, "%s: %d partitions dropped %v\n", c.Addr(), len(dropped), dropped)
		}
	case "rebuild":
		now := time.Now()
		if *fromFlag == "" {
			return errors.New("clickhouse rebuild: --from is required (the hours to recompute)")
		}
		from, err := query.ParseTime(*fromFlag, now, time.Local)
		if err != nil {
			return fmt.Errorf("--from %w", err)
		}
		to := now.Truncate(time.Hour)
		if *toFlag != "" {
			if to, err = query.ParseTime(*toFlag, now, time.Local); err != nil {
				return fmt.Errorf("--to %w", err)
			}
		}
		for _, c := range clients {
			got, err := schema.Rebuild(ctx, c, from, to, now)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: rebuilt %s .. %s: flows_1m %d, flows_5m %d, flows_1h %d flows\n", c.Addr(),
				from.Truncate(time.Hour).Format(time.RFC3339), to.Format(time.RFC3339), got["flows_1m"], got["flows_5m"], got["flows_1h"])
		}
	case "load":
		if fs.NArg() == 0 {
			return fmt.Errorf("clickhouse load: name flow files or directories")
		}
		return clickhouseLoad(ctx, stdout, stderr, clients, schema, fs.Args())
	default:
		fmt.Fprintf(stderr, "flowscan clickhouse: unknown action %q: %s\n", action, synopsis)
		return errUsage
	}
	return nil
}

func clickhouseStatus(ctx context.Context, w io.Writer, c *clickhouse.Client, s *clickhouse.Schema) error {
	feats, err := clickhouse.DetectFeatures(ctx, c)
	if err != nil {
		return fmt.Errorf("clickhouse %s: %w", c.Addr(), err)
	}
	v, err := s.SchemaVersion(ctx, c)
	if err != nil {
		return fmt.Errorf("clickhouse %s: %w", c.Addr(), err)
	}
	fmt.Fprintf(w, "%s: ClickHouse %s, schema version %d (this flowscan: %d)\n", c.Addr(), feats.Version, v, clickhouse.LatestVersion())
	for _, n := range feats.Notes() {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	rows, err := c.QueryRows(ctx, fmt.Sprintf("SELECT table, sum(rows), sum(bytes), count() FROM system.parts "+
		"WHERE database = '%s' AND active GROUP BY table ORDER BY table", s.Database))
	if err != nil {
		return err
	}
	for _, r := range rows {
		fmt.Fprintf(w, "  %-16s %12s rows %14s bytes %5s parts\n", r[0], r[1], r[2], r[3])
	}
	return nil
}

// clickhouseLoad inserts the flows of flow files through a sink whose
// spool lives in a temporary directory: a file is reported done only
// once all its batches were inserted.
func clickhouseLoad(ctx context.Context, stdout, stderr io.Writer, clients []*clickhouse.Client, schema *clickhouse.Schema, paths []string) error {
	var listErr error
	files := flowFiles(paths, func(p string, err error) {
		if listErr == nil {
			listErr = fmt.Errorf("%s: %w", p, err)
		}
	})
	if listErr != nil {
		return listErr
	}
	spool, err := os.MkdirTemp("", "flowscan-load-spool")
	if err != nil {
		return err
	}
	defer os.RemoveAll(spool)
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sink, err := clickhouse.NewSink(clickhouse.SinkConfig{Shards: clients, Schema: schema, SpoolDir: spool, Logger: logger, Block: true})
	if err != nil {
		return err
	}
	var total uint64
	var buf []flow.Record
	for _, path := range files {
		r, _, err := openFlowFile(path)
		if err != nil {
			sink.Close(time.Minute)
			return err
		}
		for {
			buf, err = r.Next(buf[:0])
			sink.Flows(buf)
			total += uint64(len(buf))
			if err != nil {
				break
			}
		}
		r.Close()
		if err != io.EOF {
			sink.Close(time.Minute)
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	sink.Close(10 * time.Minute)
	st := sink.Stats()
	if st.SpoolBatches > 0 || st.Dropped > 0 {
		return fmt.Errorf("clickhouse load: %d of %d flows not inserted (server unreachable?)", total-st.Rows, total)
	}
	fmt.Fprintf(stdout, "loaded %d flows from %d files in %d batches\n", st.Rows, len(files), st.Batches)
	return nil
}
