package cli

// Every decoder registers itself; the collector sees exactly the formats
// linked here. A new format adds its own file with its blank import.
import (
	_ "github.com/flowscan/flowscan/internal/decode/ipfix"
	_ "github.com/flowscan/flowscan/internal/decode/netflow5"
	_ "github.com/flowscan/flowscan/internal/decode/netflow9"
)
