package jkflow

import "testing"

// Every key the module writes reads back as its protocol and port.
func TestParsePortKeyRoundTrip(t *testing.T) {
	for proto := 0; proto < 256; proto++ {
		for _, port := range []uint16{0, 1, 53, 443, 65535} {
			k := portKey{proto: uint8(proto)}
			if proto == 6 || proto == 17 {
				k.port = port
			}
			key := portName(k)
			p, n, ok := ParsePortKey(key)
			if !ok || p != k.proto || n != k.port {
				t.Fatalf("ParsePortKey(%q) = %d, %d, %v; want %d, %d", key, p, n, ok, k.proto, k.port)
			}
		}
	}
}

func TestParsePortKeyRejects(t *testing.T) {
	for _, key := range []string{"", "tcp", "udp", "6", "443", "443/", "/tcp", "443/icmp", "65536/tcp", "-1/tcp", "0443/tcp",
		"443/TCP", " 443/tcp", "443/tcp ", "nonsense", "256", "1/2/tcp", "443/tcp/x"} {
		if p, n, ok := ParsePortKey(key); ok {
			t.Errorf("ParsePortKey(%q) = %d, %d, true; want false", key, p, n)
		}
	}
}

func FuzzParsePortKey(f *testing.F) {
	for _, s := range []string{"443/tcp", "53/udp", "icmp", "47", "gre", "0/tcp", "x/y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		p, n, ok := ParsePortKey(key)
		if !ok {
			return
		}
		if p != 6 && p != 17 && n != 0 {
			t.Fatalf("%q: port %d for protocol %d", key, n, p)
		}
		// What it accepts names the same entry as the module's own key.
		k := portKey{proto: p, port: n}
		if p2, n2, ok2 := ParsePortKey(portName(k)); !ok2 || p2 != p || n2 != n {
			t.Fatalf("%q: %d/%d does not round-trip through %q", key, p, n, portName(k))
		}
	})
}
