package template

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowscan/flowscan/internal/decode"
)

// DefaultMaxTemplates is the per-exporter, per-domain template limit used
// when decode.Options.MaxTemplates is 0.
const DefaultMaxTemplates = 1024

// Limits that keep a template or sampler flood from growing memory without
// bound. A flood of spoofed exporters or domains is bounded by the total
// template limit (TotalTemplateFactor times the per-domain limit) and by
// MaxDomains.
const (
	TotalTemplateFactor = 16
	MaxDomains          = 4096
	MaxSamplers         = 256
)

// When a limit is reached, the domains silent for IdleDomain are forgotten
// to make room (their exporters send their templates again when they come
// back), so that a flood of spoofed exporters or domains cannot lock later
// exporters out for good. The search runs at most once per evictEvery.
const (
	IdleDomain = time.Hour
	evictEvery = time.Minute
)

// DomainKey identifies one exporting process: the exporter address and its
// source ID (v9) or observation domain ID (IPFIX).
type DomainKey struct {
	Exporter netip.Addr
	Domain   uint32
}

// Domain is the learned state of one exporting process.
type Domain struct {
	templates map[uint16]*Template
	// rate is the sampling rate last announced without (or with) a
	// sampler ID; 0 means unknown.
	rate uint32
	// samplers maps a sampler or selector ID to its rate.
	samplers map[uint64]uint32
	// sysInitMilli is the announced systemInitTimeMilliseconds, 0 unknown.
	sysInitMilli int64
	// lastSeen is the arrival time (Unix milliseconds) of the domain's
	// last datagram, for eviction when a limit is reached.
	lastSeen   int64
	generation *atomic.Uint64
}

// Template returns the template with the given ID, or nil.
func (d *Domain) Template(id uint16) *Template {
	if d == nil {
		return nil
	}
	return d.templates[id]
}

// Rate returns the domain's announced sampling rate (0 unknown).
func (d *Domain) Rate() uint32 {
	if d == nil {
		return 0
	}
	return d.rate
}

func (d *Domain) setRate(rate uint32) {
	if d.rate != rate {
		d.rate = rate
		d.generation.Add(1)
	}
}

func (d *Domain) setSampler(id uint64, rate uint32) {
	if old, ok := d.samplers[id]; ok && old == rate {
		return
	}
	if _, ok := d.samplers[id]; !ok && len(d.samplers) >= MaxSamplers {
		return
	}
	if d.samplers == nil {
		d.samplers = make(map[uint64]uint32)
	}
	d.samplers[id] = rate
	d.generation.Add(1)
}

func (d *Domain) setSysInit(ms int64) {
	if d.sysInitMilli != ms {
		d.sysInitMilli = ms
		d.generation.Add(1)
	}
}

// Store holds the domains of one decoder. Its methods other than Lock,
// Unlock and the locking accessors (Generation, TemplateCount, Save, Load)
// must be called with the lock held.
type Store struct {
	mu           sync.Mutex
	format       decode.Format
	dialect      Dialect
	maxTemplates int
	maxTotal     int
	domains      map[DomainKey]*Domain
	total        int
	generation   atomic.Uint64
	// now is the arrival time of the datagram being decoded (Unix
	// milliseconds), set by Touch; lastEvict is when the last eviction
	// search ran.
	now, lastEvict int64
}

// NewStore returns an empty store for a format. maxTemplates <= 0 selects
// DefaultMaxTemplates.
func NewStore(format decode.Format, dialect Dialect, maxTemplates int) *Store {
	if maxTemplates <= 0 {
		maxTemplates = DefaultMaxTemplates
	}
	return &Store{
		format:       format,
		dialect:      dialect,
		maxTemplates: maxTemplates,
		maxTotal:     maxTemplates * TotalTemplateFactor,
		domains:      make(map[DomainKey]*Domain),
	}
}

// Lock locks the store for a Decode call.
func (s *Store) Lock() { s.mu.Lock() }

// Unlock unlocks the store.
func (s *Store) Unlock() { s.mu.Unlock() }

// Domain returns the domain for key, or nil if nothing was learned from it.
func (s *Store) Domain(key DomainKey) *Domain { return s.domains[key] }

// Touch records that a datagram that arrived at nowMilli (Unix
// milliseconds) is being decoded, for domain d (which may be nil).
func (s *Store) Touch(d *Domain, nowMilli int64) {
	s.now = nowMilli
	if d != nil {
		d.lastSeen = nowMilli
	}
}

// evictIdle forgets the domains silent for IdleDomain, at most once per
// evictEvery, and reports whether it forgot any.
func (s *Store) evictIdle() bool {
	if s.lastEvict != 0 && s.now-s.lastEvict < evictEvery.Milliseconds() {
		return false
	}
	s.lastEvict = s.now
	cutoff := s.now - IdleDomain.Milliseconds()
	evicted := false
	for key, d := range s.domains {
		if d.lastSeen < cutoff {
			s.total -= len(d.templates)
			delete(s.domains, key)
			evicted = true
		}
	}
	if evicted {
		s.generation.Add(1)
	}
	return evicted
}

// DomainFor returns the domain for key, creating it if needed. It returns
// a *decode.Error with ReasonTooMany when MaxDomains are already known.
func (s *Store) DomainFor(key DomainKey) (*Domain, error) {
	if d := s.domains[key]; d != nil {
		return d, nil
	}
	if len(s.domains) >= MaxDomains && (!s.evictIdle() || len(s.domains) >= MaxDomains) {
		return nil, decode.Errorf(s.format, decode.ReasonTooMany, "more than %d exporter domains", MaxDomains)
	}
	d := &Domain{templates: make(map[uint16]*Template), lastSeen: s.now, generation: &s.generation}
	s.domains[key] = d
	return d, nil
}

// Add learns t in d, replacing a template with the same ID. It returns a
// *decode.Error with ReasonTooMany when a limit would be exceeded.
func (s *Store) Add(d *Domain, t *Template) error {
	old := d.templates[t.ID]
	if old != nil {
		if old.Same(t) {
			return nil
		}
		d.templates[t.ID] = t
		s.generation.Add(1)
		return nil
	}
	if len(d.templates) >= s.maxTemplates {
		return decode.Errorf(s.format, decode.ReasonTooMany, "more than %d templates for one domain", s.maxTemplates)
	}
	if s.total >= s.maxTotal && (!s.evictIdle() || s.total >= s.maxTotal) {
		return decode.Errorf(s.format, decode.ReasonTooMany, "more than %d templates in total", s.maxTotal)
	}
	d.templates[t.ID] = t
	s.total++
	s.generation.Add(1)
	return nil
}

// Learn compiles and adds a template received from the wire. A refresh of
// an already known, identical template changes nothing and allocates
// nothing. Errors are *decode.Error (ReasonTemplate or ReasonTooMany).
func (s *Store) Learn(d *Domain, id uint16, options bool, scopeCount int, fields []Field) error {
	if old := d.templates[id]; old != nil && old.sameAs(options, scopeCount, fields) {
		return nil
	}
	t, err := Compile(s.format, s.dialect, id, options, scopeCount, fields)
	if err != nil {
		return err
	}
	return s.Add(d, t)
}

// Withdraw forgets template id in d, if known.
func (s *Store) Withdraw(d *Domain, id uint16) {
	if _, ok := d.templates[id]; ok {
		delete(d.templates, id)
		s.total--
		s.generation.Add(1)
	}
}

// WithdrawAll forgets all templates (options false) or all options
// templates (options true) of d.
func (s *Store) WithdrawAll(d *Domain, options bool) {
	for id, t := range d.templates {
		if t.Options == options {
			delete(d.templates, id)
			s.total--
			s.generation.Add(1)
		}
	}
}

// Generation returns a counter that increases on every state change.
func (s *Store) Generation() uint64 { return s.generation.Load() }

// TemplateCount returns the number of templates known over all domains.
func (s *Store) TemplateCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}
