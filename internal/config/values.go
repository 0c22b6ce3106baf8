package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowscan/flowscan/internal/clickhouse"
)

// Default UDP ports the collector listens on, for bare addresses in
// collect.listen.
const defaultFlowPort = 2055

// checkValues checks the values whose type alone does not make them
// valid (sizes, addresses, zones, URLs) the way collect, scan, web and
// run would at start, so that a file they would refuse fails here with
// its file and line. It reports every bad value, not only the first.
func (c *Config) checkValues() error {
	type located struct {
		line int
		err  error
	}
	var found []located
	bad := func(err error, keys ...string) {
		if err != nil {
			found = append(found, located{c.Line(keys...), c.Locate(err, keys...)})
		}
	}
	badItem := func(err error, i int, keys ...string) {
		if err != nil {
			found = append(found, located{itemLine(c.doc, i, keys...), c.LocateItem(err, i, keys...)})
		}
	}
	notNegative := func(v int, keys ...string) {
		if v < 0 {
			bad(fmt.Errorf("%d: want 0 (the default) or more", v), keys...)
		}
	}

	col := c.Collect
	for i, l := range col.Listen {
		_, err := NormalizeListen(l, defaultFlowPort)
		badItem(err, i, "collect", "listen")
	}
	if col.Interval != 0 && time.Duration(col.Interval) < time.Second {
		bad(fmt.Errorf("%v: must be at least 1s", time.Duration(col.Interval)), "collect", "interval")
	}
	if col.TZ != "" && !strings.EqualFold(col.TZ, "local") {
		if _, err := time.LoadLocation(col.TZ); err != nil {
			bad(fmt.Errorf("%q: %w", col.TZ, err), "collect", "tz")
		}
	}
	notNegative(col.Sockets, "collect", "sockets")
	notNegative(col.MaxTemplates, "collect", "max_templates")
	if col.RcvBuf != "" {
		_, err := ParseSize(col.RcvBuf)
		bad(err, "collect", "rcvbuf")
	}
	if col.MaxSize != "" {
		_, err := ParseSize(col.MaxSize)
		bad(err, "collect", "max_size")
	}
	if col.MaxAge != "" {
		_, err := ParseDuration(col.MaxAge)
		bad(err, "collect", "max_age")
	}
	for i, a := range col.Allow {
		_, err := ParsePrefix(a)
		badItem(err, i, "collect", "allow")
	}
	for _, exp := range slices.Sorted(maps.Keys(col.Sampling)) {
		if _, err := netip.ParseAddr(exp); err != nil {
			bad(fmt.Errorf("%q is not an exporter address", exp), "collect", "sampling", exp)
		}
		if col.Sampling[exp] == 0 {
			bad(fmt.Errorf("%s: rate 0: want a positive integer", exp), "collect", "sampling", exp)
		}
	}

	notNegative(c.Scan.MaxAttempts, "scan", "max_attempts")

	if c.Web.Listen != "" {
		bad(checkHostPort(c.Web.Listen), "web", "listen")
	}

	ch := c.ClickHouse
	var db string
	if ch.URL != "" {
		if cl, err := clickhouse.NewClient(ch.URL); err != nil {
			bad(err, "clickhouse", "url")
		} else {
			db = cl.Database
		}
	}
	for i, u := range ch.Shards {
		cl, err := clickhouse.NewClient(u)
		if err == nil && i > 0 && cl.Database != db {
			err = fmt.Errorf("%s: database %q differs from the first shard's %q", u, cl.Database, db)
		}
		if err == nil && i == 0 {
			db = cl.Database
		}
		badItem(err, i, "clickhouse", "shards")
	}
	if len(ch.Shards) > 1 && ch.Cluster == "" {
		bad(errors.New("several shards need clickhouse.cluster NAME (the cluster their Distributed tables span)"), "clickhouse", "shards")
	}
	if ch.SpoolMax != "" {
		_, err := ParseSize(ch.SpoolMax)
		bad(err, "clickhouse", "spool_max")
	}
	notNegative(ch.BatchRows, "clickhouse", "batch_rows")
	notNegative(ch.Senders, "clickhouse", "senders")
	for _, name := range slices.Sorted(maps.Keys(ch.TTL)) {
		if !slices.Contains(clickhouse.TableNames(), name) {
			bad(fmt.Errorf("unknown table %q (tables: %s)", name, strings.Join(clickhouse.TableNames(), ", ")), "clickhouse", "ttl", name)
		}
	}
	// In the order of the file.
	slices.SortStableFunc(found, func(a, b located) int { return a.line - b.line })
	errs := make([]error, len(found))
	for i, f := range found {
		errs[i] = f.err
	}
	return errors.Join(errs...)
}

// ParsePrefix parses an exporter match as --allow and the relay's
// exporter= filter take it: an address (a one-address prefix) or a prefix,
// IPv4-mapped forms unmapped, host bits cleared.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or prefix", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or prefix", s)
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%q: IPv4-mapped prefix shorter than /96", s)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// checkHostPort accepts HOST:PORT (HOST may be empty, a name or an
// address; PORT 0..65535).
func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q: want ADDR:PORT", s)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q: bad port", s)
	}
	return nil
}

// NormalizeListen accepts "ADDR:PORT", "[V6]:PORT", ":PORT", "PORT" and a
// bare address (which gets defPort), and returns ADDR:PORT.
func NormalizeListen(s string, defPort int) (string, error) {
	if _, err := strconv.ParseUint(s, 10, 16); err == nil {
		return ":" + s, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		// A bare address, IPv6 included.
		h := strings.Trim(s, "[]")
		if net.ParseIP(h) == nil && h != "localhost" {
			return "", fmt.Errorf("%q: want ADDR:PORT", s)
		}
		return net.JoinHostPort(h, strconv.Itoa(defPort)), nil
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || (p == 0 && port != "0") {
		return "", fmt.Errorf("%q: bad port", s)
	}
	return net.JoinHostPort(host, port), nil
}

// ParseSize parses a size: "4MiB", "10G", "512k", "2kb", "1000" (bytes).
// k, m, g, t and KiB... are powers of 1024, kB... powers of 1000.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToLower(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40}, {"b", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a size (e.g. 4MiB, 50GiB)", s)
	}
	return int64(v * float64(mult)), nil
}
