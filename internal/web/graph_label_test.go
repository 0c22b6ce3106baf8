package web

import (
	"strings"
	"testing"
)

// TestLegendLabelKeepsStack: a long IPv6 label cut to the legend width
// must not end in a backslash (which would swallow :STACK) and must keep
// every colon escaped.
func TestLegendLabelKeepsStack(t *testing.T) {
	for _, l := range []string{"network 2001:db8:1:2::/64", "network 2001:db8:1:2:3:4:5:6/128", "ünïcödé-ünïcödé-ünïcödé-ünïcödé", "tcp"} {
		got := legendLabel(l, 24)
		arg := "AREA:o1#ff7f0e:" + got + ":STACK"
		if strings.HasSuffix(strings.TrimRight(got, " "), `\`) || !strings.HasSuffix(arg, `:STACK`) {
			t.Errorf("%q: label %q", l, got)
		}
		// Every colon in the label is escaped, so rrdtool sees :STACK as
		// the last unescaped field.
		if strings.Count(got, ":") != strings.Count(got, `\:`) {
			t.Errorf("%q: unescaped colon in %q", l, got)
		}
		if n := len([]rune(strings.ReplaceAll(got, `\:`, ":"))); n != 24 {
			t.Errorf("%q: label %q is %d characters wide, want 24", l, got, n)
		}
	}
}
