package query

import (
	"context"
	"fmt"
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
