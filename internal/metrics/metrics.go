// Package metrics exposes flowscan's self-monitoring in the Prometheus text
// exposition format. Components keep their own counters (plain atomics on
// the hot path) and register a Source that writes them on each scrape, so
// counting costs nothing more than an atomic add.
package metrics

import (
	"bufio"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Kind is a Prometheus metric type.
type Kind string

// Metric kinds.
const (
	Counter Kind = "counter"
	Gauge   Kind = "gauge"
)

// Source writes a set of metrics on each scrape.
type Source func(w *Writer)

// Registry holds the sources of one process.
type Registry struct {
	mu      sync.Mutex
	sources []Source
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

// Register adds a source; sources are written in registration order.
func (r *Registry) Register(s Source) {
	r.mu.Lock()
	r.sources = append(r.sources, s)
	r.mu.Unlock()
}

// Write writes every source's metrics to w.
func (r *Registry) Write(w *Writer) {
	r.mu.Lock()
	sources := append([]Source(nil), r.sources...)
	r.mu.Unlock()
	for _, s := range sources {
		s(w)
	}
}

// ServeHTTP implements http.Handler for the /metrics endpoint.
func (r *Registry) ServeHTTP(rw http.ResponseWriter, _ *http.Request) {
	rw.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	bw := bufio.NewWriter(rw)
	w := newWriter(bw)
	r.Write(w)
	w.flush()
	bw.Flush()
}

// Text renders the registry as exposition text (for tests and debugging).
func (r *Registry) Text() string {
	var sb strings.Builder
	bw := bufio.NewWriter(&sb)
	w := newWriter(bw)
	r.Write(w)
	w.flush()
	bw.Flush()
	return sb.String()
}

// Writer writes samples in the text exposition format. Samples of one
// metric are kept together, with its HELP and TYPE lines once before
// them, whatever order sources write them in (the format requires it).
type Writer struct {
	w      *bufio.Writer
	groups map[string]*strings.Builder
	order  []string
	buf    []byte
}

func newWriter(w *bufio.Writer) *Writer {
	return &Writer{w: w, groups: map[string]*strings.Builder{}}
}

// Label is one name="value" pair.
type Label struct{ Name, Value string }

// L is shorthand for building a Label.
func L(name, value string) Label { return Label{name, value} }

// Sample writes one sample of metric name. help and kind are used the first
// time name is written.
func (w *Writer) Sample(name string, kind Kind, help string, value float64, labels ...Label) {
	g := w.groups[name]
	if g == nil {
		g = &strings.Builder{}
		g.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " " + string(kind) + "\n")
		w.groups[name] = g
		w.order = append(w.order, name)
	}
	b := append(w.buf[:0], name...)
	if len(labels) > 0 {
		b = append(b, '{')
		for i, l := range labels {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, l.Name...)
			b = append(b, '=')
			b = strconv.AppendQuote(b, l.Value)
		}
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = strconv.AppendFloat(b, value, 'g', -1, 64)
	b = append(b, '\n')
	g.Write(b)
	w.buf = b
}

// flush writes the metrics in the order they first appeared.
func (w *Writer) flush() {
	for _, name := range w.order {
		w.w.WriteString(w.groups[name].String())
	}
}

// SortedKeys returns m's keys in order, for stable output.
func SortedKeys[K interface{ ~string }, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}
