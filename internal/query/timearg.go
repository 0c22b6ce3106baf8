package query

import (
	"fmt"
	"strings"
	"time"
)

// ParseTime parses a --from/--to value: RFC 3339 (2026-11-23T12:00:00Z),
// a relative time before now (-1h, -30m, -2h30m, -7d), "now", or a local
// date and optional time in loc (2026-11-23, 2026-11-23 12:45,
// 2026-11-23T12:45, 2026-11-23 12:45:30).
func ParseTime(s string, now time.Time, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "now" {
		return now, nil
	}
	if strings.HasPrefix(s, "-") {
		rel := s[1:]
		if days, ok := strings.CutSuffix(rel, "d"); ok {
			var n int
			if _, err := fmt.Sscanf(days, "%d", &n); err == nil && n >= 0 && fmt.Sprint(n) == days {
				return now.AddDate(0, 0, -n), nil
			}
		}
		d, err := time.ParseDuration(rel)
		if err != nil || d < 0 {
			return time.Time{}, fmt.Errorf("%q: want a relative time like -1h, -30m or -7d", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02", "2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want RFC 3339, YYYY-MM-DD[ HH:MM[:SS]], now or a relative time like -1h", s)
}
