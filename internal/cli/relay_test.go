package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestRelayUsage(t *testing.T) {
	tests := []struct {
		args   []string
		status int
		stderr string
	}{
		{[]string{"relay"}, 2, "at least one --to"},
		{[]string{"relay", "--to", "127.0.0.1:2055;format=netflow7"}, 2, "unknown format"},
		{[]string{"relay", "--to", "127.0.0.1"}, 2, "HOST:PORT"},
		{[]string{"relay", "--help"}, 0, "spoof"},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		if got := Main(tc.args, &out, &errb); got != tc.status || !strings.Contains(errb.String(), tc.stderr) {
			t.Errorf("%q: status %d, stderr %q; want %d and %q", tc.args, got, errb.String(), tc.status, tc.stderr)
		}
	}
}
