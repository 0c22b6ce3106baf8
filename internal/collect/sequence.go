package collect

import (
	"net/netip"

	"github.com/flowscan/flowscan/internal/decode"
)

// Sequence gaps larger than these are treated as a sequence reset (the
// exporter restarted, or another process reused the source) rather than as
// loss, as flow-tools did with its 1000-flow threshold; the limits are
// higher because modern exporters send far more flows per second.
const (
	maxFlowGap     = 1 << 20
	maxDatagramGap = 1 << 15
)

// seqKey identifies one sequence-number space.
type seqKey struct {
	addr   netip.Addr
	domain uint32
	format decode.Format
}

// seqState is the expected next sequence number of one space.
type seqState struct {
	next  uint32
	valid bool
	// flowsPerDatagram is a moving average used to estimate lost flows for
	// formats whose sequence counts datagrams (NetFlow v9, sFlow).
	flowsPerDatagram float64
}

// SeqOutcome is what one datagram's sequence number says about loss.
type SeqOutcome struct {
	LostFlows     uint64 // exact for flow-counting formats, estimated otherwise
	LostDatagrams uint64 // only for datagram-counting formats
	Reset         bool
	Misordered    bool
}

// SequenceTracker detects lost, reordered and reset export streams from
// sequence numbers, per exporter, domain and format. It is used by one
// goroutine.
type SequenceTracker struct {
	spaces map[seqKey]*seqState
	limit  int
}

// NewSequenceTracker returns a tracker that follows at most limit
// sequence spaces (a bound against spoofed-source floods).
func NewSequenceTracker(limit int) *SequenceTracker {
	return &SequenceTracker{spaces: make(map[seqKey]*seqState), limit: limit}
}

// Observe checks one decoded datagram against the expected sequence.
func (t *SequenceTracker) Observe(res *decode.Result) SeqOutcome {
	var out SeqOutcome
	if res.SeqUnit == decode.SeqNone {
		return out
	}
	k := seqKey{res.Exporter, res.Domain, res.Format}
	st := t.spaces[k]
	if st == nil {
		if len(t.spaces) >= t.limit {
			return out
		}
		st = &seqState{}
		t.spaces[k] = st
	}
	if res.SeqUnit == decode.SeqDatagrams && res.Flows > 0 {
		if st.flowsPerDatagram == 0 {
			st.flowsPerDatagram = float64(res.Flows)
		} else {
			st.flowsPerDatagram += (float64(res.Flows) - st.flowsPerDatagram) / 16
		}
	}
	maxGap := int32(maxFlowGap)
	if res.SeqUnit == decode.SeqDatagrams {
		maxGap = maxDatagramGap
	}
	if st.valid {
		diff := int32(res.Sequence - st.next)
		switch {
		case diff == 0:
		case diff > 0 && diff <= maxGap:
			if res.SeqUnit == decode.SeqFlows {
				out.LostFlows = uint64(diff)
			} else {
				out.LostDatagrams = uint64(diff)
				out.LostFlows = uint64(float64(diff)*st.flowsPerDatagram + 0.5)
			}
		case diff < 0 && diff >= -maxGap:
			// A late datagram: its flows were counted as lost when the
			// gap was seen; keep expecting the newer sequence.
			out.Misordered = true
			return out
		default:
			out.Reset = true
		}
	}
	st.next = res.Sequence + res.SeqAdvance
	st.valid = res.SeqExact || res.SeqUnit == decode.SeqDatagrams
	return out
}

// Len returns the number of sequence spaces followed.
func (t *SequenceTracker) Len() int { return len(t.spaces) }
