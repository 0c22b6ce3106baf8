package flowtools

import (
	"cmp"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowscan/flowscan/internal/flowfile"
)

// nameClock is the date and time part of a flow-capture file name.
const nameClock = "2006-01-02.150405"

// ParseName returns the capture start encoded in the base name of a
// completed flow-capture file, such as ft-v05.2011-02-17.172501-0400 (or
// ft-v08m01.… for v8 aggregation files), in a fixed zone of the name's
// offset. In-progress tmp-v05.… names and anything else are rejected.
func ParseName(name string) (start time.Time, ok bool) {
	rest, found := strings.CutPrefix(name, "ft-v")
	if !found || len(rest) < 3 || !isDigits(rest[:2]) {
		return time.Time{}, false
	}
	rest = rest[2:]
	// v8 aggregation files carry the method: ft-v08m01.…
	if len(rest) >= 3 && rest[0] == 'm' && isDigits(rest[1:3]) {
		rest = rest[3:]
	}
	rest, found = strings.CutPrefix(rest, ".")
	// date(10) '.' time(6) sign(1) offset(4)
	if !found || len(rest) != len(nameClock)+5 {
		return time.Time{}, false
	}
	clock, zone := rest[:len(nameClock)], rest[len(nameClock):]
	local, err := time.ParseInLocation(nameClock, clock, time.UTC)
	if err != nil {
		return time.Time{}, false
	}
	var sign int
	switch zone[0] {
	case '+':
		sign = 1
	case '-':
		sign = -1
	default:
		return time.Time{}, false
	}
	if !isDigits(zone[1:]) {
		return time.Time{}, false
	}
	hh, _ := strconv.Atoi(zone[1:3])
	mm, _ := strconv.Atoi(zone[3:5])
	if hh > 23 || mm > 59 {
		return time.Time{}, false
	}
	offset := sign * (hh*3600 + mm*60)
	loc := time.FixedZone(zone, offset)
	y, mo, d := local.Date()
	return time.Date(y, mo, d, local.Hour(), local.Minute(), local.Second(), 0, loc), true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// List returns the completed flow-tools files anywhere under dir (flat or
// in flow-capture's YYYY/YYYY-MM/YYYY-MM-DD nesting), sorted by start time
// and then path. In-progress tmp-* files and foreign names are ignored; an
// unreadable subdirectory is skipped.
func List(dir string) ([]flowfile.Entry, error) {
	var out []flowfile.Entry
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if start, ok := ParseName(d.Name()); ok {
			out = append(out, flowfile.Entry{Path: path, Start: start})
		}
		return nil
	})
	slices.SortFunc(out, func(a, b flowfile.Entry) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return cmp.Compare(a.Path, b.Path)
	})
	return out, err
}
