package web

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// dummyHash returns a hash of the users' cost, compared against when the
// user is unknown, so that a wrong user name takes as long as a wrong
// password.
func dummyHash(users map[string][]byte) []byte {
	cost := bcrypt.DefaultCost
	for _, h := range users {
		if c, err := bcrypt.Cost(h); err == nil {
			cost = c
		}
		break
	}
	h, err := bcrypt.GenerateFromPassword([]byte("flowscan: no such user"), cost)
	if err != nil {
		panic(err)
	}
	return h
}

// loadHTPasswd reads "user:hash" lines; only bcrypt hashes ($2a$, $2b$,
// $2y$, as htpasswd -B writes) are accepted. Blank lines and # comments
// are skipped.
func loadHTPasswd(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("web: htpasswd: %w", err)
	}
	defer f.Close()
	users := map[string][]byte{}
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		user, hash, ok := strings.Cut(text, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("web: %s:%d: want user:bcrypt-hash", path, line)
		}
		if !strings.HasPrefix(hash, "$2a$") && !strings.HasPrefix(hash, "$2b$") && !strings.HasPrefix(hash, "$2y$") {
			return nil, fmt.Errorf("web: %s:%d: user %q: only bcrypt hashes are accepted (htpasswd -B)", path, line, user)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("web: %s:%d: user %q: %v", path, line, user, err)
		}
		if _, dup := users[user]; dup {
			return nil, fmt.Errorf("web: %s:%d: user %q listed twice", path, line, user)
		}
		users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("web: htpasswd %s: %w", path, err)
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("web: htpasswd %s lists no users", path)
	}
	return users, nil
}

// authorized checks HTTP basic credentials. The user name is compared
// with every known name in constant time, and bcrypt runs whether or not
// the name matched.
func (s *Server) authorized(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok || len(pass) > 72 {
		return false
	}
	// A page load makes a dozen requests with the same header; bcrypt
	// (~50 ms each) runs once per credentials and minute, not per request.
	key := s.authCache.key(user, pass)
	if s.authCache.valid(key) {
		return true
	}
	if !s.checkPassword(user, pass) {
		return false
	}
	s.authCache.add(key)
	return true
}

// checkPassword runs bcrypt against the user's hash (or a dummy one).
func (s *Server) checkPassword(user, pass string) bool {
	hash := s.dummy
	found := 0
	for name, h := range s.users {
		if subtle.ConstantTimeCompare([]byte(name), []byte(user)) == 1 {
			hash, found = h, 1
		}
	}
	// bcrypt's $2y$ is $2a$/$2b$ by another name.
	h := hash
	if len(h) > 3 && h[2] == 'y' {
		h = append([]byte("$2b"), h[3:]...)
	}
	err := bcrypt.CompareHashAndPassword(h, []byte(pass))
	return err == nil && found == 1
}

// authCache remembers credentials that passed bcrypt for a minute, as
// keyed hashes (HMAC-SHA256 with a per-process key): no password is
// kept in memory.
type authCache struct {
	mu      sync.Mutex
	secret  [32]byte
	entries map[[32]byte]time.Time
	now     func() time.Time
}

const (
	authCacheTTL = time.Minute
	authCacheMax = 1024
)

func (c *authCache) key(user, pass string) [32]byte {
	c.mu.Lock()
	if c.entries == nil {
		rand.Read(c.secret[:])
		c.entries = map[[32]byte]time.Time{}
		if c.now == nil {
			c.now = time.Now
		}
	}
	c.mu.Unlock()
	m := hmac.New(sha256.New, c.secret[:])
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write([]byte(pass))
	var k [32]byte
	copy(k[:], m.Sum(nil))
	return k
}

func (c *authCache) valid(k [32]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.entries[k]
	return ok && c.now().Before(until)
}

func (c *authCache) add(k [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.entries) >= authCacheMax {
		for e, until := range c.entries {
			if !now.Before(until) {
				delete(c.entries, e)
			}
		}
		if len(c.entries) >= authCacheMax {
			clear(c.entries)
		}
	}
	c.entries[k] = now.Add(authCacheTTL)
}
