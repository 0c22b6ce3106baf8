package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestHelpTexts checks help sentences that once lagged behind the code.
func TestHelpTexts(t *testing.T) {
	tests := []struct {
		args          []string
		want, notWant []string
	}{
		{[]string{"collect", "--help"}, []string{"sFlow"}, []string{"section collect:)"}},
		{[]string{"run", "--help"}, []string{"every section"}, []string{"section collect:)"}},
		{[]string{"demo", "--help"}, []string{"none without this flag", "24h, until Ctrl-C"}, []string{"else 127.0.0.1:8080"}},
		{[]string{"config", "check", "--help"}, []string{"Usage: flowscan config check FILE"}, []string{"Flags:"}},
		{[]string{"config", "--help"}, []string{"every value"}, nil},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		if code := Main(tc.args, &out, &errb); code != 0 {
			t.Errorf("%v: exit %d", tc.args, code)
		}
		text := out.String() + errb.String()
		for _, w := range tc.want {
			if !strings.Contains(text, w) {
				t.Errorf("%v: help lacks %q:\n%s", tc.args, w, text)
			}
		}
		for _, w := range tc.notWant {
			if strings.Contains(text, w) {
				t.Errorf("%v: help still says %q:\n%s", tc.args, w, text)
			}
		}
	}
}

// TestUsageAligned: the summaries of the command list start in one column
// and collect's names sFlow.
func TestUsageAligned(t *testing.T) {
	var out bytes.Buffer
	usage(&out)
	col := -1
	for _, c := range commands() {
		var line string
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(l, "  "+c.name+" ") {
				line = l
			}
		}
		i := strings.Index(line, c.summary)
		if i < 0 {
			t.Fatalf("no line for %s in:\n%s", c.name, out.String())
		}
		if col >= 0 && i != col {
			t.Errorf("%s: summary at column %d, others at %d:\n%s", c.name, i, col, out.String())
		}
		col = i
		if c.name == "collect" && !strings.Contains(c.summary, "sFlow") {
			t.Errorf("collect summary %q lacks sFlow", c.summary)
		}
	}
}
