package clickhouse

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Pick chooses the table that answers a read: the coarsest one that
// keeps every field in need, whose resolution is no coarser than step
// (for time series) or than a tenth of the window (for top-N and totals,
// step 0), and whose retention still covers from. The raw table answers
// when nothing coarser does.
func (s *Schema) Pick(need []string, from, to time.Time, step time.Duration, now time.Time) Table {
	window := to.Sub(from)
	limit := step
	if limit <= 0 {
		limit = window / 10
	}
	return s.coarsest(need, from, now, func(t Table) bool {
		if t.Step > limit {
			return false
		}
		aligned := from.Equal(from.Truncate(t.Step)) && to.Equal(to.Truncate(t.Step))
		// Rankings and totals tolerate edges off by a tenth of the window.
		return aligned || step <= 0 && t.Step <= window/10
	})
}

// coarsest returns the coarsest table that keeps every field in need,
// fits (consulted for consolidated tables only) and still holds from
// (a zero from: the beginning). A table that fits but no longer holds
// from is used only when no other one does; the raw table is the last
// resort.
func (s *Schema) coarsest(need []string, from, now time.Time, fits func(Table) bool) Table {
	tables := s.Tables()
	var fallback *Table
	for i := len(tables) - 1; i >= 0; i-- {
		t := tables[i]
		if !hasAll(t.Keys, need) || t.Step > 0 && !fits(t) {
			continue
		}
		if ttl := s.ttl(t.Name); ttl > 0 && (from.IsZero() || from.Before(now.Add(-ttl))) {
			if fallback == nil {
				fallback = &tables[i]
			}
			continue
		}
		return t
	}
	if fallback != nil {
		return *fallback
	}
	return tables[0]
}

func hasAll(keys, need []string) bool {
	for _, n := range need {
		if !slices.Contains(keys, n) {
			return false
		}
	}
	return true
}

// FlowsExpr is the SQL for a table's flow count (rows of the raw table,
// the flows column of the consolidated ones).
func (t Table) FlowsExpr() string {
	if t.Step == 0 {
		return "count()"
	}
	return "sum(flows)"
}

// Bucket is the SQL that rounds the table's time down to step, as a
// UInt32 Unix time.
func (t Table) Bucket(step time.Duration) string {
	sec := int64(step / time.Second)
	if sec <= 1 {
		return "toUInt32(" + t.Time + ")"
	}
	return fmt.Sprintf("intDiv(toUInt32(%s), %d) * %d", t.Time, sec, sec)
}

// TimeRange is the SQL condition for [from, to) on the table's time.
func (t Table) TimeRange(from, to time.Time) string {
	return fmt.Sprintf("%s >= toDateTime(%d, 'UTC') AND %s < toDateTime(%d, 'UTC')", t.Time, from.Unix(), t.Time, to.Unix())
}

// AddrLiteral is the SQL literal of a as stored (16 bytes).
func AddrLiteral(a netip.Addr) string {
	b := AddrBytes(a)
	return "unhex('" + hex.EncodeToString(b[:]) + "')"
}

// ParseAddrHex reads an address selected as hex(col).
func ParseAddrHex(s string) (netip.Addr, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 16 {
		return netip.Addr{}, fmt.Errorf("clickhouse: address %q is not 32 hex digits", s)
	}
	return getAddr(b), nil
}

// PickExact chooses the table that answers a ranking or total over
// [from, to) exactly, flows selected by their end time: the coarsest one
// that keeps every field in need and whose intervals the window's edges
// fall on. A zero from or to is an open side (every table's intervals
// fit it). Retention is checked as in Pick.
func (s *Schema) PickExact(need []string, from, to, now time.Time) Table {
	return s.coarsest(need, from, now, func(t Table) bool {
		return (from.IsZero() || from.Equal(from.Truncate(t.Step))) && (to.IsZero() || to.Equal(to.Truncate(t.Step)))
	})
}
