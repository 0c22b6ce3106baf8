package ipfix

import (
	"testing"

	"github.com/flowscan/flowscan/internal/decode"
	"github.com/flowscan/flowscan/internal/decode/template/templatetest"
)

// TestSoftflowdCapture decodes softflowd's real export of
// testdata/traffic.pcap and compares datagram counts, totals and every
// record with tshark's decoding of the same datagrams.
func TestSoftflowdCapture(t *testing.T) {
	templatetest.CheckCapture(t, New(decode.Options{}), "../../..", "softflowd-ipfix")
}
