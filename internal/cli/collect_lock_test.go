package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flowfile"
)

// TestCollectRefusedLeavesStateAlone checks that a second
// `flowscan collect` on an archive directory another writer holds is
// refused before it touches the directory's state: in particular the
// ClickHouse spool under DIR/.flowscan, where the running collector may be
// in the middle of an atomic write (a dot-file it renames next).
func TestCollectRefusedLeavesStateAlone(t *testing.T) {
	dir := t.TempDir()
	// The running collector: it holds the lock ...
	w, err := flowfile.NewWriter(flowfile.Config{Dir: dir, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// ... and is writing a spool file (fsutil.WriteFileAtomic's temp
	// name) and has its spool state.
	spool := filepath.Join(dir, ".flowscan", "clickhouse-spool")
	if err := os.MkdirAll(spool, 0o755); err != nil {
		t.Fatal(err)
	}
	inFlight := filepath.Join(spool, ".00000000000000000007.batch.tmp123")
	if err := os.WriteFile(inFlight, []byte("batch being written"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	err = runCollect([]string{"--dir", dir, "--listen", "127.0.0.1:0", "--metrics", "",
		"--clickhouse", "http://127.0.0.1:1/flowscan"}, &bytes.Buffer{}, &stderr)
	if !errors.Is(err, flowfile.ErrDirInUse) {
		t.Fatalf("second collector: err = %v, want ErrDirInUse\n%s", err, stderr.String())
	}
	if _, err := os.Stat(inFlight); err != nil {
		t.Errorf("the refused collector removed the running collector's spool file in progress: %v", err)
	}
}
