package cli

// The sFlow v5 decoder registers itself; linking it here lets every
// --listen address accept sFlow next to NetFlow v5, v9 and IPFIX.
import _ "github.com/flowscan/flowscan/internal/decode/sflow"
