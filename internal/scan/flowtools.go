package scan

import (
	"path/filepath"
	"time"

	"github.com/flowscan/flowscan/internal/flowfile/flowtools"
	"github.com/flowscan/flowscan/internal/report"
)

// flow-capture archives (ft-v05.YYYY-MM-DD.HHMMSS+ZZZZ), FlowScan's usual
// input, are scanned like native files.
func init() {
	RegisterSource(Source{Name: "flow-tools", List: flowtools.List, Open: openFlowTools})
}

type flowToolsReader struct {
	*flowtools.Reader
	path  string
	start time.Time
}

func openFlowTools(path string) (Reader, error) {
	start, _ := flowtools.ParseName(filepath.Base(path))
	r, err := flowtools.Open(path)
	if err != nil {
		return nil, err
	}
	return &flowToolsReader{r, path, start}, nil
}

// File implements Reader. The interval ends at the header's capture end,
// else after flow-capture's rotation period, else five minutes after the
// start in the file name.
func (r *flowToolsReader) File() report.File {
	h := r.Header()
	start := r.start
	if start.IsZero() {
		start = h.CaptureStart
	}
	return report.File{Path: r.path, Start: start, End: h.IntervalEnd(start)}
}
