package web

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flowscan/flowscan/internal/report/jkflow"
)

// jkflow's scoreboards. The module keeps one per direction that has a
// scoreboard: DIRECTION/scoreboard/scoreboard.json in its output
// directory, the latest file's top hosts and ports, replaced atomically.
// The catalog build finds them; requests name a direction of that list.

// jkflowModule is the name of the module whose directory holds them.
const jkflowModule = "jkflow"

// Bounds on the discovery: scoreboards listed (a variable for tests), and
// directory entries visited per walk (RRD files included).
var maxJKBoards = 1000

const maxJKWalkEntries = 4 * maxFilesPerWalk

// jkBoard is one discovered scoreboard file.
type jkBoard struct {
	direction string // "dorms_inet/p2p": the direction's path
	path      string
}

// discoverJKBoards walks jkflow's output directory for scoreboard files,
// sorted by direction. Symbolic links are not followed, hidden
// directories are skipped, and direction names must be catalog names.
func discoverJKBoards(dir string) []jkBoard {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil
	}
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return nil
	}
	var out []jkBoard
	seen := 0
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root {
				return err
			}
			return nil
		}
		if seen++; seen > maxJKWalkEntries {
			return filepath.SkipAll
		}
		if !d.IsDir() || path == root {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || strings.Count(rel, string(filepath.Separator)) >= maxWalkDepth || strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if d.Name() != "scoreboard" {
			return nil
		}
		direction := filepath.ToSlash(filepath.Dir(rel))
		if !validDirection(direction) {
			return filepath.SkipDir
		}
		file := filepath.Join(path, "scoreboard.json")
		if st, err := os.Lstat(file); err != nil || !st.Mode().IsRegular() {
			return filepath.SkipDir
		}
		out = append(out, jkBoard{direction: direction, path: file})
		if len(out) >= maxJKBoards {
			return filepath.SkipAll
		}
		return filepath.SkipDir
	})
	slices.SortFunc(out, func(a, b jkBoard) int { return strings.Compare(a.direction, b.direction) })
	return out
}

// validDirection accepts slash-separated catalog names ("a", "a/b").
func validDirection(s string) bool {
	if s == "" || s == "." || len(s) > 256 {
		return false
	}
	for part := range strings.SplitSeq(s, "/") {
		if !validName(part) {
			return false
		}
	}
	return true
}

// jkDirections returns the directions of the discovered scoreboards.
func (c *Catalog) jkDirections() []string {
	out := make([]string, 0, len(c.jkBoards))
	for _, b := range c.jkBoards {
		out = append(out, b.direction)
	}
	return out
}

// jkBoard returns the scoreboard of a direction, or nil; the first one
// when direction is empty.
func (c *Catalog) jkBoard(direction string) *jkBoard {
	if direction == "" {
		if len(c.jkBoards) == 0 {
			return nil
		}
		return &c.jkBoards[0]
	}
	i, ok := slices.BinarySearchFunc(c.jkBoards, direction, func(b jkBoard, d string) int { return strings.Compare(b.direction, d) })
	if !ok {
		return nil
	}
	return &c.jkBoards[i]
}

// JKFlowEntry is one line of a jkflow scoreboard (the module's own row)
// with the flow explorer's filter for it.
type JKFlowEntry struct {
	jkflow.Entry
	// Filter selects the entry's flows in the flow explorer: "host ADDR"
	// for a host, "proto tcp and port 443" for a port, "proto 1" for a
	// protocol without ports. Empty when the key is not understood.
	Filter string `json:"filter,omitempty"`
}

// JKFlowScoreboard is the answer of /api/v1/scoreboard?kind=jkflow: the
// latest scoreboard of one jkflow direction.
type JKFlowScoreboard struct {
	// ID is the direction, as for Direction.
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// Direction is the direction's path, for example "dorms_inet/p2p".
	Direction string `json:"direction"`
	// File is the base name of the flow file the scoreboard counts.
	File  string    `json:"file"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Seconds is what the rates are per: sample_time, or the file's span.
	Seconds float64 `json:"seconds"`
	// Hosts and Ports are ranked by bytes in + out, as the module ranks
	// them; empty when the direction does not count them.
	Hosts []JKFlowEntry `json:"hosts"`
	Ports []JKFlowEntry `json:"ports"`
}

// readJKBoard reads a discovered scoreboard file: a regular file (not a
// symbolic link) of at most maxPageBytes.
func readJKBoard(b *jkBoard) (*JKFlowScoreboard, error) {
	st, err := os.Lstat(b.path)
	if err != nil || !st.Mode().IsRegular() {
		return nil, &notFound{fmt.Sprintf("the scoreboard of jkflow direction %s is gone", b.direction)}
	}
	if st.Size() > maxPageBytes {
		return nil, fmt.Errorf("jkflow scoreboard %s: too large (%d bytes)", b.direction, st.Size())
	}
	f, err := os.Open(b.path)
	if err != nil {
		return nil, &notFound{fmt.Sprintf("the scoreboard of jkflow direction %s is gone", b.direction)}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPageBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxPageBytes {
		return nil, fmt.Errorf("jkflow scoreboard %s: too large", b.direction)
	}
	var sc jkflow.Scores
	if err := json.Unmarshal(data, &sc); err != nil {
		return nil, fmt.Errorf("jkflow scoreboard %s: %w", b.direction, err)
	}
	out := &JKFlowScoreboard{ID: b.direction, Kind: "jkflow", Direction: b.direction, File: sc.File,
		Start: sc.Start, End: sc.End, Seconds: sc.Seconds,
		Hosts: make([]JKFlowEntry, 0, len(sc.Hosts)), Ports: make([]JKFlowEntry, 0, len(sc.Ports))}
	for _, e := range sc.Hosts {
		row := JKFlowEntry{Entry: e}
		if a, err := netip.ParseAddr(e.Key); err == nil && a.Zone() == "" {
			row.Filter = "host " + a.Unmap().String()
		}
		out.Hosts = append(out.Hosts, row)
	}
	for _, e := range sc.Ports {
		row := JKFlowEntry{Entry: e}
		if proto, port, ok := jkflow.ParsePortKey(e.Key); ok {
			switch proto {
			case 6:
				row.Filter = fmt.Sprintf("proto tcp and port %d", port)
			case 17:
				row.Filter = fmt.Sprintf("proto udp and port %d", port)
			default:
				row.Filter = fmt.Sprintf("proto %d", proto)
			}
		}
		out.Ports = append(out.Ports, row)
	}
	return out, nil
}

// jkScoreboard answers kind=jkflow: the direction's latest scoreboard
// (the first direction's when none is given).
func (s *Server) jkScoreboard(w http.ResponseWriter, r *http.Request, v url.Values) {
	for _, p := range []string{"page", "top"} {
		if v.Has(p) {
			s.fail(w, r, bad("%s does not apply to kind=jkflow", p))
			return
		}
	}
	direction := v.Get("direction")
	if v.Has("direction") && direction == "" {
		s.fail(w, r, bad("direction is empty"))
		return
	}
	b := s.currentCatalog(false).jkBoard(direction)
	if b == nil {
		b = s.currentCatalog(true).jkBoard(direction)
	}
	if b == nil {
		if direction == "" {
			s.fail(w, r, &notFound{"no jkflow scoreboards found"})
		} else {
			s.fail(w, r, &notFound{fmt.Sprintf("no jkflow scoreboard for direction %q", truncate(direction))})
		}
		return
	}
	p, err := readJKBoard(b)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, p)
}
