package template

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"time"
)

// StateVersion is the version of the JSON state written by Save.
const StateVersion = 1

// stateFile is the JSON form of a Store.
type stateFile struct {
	Version int           `json:"version"`
	Format  string        `json:"format"`
	Domains []domainState `json:"domains"`
}

type domainState struct {
	Exporter     netip.Addr      `json:"exporter"`
	Domain       uint32          `json:"domain"`
	Rate         uint32          `json:"rate,omitempty"`
	Samplers     []samplerState  `json:"samplers,omitempty"`
	SysInitMilli int64           `json:"sys_init_ms,omitempty"`
	Templates    []templateState `json:"templates,omitempty"`
}

type samplerState struct {
	ID   uint64 `json:"id"`
	Rate uint32 `json:"rate"`
}

type templateState struct {
	ID         uint16  `json:"id"`
	Options    bool    `json:"options,omitempty"`
	ScopeCount int     `json:"scope,omitempty"`
	Fields     []Field `json:"fields"`
}

// Save writes the store's templates and sampling state as versioned JSON,
// ordered so that equal states produce equal output.
func (s *Store) Save(w io.Writer) error {
	s.mu.Lock()
	f := stateFile{Version: StateVersion, Format: s.format.String(), Domains: make([]domainState, 0, len(s.domains))}
	for key, d := range s.domains {
		ds := domainState{Exporter: key.Exporter, Domain: key.Domain, Rate: d.rate, SysInitMilli: d.sysInitMilli}
		for id, rate := range d.samplers {
			ds.Samplers = append(ds.Samplers, samplerState{ID: id, Rate: rate})
		}
		slices.SortFunc(ds.Samplers, func(a, b samplerState) int { return cmp.Compare(a.ID, b.ID) })
		for _, t := range d.templates {
			ds.Templates = append(ds.Templates, templateState{ID: t.ID, Options: t.Options, ScopeCount: t.ScopeCount, Fields: t.Fields})
		}
		slices.SortFunc(ds.Templates, func(a, b templateState) int { return cmp.Compare(a.ID, b.ID) })
		f.Domains = append(f.Domains, ds)
	}
	s.mu.Unlock()
	slices.SortFunc(f.Domains, func(a, b domainState) int {
		if c := a.Exporter.Compare(b.Exporter); c != 0 {
			return c
		}
		return cmp.Compare(a.Domain, b.Domain)
	})
	enc := json.NewEncoder(w)
	return enc.Encode(&f)
}

// Load replaces the store's state with one written by Save. Templates are
// checked and compiled again and the store's limits apply; on error the
// store is left unchanged.
func (s *Store) Load(r io.Reader) error {
	var f stateFile
	if err := json.NewDecoder(r).Decode(&f); err != nil {
		return fmt.Errorf("%s state: %w", s.format, err)
	}
	if f.Version != StateVersion {
		return fmt.Errorf("%s state: unsupported version %d", s.format, f.Version)
	}
	if f.Format != s.format.String() {
		return fmt.Errorf("%s state: written by the %s decoder", s.format, f.Format)
	}
	fresh := NewStore(s.format, s.dialect, s.maxTemplates)
	// The loaded domains count as seen now: they are not forgotten
	// before their exporters had IdleDomain to come back.
	fresh.now = time.Now().UnixMilli()
	for _, ds := range f.Domains {
		d, err := fresh.DomainFor(DomainKey{Exporter: ds.Exporter, Domain: ds.Domain})
		if err != nil {
			return err
		}
		d.rate = ds.Rate
		d.sysInitMilli = ds.SysInitMilli
		for _, sm := range ds.Samplers {
			d.setSampler(sm.ID, sm.Rate)
		}
		for _, ts := range ds.Templates {
			t, err := Compile(s.format, s.dialect, ts.ID, ts.Options, ts.ScopeCount, ts.Fields)
			if err != nil {
				return fmt.Errorf("%s state: %w", s.format, err)
			}
			if err := fresh.Add(d, t); err != nil {
				return fmt.Errorf("%s state: %w", s.format, err)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.domains = fresh.domains
	s.total = fresh.total
	for _, d := range s.domains {
		d.generation = &s.generation
	}
	s.generation.Add(1)
	return nil
}
