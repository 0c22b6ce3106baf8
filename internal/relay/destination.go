package relay

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/flowscan/flowscan/internal/config"
	"github.com/flowscan/flowscan/internal/decode"
)

// DefaultQueue is the number of datagrams queued per destination when a
// Destination does not say.
const DefaultQueue = 8192

// Destination is one place the relay copies datagrams to, with its filters.
type Destination struct {
	// Addr is the collector the datagrams go to.
	Addr netip.AddrPort
	// Exporters, if not empty, limits the destination to datagrams whose
	// source address lies in one of the prefixes.
	Exporters []netip.Prefix
	// Formats, if not empty, limits the destination to datagrams of these
	// formats (detected with the registered decoders' header matchers).
	Formats []decode.Format
	// Spoof sends each datagram with the original exporter's address and
	// port as its source (raw socket; needs CAP_NET_RAW).
	Spoof bool
	// Queue is the number of datagrams that may wait for this destination;
	// 0 means DefaultQueue. A full queue drops and counts.
	Queue int
}

// String renders d in the syntax ParseDestination reads.
func (d Destination) String() string {
	var sb strings.Builder
	sb.WriteString(d.Addr.String())
	if len(d.Exporters) > 0 {
		sb.WriteString(";exporter=")
		for i, p := range d.Exporters {
			if i > 0 {
				sb.WriteByte(',')
			}
			if p.IsSingleIP() {
				sb.WriteString(p.Addr().String())
			} else {
				sb.WriteString(p.String())
			}
		}
	}
	if len(d.Formats) > 0 {
		sb.WriteString(";format=")
		for i, f := range d.Formats {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(f.String())
		}
	}
	if d.Spoof {
		sb.WriteString(";spoof")
	}
	if d.Queue > 0 {
		sb.WriteString(";queue=" + strconv.Itoa(d.Queue))
	}
	return sb.String()
}

// formatNames maps the names accepted in format= to formats.
var formatNames = map[string]decode.Format{
	"netflow5": decode.FormatNetFlow5, "v5": decode.FormatNetFlow5,
	"netflow9": decode.FormatNetFlow9, "v9": decode.FormatNetFlow9,
	"ipfix": decode.FormatIPFIX, "v10": decode.FormatIPFIX,
	"sflow5": decode.FormatSFlow5, "sflow": decode.FormatSFlow5,
}

// ParseDestination reads a destination specification:
//
//	HOST:PORT[;exporter=ADDR|PREFIX[,...]][;format=NAME[,...]][;spoof][;queue=N]
//
// HOST is an IP address (IPv6 in brackets) or a name resolved once, now.
// exporter= keeps datagrams from the listed exporter addresses or
// prefixes; format= keeps datagrams of the listed formats (netflow5 or v5,
// netflow9 or v9, ipfix, sflow5 or sflow); spoof keeps the original
// exporter's source address and port (raw socket, root or CAP_NET_RAW);
// queue= sets the per-destination queue length in datagrams. Options may
// repeat; their lists add up. Examples:
//
//	192.0.2.10:2055
//	[2001:db8::5]:2055;exporter=10.0.0.0/8,192.0.2.1;format=ipfix
//	collector.example.net:6343;format=sflow;spoof
func ParseDestination(s string) (Destination, error) {
	var d Destination
	parts := strings.Split(strings.TrimSpace(s), ";")
	addr, err := resolve(strings.TrimSpace(parts[0]))
	if err != nil {
		return d, fmt.Errorf("destination %q: %w", s, err)
	}
	d.Addr = addr
	for _, opt := range parts[1:] {
		opt = strings.TrimSpace(opt)
		if opt == "" {
			continue
		}
		key, val, hasVal := strings.Cut(opt, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		switch key {
		case "spoof":
			if hasVal {
				return d, fmt.Errorf("destination %q: spoof takes no value", s)
			}
			d.Spoof = true
		case "exporter", "exporters":
			if !hasVal || strings.TrimSpace(val) == "" {
				return d, fmt.Errorf("destination %q: exporter= needs addresses or prefixes", s)
			}
			for _, item := range strings.Split(val, ",") {
				p, err := config.ParsePrefix(item)
				if err != nil {
					return d, fmt.Errorf("destination %q: %w", s, err)
				}
				d.Exporters = append(d.Exporters, p)
			}
		case "format", "formats":
			if !hasVal || strings.TrimSpace(val) == "" {
				return d, fmt.Errorf("destination %q: format= needs format names", s)
			}
			for _, item := range strings.Split(val, ",") {
				f, ok := formatNames[strings.ToLower(strings.TrimSpace(item))]
				if !ok {
					return d, fmt.Errorf("destination %q: unknown format %q (want netflow5, netflow9, ipfix or sflow5)", s, item)
				}
				d.Formats = append(d.Formats, f)
			}
		case "queue":
			n, err := strconv.Atoi(strings.TrimSpace(val))
			if !hasVal || err != nil || n <= 0 || n > 1<<20 {
				return d, fmt.Errorf("destination %q: queue= wants a datagram count from 1 to %d", s, 1<<20)
			}
			d.Queue = n
		default:
			return d, fmt.Errorf("destination %q: unknown option %q (want exporter=, format=, spoof or queue=)", s, key)
		}
	}
	return d, nil
}

// resolve parses HOST:PORT, resolving a host name once.
func resolve(hostport string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		if ap.Port() == 0 {
			return ap, fmt.Errorf("port 0")
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("want HOST:PORT: %w", err)
	}
	if host == "" {
		return netip.AddrPort{}, fmt.Errorf("missing host in %q", hostport)
	}
	ua, err := net.ResolveUDPAddr("udp", net.JoinHostPort(host, port))
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap := ua.AddrPort()
	if ap.Port() == 0 {
		return ap, fmt.Errorf("port 0")
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// matchExporter reports whether src passes the exporter filter.
func (d *Destination) matchExporter(src netip.Addr) bool {
	if len(d.Exporters) == 0 {
		return true
	}
	src = src.Unmap()
	for _, p := range d.Exporters {
		if p.Contains(src) {
			return true
		}
	}
	return false
}

// matchFormat reports whether f passes the format filter.
func (d *Destination) matchFormat(f decode.Format) bool {
	for _, x := range d.Formats {
		if x == f {
			return true
		}
	}
	return false
}
