package template

import (
	"testing"

	"github.com/flowscan/flowscan/internal/decode"
)

func TestReadUint(t *testing.T) {
	b := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}
	want := []uint64{0, 0x01, 0x0102, 0x010203, 0x01020304, 0x0102030405, 0x010203040506, 0x01020304050607, 0x0102030405060708, 0}
	for n := 0; n <= 9; n++ {
		if got := readUint(b[:n]); got != want[n] {
			t.Errorf("readUint(%d octets) = %#x, want %#x", n, got, want[n])
		}
	}
}

func TestNTPToUnixMilli(t *testing.T) {
	// 2024-03-01T12:00:00.250Z: NTP seconds = unix + 2208988800.
	b := []byte{0xE9, 0x8C, 0x41, 0xC0, 0x40, 0x00, 0x00, 0x00}
	got, ok := ntpToUnixMilli(b)
	if !ok || got != 1709294400250 {
		t.Errorf("got %d, want 1709294400250", got)
	}
	if _, ok := ntpToUnixMilli(b[:4]); ok {
		t.Error("accepted 4 octets")
	}
}

func TestPacketRate(t *testing.T) {
	for _, c := range []struct{ interval, space, want uint32 }{
		{1, 99, 100}, {3, 997, 333}, {2, 3, 3}, {1, 0, 1}, {0, 10, 0},
	} {
		if got := packetRate(c.interval, c.space); got != c.want {
			t.Errorf("packetRate(%d, %d) = %d, want %d", c.interval, c.space, got, c.want)
		}
	}
}

func TestCompile(t *testing.T) {
	tm, err := Compile(decode.FormatIPFIX, DialectIPFIX, 300, false, 0, []Field{{ID: 8, Length: 4}, {ID: 82, Length: VariableLength}, {ID: 1, Enterprise: 9, Length: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if tm.MinRecordLength() != 7 || tm.fixed || tm.ops[2].kind != kindSkip || tm.ops[0].kind != kindSrcIPv4 {
		t.Errorf("compiled %+v", tm)
	}
	// In NetFlow v9, scope field 1 (System) is not octetDeltaCount.
	tm, err = Compile(decode.FormatNetFlow9, DialectNetFlow9, 300, true, 1, []Field{{ID: 1, Length: 4}, {ID: 34, Length: 4}})
	if err != nil || tm.ops[0].kind != kindSkip || tm.ops[1].kind != kindSamplingInterval {
		t.Errorf("v9 options template %+v, %v", tm, err)
	}
	// A v9 field of length 0xFFFF is fixed, not variable.
	tm, err = Compile(decode.FormatNetFlow9, DialectNetFlow9, 300, false, 0, []Field{{ID: 82, Length: VariableLength}})
	if err != nil || !tm.fixed || tm.MinRecordLength() != 0xFFFF {
		t.Errorf("v9 0xFFFF field %+v, %v", tm, err)
	}
	for _, bad := range [][]Field{nil, {{ID: 8, Length: 0}}, make([]Field, MaxFields+1)} {
		if _, err := Compile(decode.FormatIPFIX, DialectIPFIX, 300, false, 0, bad); decode.ReasonOf(err) != decode.ReasonTemplate {
			t.Errorf("Compile(%d fields) error %v", len(bad), err)
		}
	}
}
