package flowfile

import (
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
)

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var testLoc = time.FixedZone("CET", 3600)

// synthV5 returns n NetFlow-v5-like records: hosts in a few /16s, about a
// dozen service ports, log-normal packet counts, times within five minutes
// of base, in arrival order (End roughly increasing).
func synthV5(rng *rand.Rand, n int, base time.Time) []flow.Record {
	prefixes := [][2]byte{{10, 1}, {10, 2}, {192, 168}, {172, 16}, {198, 51}}
	services := []uint16{80, 443, 53, 22, 25, 123, 993, 3306, 8080, 5432, 161, 389}
	exporters := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")}
	host := func() netip.Addr {
		p := prefixes[rng.IntN(len(prefixes))]
		return netip.AddrFrom4([4]byte{p[0], p[1], byte(rng.IntN(256)), byte(rng.IntN(256))})
	}
	recs := make([]flow.Record, n)
	baseMs := base.UnixMilli()
	for i := range recs {
		r := &recs[i]
		exp := rng.IntN(len(exporters))
		r.Exporter = exporters[exp]
		r.SrcAddr, r.DstAddr = host(), host()
		r.NextHop = netip.AddrFrom4([4]byte{10, 0, 0, byte(1 + rng.IntN(4))})
		end := baseMs + int64(i)*300_000/int64(n) + int64(rng.IntN(1000))
		dur := int64(math.Min(math.Exp(rng.NormFloat64()*2+7), 120_000))
		r.End, r.Start = end, end-dur
		pk := uint64(math.Max(1, math.Exp(rng.NormFloat64()*1.5+1)))
		r.Packets = pk
		r.Bytes = pk * uint64(40+rng.IntN(1460))
		r.Domain = uint32(exp)
		r.InIf, r.OutIf = uint32(1+rng.IntN(8)), uint32(1+rng.IntN(8))
		r.SrcMask, r.DstMask = 16, 16
		r.SrcAS, r.DstAS = 64512, uint32(64512+rng.IntN(4))
		svc := services[rng.IntN(len(services))]
		eph := uint16(32768 + rng.IntN(28000))
		if rng.IntN(2) == 0 {
			r.SrcPort, r.DstPort = eph, svc
		} else {
			r.SrcPort, r.DstPort = svc, eph
		}
		if svc == 53 || svc == 123 || svc == 161 {
			r.Proto = 17
		} else {
			r.Proto = 6
			r.TCPFlags = byte(0x10 | rng.IntN(2)*0x02 | rng.IntN(2)*0x01 | rng.IntN(2)*0x08)
		}
		if rng.IntN(10) == 0 {
			r.TOS = 0xb8
		}
	}
	return recs
}

// randomRecord fills every field with random values, including IPv6,
// zero and IPv4-mapped addresses.
func randomRecord(rng *rand.Rand) flow.Record {
	addr := func() netip.Addr {
		switch rng.IntN(5) {
		case 0:
			return netip.Addr{}
		case 1:
			var b [16]byte
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			return netip.AddrFrom16(b)
		case 2:
			return netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff, 12: byte(rng.Uint32()), 15: 1})
		default:
			return netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
		}
	}
	mac := func() (m [6]byte) {
		if rng.IntN(2) == 0 {
			for i := range m {
				m[i] = byte(rng.Uint32())
			}
		}
		return m
	}
	start := int64(rng.Uint64())
	if rng.IntN(2) == 0 {
		start = 1_780_000_000_000 + rng.Int64N(300_000)
	}
	return flow.Record{
		Exporter: addr(), SrcAddr: addr(), DstAddr: addr(), NextHop: addr(),
		Start: start, End: start + rng.Int64N(1<<40) - 1<<39,
		Bytes: rng.Uint64() >> rng.IntN(64), Packets: rng.Uint64() >> rng.IntN(64),
		Domain: rng.Uint32(), SamplingRate: rng.Uint32() >> rng.IntN(32),
		InIf: rng.Uint32(), OutIf: rng.Uint32(), SrcAS: rng.Uint32(), DstAS: rng.Uint32(),
		SrcPort: uint16(rng.Uint32()), DstPort: uint16(rng.Uint32()),
		SrcVLAN: uint16(rng.IntN(4096)), DstVLAN: uint16(rng.IntN(4096)),
		Proto: uint8(rng.Uint32()), TOS: uint8(rng.Uint32()), TCPFlags: uint8(rng.Uint32()),
		SrcMask: uint8(rng.IntN(129)), DstMask: uint8(rng.IntN(129)),
		SrcMAC: mac(), DstMAC: mac(),
	}
}

// readAll returns every record and the Meta of the flow file at path.
func readAll(t testing.TB, path string) ([]flow.Record, *Meta) {
	t.Helper()
	r, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	var out []flow.Record
	for {
		out, err = r.Next(out)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
	}
	return out, r.Meta()
}

// testWriter starts a Writer on a temporary directory with a fake clock.
func testWriter(t testing.TB, dir string, clock *fakeClock, mod func(*Config)) *Writer {
	t.Helper()
	cfg := Config{Dir: dir, Location: testLoc, Now: clock.Now, Hostname: "test", Logger: discardLogger()}
	if mod != nil {
		mod(&cfg)
	}
	w, err := NewWriter(cfg)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	return w
}

// listTmp returns the .tmp files under dir.
func listTmp(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(path) == tmpSuffix {
			out = append(out, path)
		}
		return nil
	})
	return out
}

func equalRecords(t testing.TB, got, want []flow.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("record %d differs:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// damagedV1Payload returns a version-1 payload of n (1..40) random records
// (some with zoned addresses) with one byte changed, cut short, or one
// byte too many: the input of the tests that check that a partial decode
// fails exactly when the full one does.
func damagedV1Payload(rng *rand.Rand, enc *columnCodec) (raw []byte, n int) {
	n = 1 + rng.IntN(40)
	recs := make([]flow.Record, n)
	for i := range recs {
		recs[i] = randomRecord(rng)
		if rng.IntN(4) == 0 {
			recs[i].SrcAddr = recs[i].SrcAddr.WithZone("eth0")
		}
	}
	raw = enc.appendColumns(nil, recs, 0)
	switch rng.IntN(3) {
	case 0:
		raw[rng.IntN(len(raw))] = byte(rng.Uint32())
	case 1:
		raw = raw[:rng.IntN(len(raw))]
	default:
		raw = append(raw, byte(rng.Uint32()))
	}
	return raw, n
}
