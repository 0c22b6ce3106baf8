package ipfix

import (
	"testing"

	"github.com/flowscan/flowscan/internal/decode"

	"github.com/flowscan/flowscan/internal/decode/template/templatetest"
)

// TestSysUpTimeWrap checks flowStartSysUpTime/flowEndSysUpTime (IE 22/21)
// of an exporter up for longer than the 49.7 days their 32 bits hold:
// the uptimes have wrapped, and the flow must still land just before the
// export time, not 2^32 ms earlier.
func TestSysUpTimeWrap(t *testing.T) {
	const day = 24 * 3600 * 1000
	cases := []struct {
		name       string
		upMs       int64 // exporter uptime at export time
		startAgoMs int64 // flow start and end, before the export time
		endAgoMs   int64
	}{
		{"one hour up", 3600 * 1000, 15_000, 1_000},
		{"60 days up", 60 * day, 15_000, 1_000},
		{"wrap between start and end", 1<<32 + 5_000, 15_000, 1_000},
		{"wrap between end and export", 1<<32 + 500, 15_000, 1_000},
		{"100 days up", 100 * day, 120_000, 60_000},
	}
	for _, c := range cases {
		sysInit := exportMs - c.upMs
		first := uint32(c.upMs - c.startAgoMs)
		last := uint32(c.upMs - c.endAgoMs)
		for _, fromOptions := range []bool{false, true} {
			var msg []byte
			if fromOptions {
				msg = message(1, 0,
					set(3, optTmpl(301, 1, field{149, 4, 0}, field{160, 8, 0})),
					set(301, (&templatetest.Buf{}).U32(0).U64(uint64(sysInit)).B),
					set(2, tmpl(265, field{8, 4, 0}, field{22, 4, 0}, field{21, 4, 0})),
					set(265, (&templatetest.Buf{}).Addr("10.0.0.4").U32(first).U32(last).B))
			} else {
				msg = message(1, 0,
					set(2, tmpl(266, field{8, 4, 0}, field{160, 8, 0}, field{22, 4, 0}, field{21, 4, 0})),
					set(266, (&templatetest.Buf{}).Addr("10.0.0.5").U64(uint64(sysInit)).U32(first).U32(last).B))
			}
			_, recs, errs := run(t, New(decode.Options{}), step{msg})
			if errs[0] != nil {
				t.Fatalf("%s: %v", c.name, errs[0])
			}
			if len(recs[0]) != 1 {
				t.Fatalf("%s: %d records", c.name, len(recs[0]))
			}
			r := recs[0][0]
			if r.Start != exportMs-c.startAgoMs || r.End != exportMs-c.endAgoMs {
				t.Errorf("%s (system init time from options: %v): times %d..%d ms from export, want %d..%d",
					c.name, fromOptions, r.Start-exportMs, r.End-exportMs, -c.startAgoMs, -c.endAgoMs)
			}
		}
	}
}
