package cli

import (
	"sync"
	"time"

	"github.com/flowscan/flowscan/internal/collect"
	"github.com/flowscan/flowscan/internal/web"
)

// liveExporters adapts a collector in the same process to the web UI's
// exporters page, computing flow rates between calls.
type liveExporters struct {
	c    *collect.Collector
	mu   sync.Mutex
	prev map[string]rateSample
}

type rateSample struct {
	flows uint64
	at    time.Time
	rate  float64
}

func newLiveExporters(c *collect.Collector) *liveExporters {
	return &liveExporters{c: c, prev: map[string]rateSample{}}
}

// Exporters implements web.LiveSource.
func (l *liveExporters) Exporters() []web.ExporterStatus {
	now := time.Now()
	templates := l.c.Templates()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []web.ExporterStatus
	for _, e := range l.c.Exporters() {
		key := e.Exporter.String() + "/" + e.Format.String()
		p, seen := l.prev[key]
		rate := p.rate
		if seen && now.Sub(p.at) >= time.Second {
			rate = float64(e.Flows-p.flows) / now.Sub(p.at).Seconds()
			l.prev[key] = rateSample{e.Flows, now, rate}
		} else if !seen {
			l.prev[key] = rateSample{e.Flows, now, 0}
		}
		out = append(out, web.ExporterStatus{Exporter: e.Exporter.String(), Format: e.Format.String(),
			Flows: e.Flows, Datagrams: e.Datagrams, LostFlows: e.LostFlows, FlowsPerSecond: rate,
			SamplingRate: e.SamplingRate, Templates: templates[e.Format], LastSeen: e.LastSeen})
	}
	return out
}
