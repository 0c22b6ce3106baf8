package flow

import (
	"encoding/csv"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func sample() Record {
	return Record{
		Exporter: netip.MustParseAddr("192.0.2.1"),
		SrcAddr:  netip.MustParseAddr("2001:db8::1"), DstAddr: netip.MustParseAddr("2001:db8:1::2"),
		Start: time.Date(2026, 11, 23, 12, 0, 1, 250e6, time.UTC).UnixMilli(),
		End:   time.Date(2026, 11, 23, 12, 0, 3, 0, time.UTC).UnixMilli(),
		Bytes: 1 << 40, Packets: 3, SamplingRate: 100, InIf: 1 << 31, OutIf: 7, SrcAS: 4200000000, DstAS: 1,
		SrcPort: 443, DstPort: 65535, Proto: 6, TOS: 0xb8, TCPFlags: 0x12, SrcMask: 48, DstMask: 64,
	}
}

func TestAppendJSON(t *testing.T) {
	r := sample()
	var got map[string]any
	line := AppendJSON(nil, &r)
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("invalid JSON %s: %v", line, err)
	}
	if len(got) != len(Fields) {
		t.Errorf("%d keys, want %d: %s", len(got), len(Fields), line)
	}
	want := map[string]any{
		"exporter": "192.0.2.1", "src_addr": "2001:db8::1", "dst_addr": "2001:db8:1::2", "next_hop": "",
		"src_port": 443.0, "dst_port": 65535.0, "proto": 6.0, "tos": 184.0, "tcp_flags": 18.0,
		"in_if": float64(1 << 31), "out_if": 7.0, "src_as": 4200000000.0, "dst_as": 1.0, "src_mask": 48.0, "dst_mask": 64.0,
		"bytes": float64(1 << 40), "packets": 3.0, "start": "2026-11-23T12:00:01.250Z", "end": "2026-11-23T12:00:03.000Z",
		"sampling_rate": 100.0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for _, k := range Fields {
		if _, ok := got[k]; !ok {
			t.Errorf("field %s missing", k)
		}
	}
}

func TestAppendCSV(t *testing.T) {
	r := sample()
	rows, err := csv.NewReader(strings.NewReader(string(AppendCSV(nil, &r)))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || len(rows[0]) != len(Fields) {
		t.Fatalf("got %v, want one row of %d fields", rows, len(Fields))
	}
	for i, want := range map[int]string{0: "192.0.2.1", 3: "", 15: "1099511627776", 17: "2026-11-23T12:00:01.250Z", 19: "100"} {
		if rows[0][i] != want {
			t.Errorf("column %s = %q, want %q", Fields[i], rows[0][i], want)
		}
	}
}

func TestApplySampling(t *testing.T) {
	r := Record{Bytes: 10, Packets: 2}
	r.ApplySampling(1)
	if r.Bytes != 10 || r.Packets != 2 || r.SamplingRate != 1 {
		t.Errorf("rate 1 changed counters: %+v", r)
	}
	r.ApplySampling(50)
	if r.Bytes != 500 || r.Packets != 100 || r.SamplingRate != 50 {
		t.Errorf("rate 50: %+v", r)
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	r := sample()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendJSON(buf[:0], &r)
	}
}
