package query

import (
	"bytes"
	"encoding/csv"
	"testing"
)

// TestSummaryCSVColumns: the summary's CSV header has as many columns as
// its row (a key column named "key" for the "total" label).
func TestSummaryCSVColumns(t *testing.T) {
	res := &Result{Total: Counters{Flows: 3, Packets: 4, Bytes: 500, First: 1000, Last: 2000}}
	var buf bytes.Buffer
	if err := WriteResult(&buf, res, OutputOptions{Format: "csv", Totals: true}); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if len(rows) < 2 || len(rows[0]) != len(rows[1]) || rows[0][0] != "key" || rows[1][0] != "total" {
		t.Errorf("summary CSV:\n%v", rows)
	}
}
