package query

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/clickhouse"
	"github.com/flowscan/flowscan/internal/clickhouse/chtest"
	"github.com/flowscan/flowscan/internal/flow"
)

func TestFilterSQL(t *testing.T) {
	tests := []struct{ expr, want string }{
		{"", "1"},
		{"proto tcp and dst port 443", "(proto = 6 AND dst_port = 443)"},
		{"port in [53 80]", "(src_port IN (53, 80) OR dst_port IN (53, 80))"},
		{"not src as 64500", "NOT (src_as = 64500)"},
		{"bytes > 1K", "bytes > 1000"},
		{"src net 10.0.0.0/8", "(src_addr >= unhex('00000000000000000000ffff0a000000') AND src_addr <= unhex('00000000000000000000ffff0affffff'))"},
		{"flags SA", "bitAnd(tcp_flags, 18) = 18"},
	}
	for _, tt := range tests {
		got, _, err := MustCompile(tt.expr).SQL()
		if err != nil || got != tt.want {
			t.Errorf("%q: SQL %q (%v), want %q", tt.expr, got, err, tt.want)
		}
	}
	_, need, _ := MustCompile("bytes > 1 and dst port 80").SQL()
	if strings.Join(need, ",") != "dst_port,duration" {
		t.Errorf("need %v: want dst_port and the raw-only duration", need)
	}
}

// TestClickHouseMatchesInMemory loads the same flows into ClickHouse and
// checks that filters and aggregations answered there count exactly what
// the filter and keys give on the records in memory.
func TestClickHouseMatchesInMemory(t *testing.T) {
	srv := chtest.Start(t)
	c, err := clickhouse.NewClient(srv.URL("fsq"))
	if err != nil {
		t.Fatal(err)
	}
	schema := &clickhouse.Schema{Database: "fsq"}
	ctx := context.Background()
	if _, err := schema.Migrate(ctx, c); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour).UnixMilli()
	recs := variedFlows(3000, base)
	var rows []byte
	for i := range recs {
		rows = clickhouse.AppendRow(rows, &recs[i], 1)
	}
	if err := c.Insert(ctx, "fsq.flows", clickhouse.RawColumnList(), "RowBinary", rows); err != nil {
		t.Fatal(err)
	}
	ch := &ClickHouse{Client: c, Schema: schema}
	filters := []string{
		"", "src host 10.0.1.2", "dst net 10.0.2.0/24", "exporter 10.0.0.0/16", "nexthop 2001:db8::/32",
		"src port 443", "dst port in [53 80]", "proto tcp and dst port 443", "tos 0x20", "flags SA", "in if 2",
		"src as 64500 or dst as 15169", "src mask 24", "dst vlan 20", "bytes > 10K", "packets < 5",
		"duration > 2500", "bps > 50K", "pps < 20", "bpp > 1000", "ipv6", "ipv4 and not proto udp",
	}
	keySets := []string{"", "src_addr", "dst_port", "src_addr/24,dst_port", "dst_addr/16/64,proto", "exporter", "in_if,out_if", "tcp_flags"}
	type counts struct{ flows, packets, bytes uint64 }
	for _, expr := range filters {
		f := MustCompile(expr)
		for _, ks := range keySets {
			var keys []KeyField
			if ks != "" {
				if keys, err = ParseKeys(ks); err != nil {
					t.Fatal(err)
				}
			}
			want := newAggregator(keys)
			for i := range recs {
				if f.Match(&recs[i]) {
					want.add(&recs[i])
				}
			}
			wantRes := want.topN(ByBytes, 0)
			q := &Query{Filter: f}
			got, err := q.AggregateClickHouse(ctx, ch, AggregateSpec{Keys: keys, Order: ByBytes})
			if err != nil {
				t.Fatalf("%q by %q: %v", expr, ks, err)
			}
			if wantRes.Total.Flows == 0 && expr != "" {
				t.Fatalf("filter %q matches none of the test flows", expr)
			}
			if got.Total.Flows != wantRes.Total.Flows || got.Total.Bytes != wantRes.Total.Bytes || got.Total.Packets != wantRes.Total.Packets {
				t.Errorf("%q by %q: total %+v, want %+v", expr, ks, got.Total, wantRes.Total)
				continue
			}
			if len(keys) == 0 {
				continue
			}
			wantRows := map[Key]counts{}
			for _, r := range wantRes.Rows {
				wantRows[r.Key] = counts{r.Flows, r.Packets, r.Bytes}
			}
			if len(got.Rows) != len(wantRows) {
				t.Errorf("%q by %q: %d groups, want %d", expr, ks, len(got.Rows), len(wantRows))
				continue
			}
			for i, r := range got.Rows {
				if w, ok := wantRows[r.Key]; !ok || w != (counts{r.Flows, r.Packets, r.Bytes}) {
					t.Errorf("%q by %q: row %v %+v, want %+v (present %v)", expr, ks, r.Key.Values(keys), r.Counters, w, ok)
					break
				}
				if i > 0 && got.Rows[i-1].Bytes < r.Bytes {
					t.Errorf("%q by %q: rows not ordered by bytes", expr, ks)
					break
				}
			}
		}
	}
	// Listing flows returns the matching ones.
	f := MustCompile("proto tcp and dst port 443")
	var n int
	err = (&Query{Filter: f}).FlowsClickHouse(ctx, ch, 0, func(batch []flow.Record) error {
		for i := range batch {
			if !f.Match(&batch[i]) {
				return fmt.Errorf("listed flow %+v does not match", batch[i])
			}
		}
		n += len(batch)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var want int
	for i := range recs {
		if f.Match(&recs[i]) {
			want++
		}
	}
	if n != want || want == 0 {
		t.Errorf("listed %d flows, want %d", n, want)
	}
}

// TestClickHouseWindows: windows select flows by their end time in every
// table; aligned windows are answered by the consolidated tables,
// unaligned and open-ended ones too (from raw), always exactly.
func TestClickHouseWindows(t *testing.T) {
	srv := chtest.Start(t)
	c, _ := clickhouse.NewClient(srv.URL("fsw"))
	schema := &clickhouse.Schema{Database: "fsw"}
	ctx := context.Background()
	if _, err := schema.Migrate(ctx, c); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	h := now.Truncate(time.Hour)
	// One 90-second flow every 6 s over the last three hours.
	var recs []flow.Record
	for ts := h.Add(-3 * time.Hour); ts.Before(now); ts = ts.Add(6 * time.Second) {
		end := ts.UnixMilli() + 90_000
		recs = append(recs, flow.Record{Exporter: netip.MustParseAddr("192.0.2.1"), SrcAddr: netip.AddrFrom4([4]byte{10, 0, 0, byte(ts.Unix() % 7)}),
			DstAddr: netip.MustParseAddr("2001:db8::1"), DstPort: uint16(80 + ts.Unix()%3), Proto: 6, Start: ts.UnixMilli(), End: end, Bytes: 1000, Packets: 2})
	}
	var rows []byte
	for i := range recs {
		rows = clickhouse.AppendRow(rows, &recs[i], 1)
	}
	if err := c.Insert(ctx, "fsw.flows", clickhouse.RawColumnList(), "RowBinary", rows); err != nil {
		t.Fatal(err)
	}
	ch := &ClickHouse{Client: c, Schema: schema, Now: func() time.Time { return now }}
	var open time.Time
	windows := []struct {
		name     string
		from, to time.Time
	}{
		{"aligned hour", h.Add(-2 * time.Hour), h.Add(-time.Hour)},
		{"last hour, open end", now.Add(-time.Hour), open},
		{"unaligned", h.Add(-2*time.Hour + 2*time.Minute), h.Add(-time.Hour + 2*time.Minute)},
		{"everything", open, open},
	}
	for _, w := range windows {
		for _, ks := range []string{"", "proto", "dst_port", "src_addr"} {
			var keys []KeyField
			if ks != "" {
				keys, _ = ParseKeys(ks)
			}
			var want uint64
			for _, r := range recs {
				end := r.End / 1000
				if (w.from.IsZero() || end >= w.from.Unix()) && (w.to.IsZero() || end < w.to.Unix()) {
					want++
				}
			}
			got, err := (&Query{From: w.from, To: w.to}).AggregateClickHouse(ctx, ch, AggregateSpec{Keys: keys, Order: ByFlows})
			if err != nil {
				t.Fatal(err)
			}
			if got.Total.Flows != want {
				t.Errorf("%s by %q: %d flows, want %d (by end time)", w.name, ks, got.Total.Flows, want)
			}
		}
	}
	// IPv6 prefixes match IPv6 addresses only.
	for expr, want := range map[string]uint64{"src net ::/0": 0, "dst net ::/0": uint64(len(recs)), "src net 10.0.0.0/8": uint64(len(recs)), "not dst net 8000::/1": uint64(len(recs)), "dst net ::/1": uint64(len(recs))} {
		got, err := (&Query{Filter: MustCompile(expr)}).AggregateClickHouse(ctx, ch, AggregateSpec{})
		if err != nil || got.Total.Flows != want {
			t.Errorf("%q: %v flows (%v), want %d", expr, got.Total.Flows, err, want)
		}
	}
}
