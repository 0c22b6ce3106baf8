package clickhouse

import (
	"net/netip"
	"testing"
	"time"
)

func TestPick(t *testing.T) {
	s := &Schema{Database: "fs"}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	h := now.Truncate(time.Hour)
	cases := []struct {
		name     string
		need     []string
		from, to time.Time
		step     time.Duration
		want     string
	}{
		{"day graph of totals by 5 minutes", nil, h.Add(-24 * time.Hour), h, 5 * time.Minute, "flows_5m"},
		{"week graph of protocols by hour", []string{"proto"}, h.Add(-7 * 24 * time.Hour), h, time.Hour, "flows_1h"},
		{"hour graph by minute", nil, h.Add(-time.Hour), h, time.Minute, "flows_1m"},
		{"graph by 10 s needs raw", nil, h.Add(-time.Hour), h, 10 * time.Second, "flows"},
		{"ports drop out of the hourly table", []string{"dst_port"}, h.Add(-7 * 24 * time.Hour), h, time.Hour, "flows_5m"},
		{"ports by minute: only raw", []string{"dst_port"}, h.Add(-time.Hour), h, time.Minute, "flows"},
		{"addresses and ports: only raw", []string{"src_addr", "dst_port"}, h.Add(-time.Hour), h, 0, "flows"},
		{"addresses only in 1m", []string{"src_addr"}, h.Add(-24 * time.Hour), h, 0, "flows_1m"},
		{"tcp flags only raw", []string{"tcp_flags"}, h.Add(-time.Hour), h, 0, "flows"},
		{"top-N over a day, unaligned edges", []string{"dst_port"}, now.Add(-24*time.Hour + 17*time.Second), now.Add(17 * time.Second), 0, "flows_5m"},
		{"unaligned 5-minute graph falls to 1m", nil, h.Add(-2*time.Hour + time.Minute), h.Add(time.Minute), 5 * time.Minute, "flows_1m"},
		{"addresses 3 months back: past 1m's TTL, still 1m (nothing else has them)", []string{"src_addr"}, h.Add(-90 * 24 * time.Hour), h, 0, "flows_1m"},
		{"a year back by hour", nil, h.Add(-300 * 24 * time.Hour), h, time.Hour, "flows_1h"},
		{"a year back by 5 minutes: 5m still holds it", nil, h.Add(-300 * 24 * time.Hour), h, 5 * time.Minute, "flows_5m"},
	}
	for _, c := range cases {
		if got := s.Pick(c.need, c.from, c.to, c.step, now).Name; got != c.want {
			t.Errorf("%s: picked %s, want %s", c.name, got, c.want)
		}
	}
}

func TestAddrHexRoundTrip(t *testing.T) {
	for _, a := range []string{"10.1.2.3", "2001:db8::1", "0.0.0.0"} {
		addr := netip.MustParseAddr(a)
		b := AddrBytes(addr)
		got, err := ParseAddrHex(fmtHex(b[:]))
		if err != nil || got != addr {
			t.Errorf("%s: got %v %v", a, got, err)
		}
	}
	if _, err := ParseAddrHex("zz"); err == nil {
		t.Error("bad hex accepted")
	}
}

func fmtHex(b []byte) string {
	const digits = "0123456789ABCDEF"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestPickExact(t *testing.T) {
	s := &Schema{Database: "fs"}
	now := time.Date(2026, 11, 23, 12, 34, 56, 0, time.UTC)
	h := now.Truncate(time.Hour)
	var open time.Time
	cases := []struct {
		name     string
		need     []string
		from, to time.Time
		want     string
	}{
		{"last hour, unaligned, open end", nil, now.Add(-time.Hour), open, "flows"},
		{"from a whole minute, open end", nil, now.Add(-time.Hour).Truncate(time.Minute), open, "flows_1m"},
		{"whole hours", []string{"proto"}, h.Add(-5 * time.Hour), h, "flows_1h"},
		{"whole 5 minutes, ports", []string{"dst_port"}, h.Add(-25 * time.Minute), h.Add(-5 * time.Minute), "flows_5m"},
		{"everything", []string{"proto"}, open, open, "flows_1h"},
		{"everything by address", []string{"src_addr"}, open, open, "flows_1m"},
		{"unaligned end", nil, h.Add(-2 * time.Hour), now, "flows"},
	}
	for _, c := range cases {
		if got := s.PickExact(c.need, c.from, c.to, now).Name; got != c.want {
			t.Errorf("%s: picked %s, want %s", c.name, got, c.want)
		}
	}
}
