package cuflow

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the cuflow module's configuration: the YAML section of the
// flowscan configuration, or a CUFlow.cf file converted by ParseCF (or
// both: CF names a CUFlow.cf file read first, then the YAML values add to
// it and replace its entries of the same label).
type Config struct {
	// CF is a CUFlow.cf file to read first (relative to the configuration
	// file's directory).
	CF string `yaml:"cf,omitempty"`
	// OutputDir is where the RRD files go (CUFlow's OutputDir); empty
	// means the scanner's directory for the module.
	OutputDir string `yaml:"output_dir,omitempty"`
	// Subnets are the prefixes that are "inside" (CUFlow's Subnet).
	Subnets []string `yaml:"subnets,omitempty"`
	// Routers get their own RRD subdirectory (CUFlow's Router).
	Routers []Router `yaml:"routers,omitempty"`
	// SampleRates scale the records of exporters that sample without
	// saying so in their records (CUFlow's SampleRate).
	SampleRates SampleRates `yaml:"sample_rates,omitempty"`
	// Networks are labelled groups of inside prefixes (CUFlow's Network).
	Networks []Network `yaml:"networks,omitempty"`
	// Services are labelled groups of ports (CUFlow's Service).
	Services []Service `yaml:"services,omitempty"`
	// ASNumbers are labelled groups of AS numbers (CUFlow's ASNumber).
	ASNumbers []ASGroup `yaml:"as_numbers,omitempty"`
	// Multicast enables protocol_multicast.rrd (CUFlow's Multicast).
	Multicast bool `yaml:"multicast,omitempty"`
	// Protocols are the IP protocols with their own RRD (CUFlow's
	// Protocol).
	Protocols []Protocol `yaml:"protocols,omitempty"`
	// TOS are labelled groups of TOS byte values (CUFlow's TOS).
	TOS []TOSGroup `yaml:"tos,omitempty"`
	// Scoreboard enables the per-file top-N tables (CUFlow's Scoreboard).
	Scoreboard *Scoreboard `yaml:"scoreboard,omitempty"`
	// AggregateScore enables the running top-N (CUFlow's AggregateScore).
	AggregateScore *AggregateScore `yaml:"aggregate_score,omitempty"`

	// subnetsAt holds the source position of each Subnet from CUFlow.cf.
	subnetsAt []string
}

// Router is one exporter whose traffic is also reported on its own.
type Router struct {
	// Address is the exporter's IP address.
	Address string `yaml:"address"`
	// Name is the subdirectory name; empty means the address.
	Name string `yaml:"name,omitempty"`
	at   string
}

// Dir returns the router's subdirectory name.
func (r Router) Dir() string {
	if r.Name != "" {
		return r.Name
	}
	return r.Address
}

// SampleRate is the 1-in-N sampling rate of one exporter.
type SampleRate struct {
	// Exporter is the exporter's IP address.
	Exporter string `yaml:"exporter"`
	// Rate is N.
	Rate uint32 `yaml:"rate"`
	at   string
}

// SampleRates is a list of exporter sampling rates. In YAML it is either a
// map from exporter address to rate or a list of {exporter, rate}.
type SampleRates []SampleRate

// UnmarshalYAML accepts a map or a list.
func (s *SampleRates) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			var rate uint32
			if err := n.Content[i+1].Decode(&rate); err != nil {
				return err
			}
			*s = append(*s, SampleRate{Exporter: n.Content[i].Value, Rate: rate})
		}
		return nil
	case yaml.SequenceNode:
		var list []SampleRate
		if err := n.Decode(&list); err != nil {
			return err
		}
		*s = append(*s, list...)
		return nil
	}
	return fmt.Errorf("line %d: sample_rates: want a map or a list", n.Line)
}

// MarshalYAML writes the map form.
func (s SampleRates) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, r := range s {
		n.Content = append(n.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Value: r.Exporter},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatUint(uint64(r.Rate), 10)})
	}
	return n, nil
}

// Network is a labelled group of prefixes (network_<name>.rrd).
type Network struct {
	Name     string   `yaml:"name"`
	Prefixes []string `yaml:"prefixes"`
	at       string
}

// Service is a labelled group of ports (service_<name>_src.rrd and
// service_<name>_dst.rrd). Ports are "80/tcp", "8000-8080/tcp" or
// "domain/udp".
type Service struct {
	Name  string   `yaml:"name"`
	Ports []string `yaml:"ports"`
	at    string
}

// ASGroup is a labelled group of AS numbers (as_<name>.rrd). ASNs are
// numbers or ranges "701-705".
type ASGroup struct {
	Name string   `yaml:"name"`
	ASNs []string `yaml:"asns"`
	at   string
}

// Protocol is one IP protocol with its own RRD (protocol_<name>.rrd).
type Protocol struct {
	// Number is the protocol number or name ("6", "tcp").
	Number string `yaml:"number"`
	// Name is the RRD label; empty means the protocol's name.
	Name string `yaml:"name,omitempty"`
	at   string
}

// TOSGroup is a labelled set of TOS byte values (tos_<name>.rrd), such
// as "0-7,32".
type TOSGroup struct {
	Name   string `yaml:"name"`
	Values string `yaml:"values"`
	at     string
}

// Scoreboard configures the per-file top-N tables.
type Scoreboard struct {
	// TopN is the number of hosts per table.
	TopN int `yaml:"top_n"`
	// Dir is the root of the YYYY-MM-DD/HH/HH:MM:SS.html tree.
	Dir string `yaml:"dir"`
	// CurrentLink is a symbolic link re-pointed at the newest table.
	CurrentLink string `yaml:"current_link,omitempty"`
	// ReverseDNS shows host names next to addresses.
	ReverseDNS bool `yaml:"reverse_dns,omitempty"`
	// DNSTimeout bounds each reverse lookup (default 2s).
	DNSTimeout time.Duration `yaml:"dns_timeout,omitempty"`
	at         string
}

// AggregateScore configures the running average top-N.
type AggregateScore struct {
	// TopN is the number of hosts per table.
	TopN int `yaml:"top_n"`
	// DataFile keeps the per-host running counts between files.
	DataFile string `yaml:"data_file"`
	// OutFile is the HTML page of average rankings.
	OutFile string `yaml:"out_file"`
	at      string
}

var labelRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.+-]*$`)

// ParseCF reads a CUFlow.cf file. Errors name file:line.
func ParseCF(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c := &Config{}
	sc := bufio.NewScanner(f)
	line := 0
	seen := map[string]string{} // kind+label → position
	for sc.Scan() {
		line++
		at := fmt.Sprintf("%s:%d", path, line)
		text, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		if err := c.parseDirective(at, fields, seen); err != nil {
			return nil, fmt.Errorf("%s: %w", at, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) parseDirective(at string, f []string, seen map[string]string) error {
	dir, args := f[0], f[1:]
	want := func(min, max int, usage string) error {
		if len(args) < min || len(args) > max {
			return fmt.Errorf("%s: want %q", dir, usage)
		}
		return nil
	}
	label := func(kind, name string) error {
		if !labelRE.MatchString(name) {
			return fmt.Errorf("%s: bad label %q (letters, digits, _ . + - only)", dir, name)
		}
		key := kind + "\x00" + name
		if prev, dup := seen[key]; dup {
			return fmt.Errorf("%s: duplicate label %q (first at %s)", dir, name, prev)
		}
		seen[key] = at
		return nil
	}
	switch strings.ToLower(dir) {
	case "subnet":
		if err := want(1, 1, "Subnet <prefix>"); err != nil {
			return err
		}
		for _, p := range strings.Split(args[0], ",") {
			if _, err := parsePrefix(p); err != nil {
				return err
			}
			c.Subnets = append(c.Subnets, p)
			c.subnetsAt = append(c.subnetsAt, at)
		}
	case "router":
		if err := want(1, 2, "Router <address> [name]"); err != nil {
			return err
		}
		r := Router{Address: args[0], at: at}
		if len(args) == 2 {
			r.Name = args[1]
		}
		if err := r.check(); err != nil {
			return err
		}
		if err := label("router", r.Dir()); err != nil {
			return err
		}
		c.Routers = append(c.Routers, r)
	case "samplerate":
		if err := want(2, 2, "SampleRate <exporter> <N>"); err != nil {
			return err
		}
		n, err := strconv.ParseUint(args[1], 10, 32)
		if err != nil || n == 0 {
			return fmt.Errorf("SampleRate: %q is not a positive number", args[1])
		}
		s := SampleRate{Exporter: args[0], Rate: uint32(n), at: at}
		if err := s.check(); err != nil {
			return err
		}
		if err := label("samplerate", s.Exporter); err != nil {
			return err
		}
		c.SampleRates = append(c.SampleRates, s)
	case "network":
		if err := want(2, 2, "Network <prefix>[,<prefix>...] <label>"); err != nil {
			return err
		}
		n := Network{Name: args[1], Prefixes: strings.Split(args[0], ","), at: at}
		if err := n.check(); err != nil {
			return err
		}
		if err := label("network", n.Name); err != nil {
			return err
		}
		c.Networks = append(c.Networks, n)
	case "service":
		if err := want(2, 2, "Service <port>[-<port>]/<proto>[,...] <label>"); err != nil {
			return err
		}
		s := Service{Name: args[1], Ports: strings.Split(args[0], ","), at: at}
		if err := s.check(); err != nil {
			return err
		}
		if err := label("service", s.Name); err != nil {
			return err
		}
		c.Services = append(c.Services, s)
	case "asnumber", "as":
		if err := want(2, 2, "ASNumber <as>[,<as>...] <label>"); err != nil {
			return err
		}
		a := ASGroup{Name: args[1], ASNs: strings.Split(args[0], ","), at: at}
		if err := a.check(); err != nil {
			return err
		}
		if err := label("as", a.Name); err != nil {
			return err
		}
		c.ASNumbers = append(c.ASNumbers, a)
	case "multicast":
		if err := want(0, 0, "Multicast"); err != nil {
			return err
		}
		c.Multicast = true
	case "protocol":
		if err := want(1, 2, "Protocol <number> [label]"); err != nil {
			return err
		}
		p := Protocol{Number: args[0], at: at}
		if len(args) == 2 {
			p.Name = args[1]
		}
		if err := p.check(); err != nil {
			return err
		}
		if err := label("protocol", p.label()); err != nil {
			return err
		}
		c.Protocols = append(c.Protocols, p)
	case "tos":
		if err := want(2, 2, "TOS <value>[-<value>][,...] <label>"); err != nil {
			return err
		}
		t := TOSGroup{Name: args[1], Values: args[0], at: at}
		if err := t.check(); err != nil {
			return err
		}
		if err := label("tos", t.Name); err != nil {
			return err
		}
		c.TOS = append(c.TOS, t)
	case "outputdir":
		if err := want(1, 1, "OutputDir <dir>"); err != nil {
			return err
		}
		c.OutputDir = args[0]
	case "scoreboard":
		if err := want(3, 3, "Scoreboard <N> <RootDir> <CurrentLink>"); err != nil {
			return err
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n <= 0 {
			return fmt.Errorf("Scoreboard: %q is not a positive number", args[0])
		}
		c.Scoreboard = &Scoreboard{TopN: n, Dir: args[1], CurrentLink: args[2], at: at}
	case "aggregatescore":
		if err := want(3, 3, "AggregateScore <N> <DataFile> <OutFile>"); err != nil {
			return err
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n <= 0 {
			return fmt.Errorf("AggregateScore: %q is not a positive number", args[0])
		}
		c.AggregateScore = &AggregateScore{TopN: n, DataFile: args[1], OutFile: args[2], at: at}
	default:
		return fmt.Errorf("unknown directive %q", dir)
	}
	return nil
}

// YAML returns the configuration as the YAML section of a flowscan
// configuration (the output of `flowscan import cuflow`).
func (c *Config) YAML() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// parsePrefix parses a CIDR prefix; host bits must be zero. A bare address
// is a host prefix.
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad prefix %q", s)
		}
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad prefix %q", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("bad prefix %q: host bits set (did you mean %s?)", s, p.Masked())
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("bad prefix %q: IPv4-mapped; write it as IPv4", s)
	}
	return p, nil
}

func (r Router) check() error {
	if _, err := netip.ParseAddr(r.Address); err != nil {
		return fmt.Errorf("Router: bad address %q", r.Address)
	}
	if r.Name != "" && !labelRE.MatchString(r.Name) {
		return fmt.Errorf("Router: bad name %q", r.Name)
	}
	return nil
}

func (s SampleRate) check() error {
	if _, err := netip.ParseAddr(s.Exporter); err != nil {
		return fmt.Errorf("SampleRate: bad exporter address %q", s.Exporter)
	}
	if s.Rate == 0 {
		return fmt.Errorf("SampleRate %s: rate must be a positive number", s.Exporter)
	}
	return nil
}

func (n Network) check() error {
	if len(n.Prefixes) == 0 {
		return fmt.Errorf("Network %s: no prefixes", n.Name)
	}
	for _, p := range n.Prefixes {
		if _, err := parsePrefix(p); err != nil {
			return fmt.Errorf("Network %s: %v", n.Name, err)
		}
	}
	return nil
}

func (s Service) check() error {
	if len(s.Ports) == 0 {
		return fmt.Errorf("Service %s: no ports", s.Name)
	}
	for _, p := range s.Ports {
		if _, err := parsePortSpec(strings.TrimSpace(p)); err != nil {
			return fmt.Errorf("Service %s: %v", s.Name, err)
		}
	}
	return nil
}

func (a ASGroup) check() error {
	if len(a.ASNs) == 0 {
		return fmt.Errorf("ASNumber %s: no AS numbers", a.Name)
	}
	if _, err := parseASList(a.ASNs); err != nil {
		return fmt.Errorf("ASNumber %s: %v", a.Name, err)
	}
	return nil
}

func (p Protocol) check() error {
	if _, err := parseProtocol(p.Number); err != nil {
		return fmt.Errorf("Protocol: %v", err)
	}
	return nil
}

// label returns the RRD label of a protocol.
func (p Protocol) label() string {
	if p.Name != "" {
		return p.Name
	}
	n, err := parseProtocol(p.Number)
	if err != nil {
		return p.Number
	}
	return protocolName(n)
}

func (t TOSGroup) check() error {
	if _, err := parseByteList(t.Values); err != nil {
		return fmt.Errorf("TOS %s: %v", t.Name, err)
	}
	return nil
}

// merge adds y's values to c: lists are appended, entries of y replace
// entries of c with the same label (or address), and scalars set in y
// replace c's.
func (c *Config) merge(y *Config) {
	if y.OutputDir != "" {
		c.OutputDir = y.OutputDir
	}
	for i, s := range y.Subnets {
		c.Subnets = append(c.Subnets, s)
		if i < len(y.subnetsAt) {
			c.subnetsAt = append(c.subnetsAt, y.subnetsAt[i])
		}
	}
	for len(c.subnetsAt) < len(c.Subnets) {
		c.subnetsAt = append(c.subnetsAt, "")
	}
	c.Routers = mergeBy(c.Routers, y.Routers, func(r Router) string { return r.Address })
	c.SampleRates = mergeBy(c.SampleRates, y.SampleRates, func(s SampleRate) string { return s.Exporter })
	c.Networks = mergeBy(c.Networks, y.Networks, func(n Network) string { return n.Name })
	c.Services = mergeBy(c.Services, y.Services, func(s Service) string { return s.Name })
	c.ASNumbers = mergeBy(c.ASNumbers, y.ASNumbers, func(a ASGroup) string { return a.Name })
	c.Protocols = mergeBy(c.Protocols, y.Protocols, func(p Protocol) string { return p.label() })
	c.TOS = mergeBy(c.TOS, y.TOS, func(t TOSGroup) string { return t.Name })
	if y.Multicast {
		c.Multicast = true
	}
	if y.Scoreboard != nil {
		c.Scoreboard = y.Scoreboard
	}
	if y.AggregateScore != nil {
		c.AggregateScore = y.AggregateScore
	}
}

// mergeBy appends add to base, replacing base entries with the same key.
func mergeBy[T any](base, add []T, key func(T) string) []T {
	index := map[string]int{}
	for i, b := range base {
		index[key(b)] = i
	}
	for _, a := range add {
		if i, ok := index[key(a)]; ok {
			base[i] = a
			continue
		}
		index[key(a)] = len(base)
		base = append(base, a)
	}
	return base
}

// validate checks every value (for entries from YAML, which ParseCF has
// not seen) and the uniqueness of labels; errors name the CUFlow.cf
// position or the YAML list and index.
func (c *Config) validate() error {
	var errs []error
	pos := func(at, list string, i int) string {
		if at != "" {
			return at
		}
		return fmt.Sprintf("cuflow %s[%d]", list, i)
	}
	dups := func(list string, n int, name func(int) string, at func(int) string) {
		first := map[string]int{}
		for i := 0; i < n; i++ {
			if j, dup := first[name(i)]; dup {
				errs = append(errs, fmt.Errorf("%s: duplicate label %q (first at %s)", pos(at(i), list, i), name(i), pos(at(j), list, j)))
				continue
			}
			first[name(i)] = i
		}
	}
	for i, s := range c.Subnets {
		if _, err := parsePrefix(s); err != nil {
			at := ""
			if i < len(c.subnetsAt) {
				at = c.subnetsAt[i]
			}
			errs = append(errs, fmt.Errorf("%s: Subnet: %v", pos(at, "subnets", i), err))
		}
	}
	for i, r := range c.Routers {
		if err := r.check(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", pos(r.at, "routers", i), err))
		}
	}
	dups("routers", len(c.Routers), func(i int) string { return c.Routers[i].Dir() }, func(i int) string { return c.Routers[i].at })
	dups("routers", len(c.Routers), func(i int) string { return c.Routers[i].Address }, func(i int) string { return c.Routers[i].at })
	for i, s := range c.SampleRates {
		if err := s.check(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", pos(s.at, "sample_rates", i), err))
		}
	}
	dups("sample_rates", len(c.SampleRates), func(i int) string { return c.SampleRates[i].Exporter }, func(i int) string { return c.SampleRates[i].at })
	type labelled struct {
		list  string
		n     int
		name  func(int) string
		at    func(int) string
		check func(int) error
	}
	for _, l := range []labelled{
		{"networks", len(c.Networks), func(i int) string { return c.Networks[i].Name }, func(i int) string { return c.Networks[i].at }, func(i int) error { return c.Networks[i].check() }},
		{"services", len(c.Services), func(i int) string { return c.Services[i].Name }, func(i int) string { return c.Services[i].at }, func(i int) error { return c.Services[i].check() }},
		{"as_numbers", len(c.ASNumbers), func(i int) string { return c.ASNumbers[i].Name }, func(i int) string { return c.ASNumbers[i].at }, func(i int) error { return c.ASNumbers[i].check() }},
		{"protocols", len(c.Protocols), func(i int) string { return c.Protocols[i].label() }, func(i int) string { return c.Protocols[i].at }, func(i int) error { return c.Protocols[i].check() }},
		{"tos", len(c.TOS), func(i int) string { return c.TOS[i].Name }, func(i int) string { return c.TOS[i].at }, func(i int) error { return c.TOS[i].check() }},
	} {
		for i := 0; i < l.n; i++ {
			if err := l.check(i); err != nil {
				errs = append(errs, fmt.Errorf("%s: %v", pos(l.at(i), l.list, i), err))
			} else if !labelRE.MatchString(l.name(i)) {
				errs = append(errs, fmt.Errorf("%s: bad label %q", pos(l.at(i), l.list, i), l.name(i)))
			}
		}
		dups(l.list, l.n, l.name, l.at)
	}
	if s := c.Scoreboard; s != nil {
		if s.TopN <= 0 || s.Dir == "" {
			errs = append(errs, fmt.Errorf("%s: scoreboard needs top_n > 0 and dir", pos(s.at, "scoreboard", 0)))
		}
		if s.DNSTimeout < 0 {
			errs = append(errs, fmt.Errorf("%s: scoreboard dns_timeout is negative", pos(s.at, "scoreboard", 0)))
		}
	}
	if a := c.AggregateScore; a != nil {
		if a.TopN <= 0 || a.DataFile == "" || a.OutFile == "" {
			errs = append(errs, fmt.Errorf("%s: aggregate_score needs top_n > 0, data_file and out_file", pos(a.at, "aggregate_score", 0)))
		}
	}
	return errors.Join(errs...)
}
