// Package config reads flowscan's one configuration file (YAML) for the
// collector, the scanner, the report modules and the web server. Every
// error names the file and line: unknown keys, values of the wrong type
// and invalid settings alike.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration file.
type Config struct {
	// Collect configures `flowscan collect` (and the collector of `run`).
	Collect Collect `yaml:"collect"`
	// Scan configures the scanner.
	Scan Scan `yaml:"scan"`
	// Modules holds each report module's own section, keyed by module
	// name; a module reads it with Module.Decode.
	Modules map[string]yaml.Node `yaml:"modules"`
	// Web configures the web server.
	Web Web `yaml:"web"`
	// ClickHouse configures the scale-out store (optional).
	ClickHouse ClickHouse `yaml:"clickhouse"`

	path string
	// doc is the parsed file, for the lines of values checked later.
	doc *yaml.Node
}

// Collect is the collector's section.
type Collect struct {
	Listen       []string          `yaml:"listen"`
	Dir          string            `yaml:"dir"`
	Interval     Duration          `yaml:"interval"`
	Nest         int               `yaml:"nest"`
	TZ           string            `yaml:"tz"`
	Sockets      int               `yaml:"sockets"`
	RcvBuf       string            `yaml:"rcvbuf"`
	Allow        []string          `yaml:"allow"`
	Sampling     map[string]uint32 `yaml:"sampling"`
	MaxSize      string            `yaml:"max_size"`
	MaxAge       string            `yaml:"max_age"`
	Exec         string            `yaml:"exec"`
	Metrics      *string           `yaml:"metrics"`
	Flush        Duration          `yaml:"flush"`
	StateDir     string            `yaml:"state_dir"`
	MaxTemplates int               `yaml:"max_templates"`
}

// Scan is the scanner's section.
type Scan struct {
	// Dir is the flow directory to scan (default: collect.dir).
	Dir string `yaml:"dir"`
	// RRDDir is where modules put RRD files and scoreboards by default
	// (each in a subdirectory named after the module).
	RRDDir string `yaml:"rrd_dir"`
	// RRDCached is the rrdcached address, empty for direct file access.
	RRDCached string `yaml:"rrdcached"`
	// After says what to do with a scanned file: keep (default), delete,
	// or save (move into DIR/saved/, FlowScan's behaviour).
	After string `yaml:"after"`
	// Poll is how often the flow directory is checked for new files.
	Poll Duration `yaml:"poll"`
	// ReportClasses names the modules to run, in order.
	ReportClasses []string `yaml:"report_classes"`
	// StateDir keeps the scan journal (default DIR/.flowscan).
	StateDir string `yaml:"state_dir"`
	// MaxAttempts is how many passes a module may fail to report one
	// file before that file is given up (default 5).
	MaxAttempts int `yaml:"max_attempts"`
}

// Web is the web server's section.
type Web struct {
	Listen string `yaml:"listen"`
}

// ClickHouse is the clickhouse section: where collectors insert flows
// and where queries and the web UI read them when asked to.
type ClickHouse struct {
	// URL is one server's HTTP interface, http://[user:password@]host:8123/database.
	URL string `yaml:"url"`
	// Shards lists one URL per shard of a cluster (instead of URL).
	Shards []string `yaml:"shards"`
	// Cluster names the cluster of the servers' remote_servers
	// configuration behind the Distributed tables.
	Cluster string `yaml:"cluster"`
	// SpoolDir keeps batches while ClickHouse is unreachable (default
	// the collector's state directory's clickhouse-spool).
	SpoolDir string `yaml:"spool_dir"`
	// SpoolMax bounds the spool (default 1GiB).
	SpoolMax string `yaml:"spool_max"`
	// BatchRows is the most flows per INSERT (default 262144).
	BatchRows int `yaml:"batch_rows"`
	// Senders is how many INSERTs run at once per shard (default 1).
	Senders int `yaml:"senders"`
	// TTL is each table's retention: keys flows, flows_1m, flows_5m,
	// flows_1h.
	TTL map[string]Duration `yaml:"ttl"`
}

// Duration is a time.Duration written as "5m", "30s", "1h30m" or "2d".
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// ParseDuration parses Go durations plus "d" (days) and "w" (weeks).
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"d", 24 * time.Hour}, {"w", 7 * 24 * time.Hour}} {
		if n, ok := strings.CutSuffix(t, u.suffix); ok {
			if f, err := strconv.ParseFloat(n, 64); err == nil && f > 0 {
				return time.Duration(f * float64(u.unit)), nil
			}
			return 0, fmt.Errorf("%q is not a duration (e.g. 5m, 12h, 30d)", s)
		}
	}
	d, err := time.ParseDuration(t)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a duration (e.g. 5m, 12h, 30d)", s)
	}
	return d, nil
}

// Load reads and checks a configuration file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse reads a configuration from data; path is used in error messages
// and to resolve relative paths.
func Parse(path string, data []byte) (*Config, error) {
	c := &Config{path: path}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, wrap(path, err)
	}
	if len(root.Content) == 0 {
		return c, nil
	}
	doc := root.Content[0]
	c.doc = doc
	if err := checkKeys(doc, reflect.TypeOf(c).Elem()); err != nil {
		return nil, wrap(path, err)
	}
	if err := doc.Decode(c); err != nil {
		return nil, wrap(path, err)
	}
	if err := c.validate(doc); err != nil {
		return nil, wrap(path, err)
	}
	if err := c.checkValues(); err != nil {
		return nil, err
	}
	return c, nil
}

// Line returns the line of the value at the key path (for example
// "collect", "rcvbuf"), or of the deepest key present; 0 when the
// configuration was not read from a file.
func (c *Config) Line(keys ...string) int {
	if c.doc == nil {
		return 0
	}
	return lineOf(c.doc, keys...)
}

// Locate prefixes err with the file, the line of the value at the key
// path and the dotted key: "f.yaml:12: collect.rcvbuf: ...". Without a
// file it adds only the key.
func (c *Config) Locate(err error, keys ...string) error {
	if err == nil {
		return nil
	}
	key := strings.Join(keys, ".")
	if line := c.Line(keys...); c.path != "" && line > 0 {
		return fmt.Errorf("%s:%d: %s: %w", c.path, line, key, err)
	}
	if c.path != "" {
		return fmt.Errorf("%s: %s: %w", c.path, key, err)
	}
	return fmt.Errorf("%s: %w", key, err)
}

// LocateItem is Locate for item i of the sequence at the key path.
func (c *Config) LocateItem(err error, i int, keys ...string) error {
	if err == nil || c.doc == nil || c.path == "" {
		return c.Locate(err, keys...)
	}
	return fmt.Errorf("%s:%d: %s: %w", c.path, itemLine(c.doc, i, keys...), strings.Join(keys, "."), err)
}

// Path returns the file the configuration was read from.
func (c *Config) Path() string { return c.path }

// BaseDir returns the directory relative paths in the file are resolved
// against: the file's own directory.
func (c *Config) BaseDir() string {
	if c.path == "" {
		return ""
	}
	return filepath.Dir(c.path)
}

// Resolve makes p absolute relative to the configuration file's directory.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || c.path == "" {
		return p
	}
	return filepath.Join(c.BaseDir(), p)
}

// ModuleDecoder returns a function that decodes module name's section
// into a struct, rejecting unknown keys; errors name the file and line.
// A module without a section decodes nothing and keeps its defaults.
func (c *Config) ModuleDecoder(name string) func(v any) error {
	return func(v any) error {
		n, ok := c.Modules[name]
		if !ok || n.Kind == 0 {
			return nil
		}
		t := reflect.TypeOf(v)
		if t.Kind() != reflect.Pointer {
			return errors.New("config: module decoder needs a pointer")
		}
		if err := checkKeys(&n, t.Elem()); err != nil {
			return wrap(c.path, err)
		}
		if err := n.Decode(v); err != nil {
			return wrap(c.path, err)
		}
		return nil
	}
}

// validate checks settings the types cannot.
func (c *Config) validate(doc *yaml.Node) error {
	switch c.Scan.After {
	case "", "keep", "delete", "save":
	default:
		return fmt.Errorf("line %d: scan.after %q: want keep, delete or save", lineOf(doc, "scan", "after"), c.Scan.After)
	}
	if c.Collect.Nest < 0 || c.Collect.Nest > 3 {
		return fmt.Errorf("line %d: collect.nest %d: want 0..3", lineOf(doc, "collect", "nest"), c.Collect.Nest)
	}
	seen := map[string]bool{}
	for i, m := range c.Scan.ReportClasses {
		if seen[m] {
			return fmt.Errorf("line %d: scan.report_classes: %q listed twice", itemLine(doc, i, "scan", "report_classes"), m)
		}
		seen[m] = true
	}
	return nil
}

// lineOf returns the line of the value at the key path, or of the
// deepest key found.
func lineOf(n *yaml.Node, keys ...string) int {
	line := n.Line
	for _, k := range keys {
		if n.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				n, line, found = n.Content[i+1], n.Content[i+1].Line, true
				break
			}
		}
		if !found {
			return line
		}
	}
	return line
}

// itemLine returns the line of item i of the sequence at the key path.
func itemLine(n *yaml.Node, i int, keys ...string) int {
	line := lineOf(n, keys...)
	for _, k := range keys {
		for j := 0; n.Kind == yaml.MappingNode && j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == k {
				n = n.Content[j+1]
				break
			}
		}
	}
	if n.Kind == yaml.SequenceNode && i < len(n.Content) {
		return n.Content[i].Line
	}
	return line
}

// checkKeys reports the first mapping key in n that the struct type t (or
// the structs it contains) does not declare.
func checkKeys(n *yaml.Node, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) || t == nodeType {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil // the decoder reports the type mismatch
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			ft, ok := fields[k.Value]
			if !ok {
				return fmt.Errorf("line %d: unknown key %q (known: %s)", k.Line, k.Value, strings.Join(sortedKeys(fields), ", "))
			}
			if err := checkKeys(n.Content[i+1], ft); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		if n.Kind == yaml.SequenceNode {
			for _, item := range n.Content {
				if err := checkKeys(item, t.Elem()); err != nil {
					return err
				}
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 1; i < len(n.Content); i += 2 {
				if err := checkKeys(n.Content[i], t.Elem()); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

var (
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	nodeType        = reflect.TypeOf(yaml.Node{})
)

// yamlFields maps the YAML keys of struct t (inline structs included) to
// their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range yamlFields(ft) {
					out[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func sortedKeys(m map[string]reflect.Type) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// wrap prefixes a yaml error ("yaml: line 3: ..." or "line 3: ...") with
// the file name so it reads "file.yaml:3: ...".
func wrap(path string, err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	if te, ok := err.(*yaml.TypeError); ok && len(te.Errors) > 0 {
		msg = strings.TrimPrefix(te.Errors[0], "yaml: ")
	}
	var line int
	if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr == nil {
		rest := msg[strings.Index(msg, ":")+1:]
		return fmt.Errorf("%s:%d:%s", path, line, rest)
	}
	return fmt.Errorf("%s: %s", path, msg)
}

// Marshal renders v as YAML with two-space indentation.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	enc.Close()
	return buf.Bytes(), nil
}

// LocateModuleError adds file:line to an error a module returned while
// checking its section, when the error quotes a value (as %q does) that
// appears in the section: semantic checks (a bad prefix, a duplicate
// label) then point at the line to fix like syntax errors do.
func (c *Config) LocateModuleError(name string, err error) error {
	if err == nil || c.path == "" || strings.HasPrefix(err.Error(), c.path+":") {
		return err
	}
	// An error that already names file:line inside ("module cuflow:
	// f.yaml:5: unknown key ...") gets that location moved to the front
	// instead of a second one.
	if msg, ok := frontLocation(c.path, err.Error()); ok {
		return errors.New(msg)
	}
	n, ok := c.Modules[name]
	if !ok {
		return err
	}
	if line := findQuoted(&n, err.Error()); line > 0 {
		return fmt.Errorf("%s:%d: %w", c.path, line, err)
	}
	return fmt.Errorf("%s: modules.%s: %w", c.path, name, err)
}

// findQuoted returns the line of the first scalar in n whose value the
// message quotes.
func findQuoted(n *yaml.Node, msg string) int {
	if n.Kind == yaml.ScalarNode && n.Value != "" && strings.Contains(msg, fmt.Sprintf("%q", n.Value)) {
		return n.Line
	}
	for _, child := range n.Content {
		if line := findQuoted(child, msg); line > 0 {
			return line
		}
	}
	return 0
}

// frontLocation rewrites "prefix: PATH:LINE: rest" as "PATH:LINE: prefix:
// rest"; ok is false when msg holds no PATH:LINE: location.
func frontLocation(path, msg string) (string, bool) {
	i := strings.Index(msg, path+":")
	if i < 0 {
		return "", false
	}
	after := msg[i+len(path)+1:]
	j := 0
	for j < len(after) && after[j] >= '0' && after[j] <= '9' {
		j++
	}
	if j == 0 || j >= len(after) || after[j] != ':' {
		return "", false
	}
	prefix := strings.TrimSuffix(strings.TrimSpace(msg[:i]), ":")
	rest := strings.TrimSpace(after[j+1:])
	if prefix == "" {
		return fmt.Sprintf("%s:%s: %s", path, after[:j], rest), true
	}
	return fmt.Sprintf("%s:%s: %s: %s", path, after[:j], prefix, rest), true
}
