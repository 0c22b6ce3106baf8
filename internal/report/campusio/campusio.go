package campusio

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/report"
	"github.com/flowscan/flowscan/internal/rrd"
)

func init() {
	report.Register("campusio", func(env *report.Env, decode report.Decoder) (report.Module, error) {
		var c Config
		if err := decode(&c); err != nil {
			return nil, err
		}
		return New("campusio", env, &c)
	})
}

// Module is the campusio report module; subnetio builds on it.
type Module struct {
	name string
	env  *report.Env
	set  *settings
	cls  *Classifier
	step time.Duration

	file *report.File

	total, mcast      IO
	internal, transit Counters
	protoIdx          [256]int16
	protos            []IO
	tcpSvc, udpSvc    *[65536]int16
	svcSrc, svcDst    []IO
	hosts             *ioTable
	asPairs           *ioTable
}

// New builds a campusio module named name from a configuration.
func New(name string, env *report.Env, c *Config) (*Module, error) {
	set, err := c.validate(env.OutputDir, env.BaseDir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cls, err := NewClassifier(set.local, set.nextHops, set.ifIndexes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	m := &Module{name: name, env: env, set: set, cls: cls, step: env.Interval}
	if m.step <= 0 {
		m.step = 5 * time.Minute
	}
	for i := range m.protoIdx {
		m.protoIdx[i] = -1
	}
	for i, p := range set.protocols {
		m.protoIdx[p] = int16(i)
	}
	m.protos = make([]IO, len(set.protocols))
	for i, s := range set.services {
		for _, p := range s.TCPPorts {
			if m.tcpSvc == nil {
				m.tcpSvc = newPortTable()
			}
			m.tcpSvc[p] = int16(i)
		}
		for _, p := range s.UDPPorts {
			if m.udpSvc == nil {
				m.udpSvc = newPortTable()
			}
			m.udpSvc[p] = int16(i)
		}
	}
	m.svcSrc = make([]IO, len(set.services))
	m.svcDst = make([]IO, len(set.services))
	if set.topN > 0 {
		m.hosts = newIOTable(set.maxHosts)
	}
	if set.asPairs {
		m.asPairs = newIOTable(16384)
	}
	return m, nil
}

func newPortTable() *[65536]int16 {
	t := new([65536]int16)
	for i := range t {
		t[i] = -1
	}
	return t
}

// Name returns the module's registered name.
func (m *Module) Name() string { return m.name }

// Classifier returns the module's direction classifier.
func (m *Module) Classifier() *Classifier { return m.cls }

// OutputDir returns the resolved output directory.
func (m *Module) OutputDir() string { return m.set.outputDir }

// TopN returns the configured top report size (0: no reports).
func (m *Module) TopN() int { return m.set.topN }

// Multicast reports whether multicast flows are counted apart (in
// MCAST.rrd only).
func (m *Module) Multicast() bool { return m.set.multicast }

// ReportPrefixFormat returns the configured report_prefix_format.
func (m *Module) ReportPrefixFormat() string { return m.set.prefixFmt }

// File returns the flow file being scanned.
func (m *Module) File() *report.File { return m.file }

// Env returns the module's environment.
func (m *Module) Env() *report.Env { return m.env }

// PerFile starts a new file: all counters restart at zero.
func (m *Module) PerFile(f *report.File) error {
	m.file = f
	m.total, m.mcast = IO{}, IO{}
	m.internal, m.transit = Counters{}, Counters{}
	clear(m.protos)
	clear(m.svcSrc)
	clear(m.svcDst)
	if m.hosts != nil {
		m.hosts.reset()
	}
	if m.asPairs != nil {
		m.asPairs.reset()
	}
	return nil
}

// Wanted counts one flow; it returns true for border traffic (in, out
// and, when enabled, multicast), so the scan's hit ratio is the border
// share of the flows.
func (m *Module) Wanted(r *flow.Record) bool {
	_, ok := m.Count(r)
	return ok
}

// Count counts one flow and returns its direction and whether it was
// border traffic (In or Out). Multicast flows, when enabled, count in
// MCAST only, as Out when their source is local and In otherwise. It does
// not allocate.
func (m *Module) Count(r *flow.Record) (Direction, bool) {
	if m.set.multicast && r.DstAddr.IsMulticast() {
		d := In
		if m.cls.local.Contains(r.SrcAddr) {
			d = Out
		}
		m.mcast[d].Add(r)
		return d, true
	}
	d := m.cls.Classify(r)
	switch d {
	case Internal:
		m.internal.Add(r)
		return d, false
	case Transit:
		m.transit.Add(r)
		return d, false
	}
	m.total[d].Add(r)
	if i := m.protoIdx[r.Proto]; i >= 0 {
		m.protos[i][d].Add(r)
	}
	var ports *[65536]int16
	switch r.Proto {
	case 6:
		ports = m.tcpSvc
	case 17:
		ports = m.udpSvc
	}
	if ports != nil {
		if i := ports[r.SrcPort]; i >= 0 {
			m.svcSrc[i][d].Add(r)
		}
		if i := ports[r.DstPort]; i >= 0 {
			m.svcDst[i][d].Add(r)
		}
	}
	if m.hosts != nil {
		h := r.DstAddr
		if d == Out {
			h = r.SrcAddr
		}
		m.hosts.get(key(h))[d].Add(r)
	}
	if m.asPairs != nil {
		m.asPairs.get(u128{uint64(r.SrcAS), uint64(r.DstAS)})[d].Add(r)
	}
	return d, true
}

// EachHost calls f for every local host seen in border traffic of the
// current file (the destination of inbound flows, the source of outbound
// ones), when top reports are enabled.
func (m *Module) EachHost(f func(a netip.Addr, io *IO)) {
	if m.hosts == nil {
		return
	}
	m.hosts.each(func(k u128, io *IO) { f(k.addr(), io) })
}

// WriteRRD creates the in/out RRD file path if needed and stores io at
// the file's end, so the step ending then holds the file's traffic. An update at an already-stored time (the file was
// reported before a crash) is skipped.
func (m *Module) WriteRRD(path string, io *IO) error {
	return m.write(path, DSNames, io.Values())
}

func (m *Module) write(path string, ds []string, vals []float64) error {
	t := m.file.End
	if err := m.env.RRD.Create(path, m.step, m.file.Start, rrd.FlowDS(m.step, ds...), rrd.FlowScanRRAs(m.step)); err != nil {
		return err
	}
	err := m.env.RRD.UpdateSpan(path, m.step, m.file.Start, t, vals...)
	if errors.Is(err, rrd.ErrPastUpdate) {
		if m.env.Logger != nil {
			m.env.Logger.Debug("already reported", "rrd", path, "time", t)
		}
		return nil
	}
	return err
}

// Report writes the file's counts into the RRD files and the top
// talkers report.
func (m *Module) Report() error {
	if m.file == nil {
		return fmt.Errorf("%s: Report without PerFile", m.name)
	}
	dir := m.set.outputDir
	var errs []error
	w := func(name string, io *IO) {
		if err := m.WriteRRD(filepath.Join(dir, name+".rrd"), io); err != nil {
			errs = append(errs, err)
		}
	}
	w("total", &m.total)
	if m.set.multicast {
		w("MCAST", &m.mcast)
	}
	for _, p := range []struct {
		name string
		c    *Counters
	}{{"internal", &m.internal}, {"transit", &m.transit}} {
		v := []float64{float64(p.c.Bytes), float64(p.c.Packets), float64(p.c.Flows)}
		if err := m.write(filepath.Join(dir, p.name+".rrd"), []string{"bytes", "pkts", "flows"}, v); err != nil {
			errs = append(errs, err)
		}
	}
	for i, p := range m.set.protocols {
		w(ProtoName(p), &m.protos[i])
	}
	for i, s := range m.set.services {
		w(s.Name+"_src", &m.svcSrc[i])
		w(s.Name+"_dst", &m.svcDst[i])
	}
	if m.asPairs != nil {
		type pair struct {
			k  u128
			io *IO
		}
		var ps []pair
		m.asPairs.each(func(k u128, io *IO) { ps = append(ps, pair{k, io}) })
		sort.Slice(ps, func(i, j int) bool {
			a, b := ps[i].io[In].Bytes+ps[i].io[Out].Bytes, ps[j].io[In].Bytes+ps[j].io[Out].Bytes
			if a != b {
				return a > b
			}
			return ps[i].k.less(ps[j].k)
		})
		for _, p := range ps[:min(len(ps), m.set.asPairsTop)] {
			w("as_"+strconv.FormatUint(p.k.hi, 10)+"_"+strconv.FormatUint(p.k.lo, 10), p.io)
		}
	}
	if m.set.topN > 0 {
		var hosts []HostIO
		m.EachHost(func(a netip.Addr, io *IO) { hosts = append(hosts, HostIO{a, *io}) })
		rep := NewTopReport(m.name+": top talkers", m.file, hosts, m.set.topN)
		base := filepath.Join(dir, "top", ReportPrefix(m.set.prefixFmt, m.file.Start)+"top")
		if err := WriteTopReport(base, rep); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
