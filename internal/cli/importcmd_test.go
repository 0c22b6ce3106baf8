package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestImportHelp(t *testing.T) {
	for _, args := range [][]string{
		{"import", "--help"},
		{"import", "cuflow", "--help"},
		{"import", "jkflow", "--help"},
		{"import", "jkflow", "-h"},
		{"help", "import"},
	} {
		var out, errb bytes.Buffer
		code := Main(args, &out, &errb)
		if code != 0 || !strings.Contains(errb.String(), "Usage: flowscan import cuflow CUFlow.cf") {
			t.Errorf("%v: exit %d, stderr %q; want the usage and exit 0", args, code, errb.String())
		}
	}
}
