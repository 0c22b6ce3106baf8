package subnetio

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/report"
	"github.com/flowscan/flowscan/internal/report/campusio"
)

func init() {
	report.Register("subnetio", func(env *report.Env, decode report.Decoder) (report.Module, error) {
		var c Config
		if err := decode(&c); err != nil {
			return nil, err
		}
		return New("subnetio", env, &c)
	})
}

// Config is subnetio's configuration: campusio's keys plus subnets.
type Config struct {
	campusio.Config `yaml:",inline"`
	// Subnets are the subnets with their own RRD file and top report.
	Subnets []Subnet `yaml:"subnets"`
}

// Subnet is one billed subnet: a prefix and an optional display name. In
// YAML it is either a plain prefix or a mapping {prefix, name}.
type Subnet struct {
	Prefix string `yaml:"prefix"`
	Name   string `yaml:"name"`
}

// UnmarshalText accepts the plain-prefix form.
func (s *Subnet) UnmarshalText(b []byte) error {
	s.Prefix = string(b)
	return nil
}

// FileName returns the base name (without .rrd) of a subnet's files: the
// prefix with '/' replaced by '_' and, for IPv6, ':' by '-'
// ("10.1.0.0_16", "2001-db8--_48").
func FileName(p netip.Prefix) string {
	return strings.NewReplacer("/", "_", ":", "-").Replace(p.Masked().String())
}

// Module is the subnetio report module.
type Module struct {
	*campusio.Module
	subnets *campusio.PrefixTable
	names   []string
	files   []string
	counts  []campusio.IO
}

// New builds a subnetio module named name.
func New(name string, env *report.Env, c *Config) (*Module, error) {
	if len(c.Subnets) == 0 {
		return nil, fmt.Errorf("%s: subnets: at least one subnet is required", name)
	}
	strs := make([]string, len(c.Subnets))
	for i, s := range c.Subnets {
		strs[i] = s.Prefix
	}
	ps, err := campusio.ParsePrefixes("subnets", strs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	table, err := campusio.NewPrefixTable(ps)
	if err != nil {
		return nil, fmt.Errorf("%s: subnets: %w", name, err)
	}
	cc := c.Config
	if len(cc.LocalSubnets) == 0 {
		cc.LocalSubnets = strs
	}
	io, err := campusio.New(name, env, &cc)
	if err != nil {
		return nil, err
	}
	m := &Module{Module: io, subnets: table, counts: make([]campusio.IO, len(ps))}
	local := io.Classifier().Local()
	for i, p := range ps {
		if !local.Covers(p) {
			return nil, fmt.Errorf("%s: subnets: %v is not inside local_subnets", name, p)
		}
		n := c.Subnets[i].Name
		if n == "" {
			n = p.String()
		}
		m.names = append(m.names, n)
		m.files = append(m.files, FileName(p))
	}
	return m, nil
}

// PerFile starts a new file.
func (m *Module) PerFile(f *report.File) error {
	clear(m.counts)
	return m.Module.PerFile(f)
}

// Wanted counts the flow as campusio does, then for the subnet (the most
// specific one) of its local end: the destination of inbound flows, the
// source of outbound ones. Multicast counted apart is not billed to
// subnets. It does not allocate.
func (m *Module) Wanted(r *flow.Record) bool {
	d, ok := m.Count(r)
	if !ok {
		return false
	}
	if m.Multicast() && r.DstAddr.IsMulticast() {
		return true
	}
	a := r.DstAddr
	if d == campusio.Out {
		a = r.SrcAddr
	}
	if i := m.subnets.Lookup(a); i >= 0 {
		m.counts[i][d].Add(r)
	}
	return true
}

// Report writes campusio's files, then one RRD file and one top talkers
// report per subnet.
func (m *Module) Report() error {
	errs := []error{m.Module.Report()}
	dir := m.OutputDir()
	for i, f := range m.files {
		errs = append(errs, m.WriteRRD(filepath.Join(dir, f+".rrd"), &m.counts[i]))
	}
	if n := m.TopN(); n > 0 {
		by := make([][]campusio.HostIO, len(m.files))
		m.EachHost(func(a netip.Addr, io *campusio.IO) {
			if i := m.subnets.Lookup(a); i >= 0 {
				by[i] = append(by[i], campusio.HostIO{Addr: a, IO: *io})
			}
		})
		prefix := campusio.ReportPrefix(m.ReportPrefixFormat(), m.File().Start)
		for i, f := range m.files {
			title := fmt.Sprintf("%s: top talkers of %s", m.Name(), m.names[i])
			if p := m.subnets.Prefix(i).String(); p != m.names[i] {
				title += " (" + p + ")"
			}
			rep := campusio.NewTopReport(title, m.File(), by[i], n)
			errs = append(errs, campusio.WriteTopReport(filepath.Join(dir, "top", prefix+f), rep))
		}
	}
	return errors.Join(errs...)
}
