package collect

import (
	"net/netip"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/decode"
)

// TestStateSaveWait: state is saved every second unless saving takes more
// than a tenth of that, and then ten times as long as saving took.
func TestStateSaveWait(t *testing.T) {
	for _, tt := range []struct{ took, want time.Duration }{
		{0, time.Second},
		{50 * time.Millisecond, time.Second},
		{100 * time.Millisecond, time.Second},
		{300 * time.Millisecond, 3 * time.Second},
		{2 * time.Second, 20 * time.Second},
	} {
		if got := stateSaveWait(tt.took); got != tt.want {
			t.Errorf("stateSaveWait(%v) = %v, want %v", tt.took, got, tt.want)
		}
	}
}

// TestIdleLimit: silent exporters are forgotten after a day, or after an
// hour while the sequence spaces or the exporter counters are full (a
// flood of spoofed sources), so that new exporters are followed again.
func TestIdleLimit(t *testing.T) {
	c := &Collector{cfg: Config{MaxExporters: 2}, seq: NewSequenceTracker(2), exporters: map[exporterKey]*exporterCounters{}}
	if got := c.idleLimit(); got != idleExporter {
		t.Errorf("empty: %v, want %v", got, idleExporter)
	}
	for i := range 2 {
		res := decode.Result{Format: decode.FormatNetFlow5, Exporter: netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), SeqUnit: decode.SeqFlows, SeqAdvance: 1, SeqExact: true}
		c.seq.Observe(&res)
	}
	if got := c.idleLimit(); got != idleWhenFull {
		t.Errorf("sequence spaces full: %v, want %v", got, idleWhenFull)
	}
	c.seq = NewSequenceTracker(2)
	for i := range 2 {
		c.exporters[exporterKey{addr: netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})}] = &exporterCounters{}
	}
	if got := c.idleLimit(); got != idleWhenFull {
		t.Errorf("exporter counters full: %v, want %v", got, idleWhenFull)
	}
}
