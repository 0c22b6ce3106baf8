package campusio

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Config is campusio's configuration section (see the package doc for
// the meaning of every key).
type Config struct {
	// OutputDir is where RRD files and top reports go; relative paths
	// are resolved against the configuration file's directory. Empty
	// means the scanner's default (rrd_dir/<module name>).
	OutputDir string `yaml:"output_dir"`
	// LocalSubnets are the prefixes of the local network.
	LocalSubnets []string `yaml:"local_subnets"`
	// NextHops are next-hop addresses beyond the border: a flow routed
	// to one of them is outbound.
	NextHops []string `yaml:"next_hops"`
	// OutputIfIndexes are the ifIndexes of border interfaces: a flow
	// leaving through one is outbound, one arriving through one inbound.
	OutputIfIndexes []uint32 `yaml:"output_if_indexes"`
	// TCPServices and UDPServices are the services with their own RRD
	// files: "http", "443", "web=8080".
	TCPServices []string `yaml:"tcp_services"`
	UDPServices []string `yaml:"udp_services"`
	// Protocols are the IP protocols with their own RRD files, by name
	// ("tcp") or number ("47"). Absent means tcp, udp and icmp.
	Protocols []string `yaml:"protocols"`
	// ASPairs enables per source AS / destination AS pair RRD files for
	// the ASPairsTop busiest pairs of each file.
	ASPairs bool `yaml:"as_pairs"`
	// ASPairsTop bounds the AS pair files written per flow file
	// (default 20).
	ASPairsTop int `yaml:"as_pairs_top"`
	// TopN is the size of the top talkers report; 0 writes none.
	TopN int `yaml:"top_n"`
	// Multicast counts multicast flows in MCAST.rrd instead of the
	// border files.
	Multicast bool `yaml:"multicast"`
	// ReportPrefixFormat is a strftime-like prefix (%Y %m %d %H %M %%)
	// of the top report file names, taken at the flow file's start in
	// local time; it may contain directories. Empty keeps only the
	// latest report.
	ReportPrefixFormat string `yaml:"report_prefix_format"`
	// MaxHosts bounds the hosts tracked per flow file for the top
	// talkers (default 65536); traffic of further hosts still counts in
	// the RRD files.
	MaxHosts int `yaml:"max_hosts"`
}

// Service is a named set of TCP and UDP ports with its own pair of RRD
// files, <Name>_src.rrd and <Name>_dst.rrd.
type Service struct {
	Name     string
	TCPPorts []uint16
	UDPPorts []uint16
}

var wellKnownPorts = map[string]uint16{
	"ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25,
	"domain": 53, "dns": 53, "http": 80, "kerberos": 88, "pop3": 110,
	"nntp": 119, "ntp": 123, "netbios-ns": 137, "netbios-dgm": 138,
	"netbios-ssn": 139, "imap": 143, "snmp": 161, "bgp": 179,
	"ldap": 389, "https": 443, "microsoft-ds": 445, "smb": 445,
	"syslog": 514, "submission": 587, "ldaps": 636, "imaps": 993,
	"pop3s": 995, "openvpn": 1194, "mssql": 1433, "nfs": 2049,
	"mysql": 3306, "rdp": 3389, "sip": 5060, "postgresql": 5432,
	"http-alt": 8080,
}

var protoNames = map[string]uint8{
	"icmp": 1, "igmp": 2, "ipip": 4, "ipinip": 4, "tcp": 6, "egp": 8,
	"udp": 17, "ipv6": 41, "rsvp": 46, "gre": 47, "esp": 50, "ah": 51,
	"icmp6": 58, "ipv6-icmp": 58, "eigrp": 88, "ospf": 89, "pim": 103,
	"vrrp": 112, "l2tp": 115, "sctp": 132,
}

// ProtoName returns the RRD base name of IP protocol p ("tcp",
// "proto_253").
func ProtoName(p uint8) string {
	best := ""
	for n, v := range protoNames {
		// Prefer the shortest, then alphabetically first, alias.
		if v == p && (best == "" || len(n) < len(best) || len(n) == len(best) && n < best) {
			best = n
		}
	}
	if best == "" {
		return "proto_" + strconv.Itoa(int(p))
	}
	return best
}

// ParseProtocol parses a protocol name or number.
func ParseProtocol(s string) (uint8, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if v, ok := protoNames[s]; ok {
		return v, nil
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("unknown protocol %q", s)
	}
	return uint8(n), nil
}

var safeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// parseService parses "http", "443" or "name=port" for proto ("tcp" or
// "udp").
func parseService(proto, s string) (name string, port uint16, err error) {
	s = strings.TrimSpace(s)
	name, val, named := strings.Cut(s, "=")
	if !named {
		val = s
		name = ""
	}
	val = strings.ToLower(strings.TrimSpace(val))
	if n, perr := strconv.ParseUint(val, 10, 16); perr == nil {
		if n == 0 {
			return "", 0, fmt.Errorf("%s service %q: port 0", proto, s)
		}
		port = uint16(n)
		if name == "" {
			name = proto + "_" + val
		}
	} else {
		p, ok := wellKnownPorts[val]
		if !ok {
			lp, lerr := net.LookupPort(proto, val)
			if lerr != nil {
				return "", 0, fmt.Errorf("%s service %q: unknown service name", proto, s)
			}
			p = uint16(lp)
		}
		port = p
		if name == "" {
			name = val
		}
	}
	name = strings.TrimSpace(name)
	if !safeName.MatchString(name) {
		return "", 0, fmt.Errorf("%s service %q: name %q must be letters, digits, '_', '.', '-'", proto, s, name)
	}
	return name, port, nil
}

// parseServices merges tcp and udp lists into services; a name in both
// lists is one service counting both protocols.
func parseServices(tcp, udp []string) ([]Service, error) {
	var out []Service
	idx := map[string]int{}
	seen := map[[2]uint16]string{}
	add := func(proto string, list []string) error {
		for _, s := range list {
			name, port, err := parseService(proto, s)
			if err != nil {
				return err
			}
			pk := [2]uint16{6, port}
			if proto == "udp" {
				pk[0] = 17
			}
			if other, dup := seen[pk]; dup {
				return fmt.Errorf("%s port %d listed twice (services %q and %q)", proto, port, other, name)
			}
			seen[pk] = name
			i, ok := idx[name]
			if !ok {
				i = len(out)
				idx[name] = i
				out = append(out, Service{Name: name})
			}
			if proto == "tcp" {
				out[i].TCPPorts = append(out[i].TCPPorts, port)
			} else {
				out[i].UDPPorts = append(out[i].UDPPorts, port)
			}
		}
		return nil
	}
	if err := add("tcp", tcp); err != nil {
		return nil, err
	}
	if err := add("udp", udp); err != nil {
		return nil, err
	}
	return out, nil
}

// settings is a validated Config.
type settings struct {
	outputDir  string
	local      []netip.Prefix
	nextHops   []netip.Prefix
	ifIndexes  []uint32
	services   []Service
	protocols  []uint8
	asPairs    bool
	asPairsTop int
	topN       int
	multicast  bool
	prefixFmt  string
	maxHosts   int
}

func (c *Config) validate(defaultDir, baseDir string) (*settings, error) {
	s := &settings{
		outputDir:  c.OutputDir,
		ifIndexes:  slices.Clone(c.OutputIfIndexes),
		asPairs:    c.ASPairs,
		asPairsTop: c.ASPairsTop,
		topN:       c.TopN,
		multicast:  c.Multicast,
		prefixFmt:  c.ReportPrefixFormat,
		maxHosts:   c.MaxHosts,
	}
	if s.outputDir == "" {
		s.outputDir = defaultDir
	} else if !filepath.IsAbs(s.outputDir) && baseDir != "" {
		s.outputDir = filepath.Join(baseDir, s.outputDir)
	}
	if s.outputDir == "" {
		return nil, fmt.Errorf("output_dir: not set and no default directory")
	}
	var err error
	if s.local, err = ParsePrefixes("local_subnets", c.LocalSubnets); err != nil {
		return nil, err
	}
	if s.nextHops, err = ParsePrefixes("next_hops", c.NextHops); err != nil {
		return nil, err
	}
	for _, p := range s.nextHops {
		if !p.IsSingleIP() {
			return nil, fmt.Errorf("next_hops: %v is a prefix, not an address", p)
		}
	}
	if len(s.nextHops) > 0 && len(s.ifIndexes) == 0 && len(s.local) == 0 {
		return nil, fmt.Errorf("next_hops: needs local_subnets (or output_if_indexes) to tell inbound flows")
	}
	slices.Sort(s.ifIndexes)
	for i := 1; i < len(s.ifIndexes); i++ {
		if s.ifIndexes[i] == s.ifIndexes[i-1] {
			return nil, fmt.Errorf("output_if_indexes: %d listed twice", s.ifIndexes[i])
		}
	}
	if s.services, err = parseServices(c.TCPServices, c.UDPServices); err != nil {
		return nil, fmt.Errorf("services: %w", err)
	}
	protos := c.Protocols
	if protos == nil {
		protos = []string{"tcp", "udp", "icmp"}
	}
	for _, p := range protos {
		v, err := ParseProtocol(p)
		if err != nil {
			return nil, fmt.Errorf("protocols: %w", err)
		}
		if slices.Contains(s.protocols, v) {
			return nil, fmt.Errorf("protocols: %q listed twice", p)
		}
		s.protocols = append(s.protocols, v)
	}
	if s.asPairsTop < 0 || s.topN < 0 || s.maxHosts < 0 {
		return nil, fmt.Errorf("as_pairs_top, top_n and max_hosts must not be negative")
	}
	if s.asPairsTop == 0 {
		s.asPairsTop = 20
	}
	if s.maxHosts == 0 {
		s.maxHosts = 65536
	}
	if err := checkPrefixFormat(s.prefixFmt); err != nil {
		return nil, fmt.Errorf("report_prefix_format: %w", err)
	}
	return s, nil
}
