package query

import (
	"net/netip"
	"testing"

	"github.com/flowscan/flowscan/internal/flow"
)

// TestNumbersAreDecimal: zero-padded numbers are decimal, hex needs 0x,
// and Go's other literal forms are refused.
func TestNumbersAreDecimal(t *testing.T) {
	r := flow.Record{SrcAddr: netip.MustParseAddr("10.0.0.1"), DstAddr: netip.MustParseAddr("10.0.0.2"), DstPort: 10, Proto: 6, TCPFlags: 0x12, Bytes: 10}
	for expr, want := range map[string]bool{
		"dst port 010":  true,
		"dst port 8":    false,
		"flags 0x12":    true,
		"flags 018":     true,
		"bytes = 0x0a":  true,
		"bytes = 00010": true,
	} {
		f, err := Compile(expr)
		if err != nil {
			t.Errorf("%s: %v", expr, err)
			continue
		}
		if got := f.Match(&r); got != want {
			t.Errorf("%s: match %v, want %v", expr, got, want)
		}
	}
	for _, bad := range []string{"port 0b1010", "port 0o12", "bytes > 1_0"} {
		if _, err := Compile(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
