package collect

import (
	"net/netip"
	"time"

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

// seqState follows one sequence space.
type seqState struct {
	lastSeen              int64 // Unix seconds, for eviction
	prevSeq               uint32
	prevAdvance, prevData uint32
	valid                 bool
	// modes is the set of numbering conventions (seqMode bits) that every
	// gap-free step so far agreed with.
	modes uint8
	// flowsPerDatagram is a moving average used to estimate lost flows for
	// formats whose sequence counts datagrams (NetFlow v9, sFlow).
	flowsPerDatagram float64
	// late is the last datagram from behind the expected sequence, and
	// lateRun how many such datagrams in a row continued one another
	// (see restarted).
	late    lateDatagram
	lateRun int
}

// lateDatagram is what restarted keeps of a datagram from behind the
// expected sequence.
type lateDatagram struct {
	seq, advance, data uint32
}

// restartRun is how many datagrams in a row, each continuing the one
// before, from behind the expected sequence (within the misordering
// window) make an exporter restart rather than misordered datagrams.
const restartRun = 3

// Exporters disagree on what a flow-counting sequence number means. RFC
// 7011 says an IPFIX sequence number counts the data records sent before
// the message, options data records included; some exporters (softflowd)
// count those sent up to and including the message, and leave options
// records out. The tracker learns the convention of each space from the
// steps that fit one exactly, instead of reporting phantom loss.
const (
	modeBefore     uint8 = 1 << iota // records before this message (RFC 7011, NetFlow v5)
	modeBeforeData                   // as modeBefore, options records not counted
	modeAfter                        // records up to and including this message
	modeAfterData                    // as modeAfter, options records not counted
	modeAll        = modeBefore | modeBeforeData | modeAfter | modeAfterData
)

// expected returns the sequence number a message should carry under mode.
func (st *seqState) expected(mode uint8, res *decode.Result) uint32 {
	data := uint32(res.Flows + res.Skipped)
	switch mode {
	case modeBeforeData:
		return st.prevSeq + st.prevData
	case modeAfter:
		return st.prevSeq + res.SeqAdvance
	case modeAfterData:
		return st.prevSeq + min(data, res.SeqAdvance)
	}
	return st.prevSeq + st.prevAdvance
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
	// Now is the current Unix time in seconds, set by the caller once per
	// batch; Observe stamps the spaces it sees with it for Evict.
	Now int64
}

// NewSequenceTracker returns a tracker that follows at most limit
// sequence spaces (a bound against spoofed-source floods).
func NewSequenceTracker(limit int) *SequenceTracker {
	return &SequenceTracker{spaces: make(map[seqKey]*seqState), limit: limit}
}

// Full reports whether the tracker follows as many spaces as it may: new
// ones are then not followed until Evict makes room.
func (t *SequenceTracker) Full() bool { return len(t.spaces) >= t.limit }

// Evict forgets the sequence spaces last observed before cutoff.
func (t *SequenceTracker) Evict(cutoff time.Time) {
	limit := cutoff.Unix()
	for k, st := range t.spaces {
		if st.lastSeen < limit {
			delete(t.spaces, k)
		}
	}
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
	st.lastSeen = t.Now
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
	if st.valid && st.judges(res) {
		var diff int32
		if res.SeqUnit == decode.SeqDatagrams {
			diff = int32(res.Sequence - (st.prevSeq + 1))
		} else {
			diff = st.flowGap(res)
		}
		switch {
		case diff == 0:
		case diff > 0 && diff <= maxGap:
			if res.SeqUnit == decode.SeqFlows {
				out.LostFlows = uint64(diff)
			} else {
				out.LostDatagrams = uint64(diff)
				out.LostFlows = uint64(float64(diff)*st.flowsPerDatagram + 0.5)
			}
		case diff < 0 && diff >= -st.backWindow(res.SeqUnit):
			if st.restarted(res) {
				out.Reset = true
				break
			}
			// A late datagram: its flows were counted as lost when the
			// gap was seen; keep expecting the newer sequence.
			out.Misordered = true
			return out
		default:
			out.Reset = true
		}
		st.lateRun = 0
	} else if st.modes == 0 {
		st.modes = formatConventions(res.Format)
	}
	st.prevSeq = res.Sequence
	st.prevAdvance = res.SeqAdvance
	st.prevData = min(uint32(res.Flows+res.Skipped), res.SeqAdvance)
	st.valid = res.SeqExact || res.SeqUnit == decode.SeqDatagrams
	return out
}

// restarted notes a datagram from behind the expected sequence and
// reports whether it is the restartRun-th in a row that continues the one
// before it: an exporter that restarted soon after its previous start
// numbers its datagrams again from a little behind where it was, which is
// not a handful of misordered datagrams but a new sequence to follow.
func (st *seqState) restarted(res *decode.Result) bool {
	continues := false
	if st.lateRun > 0 {
		prev := seqState{prevSeq: st.late.seq, prevAdvance: st.late.advance, prevData: st.late.data}
		if res.SeqUnit == decode.SeqDatagrams {
			continues = res.Sequence == prev.prevSeq+1
		} else {
			for m := modeBefore; m <= modeAfterData; m <<= 1 {
				if st.modes&m != 0 && prev.expected(m, res) == res.Sequence {
					continues = true
				}
			}
		}
	}
	if continues {
		st.lateRun++
	} else {
		st.lateRun = 1
	}
	st.late = lateDatagram{res.Sequence, res.SeqAdvance, min(uint32(res.Flows+res.Skipped), res.SeqAdvance)}
	if st.lateRun >= restartRun {
		st.lateRun = 0
		return true
	}
	return false
}

// judges reports whether res's sequence number can be checked. A message
// with undecodable records (SeqExact false) cannot be checked against a
// convention that counts the message's own records (modeAfter,
// modeAfterData), since how many it held is unknown: while such a
// convention is possible, the message only resynchronises the space.
func (st *seqState) judges(res *decode.Result) bool {
	return res.SeqExact || res.SeqUnit != decode.SeqFlows || st.modes&(modeAfter|modeAfterData) == 0
}

// backWindow is how far back (in the sequence's unit) a datagram may be
// and still count as misordered, about the last 64 datagrams; a longer
// jump back is the exporter restarting and resets the expectation.
func (st *seqState) backWindow(unit decode.SequenceUnit) int32 {
	if unit == decode.SeqDatagrams {
		return 64
	}
	return 64 * int32(max(st.prevAdvance, 30))
}

// formatConventions returns the numbering conventions a format's
// sequence numbers may follow. NetFlow v5's flow_sequence counts the flows
// before the datagram (as flow-tools and nfdump read it): there is nothing
// to learn, and learning could take a lost datagram for another numbering.
func formatConventions(f decode.Format) uint8 {
	if f == decode.FormatNetFlow5 {
		return modeBefore
	}
	return modeAll
}

// conventions returns the conventions res can be checked against: a
// message with undecodable records only against those that do not count
// its own records.
func conventions(res *decode.Result) uint8 {
	if !res.SeqExact {
		return formatConventions(res.Format) & (modeBefore | modeBeforeData)
	}
	return formatConventions(res.Format)
}

// flowGap returns how far a flow-counting sequence number is ahead of the
// expected one, narrowing the space's numbering conventions to those that
// fit when some fit exactly. A lost message can make a wrong convention
// fit one step by chance (a one-record message lost before a two-record
// one fits "counted after the message"); when later only a convention
// ruled out so far fits, it is taken back rather than reporting loss and
// misordering from then on.
func (st *seqState) flowGap(res *decode.Result) int32 {
	var fits uint8
	possible := conventions(res)
	for m := modeBefore; m <= modeAfterData; m <<= 1 {
		if possible&m != 0 && st.expected(m, res) == res.Sequence {
			fits |= m
		}
	}
	if fits&st.modes != 0 {
		st.modes &= fits
		return 0
	}
	if fits != 0 {
		st.modes = fits
		return 0
	}
	// No convention fits: measure the gap with the most likely remaining
	// one (the lowest bit; modeBefore while undecided).
	m := st.modes & -st.modes
	return int32(res.Sequence - st.expected(m, res))
}

// Len returns the number of sequence spaces followed.
func (t *SequenceTracker) Len() int { return len(t.spaces) }
