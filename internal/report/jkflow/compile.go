package jkflow

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"github.com/flowscan/flowscan/internal/flow"
)

// Ways a flow counts for a direction: indexes into a counter.
const (
	wayIn  = 0
	wayOut = 1
)

// counter holds in_bytes out_bytes in_pkts out_pkts in_flows out_flows, in
// the data-source order of the RRD files.
type counter [6]uint64

func (c *counter) add(way int, b, p, f uint64) {
	c[way] += b
	c[2+way] += p
	c[4+way] += f
}

// dscpNames names the DSCP code points that have a class; others are
// "other". CS0 is BE.
var dscpNames = map[uint8]string{
	0: "BE", 8: "CS1", 16: "CS2", 24: "CS3", 32: "CS4", 40: "CS5", 48: "CS6", 56: "CS7",
	10: "AF11", 12: "AF12", 14: "AF13", 18: "AF21", 20: "AF22", 22: "AF23",
	26: "AF31", 28: "AF32", 30: "AF33", 34: "AF41", 36: "AF42", 38: "AF43", 46: "EF",
}

// dscpOrder is the order of the DSCP classes' RRD files.
var dscpOrder = []string{"BE", "AF11", "AF12", "AF13", "AF21", "AF22", "AF23", "AF31", "AF32", "AF33",
	"AF41", "AF42", "AF43", "CS1", "CS2", "CS3", "CS4", "CS5", "CS6", "CS7", "EF", "other"}

// catSet is a compiled set of counters: category indexes into a
// direction's counter slice (-1: not counted) and port tables. Directions
// with the same counters share one.
type catSet struct {
	names      []string // RRD base names, e.g. "protocol_tcp"
	total      int16
	proto      [256]int16
	protoOther int16
	multicast  int16
	tos        [64]int16 // by DSCP code point (TOS>>2)
	// ports[0] is TCP, ports[1] UDP: service index+1, 0 for none.
	ports    [2]*[65536]uint16
	svcSrc   []int16
	svcDst   []int16
	svcOther int16
}

func (cs *catSet) add(name string) int16 {
	cs.names = append(cs.names, name)
	return int16(len(cs.names) - 1)
}

var multicast4 = netip.MustParsePrefix("224.0.0.0/4")
var multicast6 = netip.MustParsePrefix("ff00::/8")

// count adds one flow to the categories it falls in.
func (cs *catSet) count(c []counter, r *flow.Record, way int, b, p, f uint64) {
	if cs.total >= 0 {
		c[cs.total].add(way, b, p, f)
	}
	if i := cs.proto[r.Proto]; i >= 0 {
		c[i].add(way, b, p, f)
	} else if cs.protoOther >= 0 {
		c[cs.protoOther].add(way, b, p, f)
	}
	if cs.multicast >= 0 {
		d := r.DstAddr.Unmap()
		if multicast4.Contains(d) || multicast6.Contains(d) {
			c[cs.multicast].add(way, b, p, f)
		}
	}
	if i := cs.tos[r.TOS>>2]; i >= 0 {
		c[i].add(way, b, p, f)
	}
	var t *[65536]uint16
	switch r.Proto {
	case 6:
		t = cs.ports[0]
	case 17:
		t = cs.ports[1]
	default:
		return
	}
	var s, d uint16
	if t != nil {
		s, d = t[r.SrcPort], t[r.DstPort]
	}
	switch {
	case s == 0 && d == 0:
		if cs.svcOther >= 0 {
			c[cs.svcOther].add(way, b, p, f)
		}
	case s == d:
		// The same service on both ports counts once, as destination.
		c[cs.svcDst[d-1]].add(way, b, p, f)
	default:
		if s != 0 {
			c[cs.svcSrc[s-1]].add(way, b, p, f)
		}
		if d != 0 {
			c[cs.svcDst[d-1]].add(way, b, p, f)
		}
	}
}

// Direction kinds.
const (
	kindSites = iota
	kindRouters
	kindOther
	kindAll
)

type router struct {
	exporter netip.Addr
	ifs      []uint32
	local    *prefixSet
}

// direction is a compiled direction (or "all").
type direction struct {
	path                   string
	kind                   int
	from, to, noFrom, noTo *prefixSet // from/to nil: any address
	routers                []router
	local                  *prefixSet // all: local subnets
	rate                   uint64
	cs                     *catSet
	counts                 []counter
	children               []*direction
	other                  *direction
	score                  *scoreboard
}

// keys are a flow's addresses prepared for prefix lookups.
type keys struct{ src, dst addrKey }

func (d *direction) fwd(a, b *addrKey) bool {
	return (d.from == nil || d.from.has(a)) && !d.noFrom.has(a) &&
		(d.to == nil || d.to.has(b)) && !d.noTo.has(b)
}

// way returns how r counts for d (wayIn, wayOut) or -1 if it does not.
// parent is the way the flow counted for the enclosing level.
func (d *direction) way(r *flow.Record, k *keys, parent int) int {
	switch d.kind {
	case kindSites:
		if d.fwd(&k.src, &k.dst) {
			return wayOut
		}
		if d.fwd(&k.dst, &k.src) {
			return wayIn
		}
	case kindRouters:
		exp := r.Exporter.Unmap()
		for i := range d.routers {
			rt := &d.routers[i]
			if rt.exporter != exp {
				continue
			}
			if rt.local != nil {
				if rt.local.has(&k.src) {
					return wayOut
				}
				if rt.local.has(&k.dst) {
					return wayIn
				}
				continue
			}
			if slices.Contains(rt.ifs, r.InIf) {
				return wayIn
			}
			if slices.Contains(rt.ifs, r.OutIf) {
				return wayOut
			}
		}
	case kindAll:
		if d.local == nil {
			return wayOut
		}
		if d.local.has(&k.src) {
			return wayOut
		}
		if d.local.has(&k.dst) {
			return wayIn
		}
	case kindOther:
		return parent
	}
	return -1
}

// add counts r for d.
func (d *direction) add(r *flow.Record, way int) {
	b, p, f := r.Bytes*d.rate, r.Packets*d.rate, d.rate
	d.cs.count(d.counts, r, way, b, p, f)
	if d.score != nil {
		d.score.add(r, way, b, p, f)
	}
}

// match counts r for the directions ds (and their children); other gets
// the flow if none of ds matched. It reports whether any counted it.
func match(ds []*direction, other *direction, r *flow.Record, k *keys, parent int) bool {
	hit := false
	for _, d := range ds {
		w := d.way(r, k, parent)
		if w < 0 {
			continue
		}
		hit = true
		d.add(r, w)
		match(d.children, d.other, r, k, w)
	}
	if !hit && other != nil {
		other.add(r, parent)
		match(other.children, other.other, r, k, parent)
		return true
	}
	return hit
}

// model is a compiled configuration.
type model struct {
	all   *direction
	top   []*direction
	other *direction
	flat  []*direction // every direction, in configuration order
}

// compiler turns a Config into a model.
type compiler struct {
	cfg   *Config
	sites map[string][]netip.Prefix
	sets  map[string]*catSet
	paths map[string]bool
}

// compile validates cfg and builds the model.
func compile(cfg *Config) (*model, error) {
	c := &compiler{cfg: cfg, sites: map[string][]netip.Prefix{}, sets: map[string]*catSet{}, paths: map[string]bool{}}
	for _, name := range sortedKeys(cfg.Sites) {
		if err := checkName("site", name); err != nil {
			return nil, err
		}
		for _, s := range cfg.Sites[name] {
			p, err := parsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("site %q: %w", name, err)
			}
			c.sites[name] = append(c.sites[name], p)
		}
	}
	for _, name := range sortedKeys(cfg.DefineSets) {
		if _, err := c.merge(cfg.DefineSets[name], "define set "+name, nil); err != nil {
			return nil, err
		}
	}
	m := &model{}
	if cfg.All != nil {
		d := &direction{path: "all", kind: kindAll, rate: rateOr(cfg.All.SampleRate, 1)}
		if len(cfg.All.LocalSubnets) > 0 {
			ps, err := prefixes(cfg.All.LocalSubnets)
			if err != nil {
				return nil, fmt.Errorf("all: local_subnets: %w", err)
			}
			d.local = newPrefixSet(ps)
		}
		if err := c.counters(d, cfg.All.Counters, "all"); err != nil {
			return nil, err
		}
		c.paths["all"] = true
		m.all = d
		m.flat = append(m.flat, d)
	}
	var err error
	m.top, m.other, err = c.directions(m, cfg.Directions, "", 1)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func rateOr(r uint32, def uint64) uint64 {
	if r == 0 {
		return def
	}
	return uint64(r)
}

func prefixes(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		p, err := parsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// addresses resolves site names or prefixes plus extra prefixes; nil when
// both are empty.
func (c *compiler) addresses(names, subnets []string, what string) (*prefixSet, error) {
	if len(names) == 0 && len(subnets) == 0 {
		return nil, nil
	}
	var ps []netip.Prefix
	for _, n := range names {
		if site, ok := c.sites[n]; ok {
			ps = append(ps, site...)
			continue
		}
		p, err := parsePrefix(n)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is neither a site nor a prefix", what, n)
		}
		ps = append(ps, p)
	}
	for _, s := range subnets {
		p, err := parsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		ps = append(ps, p)
	}
	return newPrefixSet(ps), nil
}

func (c *compiler) directions(m *model, ds []Direction, parent string, prate uint64) ([]*direction, *direction, error) {
	var out []*direction
	var other *direction
	for i := range ds {
		cd := &ds[i]
		if err := checkName("direction", cd.Name); err != nil {
			return nil, nil, err
		}
		if cd.Name == "scoreboard" {
			return nil, nil, fmt.Errorf("direction name %q is reserved", cd.Name)
		}
		path := cd.Name
		if parent != "" {
			path = parent + "/" + cd.Name
		}
		if c.paths[path] {
			return nil, nil, fmt.Errorf("duplicate direction %q", path)
		}
		c.paths[path] = true
		d := &direction{path: path, rate: rateOr(cd.SampleRate, prate)}
		what := "direction " + path
		sites := len(cd.From)+len(cd.To)+len(cd.NoFrom)+len(cd.NoTo)+len(cd.FromSubnets)+len(cd.ToSubnets)+len(cd.NoFromSubnets)+len(cd.NoToSubnets) > 0
		switch {
		case cd.Name == OtherName:
			if sites || cd.RouterGroup != "" {
				return nil, nil, fmt.Errorf("%s: the catch-all direction takes no from/to/router_group", what)
			}
			d.kind = kindOther
		case cd.RouterGroup != "":
			if sites {
				return nil, nil, fmt.Errorf("%s: router_group cannot be combined with from/to", what)
			}
			rs, ok := c.cfg.RouterGroups[cd.RouterGroup]
			if !ok {
				return nil, nil, fmt.Errorf("%s: undefined router group %q", what, cd.RouterGroup)
			}
			d.kind = kindRouters
			for j, r := range rs {
				a, err := netip.ParseAddr(r.Exporter)
				if err != nil {
					return nil, nil, fmt.Errorf("router group %q: bad exporter address %q", cd.RouterGroup, r.Exporter)
				}
				rt := router{exporter: a.Unmap(), ifs: r.Interfaces}
				if len(r.LocalSubnets) > 0 {
					if len(r.Interfaces) > 0 {
						return nil, nil, fmt.Errorf("router group %q: router %d has both interfaces and local_subnets", cd.RouterGroup, j+1)
					}
					ps, err := prefixes(r.LocalSubnets)
					if err != nil {
						return nil, nil, fmt.Errorf("router group %q: %w", cd.RouterGroup, err)
					}
					rt.local = newPrefixSet(ps)
				} else if len(r.Interfaces) == 0 {
					return nil, nil, fmt.Errorf("router group %q: router %d needs interfaces or local_subnets", cd.RouterGroup, j+1)
				}
				d.routers = append(d.routers, rt)
			}
		case sites:
			d.kind = kindSites
			var err error
			if d.from, err = c.addresses(cd.From, cd.FromSubnets, what+": from"); err != nil {
				return nil, nil, err
			}
			if d.to, err = c.addresses(cd.To, cd.ToSubnets, what+": to"); err != nil {
				return nil, nil, err
			}
			if d.noFrom, err = c.addresses(cd.NoFrom, cd.NoFromSubnets, what+": no_from"); err != nil {
				return nil, nil, err
			}
			if d.noTo, err = c.addresses(cd.NoTo, cd.NoToSubnets, what+": no_to"); err != nil {
				return nil, nil, err
			}
		default:
			return nil, nil, fmt.Errorf("%s selects nothing: give from/to (sites or prefixes) or router_group", what)
		}
		if err := c.counters(d, cd.Counters, what); err != nil {
			return nil, nil, err
		}
		if sb := cd.Scoreboard; sb != nil && (sb.Hosts || sb.Ports) {
			n := sb.TopN
			if n <= 0 {
				n = 10
			}
			d.score = newScoreboard(sb.Hosts, sb.Ports, n)
		}
		m.flat = append(m.flat, d)
		var err error
		d.children, d.other, err = c.directions(m, cd.Directions, path, d.rate)
		if err != nil {
			return nil, nil, err
		}
		if d.kind == kindOther {
			other = d
		} else {
			out = append(out, d)
		}
	}
	return out, other, nil
}

// counters compiles a direction's counters (sharing identical sets).
func (c *compiler) counters(d *direction, ct Counters, what string) error {
	merged, err := c.merge(ct, what, nil)
	if err != nil {
		return err
	}
	key := fmt.Sprint(merged)
	cs, ok := c.sets[key]
	if !ok {
		if cs, err = buildSet(merged, what); err != nil {
			return err
		}
		c.sets[key] = cs
	}
	d.cs = cs
	d.counts = make([]counter, len(cs.names))
	return nil
}

// merge resolves the define sets a Counters includes into one flat
// Counters (no Set/Sets).
func (c *compiler) merge(ct Counters, what string, stack []string) (Counters, error) {
	out := Counters{Applications: map[string][]string{}}
	names := ct.Sets
	if ct.Set != "" {
		names = append([]string{ct.Set}, names...)
	}
	for _, n := range names {
		if slices.Contains(stack, n) {
			return out, fmt.Errorf("%s: define set %q includes itself", what, n)
		}
		ds, ok := c.cfg.DefineSets[n]
		if !ok {
			return out, fmt.Errorf("%s: undefined set %q", what, n)
		}
		sub, err := c.merge(ds, "define set "+n, append(stack, n))
		if err != nil {
			return out, err
		}
		if err := addCounters(&out, sub, what); err != nil {
			return out, err
		}
	}
	ct.Set, ct.Sets = "", nil
	if err := addCounters(&out, ct, what); err != nil {
		return out, err
	}
	return out, nil
}

func addCounters(dst *Counters, src Counters, what string) error {
	for n, ports := range src.Applications {
		if _, dup := dst.Applications[n]; dup {
			return fmt.Errorf("%s: duplicate application %q", what, n)
		}
		dst.Applications[n] = ports
	}
	for _, s := range src.Services {
		if !slices.Contains(dst.Services, s) {
			dst.Services = append(dst.Services, s)
		}
	}
	for _, p := range src.Protocols {
		if !slices.Contains(dst.Protocols, p) {
			dst.Protocols = append(dst.Protocols, p)
		}
	}
	dst.OtherServices = dst.OtherServices || src.OtherServices
	dst.OtherProtocols = dst.OtherProtocols || src.OtherProtocols
	dst.Multicast = dst.Multicast || src.Multicast
	dst.TOS = dst.TOS || src.TOS
	dst.DSCP = dst.DSCP || src.DSCP
	dst.Total = dst.Total || src.Total
	return nil
}

// buildSet compiles flat counters.
func buildSet(ct Counters, what string) (*catSet, error) {
	cs := &catSet{total: -1, protoOther: -1, multicast: -1, svcOther: -1}
	for i := range cs.proto {
		cs.proto[i] = -1
	}
	for i := range cs.tos {
		cs.tos[i] = -1
	}
	seen := map[string]bool{}
	name := func(n string) (int16, error) {
		if seen[n] {
			return 0, fmt.Errorf("%s: duplicate label %q", what, n)
		}
		seen[n] = true
		return cs.add(n), nil
	}
	if ct.Total {
		cs.total, _ = name("total_total")
	}
	for _, p := range ct.Protocols {
		num, label, err := parseProto(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if cs.proto[num] >= 0 {
			return nil, fmt.Errorf("%s: protocol %d listed twice", what, num)
		}
		if cs.proto[num], err = name("protocol_" + label); err != nil {
			return nil, err
		}
	}
	if ct.OtherProtocols {
		cs.protoOther, _ = name("protocol_other")
	}
	if ct.Multicast {
		cs.multicast, _ = name("protocol_multicast")
	}
	if ct.TOS && ct.DSCP {
		return nil, fmt.Errorf("%s: tos and dscp both write tos_BE and tos_other: choose one", what)
	}
	if ct.TOS {
		be, _ := name("tos_BE")
		other, _ := name("tos_other")
		for i := range cs.tos {
			cs.tos[i] = other
		}
		cs.tos[0] = be
	}
	if ct.DSCP {
		idx := map[string]int16{}
		for _, n := range dscpOrder {
			idx[n], _ = name("tos_" + n)
		}
		for i := range cs.tos {
			n, ok := dscpNames[uint8(i)]
			if !ok {
				n = "other"
			}
			cs.tos[i] = idx[n]
		}
	}
	// Services: applications (sorted by name), then single services.
	type svc struct {
		label string
		specs []string
	}
	var svcs []svc
	for _, n := range sortedKeys(ct.Applications) {
		if err := checkName("application", n); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		svcs = append(svcs, svc{n, ct.Applications[n]})
	}
	for _, s := range ct.Services {
		svcs = append(svcs, svc{serviceLabel(s), []string{s}})
	}
	for i, s := range svcs {
		if s.label == "other" {
			return nil, fmt.Errorf("%s: service name %q is reserved", what, s.label)
		}
		src, err := name("service_" + s.label + "_src")
		if err != nil {
			return nil, err
		}
		dst, _ := name("service_" + s.label + "_dst")
		cs.svcSrc = append(cs.svcSrc, src)
		cs.svcDst = append(cs.svcDst, dst)
		if len(s.specs) == 0 {
			return nil, fmt.Errorf("%s: application %q has no ports", what, s.label)
		}
		for _, spec := range s.specs {
			ps, err := parsePorts(spec)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
			t := 0
			if ps.proto == 17 {
				t = 1
			}
			if cs.ports[t] == nil {
				cs.ports[t] = new([65536]uint16)
			}
			for p := int(ps.lo); p <= int(ps.hi); p++ {
				if o := cs.ports[t][p]; o != 0 {
					return nil, fmt.Errorf("%s: port %d/%s in both %q and %q", what, p, [2]string{"tcp", "udp"}[t], svcs[o-1].label, s.label)
				}
				cs.ports[t][p] = uint16(i + 1)
			}
		}
	}
	if ct.OtherServices {
		cs.svcOther, _ = name("service_other")
	}
	return cs, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
