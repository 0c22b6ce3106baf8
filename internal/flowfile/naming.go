package flowfile

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	namePrefix = "flows."
	nameSuffix = ".fsf"
	tmpSuffix  = ".tmp"
	nameLayout = "2006-01-02.150405"
)

// DefaultInterval is the default length of one flow file.
const DefaultInterval = 5 * time.Minute

// FileName returns the base name of the completed file starting at start,
// for example flows.2026-11-23.124500+0100.fsf; start's location gives the
// date, time and numeric zone offset.
func FileName(start time.Time) string {
	return namePrefix + start.Format(nameLayout+"-0700") + nameSuffix
}

// ParseName returns the start time encoded in a completed file's base name,
// in a fixed zone of the name's offset. Names ending in .tmp are rejected.
func ParseName(name string) (start time.Time, ok bool) {
	rest, found := strings.CutPrefix(name, namePrefix)
	if !found {
		return time.Time{}, false
	}
	rest, found = strings.CutSuffix(rest, nameSuffix)
	// date(10) '.' time(6) sign(1) offset(4)
	if !found || len(rest) != len(nameLayout)+5 {
		return time.Time{}, false
	}
	clock, zone := rest[:len(nameLayout)], rest[len(nameLayout):]
	local, err := time.ParseInLocation(nameLayout, clock, time.UTC)
	if err != nil {
		return time.Time{}, false
	}
	sign := 1
	switch zone[0] {
	case '+':
	case '-':
		sign = -1
	default:
		return time.Time{}, false
	}
	hh, err1 := strconv.Atoi(zone[1:3])
	mm, err2 := strconv.Atoi(zone[3:5])
	if err1 != nil || err2 != nil || hh > 23 || mm > 59 || zone[1] == '+' || zone[1] == '-' || zone[3] == '+' || zone[3] == '-' {
		return time.Time{}, false
	}
	offset := sign * (hh*3600 + mm*60)
	loc := time.FixedZone(zone, offset)
	y, mo, d := local.Date()
	h, mi, s := local.Clock()
	return time.Date(y, mo, d, h, mi, s, 0, loc), true
}

// parseTmpName is ParseName for an in-progress (.tmp) name.
func parseTmpName(name string) (time.Time, bool) {
	base, ok := strings.CutSuffix(name, tmpSuffix)
	if !ok {
		return time.Time{}, false
	}
	return ParseName(base)
}

// nestDir returns the date subdirectory (relative) for a file starting at
// start, with nest levels like flow-capture -N.
func nestDir(start time.Time, nest int) string {
	y := fmt.Sprintf("%04d", start.Year())
	ym := start.Format("2006-01")
	ymd := start.Format("2006-01-02")
	switch nest {
	case 1:
		return y
	case 2:
		return filepath.Join(y, ym)
	case 3:
		return filepath.Join(y, ym, ymd)
	}
	return ""
}

// intervalStart returns the start of the aligned interval holding t: intervals
// are counted from local midnight in loc.
func intervalStart(t time.Time, interval time.Duration, loc *time.Location) time.Time {
	t = t.In(loc)
	y, m, d := t.Date()
	midnight := time.Date(y, m, d, 0, 0, 0, 0, loc)
	elapsed := t.Sub(midnight)
	return midnight.Add(elapsed - elapsed%interval)
}

// nextBoundary returns the end of the interval holding t: the next aligned
// boundary, never past the next local midnight.
func nextBoundary(t time.Time, interval time.Duration, loc *time.Location) time.Time {
	s := intervalStart(t, interval, loc)
	y, m, d := s.Date()
	nextMidnight := time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	b := s.Add(interval)
	if b.After(nextMidnight) {
		b = nextMidnight
	}
	return b
}
