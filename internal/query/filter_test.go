package query

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/flowscan/flowscan/internal/flow"
)

// testRec is a TCP flow 10.1.2.3:40000 -> 192.0.2.10:443, 3000 bytes in
// 10 packets over 2 s.
func testRec() flow.Record {
	return flow.Record{
		Exporter: netip.MustParseAddr("127.0.0.1"),
		SrcAddr:  netip.MustParseAddr("10.1.2.3"), DstAddr: netip.MustParseAddr("192.0.2.10"),
		NextHop: netip.MustParseAddr("10.0.0.254"),
		SrcPort: 40000, DstPort: 443, Proto: 6, TOS: 0x20, TCPFlags: 0x1b, // FSPA... 0x1b = F S P A
		InIf: 3, OutIf: 7, SrcAS: 64500, DstAS: 15169,
		Bytes: 3000, Packets: 10, Start: 1_700_000_000_000, End: 1_700_000_002_000,
		SrcMask: 24, DstMask: 16, SrcVLAN: 10,
	}
}

func testRec6() flow.Record {
	r := testRec()
	r.SrcAddr = netip.MustParseAddr("2001:db8::1")
	r.DstAddr = netip.MustParseAddr("2001:db8:ffff::2")
	r.Proto, r.SrcPort, r.DstPort = 17, 53, 5353
	return r
}

func TestFilterMatch(t *testing.T) {
	r4, r6 := testRec(), testRec6()
	tests := []struct {
		expr   string
		v4, v6 bool
	}{
		{"", true, true},
		{"any", true, true},
		{"host 10.1.2.3", true, false},
		{"ip 192.0.2.10", true, false},
		{"src host 10.1.2.3", true, false},
		{"dst host 10.1.2.3", false, false},
		{"host ::ffff:10.1.2.3", true, false},
		{"net 10.0.0.0/8", true, false},
		{"src net 10.1.2.0/24", true, false},
		{"dst net 10.1.2.0/24", false, false},
		{"net 192.0.2.0/25", true, false},
		{"net 192.0.2.128/25", false, false},
		{"net 2001:db8::/32", false, true},
		{"dst net 2001:db8:ffff::/48", false, true},
		{"src net 2001:db8:ffff::/48", false, false},
		{"net 0.0.0.0/0", true, false},
		{"net ::/0", false, true},
		{"host in [1.1.1.1 10.1.2.3]", true, false},
		{"host in [1.1.1.1, 2001:db8::1]", false, true},
		{"port 443", true, false},
		{"port https", true, false},
		{"dst port 443", true, false},
		{"src port 443", false, false},
		{"port > 40000", false, false},
		{"port >= 40000", true, false},
		{"src port gt 1023", true, false},
		{"dst port < 1024", true, false},
		{"port != 443", true, true},
		{"port in [80 443]", true, false},
		{"port in [53, 5353]", false, true},
		{"dst port in [1 2 3 4 5 6 7 8 9 10 443]", true, false},
		{"proto tcp", true, false},
		{"proto 17", false, true},
		{"udp", false, true},
		{"proto in [tcp udp]", true, true},
		{"as 15169", true, true},
		{"src as 15169", false, false},
		{"dst as 15169", true, true},
		{"if 7", true, true},
		{"in if 3", true, true},
		{"out if 3", false, false},
		{"exporter 127.0.0.1", true, true},
		{"exporter 127.0.0.0/8", true, true},
		{"exporter 127.0.0.2", false, false},
		{"nexthop 10.0.0.254", true, true},
		{"tos 32", true, true},
		{"tos 0x20", true, true},
		{"flags S", true, true},
		{"flags SAF", true, true},
		{"flags R", false, false},
		{"flags X", false, false},
		{"flags 0x1b", true, true},
		{"bytes 3000", true, true},
		{"bytes > 2K", true, true},
		{"bytes > 3K", false, false},
		{"bytes >= 0.003M", true, true},
		{"packets < 11", true, true},
		{"duration 2000", true, true},
		{"duration > 1999", true, true},
		{"bps 12000", true, true},
		{"bps > 12K", false, false},
		{"pps 5", true, true},
		{"bpp 300", true, true},
		{"src mask 24", true, true},
		{"vlan 10", true, true},
		{"dst vlan 10", false, false},
		{"ipv4", true, false},
		{"inet6", false, true},
		{"not ipv4", false, true},
		{"! proto tcp", false, true},
		{"proto tcp and dst port 443", true, false},
		{"proto tcp && port 5353", false, false},
		{"proto udp or dst port 443", true, true},
		{"proto udp || dst port 443", true, true},
		// and binds tighter than or
		{"proto udp or proto tcp and port 1", false, true},
		{"(proto udp or proto tcp) and port 1", false, false},
		{"not (proto udp or proto tcp)", false, false},
		{"not not proto tcp", true, false},
		{"PROTO TCP AND NOT HOST 1.2.3.4", true, false},
	}
	for _, tc := range tests {
		f, err := Compile(tc.expr)
		if err != nil {
			t.Errorf("Compile(%q): %v", tc.expr, err)
			continue
		}
		if got := f.Match(&r4); got != tc.v4 {
			t.Errorf("%q on IPv4 flow = %v, want %v", tc.expr, got, tc.v4)
		}
		if got := f.Match(&r6); got != tc.v6 {
			t.Errorf("%q on IPv6 flow = %v, want %v", tc.expr, got, tc.v6)
		}
	}
}

func TestFilterSyntaxErrors(t *testing.T) {
	tests := []struct {
		expr string
		col  int
	}{
		{"proto", 6},
		{"proto tcp and", 14},
		{"proto xyz", 7},
		{"port 70000", 6},
		{"host 10.0.0.0/8", 6},
		{"host 10.0.0.300", 6},
		{"net 10.0.0.0/33", 5},
		{"src proto tcp", 1},
		{"in port 3", 4},
		{"(proto tcp", 11},
		{"proto tcp)", 10},
		{"proto tcp port 80", 11},
		{"frobnicate 3", 1},
		{"port in [80 443", 16},
		{"port in []", 10},
		{"port in 80", 9},
		{"flags SQ", 8},
		{"bytes > -1", 9},
		{"bytes > 1Q", 9},
		{"proto tcp & port 80", 11},
		{"and", 1},
		{"port in [80 (]", 13},
	}
	for _, tc := range tests {
		_, err := Compile(tc.expr)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Compile(%q) = %v, want a SyntaxError", tc.expr, err)
			continue
		}
		if se.Column != tc.col {
			t.Errorf("Compile(%q): column %d, want %d (%s)", tc.expr, se.Column, tc.col, se.Msg)
		}
	}
}

func TestParseNumber(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true}, {"42", 42, true}, {"1K", 1000, true}, {"1k", 1000, true}, {"2M", 2e6, true},
		{"3G", 3e9, true}, {"1.5M", 1.5e6, true}, {"0x10", 16, true}, {"18446744073709551615", 1<<64 - 1, true},
		{"18446744073709551616", 0, false}, {"20000000000000G", 0, false}, {"K", 0, false}, {"1.5", 0, false}, {"-1", 0, false},
	}
	for _, tc := range tests {
		got, err := parseNumber(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseNumber(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	f := MustCompile("(proto tcp and dst port in [80 443 8080]) or (net 2001:db8::/32 and bytes > 1K) or not host 10.9.9.9")
	r := testRec()
	if n := testing.AllocsPerRun(1000, func() { f.Match(&r) }); n != 0 {
		t.Fatalf("Match allocates %v times per flow", n)
	}
}

func BenchmarkFilterMatch(b *testing.B) {
	for _, expr := range []string{
		"proto tcp and dst port 443",
		"net 10.0.0.0/8 and not dst port in [22 53 80 443] and bytes > 1M",
		"(src host 192.0.2.1 or dst net 2001:db8::/32) and bps > 10K",
	} {
		b.Run(expr, func(b *testing.B) {
			f := MustCompile(expr)
			recs := []flow.Record{testRec(), testRec6()}
			b.ReportAllocs()
			n := 0
			for i := 0; b.Loop(); i++ {
				if f.Match(&recs[i&1]) {
					n++
				}
			}
			_ = n
		})
	}
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{"proto tcp and dst port 443", "host in [1.2.3.4 ::1]", "not (bytes > 1M or flags SA)", "src net 10.0.0.0/8", "port in [80", "(((", "bps>1.5G"} {
		f.Add(s)
	}
	r4, r6 := testRec(), testRec6()
	f.Fuzz(func(t *testing.T, expr string) {
		flt, err := Compile(expr)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Column < 1 || se.Column > len(expr)+1 {
				t.Fatalf("Compile(%q): bad error %v", expr, err)
			}
			return
		}
		flt.Match(&r4)
		flt.Match(&r6)
		// not EXPR must be the complement.
		neg, err := Compile("not (" + expr + ")")
		if err != nil {
			return // e.g. expr ends inside a list
		}
		if neg.Match(&r4) == flt.Match(&r4) || neg.Match(&r6) == flt.Match(&r6) {
			t.Fatalf("not (%q) is not the complement", expr)
		}
	})
}
