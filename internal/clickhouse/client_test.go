package clickhouse

import "testing"

func TestParseServerError(t *testing.T) {
	tests := []struct {
		msg  string
		code int
	}{
		{"Code: 60, e.displayText() = DB::Exception: Table fs.flows doesn't exist., e.what() = DB::Exception", 60},
		{"Code: 81. DB::Exception: Database fs does not exist. (UNKNOWN_DATABASE) (version 23.8.2.7 (official build))", 81},
		{"Internal Server Error", 0},
		{"Code: x", 0},
	}
	for _, tt := range tests {
		if got := parseServerError(500, []byte(tt.msg)).Code; got != tt.code {
			t.Errorf("%q: code %d, want %d", tt.msg, got, tt.code)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for s, want := range map[string]Version{"18.16.1": {18, 16, 1}, "23.8.2.7\n": {23, 8, 2}, "19.6": {19, 6, 0}} {
		v, err := ParseVersion(s)
		if err != nil || v != want {
			t.Errorf("%q: %v %v, want %v", s, v, err, want)
		}
	}
	for _, bad := range []string{"", "18", "x.y"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if !(Version{19, 6, 0}).AtLeast(19, 6) || (Version{18, 16, 1}).AtLeast(19, 6) || !(Version{23, 1, 0}).AtLeast(19, 6) {
		t.Error("AtLeast wrong")
	}
}

func TestNewClientURLs(t *testing.T) {
	for raw, want := range map[string]string{
		"127.0.0.1":             "127.0.0.1:8123 flowscan",
		"http://ch1:8123/flows": "ch1:8123 flows",
		"https://u:p@ch2/db_2":  "ch2:8443 db_2",
		"http://[::1]:18123/":   "[::1]:18123 flowscan",
	} {
		c, err := NewClient(raw)
		if err != nil || c.Addr()+" "+c.Database != want {
			t.Errorf("%q: %v %v, want %s", raw, c, err, want)
		}
	}
	for _, bad := range []string{"ftp://x/db", "http://ch/bad-name", "http:///db"} {
		if _, err := NewClient(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
