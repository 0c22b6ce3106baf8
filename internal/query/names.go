package query

import "strconv"

// protocols maps protocol numbers to the names printed and accepted.
var protocols = map[uint8]string{
	1: "icmp", 2: "igmp", 4: "ipip", 6: "tcp", 17: "udp", 41: "ipv6", 47: "gre",
	50: "esp", 51: "ah", 58: "icmp6", 89: "ospf", 103: "pim", 112: "vrrp", 132: "sctp",
}

// services maps well-known ports to service names (printed for ports and
// accepted in filters: port https).
var services = map[uint16]string{
	20: "ftp-data", 21: "ftp", 22: "ssh", 23: "telnet", 25: "smtp", 53: "domain",
	67: "bootps", 68: "bootpc", 69: "tftp", 80: "http", 110: "pop3", 123: "ntp",
	137: "netbios-ns", 138: "netbios-dgm", 139: "netbios-ssn", 143: "imap", 161: "snmp",
	162: "snmptrap", 179: "bgp", 389: "ldap", 443: "https", 445: "microsoft-ds",
	465: "submissions", 514: "syslog", 587: "submission", 636: "ldaps", 853: "domain-s",
	993: "imaps", 995: "pop3s", 1194: "openvpn", 1812: "radius", 2055: "netflow",
	3306: "mysql", 3389: "ms-wbt-server", 4739: "ipfix", 5060: "sip", 5432: "postgresql",
	6343: "sflow", 8080: "http-alt", 8443: "https-alt",
}

var protocolByName, serviceByName = func() (map[string]uint64, map[string]uint64) {
	p := map[string]uint64{"icmpv6": 58, "ipv6-icmp": 58}
	for n, s := range protocols {
		p[s] = uint64(n)
	}
	s := map[string]uint64{"dns": 53, "www": 80}
	for n, name := range services {
		s[name] = uint64(n)
	}
	return p, s
}()

func protoNumber(name string) (uint64, bool) {
	v, ok := protocolByName[name]
	return v, ok
}

func portNumber(name string) (uint64, bool) {
	v, ok := serviceByName[name]
	return v, ok
}

// ProtoName returns the protocol's name (tcp, udp, ...) or its number.
func ProtoName(p uint8) string {
	if s, ok := protocols[p]; ok {
		return s
	}
	return strconv.Itoa(int(p))
}

// ServiceName returns the port's service name (https, domain, ...) or its
// number.
func ServiceName(port uint16) string {
	if s, ok := services[port]; ok {
		return s
	}
	return strconv.Itoa(int(port))
}
