package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Schema describes flowscan's tables in one database.
//
// Raw flows go to "flows". Materialized views consolidate every insert
// into "flows_1m" (addresses kept, ports dropped: top talkers), "flows_5m"
// (ports kept, addresses dropped: services) and "flows_1h" (neither),
// SummingMergeTree tables
// that keep bytes, packets and flows per key and interval. With a
// Cluster, each server holds these as "*_local" tables and "flows",
// "flows_1m", ... are Distributed tables over the cluster's shards.
type Schema struct {
	// Database holds every table (created if missing).
	Database string
	// Cluster names a cluster of the servers' remote_servers
	// configuration; empty for a single server.
	Cluster string
	// TTL is how long each table keeps rows, by table ("flows",
	// "flows_1m", "flows_5m", "flows_1h"); 0 keeps them forever.
	TTL map[string]time.Duration
}

// Table describes one of the schema's tables for the read side.
type Table struct {
	// Name is the table to read (the Distributed one on a cluster).
	Name string
	// Step is the table's time resolution; 0 for raw flows.
	Step time.Duration
	// Time is the table's time column.
	Time string
	// Keys are the flow fields the table keeps (JSON names of flow
	// records, e.g. "src_addr").
	Keys []string
}

// Column types of the raw table, in insert order (see AppendRow).
var rawColumns = []struct{ name, typ string }{
	{"time_start", "DateTime('UTC')"},
	{"time_end", "DateTime('UTC')"},
	{"duration_ms", "UInt32"},
	{"exporter", "FixedString(16)"},
	{"domain", "UInt32"},
	{"src_addr", "FixedString(16)"},
	{"dst_addr", "FixedString(16)"},
	{"next_hop", "FixedString(16)"},
	{"src_port", "UInt16"},
	{"dst_port", "UInt16"},
	{"proto", "UInt8"},
	{"tos", "UInt8"},
	{"tcp_flags", "UInt8"},
	{"in_if", "UInt32"},
	{"out_if", "UInt32"},
	{"src_as", "UInt32"},
	{"dst_as", "UInt32"},
	{"src_mask", "UInt8"},
	{"dst_mask", "UInt8"},
	{"bytes", "UInt64"},
	{"packets", "UInt64"},
	{"sampling_rate", "UInt32"},
	{"src_vlan", "UInt16"},
	{"dst_vlan", "UInt16"},
	{"src_mac", "UInt64"},
	{"dst_mac", "UInt64"},
	{"batch_id", "UInt64"},
}

// RawColumnList is the column list of the raw table, comma-separated, in
// the order AppendRow writes them.
func RawColumnList() string {
	names := make([]string, len(rawColumns))
	for i, c := range rawColumns {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// consolidated describes the consolidated tables: name, step, the
// function that rounds time_end, the key columns kept.
var consolidated = []struct {
	name, round string
	step        time.Duration
	keys        []string
	partition   string
}{
	{"flows_1m", "toStartOfMinute", time.Minute,
		[]string{"exporter", "in_if", "out_if", "proto", "tos", "src_as", "dst_as", "src_addr", "dst_addr"},
		"toYYYYMMDD(time)"},
	{"flows_5m", "toStartOfFiveMinute", 5 * time.Minute,
		[]string{"exporter", "in_if", "out_if", "proto", "tos", "src_as", "dst_as", "src_port", "dst_port"},
		"toYYYYMM(time)"},
	{"flows_1h", "toStartOfHour", time.Hour,
		[]string{"exporter", "in_if", "out_if", "proto", "tos", "src_as", "dst_as"},
		"toYYYYMM(time)"},
}

// rawKeys are the fields the raw table answers for (all of them).
var rawKeys = []string{"exporter", "domain", "src_addr", "dst_addr", "next_hop", "src_port", "dst_port",
	"proto", "tos", "tcp_flags", "in_if", "out_if", "src_as", "dst_as", "src_mask", "dst_mask",
	"sampling_rate", "src_vlan", "dst_vlan", "src_mac", "dst_mac", "duration"}

// DefaultTTL is the retention of each table when the config sets none.
var DefaultTTL = map[string]time.Duration{
	"flows":    7 * 24 * time.Hour,
	"flows_1m": 30 * 24 * time.Hour,
	"flows_5m": 366 * 24 * time.Hour,
	"flows_1h": 5 * 366 * 24 * time.Hour,
}

// TableNames lists the schema's tables, finest first.
func TableNames() []string { return []string{"flows", "flows_1m", "flows_5m", "flows_1h"} }

// Tables returns the schema's tables for the read side, finest first.
func (s *Schema) Tables() []Table {
	t := []Table{{Name: "flows", Time: "time_end", Keys: rawKeys}}
	for _, c := range consolidated {
		t = append(t, Table{Name: c.name, Step: c.step, Time: "time", Keys: c.keys})
	}
	return t
}

// InsertTable is the table the collector inserts raw flows into: the
// local table on a cluster (the sink picks the shard), "flows" otherwise.
func (s *Schema) InsertTable() string { return s.storage("flows") }

// storage is the name of the MergeTree table behind read name.
func (s *Schema) storage(name string) string {
	if s.Cluster != "" {
		return name + "_local"
	}
	return name
}

// ttl returns the configured TTL of table, or its default.
func (s *Schema) ttl(table string) time.Duration {
	if d, ok := s.TTL[table]; ok {
		return d
	}
	return DefaultTTL[table]
}

// Features are what a server supports among what the schema would use.
type Features struct {
	Version Version
	// TTL is table TTL (19.6 and later); without it flowscan drops
	// expired partitions itself (Expire).
	TTL bool
}

// DetectFeatures asks the server for its version and derives features.
func DetectFeatures(ctx context.Context, c *Client) (Features, error) {
	v, err := c.ServerVersion(ctx)
	if err != nil {
		return Features{}, err
	}
	return Features{Version: v, TTL: v.AtLeast(19, 6)}, nil
}

// Notes explains, for the operator, what an old server lacks and how
// flowscan works around it.
func (f Features) Notes() []string {
	var n []string
	if !f.TTL {
		n = append(n, fmt.Sprintf("ClickHouse %s has no table TTL (19.6 and later do): "+
			"flowscan drops expired day/month partitions itself (`flowscan clickhouse expire`, run hourly by `collect --clickhouse`)", f.Version))
	}
	return n
}

// migration is one schema version: the statements that bring the
// previous version to it. Every statement is idempotent (IF NOT EXISTS)
// so that a migration interrupted half-way can be run again.
type migration struct {
	version     int
	description string
	statements  func(s *Schema, f Features) []string
}

var migrations = []migration{
	{1, "raw flows, 1m/5m/1h consolidated tables and their materialized views", (*Schema).v1},
}

// LatestVersion is the newest schema version this flowscan knows.
func LatestVersion() int { return migrations[len(migrations)-1].version }

func (s *Schema) v1(f Features) []string {
	db := s.Database
	var st []string
	cols := make([]string, len(rawColumns))
	for i, c := range rawColumns {
		cols[i] = c.name + " " + c.typ
	}
	raw := s.storage("flows")
	st = append(st, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (%s) ENGINE = MergeTree "+
		"PARTITION BY toYYYYMMDD(time_end) ORDER BY (toStartOfHour(time_end), exporter, time_end)%s "+
		"SETTINGS index_granularity = 8192",
		db, raw, strings.Join(cols, ", "), s.ttlClause("flows", "time_end", f)))
	if s.Cluster != "" {
		st = append(st, s.distributed("flows", "batch_id"))
	}
	for _, c := range consolidated {
		var kc []string
		for _, k := range c.keys {
			kc = append(kc, k+" "+rawType(k))
		}
		local := s.storage(c.name)
		st = append(st, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s (time DateTime('UTC'), %s, "+
			"bytes UInt64, packets UInt64, flows UInt64, batch_hash UInt64) ENGINE = SummingMergeTree((bytes, packets, flows, batch_hash)) "+
			"PARTITION BY %s ORDER BY (time, %s)%s SETTINGS index_granularity = 8192",
			db, local, strings.Join(kc, ", "), c.partition, strings.Join(c.keys, ", "), s.ttlClause(c.name, "time", f)))
		st = append(st, fmt.Sprintf("CREATE MATERIALIZED VIEW IF NOT EXISTS %s.%s_mv TO %s.%s AS "+
			"SELECT %s(time_end) AS time, %s, sum(bytes) AS bytes, sum(packets) AS packets, count() AS flows, "+
			"sum(cityHash64(batch_id)) AS batch_hash FROM %s.%s GROUP BY time, %s",
			db, local, db, local, c.round, strings.Join(c.keys, ", "), db, raw, strings.Join(c.keys, ", ")))
		if s.Cluster != "" {
			st = append(st, s.distributed(c.name, "rand()"))
		}
	}
	return st
}

func (s *Schema) distributed(name, shardKey string) string {
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s AS %s.%s ENGINE = Distributed(%s, %s, %s, %s)",
		s.Database, name, s.Database, s.storage(name), s.Cluster, s.Database, s.storage(name), shardKey)
}

func (s *Schema) ttlClause(table, col string, f Features) string {
	d := s.ttl(table)
	if !f.TTL || d <= 0 {
		return ""
	}
	return fmt.Sprintf(" TTL %s + INTERVAL %d SECOND", col, int64(d/time.Second))
}

func rawType(col string) string {
	for _, c := range rawColumns {
		if c.name == col {
			return c.typ
		}
	}
	panic("clickhouse: no raw column " + col)
}

// MigrationResult tells what Migrate did on one server.
type MigrationResult struct {
	Server   string
	Features Features
	// From and To are the schema versions before and after.
	From, To int
	// Applied describes each migration run.
	Applied []string
}

// Migrate brings the schema on the server behind c to the latest version:
// it creates the database and the bookkeeping table if needed and runs
// every migration not yet recorded there. `flowscan clickhouse init` and
// `migrate` both call it; running it again is harmless.
func (s *Schema) Migrate(ctx context.Context, c *Client) (*MigrationResult, error) {
	if !validIdent(s.Database) {
		return nil, fmt.Errorf("clickhouse: database name %q: use letters, digits and _", s.Database)
	}
	if s.Cluster != "" && !validIdent(s.Cluster) {
		return nil, fmt.Errorf("clickhouse: cluster name %q: use letters, digits and _", s.Cluster)
	}
	f, err := DetectFeatures(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", c.Addr(), err)
	}
	res := &MigrationResult{Server: c.Addr(), Features: f}
	if s.Cluster != "" {
		rows, err := c.QueryRows(ctx, "SELECT count() FROM system.clusters WHERE cluster = '"+s.Cluster+"'")
		if err != nil {
			return nil, err
		}
		if len(rows) == 0 || rows[0][0] == "0" {
			return nil, fmt.Errorf("clickhouse %s: no cluster %q in the server's remote_servers configuration", c.Addr(), s.Cluster)
		}
	}
	for _, stmt := range []string{
		"CREATE DATABASE IF NOT EXISTS " + s.Database,
		"CREATE TABLE IF NOT EXISTS " + s.Database + ".schema_migrations (version UInt32, description String, applied DateTime) ENGINE = TinyLog",
	} {
		if err := c.Exec(ctx, stmt); err != nil {
			return nil, err
		}
	}
	applied, err := s.appliedVersions(ctx, c)
	if err != nil {
		return nil, err
	}
	if len(applied) > 0 {
		res.From = applied[len(applied)-1]
	}
	res.To = res.From
	done := map[int]bool{}
	for _, v := range applied {
		done[v] = true
	}
	for _, m := range migrations {
		if done[m.version] {
			continue
		}
		for _, stmt := range m.statements(s, f) {
			if err := c.Exec(ctx, stmt); err != nil {
				return res, fmt.Errorf("clickhouse %s: migration %d (%s): %w\nstatement: %s", c.Addr(), m.version, m.description, err, stmt)
			}
		}
		if err := c.Exec(ctx, fmt.Sprintf("INSERT INTO %s.schema_migrations VALUES (%d, '%s', now())",
			s.Database, m.version, m.description)); err != nil {
			return res, err
		}
		res.To = m.version
		res.Applied = append(res.Applied, fmt.Sprintf("%d: %s", m.version, m.description))
	}
	if f.TTL {
		// Keep the TTLs in line with the configuration on servers that
		// have them (older ones are expired by Expire).
		for _, name := range TableNames() {
			col := "time"
			if name == "flows" {
				col = "time_end"
			}
			clause := s.ttlClause(name, col, f)
			if clause == "" {
				continue
			}
			// Only when it changed: on current servers a MODIFY TTL
			// rewrites the table's parts.
			rows, err := c.QueryRows(ctx, fmt.Sprintf("SELECT engine_full FROM system.tables WHERE database = '%s' AND name = '%s'", s.Database, s.storage(name)))
			if err == nil && len(rows) == 1 && strings.Contains(rows[0][0], "TTL") &&
				strings.Contains(rows[0][0], strconv.FormatInt(int64(s.ttl(name)/time.Second), 10)) {
				continue
			}
			if err := c.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s MODIFY%s", s.Database, s.storage(name), clause)); err != nil {
				return res, fmt.Errorf("clickhouse %s: setting the TTL of %s: %w", c.Addr(), name, err)
			}
		}
	}
	return res, nil
}

// SchemaVersion returns the newest schema version recorded on the server
// (0 if flowscan's schema is not there).
func (s *Schema) SchemaVersion(ctx context.Context, c *Client) (int, error) {
	v, err := s.appliedVersions(ctx, c)
	if err != nil {
		var se *ServerError
		if asServerError(err, &se) && (se.Code == 81 || se.Code == 60) { // unknown database / table
			return 0, nil
		}
		return 0, err
	}
	if len(v) == 0 {
		return 0, nil
	}
	return v[len(v)-1], nil
}

func (s *Schema) appliedVersions(ctx context.Context, c *Client) ([]int, error) {
	rows, err := c.QueryRows(ctx, "SELECT version FROM "+s.Database+".schema_migrations")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, r := range rows {
		v, err := strconv.Atoi(r[0])
		if err != nil {
			return nil, fmt.Errorf("clickhouse: schema_migrations: bad version %q", r[0])
		}
		out = append(out, v)
	}
	sort.Ints(out)
	return out, nil
}

// Expire drops the partitions of every table whose rows are all older
// than the table's TTL, for servers without table TTL. It returns the
// partitions dropped ("table:partition").
func (s *Schema) Expire(ctx context.Context, c *Client, now time.Time) ([]string, error) {
	var dropped []string
	for _, name := range TableNames() {
		d := s.ttl(name)
		if d <= 0 {
			continue
		}
		table := s.storage(name)
		cutoff := now.Add(-d)
		rows, err := c.QueryRows(ctx, fmt.Sprintf("SELECT DISTINCT partition FROM system.parts "+
			"WHERE database = '%s' AND table = '%s' AND active", s.Database, table))
		if err != nil {
			return dropped, err
		}
		for _, r := range rows {
			// Partitions are days (YYYYMMDD) or months (YYYYMM); one may
			// go when its last instant is older than the cutoff.
			end, ok := partitionEnd(r[0])
			if !ok || end.After(cutoff) {
				continue
			}
			if err := c.Exec(ctx, fmt.Sprintf("ALTER TABLE %s.%s DROP PARTITION %s", s.Database, table, r[0])); err != nil {
				return dropped, err
			}
			dropped = append(dropped, name+":"+r[0])
		}
	}
	return dropped, nil
}

// partitionEnd returns the end of a day (YYYYMMDD) or month (YYYYMM)
// partition.
func partitionEnd(p string) (time.Time, bool) {
	switch len(p) {
	case 8:
		t, err := time.Parse("20060102", p)
		return t.AddDate(0, 0, 1), err == nil
	case 6:
		t, err := time.Parse("200601", p)
		return t.AddDate(0, 1, 0), err == nil
	}
	return time.Time{}, false
}

func asServerError(err error, se **ServerError) bool { return errors.As(err, se) }

// Rebuild recomputes the consolidated tables for the whole hours in
// [from, to) from the raw table on the server behind c (each shard's
// local tables on a cluster): the rows of those hours are deleted and
// inserted again from the raw flows. It repairs views that an interrupted
// insert left short. The hours must be closed (no collector inserting
// flows that end in them) and still within the raw table's retention.
// It returns the flows each table holds for the window afterwards.
func (s *Schema) Rebuild(ctx context.Context, c *Client, from, to, now time.Time) (map[string]uint64, error) {
	from, to = from.Truncate(time.Hour), to.Add(time.Hour-time.Nanosecond).Truncate(time.Hour)
	if !from.Before(to) {
		return nil, fmt.Errorf("clickhouse rebuild: empty window")
	}
	if ttl := s.ttl("flows"); ttl > 0 && from.Before(now.Add(-ttl)) {
		return nil, fmt.Errorf("clickhouse rebuild: %s is older than the raw table keeps (%s): nothing to rebuild from", from.UTC().Format(time.RFC3339), ttl)
	}
	raw := s.Database + "." + s.storage("flows")
	window := func(col string) string {
		return fmt.Sprintf("%s >= toDateTime(%d, 'UTC') AND %s < toDateTime(%d, 'UTC')", col, from.Unix(), col, to.Unix())
	}
	out := map[string]uint64{}
	for _, v := range consolidated {
		table := s.Database + "." + s.storage(v.name)
		if err := c.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DELETE WHERE %s", table, window("time"))); err != nil {
			return out, fmt.Errorf("clickhouse %s: deleting %s: %w", c.Addr(), v.name, err)
		}
		if err := waitMutations(ctx, c, s.Database, s.storage(v.name)); err != nil {
			return out, err
		}
		keys := strings.Join(v.keys, ", ")
		if err := c.Exec(ctx, fmt.Sprintf("INSERT INTO %s (time, %s, bytes, packets, flows, batch_hash) SELECT %s(time_end) AS time, %s, sum(bytes), sum(packets), count(), "+
			"sum(cityHash64(batch_id)) FROM %s WHERE %s GROUP BY time, %s", table, keys, v.round, keys, raw, window("time_end"), keys)); err != nil {
			return out, fmt.Errorf("clickhouse %s: refilling %s: %w", c.Addr(), v.name, err)
		}
		rows, err := c.QueryRows(ctx, fmt.Sprintf("SELECT sum(flows) FROM %s WHERE %s", table, window("time")))
		if err != nil {
			return out, err
		}
		n, _ := strconv.ParseUint(rows[0][0], 10, 64)
		out[v.name] = n
	}
	return out, nil
}

// waitMutations waits until the table's mutations (ALTER ... DELETE,
// asynchronous) are done, for at most ten minutes.
func waitMutations(ctx context.Context, c *Client, db, table string) error {
	deadline := time.Now().Add(10 * time.Minute)
	for {
		rows, err := c.QueryRows(ctx, fmt.Sprintf("SELECT count() FROM system.mutations WHERE database = '%s' AND table = '%s' AND is_done = 0", db, table))
		if err != nil {
			return err
		}
		if len(rows) == 1 && rows[0][0] == "0" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("clickhouse %s: the deletion in %s.%s is still running after 10 minutes", c.Addr(), db, table)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
