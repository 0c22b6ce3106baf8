package cuflow

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// builtinProtocols maps IP protocol names to numbers, so that CUFlow.cf
// files naming protocols work without /etc/protocols.
var builtinProtocols = map[string]uint8{
	"icmp": 1, "igmp": 2, "ipip": 4, "ipencap": 4, "tcp": 6, "egp": 8, "udp": 17,
	"ipv6": 41, "rsvp": 46, "gre": 47, "esp": 50, "ah": 51, "icmpv6": 58,
	"ipv6-icmp": 58, "eigrp": 88, "ospf": 89, "ospfigp": 89, "pim": 103,
	"vrrp": 112, "l2tp": 115, "sctp": 132,
}

// builtinServices maps common service names to TCP/UDP ports (the same
// number for both protocols), used when /etc/services lacks them.
var builtinServices = map[string]uint16{
	"ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25,
	"domain": 53, "dns": 53, "bootps": 67, "bootpc": 68, "tftp": 69,
	"gopher": 70, "finger": 79, "http": 80, "www": 80, "kerberos": 88,
	"pop3": 110, "sunrpc": 111, "nntp": 119, "ntp": 123, "netbios-ns": 137,
	"netbios-dgm": 138, "netbios-ssn": 139, "imap": 143, "imap2": 143,
	"snmp": 161, "snmp-trap": 162, "bgp": 179, "irc": 194, "ldap": 389,
	"https": 443, "microsoft-ds": 445, "isakmp": 500, "syslog": 514,
	"submission": 587, "ldaps": 636, "rsync": 873, "imaps": 993,
	"pop3s": 995, "socks": 1080, "openvpn": 1194, "ms-sql-s": 1433,
	"nfs": 2049, "mysql": 3306, "rdp": 3389, "ms-wbt-server": 3389,
	"sip": 5060, "postgresql": 5432, "x11": 6000, "http-alt": 8080,
	"napster": 6699, "gnutella": 6346, "kazaa": 1214,
}

var (
	etcServicesOnce sync.Once
	etcServices     map[string]uint16 // "name/proto" → port
)

// servicesFile is the system services database; a variable for tests.
var servicesFile = "/etc/services"

func loadEtcServices() {
	etcServices = map[string]uint16{}
	f, err := os.Open(servicesFile)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		portStr, proto, ok := strings.Cut(fields[1], "/")
		if !ok {
			continue
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil {
			continue
		}
		for _, name := range append([]string{fields[0]}, fields[2:]...) {
			key := strings.ToLower(name) + "/" + strings.ToLower(proto)
			if _, dup := etcServices[key]; !dup {
				etcServices[key] = uint16(port)
			}
		}
	}
}

// parseProtocol resolves a protocol number or name.
func parseProtocol(s string) (uint8, error) {
	if n, err := strconv.ParseUint(s, 10, 8); err == nil {
		return uint8(n), nil
	}
	if n, ok := builtinProtocols[strings.ToLower(s)]; ok {
		return n, nil
	}
	return 0, fmt.Errorf("unknown protocol %q", s)
}

// protocolName returns the conventional name of protocol number p, or its
// number as text.
func protocolName(p uint8) string {
	best := ""
	for name, n := range builtinProtocols {
		if n == p && (best == "" || len(name) < len(best) || len(name) == len(best) && name < best) {
			best = name
		}
	}
	if best == "" {
		return strconv.Itoa(int(p))
	}
	return best
}

// parsePort resolves a port number or a service name for a protocol.
func parsePort(s, proto string) (uint16, error) {
	if n, err := strconv.ParseUint(s, 10, 16); err == nil {
		return uint16(n), nil
	}
	etcServicesOnce.Do(loadEtcServices)
	if n, ok := etcServices[strings.ToLower(s)+"/"+strings.ToLower(proto)]; ok {
		return n, nil
	}
	if n, ok := builtinServices[strings.ToLower(s)]; ok {
		return n, nil
	}
	return 0, fmt.Errorf("unknown port or service name %q for %s", s, proto)
}

// portRange is an inclusive range of ports of one protocol.
type portRange struct {
	proto    uint8
	lo, hi   uint16
	protoTxt string
}

// parsePortSpec parses "80/tcp", "8000-8080/tcp" or "domain/udp".
func parsePortSpec(spec string) (portRange, error) {
	ports, proto, ok := strings.Cut(spec, "/")
	if !ok || ports == "" || proto == "" {
		return portRange{}, fmt.Errorf("bad service port %q (want port[-port]/protocol)", spec)
	}
	p, err := parseProtocol(proto)
	if err != nil {
		return portRange{}, fmt.Errorf("bad service port %q: %v", spec, err)
	}
	loStr, hiStr, isRange := strings.Cut(ports, "-")
	lo, err := parsePort(loStr, proto)
	if err != nil {
		return portRange{}, fmt.Errorf("bad service port %q: %v", spec, err)
	}
	hi := lo
	if isRange {
		if hi, err = parsePort(hiStr, proto); err != nil {
			return portRange{}, fmt.Errorf("bad service port %q: %v", spec, err)
		}
		if hi < lo {
			return portRange{}, fmt.Errorf("bad service port %q: range ends before it starts", spec)
		}
	}
	return portRange{proto: p, lo: lo, hi: hi, protoTxt: proto}, nil
}

// parseByteList parses "0-7,32" into the set of values 0..255 it names.
func parseByteList(s string) ([]uint8, error) {
	var out []uint8
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		loStr, hiStr, isRange := strings.Cut(part, "-")
		lo, err := strconv.ParseUint(loStr, 10, 8)
		if err != nil {
			return nil, fmt.Errorf("bad TOS value %q (want 0-255)", part)
		}
		hi := lo
		if isRange {
			if hi, err = strconv.ParseUint(hiStr, 10, 8); err != nil || hi < lo {
				return nil, fmt.Errorf("bad TOS range %q", part)
			}
		}
		for v := lo; v <= hi; v++ {
			out = append(out, uint8(v))
		}
	}
	return out, nil
}

// parseASList parses AS numbers: "701", "701-705" (Lucas's book's
// ranges) or "AS701"; plain 32-bit numbers.
func parseASList(items []string) ([][2]uint32, error) {
	var out [][2]uint32
	for _, item := range items {
		for _, part := range strings.Split(item, ",") {
			part = strings.TrimSpace(part)
			loStr, hiStr, isRange := strings.Cut(part, "-")
			lo, err := parseASN(loStr)
			if err != nil {
				return nil, err
			}
			hi := lo
			if isRange {
				if hi, err = parseASN(hiStr); err != nil {
					return nil, err
				}
				if hi < lo || hi-lo > 1<<16 {
					return nil, fmt.Errorf("bad AS range %q", part)
				}
			}
			out = append(out, [2]uint32{lo, hi})
		}
	}
	return out, nil
}

func parseASN(s string) (uint32, error) {
	t := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "AS")
	n, err := strconv.ParseUint(t, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("bad AS number %q", s)
	}
	return uint32(n), nil
}
