package collect

import (
	"testing"
	"time"
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
