package web

import (
	"cmp"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Kinds of graphable items, as CUGrapher grouped them.
const (
	KindTotal     = "total"
	KindProtocol  = "protocol"
	KindService   = "service"
	KindTOS       = "tos"
	KindAS        = "as"
	KindNetwork   = "network"
	KindDirection = "direction"
	KindTraffic   = "traffic" // internal and transit: not part of total
)

// kindOrder is the order kinds appear in the catalog and legends.
var kindOrder = []string{KindTotal, KindProtocol, KindService, KindTOS, KindAS, KindNetwork, KindInterface, KindDirection, KindTraffic}

// otherKinds are the kinds whose unselected remainder is drawn as an
// "other" band: they split the total.
var otherKinds = map[string]bool{KindProtocol: true, KindService: true, KindTOS: true, KindAS: true, KindNetwork: true, KindInterface: true, KindDirection: true}

// Maximum depth of directories walked below a module's directory, and of
// RRD files read per module: bounds a catalog build on a hostile tree.
const (
	maxWalkDepth    = 6
	maxFilesPerWalk = 20000
)

// rrdFile is one discovered RRD file and the data sources the API reads.
type rrdFile struct {
	path string
	// in and out name the data sources per unit ("bits" reads bytes);
	// out is empty for files with one direction only.
	in, out map[string]string
}

// Item is one graphable series: one RRD file, or a service's _src and
// _dst files together.
type Item struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	Label string `json:"label"`
	files []*rrdFile
	// ch is what the item selects in ClickHouse (clickhouse module).
	ch *chMatch
}

// Scope is a router (cuflow), a direction (jkflow) or "all": a directory
// of RRD files.
type Scope struct {
	ID    string  `json:"id"`
	Label string  `json:"label"`
	Items []*Item `json:"items"`
	byID  map[string]*Item
	// exporter restricts a clickhouse scope to one exporter (invalid:
	// all of them).
	exporter netip.Addr
}

// Module is one report module's RRD directory.
type Module struct {
	Name   string   `json:"name"`
	Scopes []*Scope `json:"routers"`
	// Backend is where the module's series come from: "rrd" (RRD files,
	// images by RRDtool) or "clickhouse" (images through a temporary RRD).
	Backend string `json:"backend"`
	dir     string
	byID    map[string]*Scope
}

// Catalog is everything the API can graph, discovered from the module
// directories. Requests name modules, scopes and items by the IDs in
// here; nothing else reaches the file system.
type Catalog struct {
	Modules []*Module `json:"modules"`
	Built   time.Time `json:"built"`
	byName  map[string]*Module
	// jkBoards are jkflow's scoreboards, sorted by direction.
	jkBoards []jkBoard
}

// module returns the module named name, or nil.
func (c *Catalog) module(name string) *Module { return c.byName[name] }

// dsCache remembers the data sources of RRD files (they never change).
type dsCache struct {
	mu    sync.Mutex
	names map[string][]string
}

// catalogBuilder discovers RRD files.
type catalogBuilder struct {
	dirs  map[string]string // module -> directory
	names func(path string) ([]string, error)
	cache dsCache
}

func (b *catalogBuilder) dsNames(path string, info fs.FileInfo) []string {
	key := path + "\x00" + info.ModTime().String()
	b.cache.mu.Lock()
	n, ok := b.cache.names[key]
	b.cache.mu.Unlock()
	if ok {
		return n
	}
	n, err := b.names(path)
	if err != nil {
		n = nil
	}
	b.cache.mu.Lock()
	if b.cache.names == nil || len(b.cache.names) > 4*maxFilesPerWalk {
		b.cache.names = map[string][]string{}
	}
	b.cache.names[key] = n
	b.cache.mu.Unlock()
	return n
}

// build walks every module directory.
func (b *catalogBuilder) build(now time.Time) *Catalog {
	c := &Catalog{Built: now, byName: map[string]*Module{}}
	names := make([]string, 0, len(b.dirs))
	for n := range b.dirs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		m := b.buildModule(name, b.dirs[name])
		if m != nil && len(m.Scopes) > 0 {
			c.Modules = append(c.Modules, m)
			c.byName[name] = m
		}
	}
	if dir, ok := b.dirs[jkflowModule]; ok {
		c.jkBoards = discoverJKBoards(dir)
	}
	return c
}

func (b *catalogBuilder) buildModule(name, dir string) *Module {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil
	}
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return nil
	}
	m := &Module{Name: name, Backend: BackendRRD, dir: root, byID: map[string]*Scope{}}
	files := map[string][]*rrdFile{} // scope rel dir -> files
	seen := 0
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root {
				return err
			}
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if path != root && (strings.Count(rel, string(filepath.Separator)) >= maxWalkDepth || strings.HasPrefix(d.Name(), ".") ||
				d.Name() == "scoreboard" || d.Name() == "top") {
				return filepath.SkipDir
			}
			return nil
		}
		// Regular files only: a symbolic link could lead out of the tree.
		if !d.Type().IsRegular() || !strings.HasSuffix(d.Name(), ".rrd") {
			return nil
		}
		if seen++; seen > maxFilesPerWalk {
			return filepath.SkipAll
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		f := fileFromDS(path, b.dsNames(path, info))
		if f == nil {
			return nil
		}
		dir := filepath.ToSlash(filepath.Dir(rel))
		files[dir] = append(files[dir], f)
		return nil
	})
	dirs := make([]string, 0, len(files))
	for d := range files {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	for _, d := range dirs {
		id := d
		if d == "." {
			id = "all"
		}
		if _, dup := m.byID[id]; dup {
			continue
		}
		s := &Scope{ID: id, Label: id, byID: map[string]*Item{}}
		for _, f := range files[d] {
			addFile(name, s, f)
		}
		m.Scopes = append(m.Scopes, s)
		m.byID[id] = s
	}
	if name == "jkflow" {
		addDirections(m)
	}
	// "all" first, then the rest by name.
	slices.SortStableFunc(m.Scopes, func(a, b *Scope) int {
		if (a.ID == "all") != (b.ID == "all") {
			if a.ID == "all" {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.ID, b.ID)
	})
	for _, s := range m.Scopes {
		sortItems(s)
	}
	return m
}

// fileFromDS maps a file's data sources to the API's units, or returns
// nil for a file the API cannot read.
func fileFromDS(path string, names []string) *rrdFile {
	has := map[string]bool{}
	for _, n := range names {
		has[n] = true
	}
	switch {
	case has["in_bytes"] && has["out_bytes"] && has["in_pkts"] && has["out_pkts"] && has["in_flows"] && has["out_flows"]:
		return &rrdFile{path: path,
			in:  map[string]string{"bits": "in_bytes", "packets": "in_pkts", "flows": "in_flows"},
			out: map[string]string{"bits": "out_bytes", "packets": "out_pkts", "flows": "out_flows"}}
	case has["bytes"] && has["pkts"] && has["flows"]:
		return &rrdFile{path: path, in: map[string]string{"bits": "bytes", "packets": "pkts", "flows": "flows"}}
	}
	return nil
}

// classify names a file's item by the module's file-naming rules.
func classify(module, base string) (kind, label string) {
	name := strings.TrimSuffix(base, ".rrd")
	switch name {
	case "total", "total_total":
		return KindTotal, "total"
	case "internal", "transit":
		return KindTraffic, name
	case "MCAST":
		return KindProtocol, "multicast"
	}
	for _, p := range []struct{ prefix, kind string }{
		{"protocol_", KindProtocol}, {"service_", KindService}, {"tos_", KindTOS},
		{"as_", KindAS}, {"network_", KindNetwork},
	} {
		if rest, ok := strings.CutPrefix(name, p.prefix); ok && rest != "" {
			return p.kind, rest
		}
	}
	if module == "campusio" || module == "subnetio" {
		if strings.HasSuffix(name, "_src") || strings.HasSuffix(name, "_dst") {
			return KindService, name
		}
		if isSubnetName(name) {
			return KindNetwork, subnetLabel(name)
		}
		return KindProtocol, name
	}
	return "", ""
}

// isSubnetName tells subnetio's prefix file names (10.1.0.0_16,
// 2001-db8-1--_48) from protocol names.
func isSubnetName(name string) bool {
	_, err := netip.ParsePrefix(subnetLabel(name))
	return err == nil
}

func subnetLabel(name string) string {
	i := strings.LastIndexByte(name, '_')
	if i < 0 {
		return name
	}
	addr := name[:i]
	if !strings.Contains(addr, ".") {
		addr = strings.ReplaceAll(addr, "-", ":")
	}
	return addr + "/" + name[i+1:]
}

// addFile adds f to scope s as an item, and services also as the
// combined item of their _src and _dst files.
func addFile(module string, s *Scope, f *rrdFile) {
	kind, label := classify(module, filepath.Base(f.path))
	if kind == "" {
		return
	}
	id := kind + "_" + label
	if kind == KindTotal {
		id = "total"
	} else if kind == KindTraffic {
		id = label
	}
	if kind == KindService {
		for _, dir := range []string{"_src", "_dst"} {
			if base, ok := strings.CutSuffix(label, dir); ok && base != "" {
				both := s.byID[KindService+"_"+base]
				if both == nil {
					both = &Item{ID: KindService + "_" + base, Kind: KindService, Label: base}
					s.byID[both.ID] = both
					s.Items = append(s.Items, both)
				}
				both.files = append(both.files, f)
				label = base + " " + dir[1:]
			}
		}
	}
	if _, dup := s.byID[id]; dup {
		return
	}
	it := &Item{ID: id, Kind: kind, Label: label, files: []*rrdFile{f}}
	s.byID[id] = it
	s.Items = append(s.Items, it)
}

// addDirections gives jkflow's "all" scope one item per top-level
// direction: that direction's total.
func addDirections(m *Module) {
	all := m.byID["all"]
	if all == nil {
		return
	}
	for _, s := range m.Scopes {
		if s.ID == "all" || strings.Contains(s.ID, "/") {
			continue
		}
		t := s.byID["total"]
		if t == nil {
			continue
		}
		it := &Item{ID: KindDirection + "_" + s.ID, Kind: KindDirection, Label: s.ID, files: t.files}
		if _, dup := all.byID[it.ID]; !dup {
			all.byID[it.ID] = it
			all.Items = append(all.Items, it)
		}
	}
}

func sortItems(s *Scope) {
	rank := func(k string) int { return slices.Index(kindOrder, k) }
	slices.SortStableFunc(s.Items, func(a, b *Item) int {
		if c := cmp.Compare(rank(a.Kind), rank(b.Kind)); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}
