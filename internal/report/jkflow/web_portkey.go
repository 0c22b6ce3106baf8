package jkflow

import (
	"strconv"
	"strings"
)

// ParsePortKey reads the key of a scoreboard's ports table, as the module
// writes it: "PORT/PROTO" for TCP and UDP ("443/tcp"), else the protocol
// alone ("icmp", or its number when it has no name here). It returns the
// protocol number, the port (0 for protocols without ports) and whether
// the key was one of those forms.
func ParsePortKey(key string) (proto uint8, port uint16, ok bool) {
	if key == "" || len(key) > 32 || strings.TrimSpace(key) != key {
		return 0, 0, false
	}
	ps, name, withPort := strings.Cut(key, "/")
	if !withPort {
		n, _, err := parseProto(key)
		if err != nil || n == 6 || n == 17 {
			return 0, 0, false
		}
		return n, 0, true
	}
	n, _, err := parseProto(name)
	if err != nil || n != 6 && n != 17 || name != strings.ToLower(name) {
		return 0, 0, false
	}
	p, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || strconv.FormatUint(p, 10) != ps {
		return 0, 0, false
	}
	return n, uint16(p), true
}
