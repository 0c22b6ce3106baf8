package web

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestScoreboardListKeepsNewest: past the bound, the list keeps the
// newest pages (the current scoreboard must not freeze on an old one).
func TestScoreboardListKeepsNewest(t *testing.T) {
	dir := t.TempDir()
	ids := []string{"2024-01-01/23/23:55:00", "2024-01-02/00/00:00:00", "2024-01-02/00/00:05:00", "2024-01-02/01/01:00:00", "2024-01-03/10/10:15:00"}
	for _, id := range ids {
		p := filepath.Join(dir, id+".json")
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "2024-01-03", "10", "notes.txt"), nil, 0o644)
	old := maxPages
	maxPages = 3
	defer func() { maxPages = old }()
	b := &scoreboards{dir: dir, now: time.Now}
	got := b.list()
	if len(got) != 3 {
		t.Fatalf("listed %d pages, want 3", len(got))
	}
	for i, want := range ids[2:] {
		if got[i].id != want {
			t.Errorf("page %d: %s, want %s (the newest three, oldest first)", i, got[i].id, want)
		}
	}
}

func TestAuthCache(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := &authCache{now: func() time.Time { return now }}
	k := c.key("alice", "s3cret")
	if c.valid(k) {
		t.Fatal("valid before add")
	}
	c.add(k)
	if !c.valid(k) || c.valid(c.key("alice", "s3cret ")) || c.valid(c.key("alice\x00s3cret", "")) {
		t.Error("cache does not tell credentials apart")
	}
	now = now.Add(authCacheTTL)
	if c.valid(k) {
		t.Error("entry valid after its minute")
	}
	for i := range authCacheMax + 10 {
		c.add(c.key("u", string(rune('a'+i%26))+time.Duration(i).String()))
	}
	if len(c.entries) > authCacheMax {
		t.Errorf("%d entries, bound %d", len(c.entries), authCacheMax)
	}
}
