package jkflow

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config is the jkflow module's configuration (its section of the
// flowscan YAML file, or what ParseXML converts from a JKFlow.xml).
type Config struct {
	// OutputDir is where the RRD files and scoreboards go; empty means
	// the scanner's default directory for the module.
	OutputDir string `yaml:"output_dir,omitempty"`
	// SampleTime is the number of seconds the scoreboards divide counts
	// by to give rates; 0 means each file's real duration.
	SampleTime int `yaml:"sample_time,omitempty"`
	// Sites are named sets of prefixes (IPv4 and IPv6).
	Sites map[string][]string `yaml:"sites,omitempty"`
	// RouterGroups are named lists of exporter selectors.
	RouterGroups map[string][]Router `yaml:"router_groups,omitempty"`
	// DefineSets are reusable named sets of counters.
	DefineSets map[string]Counters `yaml:"define_sets,omitempty"`
	// All configures the totals of all traffic, written under "all/".
	All *All `yaml:"all,omitempty"`
	// Directions are the traffic-matrix cells; one named "other" receives
	// the flows no sibling direction matched.
	Directions []Direction `yaml:"directions,omitempty"`

	// Notes lists what a JKFlow.xml conversion dropped (features this
	// module does not implement). It is not part of the YAML.
	Notes []string `yaml:"-"`
}

// Router selects the flows of one exporter, either by interface (flows
// entering through one of Interfaces are "in", leaving through one are
// "out") or by local subnets (from a local source "out", to a local
// destination "in").
type Router struct {
	// Exporter is the exporter's address.
	Exporter string `yaml:"exporter"`
	// Interfaces are SNMP ifIndex values.
	Interfaces []uint32 `yaml:"interfaces,omitempty"`
	// LocalSubnets are prefixes considered local behind this exporter.
	LocalSubnets []string `yaml:"local_subnets,omitempty"`
}

// Counters chooses what is counted for a direction, for "all", or in a
// define set.
type Counters struct {
	// Set names one define set to include.
	Set string `yaml:"set,omitempty"`
	// Sets names define sets to include.
	Sets []string `yaml:"sets,omitempty"`
	// Applications are named groups of ports ("80/tcp", "6000-6063/tcp"),
	// counted as service_<name>_src.rrd and service_<name>_dst.rrd.
	Applications map[string][]string `yaml:"applications,omitempty"`
	// Services are port specifications, each its own service named after
	// the specification ("22-23/tcp" gives service_22-23_tcp_src.rrd).
	Services []string `yaml:"services,omitempty"`
	// Protocols are protocol names (tcp, udp, icmp...) or numbers,
	// counted as protocol_<name>.rrd.
	Protocols []string `yaml:"protocols,omitempty"`
	// OtherServices counts TCP and UDP flows that matched no service or
	// application as service_other.rrd.
	OtherServices bool `yaml:"other_services,omitempty"`
	// OtherProtocols counts flows of unlisted protocols as
	// protocol_other.rrd.
	OtherProtocols bool `yaml:"other_protocols,omitempty"`
	// Multicast counts flows to multicast destinations as
	// protocol_multicast.rrd.
	Multicast bool `yaml:"multicast,omitempty"`
	// TOS counts tos_BE.rrd (DSCP 0) and tos_other.rrd.
	TOS bool `yaml:"tos,omitempty"`
	// DSCP counts tos_<class>.rrd for BE, AF11-AF43, CS1-CS7, EF and
	// other.
	DSCP bool `yaml:"dscp,omitempty"`
	// Total counts total_total.rrd.
	Total bool `yaml:"total,omitempty"`
}

// All configures the totals of all traffic.
type All struct {
	// LocalSubnets tell in from out: a flow from a local source is out,
	// else one to a local destination is in, else it is not counted.
	// Without local subnets every flow counts as out.
	LocalSubnets []string `yaml:"local_subnets,omitempty"`
	// SampleRate multiplies bytes, packets and flows (default 1).
	SampleRate uint32 `yaml:"sample_rate,omitempty"`
	// Counters are what is counted.
	Counters `yaml:",inline"`
}

// Direction is one traffic-matrix cell.
type Direction struct {
	// Name is the direction's directory under the output directory.
	Name string `yaml:"name"`
	// From, To, NoFrom and NoTo are site names or prefixes.
	From   []string `yaml:"from,omitempty"`
	To     []string `yaml:"to,omitempty"`
	NoFrom []string `yaml:"no_from,omitempty"`
	NoTo   []string `yaml:"no_to,omitempty"`
	// FromSubnets, ToSubnets, NoFromSubnets and NoToSubnets are prefixes
	// added to From, To, NoFrom and NoTo.
	FromSubnets   []string `yaml:"from_subnets,omitempty"`
	ToSubnets     []string `yaml:"to_subnets,omitempty"`
	NoFromSubnets []string `yaml:"no_from_subnets,omitempty"`
	NoToSubnets   []string `yaml:"no_to_subnets,omitempty"`
	// RouterGroup selects flows by exporter and interface instead of by
	// address (it cannot be combined with From/To).
	RouterGroup string `yaml:"router_group,omitempty"`
	// SampleRate multiplies bytes, packets and flows (default: the
	// parent direction's, else 1).
	SampleRate uint32 `yaml:"sample_rate,omitempty"`
	// Counters are what is counted.
	Counters `yaml:",inline"`
	// Scoreboard writes top hosts and ports.
	Scoreboard *Scoreboard `yaml:"scoreboard,omitempty"`
	// Directions are nested directions: they see only the flows this
	// direction matched, and write under <name>/<child>/.
	Directions []Direction `yaml:"directions,omitempty"`
}

// Scoreboard configures a direction's top lists.
type Scoreboard struct {
	// Hosts ranks addresses by bytes.
	Hosts bool `yaml:"hosts,omitempty"`
	// Ports ranks protocol/port pairs by bytes.
	Ports bool `yaml:"ports,omitempty"`
	// TopN is the list length (default 10).
	TopN int `yaml:"top_n,omitempty"`
}

// YAML returns the configuration as YAML for the module's section of
// the flowscan configuration file.
func (c *Config) YAML() ([]byte, error) {
	var b bytes.Buffer
	e := yaml.NewEncoder(&b)
	e.SetIndent(2)
	if err := e.Encode(c); err != nil {
		return nil, err
	}
	if err := e.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// OtherName is the name of the catch-all direction.
const OtherName = "other"

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.+-]*$`)

// checkName validates a name used in file names.
func checkName(kind, s string) error {
	if !nameRE.MatchString(s) {
		return fmt.Errorf("bad %s name %q (letters, digits, _ . + - only)", kind, s)
	}
	return nil
}

// protoNumbers are the protocol names understood without /etc/protocols.
var protoNumbers = map[string]uint8{
	"icmp": 1, "igmp": 2, "ipip": 4, "ipencap": 4, "tcp": 6, "egp": 8, "udp": 17,
	"ipv6": 41, "rsvp": 46, "gre": 47, "esp": 50, "ah": 51, "icmpv6": 58,
	"ipv6-icmp": 58, "eigrp": 88, "ospf": 89, "pim": 103, "vrrp": 112,
	"l2tp": 115, "sctp": 132,
}

// parseProto returns the number of a protocol name or number and the name
// its RRD file uses (the name as written, lower case).
func parseProto(s string) (uint8, string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if n, ok := protoNumbers[s]; ok {
		return n, s, nil
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, "", fmt.Errorf("bad protocol %q", s)
	}
	return uint8(n), s, nil
}

// portSpec is one port range of TCP or UDP.
type portSpec struct {
	proto  uint8
	lo, hi uint16
}

// parsePorts parses "80/tcp", "6000-6063/udp" (also "80/6").
func parsePorts(s string) (portSpec, error) {
	s = strings.TrimSpace(s)
	ports, proto, ok := strings.Cut(s, "/")
	if !ok {
		return portSpec{}, fmt.Errorf("bad port %q (want port[-port]/tcp|udp)", s)
	}
	pn, _, err := parseProto(proto)
	if err != nil || pn != 6 && pn != 17 {
		return portSpec{}, fmt.Errorf("bad port %q: protocol must be tcp or udp", s)
	}
	los, his, isRange := strings.Cut(ports, "-")
	lo, err1 := strconv.ParseUint(los, 10, 16)
	hi := lo
	var err2 error
	if isRange {
		hi, err2 = strconv.ParseUint(his, 10, 16)
	}
	if err1 != nil || err2 != nil || hi < lo {
		return portSpec{}, fmt.Errorf("bad port %q", s)
	}
	return portSpec{pn, uint16(lo), uint16(hi)}, nil
}

// serviceLabel is the file-name label of a service specification.
func serviceLabel(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "/", "_")
}

// splitList splits a comma (or space) separated attribute value.
func splitList(s string) []string {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
	if len(f) == 0 {
		return nil
	}
	return f
}
