package cli

// Report modules register themselves by name; these imports link them into
// the binary so that report_classes can name them.
import (
	_ "github.com/flowscan/flowscan/internal/report/campusio"
	_ "github.com/flowscan/flowscan/internal/report/cuflow"
	_ "github.com/flowscan/flowscan/internal/report/jkflow"
	_ "github.com/flowscan/flowscan/internal/report/subnetio"
)
