package flowtools

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
		want string // RFC 3339
	}{
		{"ft-v05.2011-02-17.172501-0400", true, "2011-02-17T17:25:01-04:00"},
		{"ft-v05.2026-11-23.120000+0000", true, "2026-11-23T12:00:00Z"},
		{"ft-v01.2001-04-10.000000+0530", true, "2001-04-10T00:00:00+05:30"},
		{"ft-v07.1999-12-31.235959+1200", true, "1999-12-31T23:59:59+12:00"},
		{"ft-v08m01.2011-02-17.172501-0400", true, "2011-02-17T17:25:01-04:00"},
		{"tmp-v05.2011-02-17.172501-0400", false, ""},
		{"ft-v5.2011-02-17.172501-0400", false, ""},
		{"ft-vx5.2011-02-17.172501-0400", false, ""},
		{"ft-v05.2011-02-17.172501", false, ""},
		{"ft-v05.2011-02-17.172501-04000", false, ""},
		{"ft-v05.2011-02-30.172501-0400", false, ""},
		{"ft-v05.2011-02-17.172501*0400", false, ""},
		{"ft-v05.2011-02-17.172501-2400", false, ""},
		{"ft-v05.2011-02-17.172501-04a0", false, ""},
		{"ft-v05.2011-02-17.172501-0400.gz", false, ""},
		{"flows.2026-11-23.120000+0000.fsf", false, ""},
		{"", false, ""},
	}
	for _, tt := range tests {
		got, ok := ParseName(tt.name)
		if ok != tt.ok {
			t.Errorf("ParseName(%q) ok = %v, want %v", tt.name, ok, tt.ok)
			continue
		}
		if ok && got.Format(time.RFC3339) != tt.want {
			t.Errorf("ParseName(%q) = %s, want %s", tt.name, got.Format(time.RFC3339), tt.want)
		}
	}
}

func TestList(t *testing.T) {
	dir := t.TempDir()
	files := []string{
		"2011/2011-02/2011-02-17/ft-v05.2011-02-17.172501-0400", // 21:25:01Z
		"2011/2011-02/2011-02-17/ft-v05.2011-02-17.173001-0400", // 21:30:01Z
		"2011/2011-02/2011-02-17/tmp-v05.2011-02-17.173501-0400",
		"ft-v05.2011-02-17.212000+0000",                         // 21:20:00Z, flat
		"2011/2011-02/2011-02-18/ft-v05.2011-02-18.010000+0200", // 2011-02-17 23:00Z
		"2011/notes.txt",
	}
	for _, f := range files {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "ft-v05.2011-02-17.000000+0000"), 0o755); err != nil {
		t.Fatal(err) // a directory with a file's name is not listed
	}
	got, err := List(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{files[3], files[0], files[1], files[4]}
	if len(got) != len(want) {
		t.Fatalf("List = %v, want %v", got, want)
	}
	for i, e := range got {
		if e.Path != filepath.Join(dir, want[i]) {
			t.Errorf("entry %d = %s, want %s", i, e.Path, want[i])
		}
		if i > 0 && e.Start.Before(got[i-1].Start) {
			t.Errorf("entry %d out of order", i)
		}
	}
	if _, err := List(filepath.Join(dir, "missing")); err == nil {
		t.Error("List of a missing directory: no error")
	}
}
