package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestSizeFlag(t *testing.T) {
	good := map[string]int{"4MiB": 4 << 20, "4194304": 4 << 20, "512k": 512 << 10, "2kb": 2000, "1GiB": 1 << 30}
	for in, want := range good {
		var s sizeFlag
		if err := s.Set(in); err != nil || int(s) != want {
			t.Errorf("Set(%q) = %d, %v; want %d", in, int(s), err, want)
		}
	}
	for _, bad := range []string{"lots", "-1", "4GiB", ""} {
		var s sizeFlag
		if err := s.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
	for v, want := range map[sizeFlag]string{4 << 20: "4MiB", 1000: "1000", 3 << 10: "3KiB"} {
		if got := v.String(); got != want {
			t.Errorf("String(%d) = %q, want %q", int(v), got, want)
		}
	}
}

// TestRcvbufSizes: relay and probe take --rcvbuf as collect does.
func TestRcvbufSizes(t *testing.T) {
	tests := []struct {
		args   []string
		stderr string // the complaint after the flags were accepted
	}{
		{[]string{"relay", "--rcvbuf", "4MiB"}, "at least one --to"},
		{[]string{"relay", "--rcvbuf", "4194304"}, "at least one --to"},
		{[]string{"probe", "--rcvbuf", "8MiB"}, "exactly one of --interface or --read"},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		Main(tc.args, &out, &errb)
		if !strings.Contains(errb.String(), tc.stderr) || strings.Contains(errb.String(), "invalid value") {
			t.Errorf("%v: stderr %q; want the flag accepted", tc.args, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := Main([]string{"relay", "--rcvbuf", "lots"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `"lots" is not a size`) {
		t.Errorf("--rcvbuf lots: exit %d, stderr %q", code, errb.String())
	}
}
