package cuflow

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/report"
	"github.com/flowscan/flowscan/internal/rrd"
)

func init() {
	report.Register("cuflow", New)
}

// Direction indexes of a counter.
const (
	dirIn  = 0
	dirOut = 1
)

// counter holds the six values of one RRD: bytes, packets and flows, in
// and out.
type counter struct {
	bytes, pkts, flows [2]uint64
}

func (c *counter) add(dir int, bytes, pkts, flows uint64) {
	c.bytes[dir] += bytes
	c.pkts[dir] += pkts
	c.flows[dir] += flows
}

// layout places the categories of one scope (all traffic, or one Router)
// in a flat counter array.
type layout struct {
	protocols, services, tos, as int // first index of each group
	multicast, internal, transit int
	perScope                     int
}

// exporterEntry is what the configuration says about one exporter.
type exporterEntry struct {
	addr netip.Addr
	// scope is 1+the router index, or 0 when the exporter is no Router.
	scope int
	// rate is the SampleRate directive's N, 0 without one.
	rate uint64
}

// rrdTarget is one RRD file and the counter it stores.
type rrdTarget struct {
	path    string
	counter *counter
	// networkOrder selects network_*.rrd's DS order.
	networkOrder bool
}

// Module is the cuflow report module.
type Module struct {
	env    *report.Env
	log    *slog.Logger
	cfg    *Config
	outDir string

	addrs     *addrTable
	exporters []exporterEntry
	// lastExporter caches the exporter lookup: flows arrive in runs.
	lastExporter netip.Addr
	lastEntry    int

	protoIndex [256]uint16         // 1+protocol index, 0 none
	ports      [256]*[65536]uint16 // port → service set, per protocol
	tosSet     [256]uint16         // TOS → TOS group set
	asSet      map[uint32]uint16   // AS → AS group set
	sets       [][]uint16          // set id → group indexes; sets[0] is empty
	lay        layout
	multicast  bool
	counters   []counter // scopes × lay.perScope
	networks   []counter
	targets    []rrdTarget
	scopeNames []string

	board *scoreboard
	file  *report.File
}

// New builds the module from its configuration section; it is the
// factory registered as "cuflow".
func New(env *report.Env, decode report.Decoder) (report.Module, error) {
	var y Config
	if decode != nil {
		if err := decode(&y); err != nil {
			return nil, err
		}
	}
	cfg := &Config{}
	if y.CF != "" {
		cf, err := ParseCF(resolve(env.BaseDir, y.CF))
		if err != nil {
			return nil, err
		}
		cfg = cf
	}
	cfg.merge(&y)
	return newModule(env, cfg)
}

func resolve(base, p string) string {
	if p == "" || filepath.IsAbs(p) || base == "" {
		return p
	}
	return filepath.Join(base, p)
}

func newModule(env *report.Env, cfg *Config) (*Module, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if env.Interval < 1e9 {
		return nil, fmt.Errorf("cuflow: interval %v shorter than a second", env.Interval)
	}
	m := &Module{env: env, log: env.Logger, cfg: cfg, lastEntry: -1, multicast: cfg.Multicast}
	if m.log == nil {
		m.log = slog.Default()
	}
	m.outDir = env.OutputDir
	if cfg.OutputDir != "" {
		m.outDir = resolve(env.BaseDir, cfg.OutputDir)
	}

	// Addresses.
	var items []tagged
	var subnets []netip.Prefix
	for _, s := range cfg.Subnets {
		p, _ := parsePrefix(s)
		items = append(items, tagged{p, -1})
		subnets = append(subnets, p)
	}
	for i, n := range cfg.Networks {
		for _, s := range n.Prefixes {
			p, _ := parsePrefix(s)
			items = append(items, tagged{p, i})
			if !slices.ContainsFunc(subnets, func(sub netip.Prefix) bool { return sub.Bits() <= p.Bits() && sub.Contains(p.Addr()) }) {
				m.log.Warn("cuflow: network prefix is not inside any Subnet; it will count nothing", "network", n.Name, "prefix", p)
			}
		}
	}
	m.addrs = buildAddrTable(items)

	// Exporters: Routers and SampleRates.
	for i, r := range cfg.Routers {
		a, _ := netip.ParseAddr(r.Address)
		m.exporters = append(m.exporters, exporterEntry{addr: a.Unmap(), scope: 1 + i})
		m.scopeNames = append(m.scopeNames, r.Dir())
	}
	for _, s := range cfg.SampleRates {
		a, _ := netip.ParseAddr(s.Exporter)
		a = a.Unmap()
		i := slices.IndexFunc(m.exporters, func(e exporterEntry) bool { return e.addr == a })
		if i < 0 {
			m.exporters = append(m.exporters, exporterEntry{addr: a})
			i = len(m.exporters) - 1
		}
		m.exporters[i].rate = uint64(s.Rate)
	}

	// Category layout.
	m.lay.protocols = 1
	m.lay.services = m.lay.protocols + len(cfg.Protocols)
	m.lay.tos = m.lay.services + 2*len(cfg.Services)
	m.lay.as = m.lay.tos + len(cfg.TOS)
	m.lay.multicast = m.lay.as + len(cfg.ASNumbers)
	m.lay.internal = m.lay.multicast + 1
	m.lay.transit = m.lay.internal + 1
	m.lay.perScope = m.lay.transit + 1
	m.counters = make([]counter, (1+len(cfg.Routers))*m.lay.perScope)
	m.networks = make([]counter, len(cfg.Networks))

	// Lookup tables.
	sets := newSetBuilder()
	for i, p := range cfg.Protocols {
		n, _ := parseProtocol(p.Number)
		if m.protoIndex[n] == 0 {
			m.protoIndex[n] = uint16(1 + i)
		}
	}
	portGroups := map[uint8]*[65536][]uint16{}
	for i, s := range cfg.Services {
		for _, spec := range s.Ports {
			pr, _ := parsePortSpec(strings.TrimSpace(spec))
			g := portGroups[pr.proto]
			if g == nil {
				g = new([65536][]uint16)
				portGroups[pr.proto] = g
			}
			for p := int(pr.lo); p <= int(pr.hi); p++ {
				if !slices.Contains(g[p], uint16(i)) {
					g[p] = append(g[p], uint16(i))
				}
			}
		}
	}
	for proto, g := range portGroups {
		table := new([65536]uint16)
		for p := range g {
			table[p] = sets.id(g[p])
		}
		m.ports[proto] = table
	}
	var tosGroups [256][]uint16
	for i, t := range cfg.TOS {
		vals, _ := parseByteList(t.Values)
		for _, v := range vals {
			if !slices.Contains(tosGroups[v], uint16(i)) {
				tosGroups[v] = append(tosGroups[v], uint16(i))
			}
		}
	}
	for v := range tosGroups {
		m.tosSet[v] = sets.id(tosGroups[v])
	}
	if len(cfg.ASNumbers) > 0 {
		asGroups := map[uint32][]uint16{}
		for i, a := range cfg.ASNumbers {
			ranges, _ := parseASList(a.ASNs)
			for _, r := range ranges {
				for as := uint64(r[0]); as <= uint64(r[1]); as++ {
					if !slices.Contains(asGroups[uint32(as)], uint16(i)) {
						asGroups[uint32(as)] = append(asGroups[uint32(as)], uint16(i))
					}
				}
			}
		}
		m.asSet = make(map[uint32]uint16, len(asGroups))
		for as, g := range asGroups {
			m.asSet[as] = sets.id(g)
		}
	}
	m.sets = sets.sets

	m.buildTargets()
	if cfg.Scoreboard != nil || cfg.AggregateScore != nil {
		m.board = newScoreboard(m)
	}
	return m, nil
}

// setBuilder interns sets of group indexes.
type setBuilder struct {
	index map[string]uint16
	sets  [][]uint16
}

func newSetBuilder() *setBuilder {
	return &setBuilder{index: map[string]uint16{"": 0}, sets: [][]uint16{nil}}
}

func (b *setBuilder) id(groups []uint16) uint16 {
	if len(groups) == 0 {
		return 0
	}
	g := slices.Clone(groups)
	slices.Sort(g)
	var sb strings.Builder
	for _, x := range g {
		sb.WriteString(strconv.Itoa(int(x)) + ",")
	}
	if id, ok := b.index[sb.String()]; ok {
		return id
	}
	id := uint16(len(b.sets))
	b.index[sb.String()] = id
	b.sets = append(b.sets, g)
	return id
}

// buildTargets lists every RRD file with its counter.
func (m *Module) buildTargets() {
	cfg := m.cfg
	for scope := 0; scope <= len(cfg.Routers); scope++ {
		dir := m.outDir
		if scope > 0 {
			dir = filepath.Join(m.outDir, m.scopeNames[scope-1])
		}
		base := scope * m.lay.perScope
		add := func(name string, cat int) {
			m.targets = append(m.targets, rrdTarget{path: filepath.Join(dir, name+".rrd"), counter: &m.counters[base+cat]})
		}
		add("total", 0)
		for i, p := range cfg.Protocols {
			add("protocol_"+p.label(), m.lay.protocols+i)
		}
		for i, s := range cfg.Services {
			add("service_"+s.Name+"_src", m.lay.services+2*i)
			add("service_"+s.Name+"_dst", m.lay.services+2*i+1)
		}
		for i, t := range cfg.TOS {
			add("tos_"+t.Name, m.lay.tos+i)
		}
		for i, a := range cfg.ASNumbers {
			add("as_"+a.Name, m.lay.as+i)
		}
		if cfg.Multicast {
			add("protocol_multicast", m.lay.multicast)
		}
		add("internal", m.lay.internal)
		add("transit", m.lay.transit)
	}
	for i, n := range cfg.Networks {
		m.targets = append(m.targets, rrdTarget{path: filepath.Join(m.outDir, "network_"+n.Name+".rrd"), counter: &m.networks[i], networkOrder: true})
	}
}

// Name returns "cuflow".
func (m *Module) Name() string { return "cuflow" }

// PerFile starts a file: all counters go back to zero.
func (m *Module) PerFile(f *report.File) error {
	m.file = f
	clear(m.counters)
	clear(m.networks)
	if m.board != nil {
		m.board.reset()
	}
	return nil
}

// findExporter returns the index of the exporter's entry, or -1.
func (m *Module) findExporter(a netip.Addr) int {
	a = a.Unmap()
	for i := range m.exporters {
		if m.exporters[i].addr == a {
			return i
		}
	}
	return -1
}

// Wanted counts one flow. Every flow has a place (in, out, multicast,
// internal or transit), so it always returns true.
func (m *Module) Wanted(r *flow.Record) bool {
	classes := m.addrs.classes
	src := &classes[m.addrs.lookup(r.SrcAddr)]
	dst := &classes[m.addrs.lookup(r.DstAddr)]

	if r.Exporter != m.lastExporter {
		m.lastExporter = r.Exporter
		m.lastEntry = m.findExporter(r.Exporter)
	}
	routerBase := -1
	bytes, pkts, flows := r.Bytes, r.Packets, uint64(1)
	if m.lastEntry >= 0 {
		e := &m.exporters[m.lastEntry]
		if e.scope > 0 {
			routerBase = e.scope * m.lay.perScope
		}
		if e.rate > 0 {
			if r.SamplingRate > 1 {
				// Already scaled by the collector: count the flows the
				// sample stands for.
				flows = uint64(r.SamplingRate)
			} else {
				bytes *= e.rate
				pkts *= e.rate
				flows = e.rate
			}
		}
	}
	cnt := m.counters

	if m.multicast && r.DstAddr.IsMulticast() {
		dir := dirIn
		if src.inside {
			dir = dirOut
		}
		cnt[m.lay.multicast].add(dir, bytes, pkts, flows)
		if routerBase >= 0 {
			cnt[routerBase+m.lay.multicast].add(dir, bytes, pkts, flows)
		}
		return true
	}

	var dir int
	var host netip.Addr
	var hostClass *addrClass
	switch {
	case dst.inside && !src.inside:
		dir, host, hostClass = dirIn, r.DstAddr, dst
	case src.inside && !dst.inside:
		dir, host, hostClass = dirOut, r.SrcAddr, src
	default:
		cat := m.lay.transit
		if src.inside {
			cat = m.lay.internal
		}
		cnt[cat].add(dirIn, bytes, pkts, flows)
		if routerBase >= 0 {
			cnt[routerBase+cat].add(dirIn, bytes, pkts, flows)
		}
		return true
	}

	// The categories of this flow, counted in the all-traffic scope and
	// in the router's.
	for base := 0; ; base = routerBase {
		cnt[base].add(dir, bytes, pkts, flows)
		if p := m.protoIndex[r.Proto]; p != 0 {
			cnt[base+m.lay.protocols+int(p)-1].add(dir, bytes, pkts, flows)
		}
		if table := m.ports[r.Proto]; table != nil {
			srcSet, dstSet := table[r.SrcPort], table[r.DstPort]
			for _, s := range m.sets[dstSet] {
				cnt[base+m.lay.services+2*int(s)+1].add(dir, bytes, pkts, flows)
			}
			if srcSet != dstSet {
				for _, s := range m.sets[srcSet] {
					// A flow whose both ports belong to the service
					// counted once, as _dst.
					if dstSet != 0 && slices.Contains(m.sets[dstSet], s) {
						continue
					}
					cnt[base+m.lay.services+2*int(s)].add(dir, bytes, pkts, flows)
				}
			}
		}
		if t := m.tosSet[r.TOS]; t != 0 {
			for _, g := range m.sets[t] {
				cnt[base+m.lay.tos+int(g)].add(dir, bytes, pkts, flows)
			}
		}
		if m.asSet != nil {
			as := r.SrcAS
			if dir == dirOut {
				as = r.DstAS
			}
			if set, ok := m.asSet[as]; ok {
				for _, g := range m.sets[set] {
					cnt[base+m.lay.as+int(g)].add(dir, bytes, pkts, flows)
				}
			}
		}
		if base == routerBase || routerBase < 0 {
			break
		}
	}
	for _, n := range hostClass.networks {
		m.networks[n].add(dir, bytes, pkts, flows)
	}
	if m.board != nil {
		m.board.add(host, dir, bytes, pkts, flows)
	}
	return true
}

// Report writes the file's counts into the RRDs, then the scoreboards.
func (m *Module) Report() error {
	if m.file == nil {
		return errors.New("cuflow: Report without PerFile")
	}
	var errs []error
	skipped := 0
	step := m.env.Interval
	// The file's counts belong to the step that ends when the file ends.
	when := m.file.End
	for _, t := range m.targets {
		if err := m.env.RRD.Create(t.path, step, m.file.Start, m.dataSources(t.networkOrder), rrdRRAs(step)); err != nil {
			errs = append(errs, err)
			continue
		}
		c := t.counter
		var vals []float64
		if t.networkOrder {
			vals = []float64{f(c.bytes[0]), f(c.pkts[0]), f(c.flows[0]), f(c.bytes[1]), f(c.pkts[1]), f(c.flows[1])}
		} else {
			vals = []float64{f(c.bytes[0]), f(c.bytes[1]), f(c.pkts[0]), f(c.pkts[1]), f(c.flows[0]), f(c.flows[1])}
		}
		err := m.env.RRD.UpdateSpan(t.path, step, m.file.Start, when, vals...)
		switch {
		case errors.Is(err, errPastUpdate):
			skipped++
		case err != nil:
			errs = append(errs, err)
		}
	}
	if skipped > 0 {
		m.log.Info("cuflow: file already in the RRDs, not counted again", "file", m.file.Path, "rrds", skipped)
	}
	if m.board != nil {
		if err := m.board.report(m.file); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 8 {
		errs = append(errs[:8], fmt.Errorf("and %d more errors", len(errs)-8))
	}
	return errors.Join(errs...)
}

func f(v uint64) float64 { return float64(v) }

// CUFlow's data source names and orders.
var (
	cuflowDS  = []string{"in_bytes", "out_bytes", "in_pkts", "out_pkts", "in_flows", "out_flows"}
	networkDS = []string{"in_bytes", "in_pkts", "in_flows", "out_bytes", "out_pkts", "out_flows"}
)

func (m *Module) dataSources(networkOrder bool) []rrd.DS {
	if networkOrder {
		return rrd.FlowDS(m.env.Interval, networkDS...)
	}
	return rrd.FlowDS(m.env.Interval, cuflowDS...)
}

var (
	rrdRRAs       = rrd.FlowScanRRAs
	errPastUpdate = rrd.ErrPastUpdate
)
