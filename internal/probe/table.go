package probe

import (
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
)

// Defaults for Config fields left zero.
const (
	// DefaultIdleTimeout ends a flow that saw no packet for this long
	// (Cisco's default inactive timeout).
	DefaultIdleTimeout = 15 * time.Second
	// DefaultActiveTimeout ends a long-lived flow this long after its
	// first packet, so that its traffic lands in the right 5-minute file;
	// a new flow continues it.
	DefaultActiveTimeout = 60 * time.Second
	// DefaultFinTimeout ends a TCP flow this long after its last packet
	// once it has seen a FIN or RST, so that the final ACKs still belong
	// to it.
	DefaultFinTimeout = 2 * time.Second
	// DefaultMaxFlows bounds the flow table (about 200 bytes a flow).
	DefaultMaxFlows = 1 << 18
	// DefaultBatch is how many expired flows are handed to Emit at once.
	DefaultBatch = 512
)

// Config configures a Probe. Zero fields take the defaults above.
type Config struct {
	// IdleTimeout, ActiveTimeout and FinTimeout are the expiry rules
	// (see the package documentation). A negative FinTimeout turns TCP
	// FIN/RST expiry off (the flow then waits for the idle timeout).
	IdleTimeout, ActiveTimeout, FinTimeout time.Duration
	// MaxFlows bounds the table; a new flow arriving at a full table
	// expires the least recently seen flow early (counted as Evicted).
	MaxFlows int
	// Batch is the largest slice handed to Emit.
	Batch int
	// Domain is stored in every record (engine or observation domain).
	Domain uint32
	// InIf is stored as every record's input interface index.
	InIf uint32
	// Emit receives expired flows. The slice is reused after Emit
	// returns. Emit is called from Packet, Advance and Flush only.
	Emit func(recs []flow.Record)
}

// Stats are a Probe's counters.
type Stats struct {
	// Packets counts frames offered to Packet; IPPackets and IPBytes
	// those that were counted in a flow (IPBytes sums IP lengths).
	Packets, IPPackets, IPBytes uint64
	// NonIP counts frames without IP (ARP, ...); Malformed counts frames
	// with truncated or unsupported headers.
	NonIP, Malformed uint64
	// Fragments counts non-first IP fragments (counted in port-less flows).
	Fragments uint64
	// FlowsCreated counts flows started; Active is the current table size.
	FlowsCreated uint64
	Active       int
	// Expired counts flows handed to Emit, by reason.
	ExpiredIdle, ExpiredActive, ExpiredFin, ExpiredFlushed uint64
	// Evicted counts flows expired early because the table was full.
	Evicted uint64
}

// Exported returns the number of flows handed to Emit.
func (s Stats) Exported() uint64 {
	return s.ExpiredIdle + s.ExpiredActive + s.ExpiredFin + s.ExpiredFlushed + s.Evicted
}

// flowKey identifies a unidirectional flow: addresses, ports (ICMP type
// and code in dstPort), protocol and VLAN ID.
type flowKey struct {
	src, dst       [16]byte
	srcPort, dport uint16
	vlan           uint16
	proto          uint8
}

// entry is one flow in the table. Entries live in one preallocated
// slice; lists link them by index (nilIdx ends a list).
type entry struct {
	key      flowKey
	first    int64 // Unix nanoseconds
	last     int64
	packets  uint64
	bytes    uint64
	tos      uint8
	tcpFlags uint8
	finished bool // saw FIN or RST: lives on the fin list
	srcMAC   [6]byte
	dstMAC   [6]byte
	hash     uint64
	// prev/next link the entry into the idle (or fin) list, ordered by
	// last packet; agePrev/ageNext into the age list, ordered by first.
	prev, next       int32
	agePrev, ageNext int32
}

const nilIdx = -1

// list is an intrusive doubly linked list of entries.
type list struct{ head, tail int32 }

// Probe turns packets into flows. It is not safe for concurrent use.
type Probe struct {
	cfg                    Config
	idle, active, fin      int64
	entries                []entry
	free                   []int32 // unused entry indexes
	slots                  []int32 // open-addressing index: entry or nilIdx
	mask                   uint64
	idleList, finList, age list
	out                    []flow.Record
	now                    int64
	lastEmit               int64
	firstPacket            int64
	stats                  Stats
	pkt                    Packet
	seed                   uint64 // per-table hash seed
}

// New returns a Probe with its table fully allocated.
func New(cfg Config) (*Probe, error) {
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.ActiveTimeout == 0 {
		cfg.ActiveTimeout = DefaultActiveTimeout
	}
	if cfg.FinTimeout == 0 {
		cfg.FinTimeout = DefaultFinTimeout
	}
	if cfg.MaxFlows == 0 {
		cfg.MaxFlows = DefaultMaxFlows
	}
	if cfg.Batch == 0 {
		cfg.Batch = DefaultBatch
	}
	switch {
	case cfg.IdleTimeout < 0 || cfg.ActiveTimeout < 0:
		return nil, errors.New("probe: idle and active timeouts must be positive")
	case cfg.MaxFlows < 1 || cfg.MaxFlows > 1<<30:
		return nil, fmt.Errorf("probe: max flows %d out of range 1..2^30", cfg.MaxFlows)
	case cfg.Batch < 1:
		return nil, fmt.Errorf("probe: batch %d must be positive", cfg.Batch)
	case cfg.Emit == nil:
		return nil, errors.New("probe: Emit is required")
	}
	nslots := 1 << bits.Len(uint(cfg.MaxFlows*2-1)) // at most half full
	p := &Probe{
		cfg:      cfg,
		idle:     int64(cfg.IdleTimeout),
		active:   int64(cfg.ActiveTimeout),
		fin:      int64(cfg.FinTimeout),
		entries:  make([]entry, cfg.MaxFlows),
		free:     make([]int32, cfg.MaxFlows),
		slots:    make([]int32, nslots),
		mask:     uint64(nslots - 1),
		idleList: list{nilIdx, nilIdx},
		finList:  list{nilIdx, nilIdx},
		age:      list{nilIdx, nilIdx},
		out:      make([]flow.Record, 0, cfg.Batch),
		seed:     rand.Uint64(),
	}
	for i := range p.free {
		p.free[i] = int32(cfg.MaxFlows - 1 - i)
	}
	for i := range p.slots {
		p.slots[i] = nilIdx
	}
	return p, nil
}

// Stats returns the counters.
func (p *Probe) Stats() Stats {
	s := p.stats
	s.Active = len(p.entries) - len(p.free)
	return s
}

// FirstPacket returns the time of the first counted packet (zero before).
func (p *Probe) FirstPacket() time.Time {
	if p.firstPacket == 0 {
		return time.Time{}
	}
	return time.Unix(0, p.firstPacket).UTC()
}

// Now returns the probe's clock: the latest time given to Packet or
// Advance.
func (p *Probe) Now() time.Time { return time.Unix(0, p.now).UTC() }

// Packet parses one frame captured at ts (Unix nanoseconds) and adds it to
// its flow, first expiring flows whose timeouts passed. Frames without IP
// or with broken headers are counted and skipped. It does not allocate.
func (p *Probe) Packet(linkType uint32, frame []byte, ts int64) {
	p.stats.Packets++
	p.Advance(ts)
	pkt := &p.pkt
	if err := ParseFrame(pkt, linkType, frame); err != nil {
		if err == ErrNotIP {
			p.stats.NonIP++
		} else {
			p.stats.Malformed++
		}
		return
	}
	p.Add(pkt, ts)
}

// Add counts one parsed packet seen at ts (Unix nanoseconds).
func (p *Probe) Add(pkt *Packet, ts int64) {
	if ts > p.now {
		p.now = ts
	}
	if p.firstPacket == 0 {
		p.firstPacket = ts
	}
	p.stats.IPPackets++
	p.stats.IPBytes += uint64(pkt.IPLen)
	if pkt.Fragment {
		p.stats.Fragments++
	}
	k := flowKey{src: pkt.Src, dst: pkt.Dst, srcPort: pkt.SrcPort, dport: pkt.DstPort, vlan: pkt.VLAN, proto: pkt.Proto}
	h := hashKey(&k, p.seed)
	i := p.lookup(&k, h)
	if i == nilIdx {
		i = p.insert(&k, h, pkt, ts)
	} else {
		e := &p.entries[i]
		e.last = max(e.last, ts)
		if e.finished {
			p.unlink(&p.finList, i)
			p.pushBack(&p.finList, i)
		} else {
			p.unlink(&p.idleList, i)
			p.pushBack(&p.idleList, i)
		}
	}
	e := &p.entries[i]
	e.packets++
	e.bytes += uint64(pkt.IPLen)
	e.tcpFlags |= pkt.TCPFlags
	if pkt.Proto == protoTCP && pkt.TCPFlags&(tcpFIN|tcpRST) != 0 && !e.finished && p.fin >= 0 {
		e.finished = true
		p.unlink(&p.idleList, i)
		p.pushBack(&p.finList, i)
	}
}

// Advance moves the clock to now (Unix nanoseconds; earlier times are
// ignored) and expires the flows whose timeouts passed. Live captures call
// it about once a second so that flows expire in quiet periods.
func (p *Probe) Advance(now int64) {
	if now > p.now {
		p.now = now
	}
	now = p.now
	for p.idleList.head != nilIdx && now-p.entries[p.idleList.head].last >= p.idle {
		p.expire(p.idleList.head, &p.stats.ExpiredIdle)
	}
	for p.finList.head != nilIdx && now-p.entries[p.finList.head].last >= p.fin {
		p.expire(p.finList.head, &p.stats.ExpiredFin)
	}
	for p.age.head != nilIdx && now-p.entries[p.age.head].first >= p.active {
		p.expire(p.age.head, &p.stats.ExpiredActive)
	}
	if len(p.out) > 0 && now-p.lastEmit >= int64(time.Second) {
		p.emit()
	}
}

// Flush expires every flow (end of capture or shutdown) and emits them.
func (p *Probe) Flush() {
	for p.age.head != nilIdx {
		p.expire(p.age.head, &p.stats.ExpiredFlushed)
	}
	p.emit()
}

// emit hands the pending records to Emit.
func (p *Probe) emit() {
	p.lastEmit = p.now
	if len(p.out) == 0 {
		return
	}
	p.cfg.Emit(p.out)
	p.out = p.out[:0]
}

// insert starts a flow for k, evicting the least recently seen flow when
// the table is full.
func (p *Probe) insert(k *flowKey, h uint64, pkt *Packet, ts int64) int32 {
	if len(p.free) == 0 {
		victim := p.idleList.head
		if victim == nilIdx || (p.finList.head != nilIdx && p.entries[p.finList.head].last <= p.entries[victim].last) {
			victim = p.finList.head
		}
		p.expire(victim, &p.stats.Evicted)
	}
	i := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	p.entries[i] = entry{
		key: *k, first: ts, last: ts, tos: pkt.TOS, hash: h,
		srcMAC: pkt.SrcMAC, dstMAC: pkt.DstMAC,
	}
	s := h & p.mask
	for p.slots[s] != nilIdx {
		s = (s + 1) & p.mask
	}
	p.slots[s] = i
	p.pushBack(&p.idleList, i)
	p.agePushBack(i)
	p.stats.FlowsCreated++
	return i
}

// lookup returns the entry holding k, or nilIdx.
func (p *Probe) lookup(k *flowKey, h uint64) int32 {
	for s := h & p.mask; ; s = (s + 1) & p.mask {
		i := p.slots[s]
		if i == nilIdx {
			return nilIdx
		}
		if e := &p.entries[i]; e.hash == h && e.key == *k {
			return i
		}
	}
}

// expire turns entry i into a record, counts it in *reason and frees it.
func (p *Probe) expire(i int32, reason *uint64) {
	e := &p.entries[i]
	*reason++
	p.out = append(p.out, p.record(e))
	if e.finished {
		p.unlink(&p.finList, i)
	} else {
		p.unlink(&p.idleList, i)
	}
	p.ageUnlink(i)
	p.removeSlot(i, e.hash)
	p.free = append(p.free, i)
	if len(p.out) == cap(p.out) {
		p.emit()
	}
}

// removeSlot deletes entry i from the index with backward-shift deletion,
// so the table never accumulates tombstones.
func (p *Probe) removeSlot(i int32, h uint64) {
	s := h & p.mask
	for p.slots[s] != i {
		s = (s + 1) & p.mask
	}
	for {
		p.slots[s] = nilIdx
		n := s
		for {
			n = (n + 1) & p.mask
			j := p.slots[n]
			if j == nilIdx {
				return
			}
			home := p.entries[j].hash & p.mask
			// Move j into the hole unless its home lies cyclically in (s, n].
			if (n-home)&p.mask >= (n-s)&p.mask {
				p.slots[s] = j
				s = n
				break
			}
		}
	}
}

// record converts an entry to a flow.Record.
func (p *Probe) record(e *entry) flow.Record {
	r := flow.Record{
		SrcAddr:  netip.AddrFrom16(e.key.src).Unmap(),
		DstAddr:  netip.AddrFrom16(e.key.dst).Unmap(),
		Start:    e.first / int64(time.Millisecond),
		End:      e.last / int64(time.Millisecond),
		Bytes:    e.bytes,
		Packets:  e.packets,
		Domain:   p.cfg.Domain,
		InIf:     p.cfg.InIf,
		SrcPort:  e.key.srcPort,
		DstPort:  e.key.dport,
		SrcVLAN:  e.key.vlan,
		Proto:    e.key.proto,
		TOS:      e.tos,
		TCPFlags: e.tcpFlags,
		SrcMAC:   e.srcMAC,
		DstMAC:   e.dstMAC,
	}
	return r
}

func (p *Probe) pushBack(l *list, i int32) {
	e := &p.entries[i]
	e.prev, e.next = l.tail, nilIdx
	if l.tail != nilIdx {
		p.entries[l.tail].next = i
	} else {
		l.head = i
	}
	l.tail = i
}

func (p *Probe) unlink(l *list, i int32) {
	e := &p.entries[i]
	if e.prev != nilIdx {
		p.entries[e.prev].next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nilIdx {
		p.entries[e.next].prev = e.prev
	} else {
		l.tail = e.prev
	}
}

func (p *Probe) agePushBack(i int32) {
	e := &p.entries[i]
	e.agePrev, e.ageNext = p.age.tail, nilIdx
	if p.age.tail != nilIdx {
		p.entries[p.age.tail].ageNext = i
	} else {
		p.age.head = i
	}
	p.age.tail = i
}

func (p *Probe) ageUnlink(i int32) {
	e := &p.entries[i]
	if e.agePrev != nilIdx {
		p.entries[e.agePrev].ageNext = e.ageNext
	} else {
		p.age.head = e.ageNext
	}
	if e.ageNext != nilIdx {
		p.entries[e.ageNext].agePrev = e.agePrev
	} else {
		p.age.tail = e.agePrev
	}
}

// hashKey mixes the key's words with a multiply-xorshift hash started
// from a random per-table seed, so that crafted traffic cannot predict
// which keys collide.
func hashKey(k *flowKey, seed uint64) uint64 {
	const m = 0x9e3779b97f4a7c15
	h := seed ^ 0x243f6a8885a308d3
	mix := func(v uint64) {
		h ^= v
		h *= m
		h ^= h >> 29
	}
	mix(le64(k.src[0:8]))
	mix(le64(k.src[8:16]))
	mix(le64(k.dst[0:8]))
	mix(le64(k.dst[8:16]))
	mix(uint64(k.srcPort) | uint64(k.dport)<<16 | uint64(k.vlan)<<32 | uint64(k.proto)<<48)
	return h ^ h>>32
}

func le64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}
