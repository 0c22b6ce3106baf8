// Package rrd is flowscan's thin binding to RRDtool's librrd (cgo): create,
// update, fetch, xport and graph real RRD files that the rrdtool command
// and CUGrapher read, optionally through rrdcached.
//
// librrd keeps parser state in globals for its argv-style calls, so every
// call into the library is serialised by one mutex, and errors are copied
// out inside the same C call that produced them.
package rrd

/*
#cgo LDFLAGS: -ldl
#include <rrd.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// librrd is loaded when first needed (dlopen), not when the process
// starts: it pulls in some fifty shared libraries (cairo, pango, glib…)
// whose loading would cost every flowscan command milliseconds, and the
// commands that never touch an RRD (collect, query, dump) then run where
// librrd is not installed.
static int (*p_rrd_create)(int, char **);
static int (*p_rrd_update)(int, char **);
static int (*p_rrd_flushcached)(int, char **);
static int (*p_rrd_fetch)(int, char **, time_t *, time_t *, unsigned long *, unsigned long *, char ***, rrd_value_t **);
static int (*p_rrd_xport)(int, char **, int *, time_t *, time_t *, unsigned long *, unsigned long *, char ***, rrd_value_t **);
static rrd_info_t *(*p_rrd_graph_v)(int, char **);
static void (*p_rrd_info_free)(rrd_info_t *);
static void (*p_rrd_freemem)(void *);
static int (*p_rrd_test_error)(void);
static char *(*p_rrd_get_error)(void);
static void (*p_rrd_clear_error)(void);

static int fs_load(char *err, size_t n) {
	const char *names[] = {"librrd.so.8", "librrd.so", NULL};
	void *h = NULL;
	for (int i = 0; names[i] != NULL && h == NULL; i++) h = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL);
	if (h == NULL) {
		snprintf(err, n, "%s", dlerror());
		return -1;
	}
#define FS_SYM(name) if ((*(void **)&p_##name = dlsym(h, #name)) == NULL) { snprintf(err, n, "librrd has no %s", #name); return -1; }
	FS_SYM(rrd_create) FS_SYM(rrd_update) FS_SYM(rrd_flushcached) FS_SYM(rrd_fetch) FS_SYM(rrd_xport)
	FS_SYM(rrd_graph_v) FS_SYM(rrd_info_free) FS_SYM(rrd_freemem) FS_SYM(rrd_test_error)
	FS_SYM(rrd_get_error) FS_SYM(rrd_clear_error)
#undef FS_SYM
	return 0;
}

#define rrd_create p_rrd_create
#define rrd_update p_rrd_update
#define rrd_flushcached p_rrd_flushcached
#define rrd_fetch p_rrd_fetch
#define rrd_xport p_rrd_xport
#define rrd_graph_v p_rrd_graph_v
#define rrd_info_free p_rrd_info_free
#define rrd_test_error p_rrd_test_error
#define rrd_get_error p_rrd_get_error
#define rrd_clear_error p_rrd_clear_error

static void fs_freemem(void *p) { p_rrd_freemem(p); }

enum { FS_CREATE, FS_UPDATE, FS_FLUSH };

static void fs_copy_error(char *err, size_t n) {
	if (rrd_test_error()) {
		strncpy(err, rrd_get_error(), n - 1);
		err[n - 1] = 0;
	} else {
		strncpy(err, "unknown rrd error", n - 1);
	}
}

static int fs_call(int kind, int argc, char **argv, char *err, size_t n) {
	int rc = -1;
	rrd_clear_error();
	optind = 0;
	opterr = 0;
	switch (kind) {
	case FS_CREATE: rc = rrd_create(argc, argv); break;
	case FS_UPDATE: rc = rrd_update(argc, argv); break;
	case FS_FLUSH: rc = rrd_flushcached(argc, argv); break;
	}
	if (rc != 0) fs_copy_error(err, n);
	return rc;
}

static int fs_fetch(int argc, char **argv, time_t *start, time_t *end, unsigned long *step,
		unsigned long *ds_cnt, char ***ds_names, rrd_value_t **data, char *err, size_t n) {
	rrd_clear_error();
	optind = 0;
	opterr = 0;
	int rc = rrd_fetch(argc, argv, start, end, step, ds_cnt, ds_names, data);
	if (rc != 0) fs_copy_error(err, n);
	return rc;
}

static int fs_xport(int argc, char **argv, time_t *start, time_t *end, unsigned long *step,
		unsigned long *col_cnt, char ***legends, rrd_value_t **data, char *err, size_t n) {
	int xsize = 0;
	rrd_clear_error();
	optind = 0;
	opterr = 0;
	int rc = rrd_xport(argc, argv, &xsize, start, end, step, col_cnt, legends, data);
	if (rc != 0) fs_copy_error(err, n);
	return rc;
}

// fs_graph renders a graph to memory and returns the image (malloc'd).
static unsigned char *fs_graph(int argc, char **argv, size_t *size, char *err, size_t n) {
	rrd_clear_error();
	optind = 0;
	opterr = 0;
	rrd_info_t *info = rrd_graph_v(argc, argv);
	if (info == NULL) {
		fs_copy_error(err, n);
		return NULL;
	}
	unsigned char *out = NULL;
	for (rrd_info_t *p = info; p != NULL; p = p->next) {
		if (strcmp(p->key, "image") == 0 && p->type == RD_I_BLO) {
			*size = p->value.u_blo.size;
			out = malloc(*size);
			if (out != NULL) memcpy(out, p->value.u_blo.ptr, *size);
			break;
		}
	}
	rrd_info_free(info);
	if (out == NULL) {
		strncpy(err, rrd_test_error() ? rrd_get_error() : "graph produced no image", n - 1);
		err[n - 1] = 0;
	}
	return out;
}

static char *fs_str_at(char **v, unsigned long i) { return v[i]; }
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// lib serialises all calls into librrd.
var lib sync.Mutex

var (
	loadOnce sync.Once
	loadErr  error
)

// load loads librrd on first use.
func load() error {
	loadOnce.Do(func() {
		errbuf := (*C.char)(C.malloc(errLen))
		defer C.free(unsafe.Pointer(errbuf))
		if C.fs_load(errbuf, errLen) != 0 {
			loadErr = fmt.Errorf("rrd: cannot load librrd (Debian: apt install librrd8): %s", C.GoString(errbuf))
		}
	})
	return loadErr
}

const errLen = 512

// ErrPastUpdate is returned by Update for a time at or before the RRD's
// last update: the value was already stored (or is too late to store).
var ErrPastUpdate = errors.New("rrd: update time not after the last update")

// Client writes and reads RRD files, directly or through rrdcached.
type Client struct {
	// Daemon is the rrdcached address ("unix:/run/rrdcached.sock",
	// "127.0.0.1:42217"); empty means direct file access.
	Daemon string
}

// New returns a client; daemon may be empty.
func New(daemon string) *Client { return &Client{Daemon: daemon} }

// DS is a data source definition.
type DS struct {
	Name string
	// Type is GAUGE, COUNTER, DERIVE or ABSOLUTE.
	Type string
	// Heartbeat is the longest gap between updates before the value
	// becomes unknown.
	Heartbeat time.Duration
	// Min and Max bound values; NaN means unbounded ("U").
	Min, Max float64
}

// RRA is a round-robin archive definition.
type RRA struct {
	// CF is AVERAGE, MIN, MAX or LAST.
	CF string
	// XFF is the fraction of unknown primary points that still gives a
	// known consolidated point.
	XFF float64
	// Steps is the number of primary points per consolidated point.
	Steps int
	// Rows is the number of consolidated points kept.
	Rows int
}

// FlowScanRRAs returns FlowScan's archives for a given step: at 300 s they
// are exactly createGeneralRRD's (AVERAGE 1×600, 6×600, 24×600, 288×1827;
// MAX 24×600, 288×1827: 50 hours of 5-minute points, 12.5 days of 30
// minutes, 50 days of 2 hours, 5 years of days). Other steps keep about
// the same spans: the first archive keeps at least 600 steps, the others
// consolidate to 30 minutes, 2 hours and a day (rounded to whole steps).
func FlowScanRRAs(step time.Duration) []RRA {
	per := func(span time.Duration) int { return max(1, int(span/step)) }
	return []RRA{
		{"AVERAGE", 0, 1, 600 * per(5*time.Minute)},
		{"AVERAGE", 0, per(30 * time.Minute), 600},
		{"AVERAGE", 0, per(2 * time.Hour), 600},
		{"AVERAGE", 0, per(24 * time.Hour), 1827},
		{"MAX", 0, per(2 * time.Hour), 600},
		{"MAX", 0, per(24 * time.Hour), 1827},
	}
}

// FlowDS returns ABSOLUTE data sources with FlowScan's heartbeat (400 s
// for a 300 s step) and no bounds.
func FlowDS(step time.Duration, names ...string) []DS {
	out := make([]DS, len(names))
	for i, n := range names {
		out[i] = DS{Name: n, Type: "ABSOLUTE", Heartbeat: step * 4 / 3, Min: math.NaN(), Max: math.NaN()}
	}
	return out
}

func (c *Client) daemonArgs(args []string) []string {
	if c.Daemon != "" {
		return append(args, "--daemon", c.Daemon)
	}
	return args
}

// Create makes a new RRD file (and its directory) with the given step and
// start time. An existing file is left alone and Create returns nil.
func (c *Client) Create(path string, step time.Duration, start time.Time, ds []DS, rras []RRA) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	secs := int64(step / time.Second)
	if secs < 1 {
		return fmt.Errorf("rrd: step %v shorter than a second", step)
	}
	args := []string{"create", path, "--start", strconv.FormatInt(start.Unix(), 10), "--step", strconv.FormatInt(secs, 10), "--no-overwrite"}
	args = c.daemonArgs(args)
	for _, d := range ds {
		args = append(args, fmt.Sprintf("DS:%s:%s:%d:%s:%s", d.Name, d.Type, int64(d.Heartbeat/time.Second), bound(d.Min), bound(d.Max)))
	}
	for _, r := range rras {
		args = append(args, fmt.Sprintf("RRA:%s:%g:%d:%d", r.CF, r.XFF, r.Steps, r.Rows))
	}
	err := call(C.FS_CREATE, args)
	if err != nil && strings.Contains(err.Error(), "File exists") {
		return nil
	}
	return err
}

func bound(v float64) string {
	if math.IsNaN(v) {
		return "U"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// Update stores values (in data-source order; NaN is unknown) at time t.
// It returns ErrPastUpdate when t is not after the file's last update, so
// a file reported again after a crash is not counted twice.
func (c *Client) Update(path string, t time.Time, values ...float64) error {
	var sb strings.Builder
	sb.WriteString(strconv.FormatInt(t.Unix(), 10))
	for _, v := range values {
		sb.WriteByte(':')
		if math.IsNaN(v) {
			sb.WriteByte('U')
		} else {
			sb.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	args := c.daemonArgs([]string{"update", path})
	err := call(C.FS_UPDATE, append(args, sb.String()))
	if err != nil && isPastUpdate(err.Error()) {
		return ErrPastUpdate
	}
	return err
}

// UpdateSpan stores the counts of an interval [start, end) into an RRD of
// ABSOLUTE data sources with the given step. When the RRD's last update is
// older than start (the collector or scanner was down), an unknown value
// is stored at start first, so that only the gap is unknown: with one
// update at end, rrdtool would spread the values over the whole gap and,
// past the heartbeat, lose them. An interval longer than the step (a
// 15-minute flow-capture file in a 5-minute RRD) is stored as equal
// shares at step-sized points, so no update is further apart than the
// heartbeat. It returns ErrPastUpdate when the interval was stored before.
func (c *Client) UpdateSpan(path string, step time.Duration, start, end time.Time, values ...float64) error {
	unknown := make([]float64, len(values))
	for i := range unknown {
		unknown[i] = math.NaN()
	}
	if err := c.Update(path, start, unknown...); err != nil && !errors.Is(err, ErrPastUpdate) {
		return err
	}
	n := 1
	if span := end.Sub(start); step > 0 && span > step {
		n = int((span + step - 1) / step)
	}
	if n == 1 {
		return c.Update(path, end, values...)
	}
	share := make([]float64, len(values))
	for i, v := range values {
		share[i] = v / float64(n)
	}
	// Shares already stored (a crash in the middle of this interval, then
	// a rescan) are skipped one by one.
	span := end.Sub(start)
	stored := 0
	for i := 1; i <= n; i++ {
		at := start.Add(span * time.Duration(i) / time.Duration(n))
		err := c.Update(path, at, share...)
		if errors.Is(err, ErrPastUpdate) {
			continue
		}
		if err != nil {
			return err
		}
		stored++
	}
	if stored == 0 {
		return ErrPastUpdate
	}
	return nil
}

func isPastUpdate(msg string) bool {
	return strings.Contains(msg, "illegal attempt to update using time") ||
		strings.Contains(msg, "minimum one second step") ||
		strings.Contains(msg, "Illegal update time")
}

// Flush asks rrdcached to write pending updates of path (no-op without a
// daemon), so that a fetch sees them.
func (c *Client) Flush(path string) error {
	if c.Daemon == "" {
		return nil
	}
	return call(C.FS_FLUSH, []string{"flushcached", "--daemon", c.Daemon, path})
}

// Series is the result of Fetch or Xport: Rows[i][j] is the value of column
// j at Start + (i+1)*Step (RRDtool's convention: a row covers the step
// ending at its time). Unknown values are NaN.
type Series struct {
	Start, End time.Time
	Step       time.Duration
	Names      []string
	Rows       [][]float64
}

// Time returns the end of row i's step.
func (s *Series) Time(i int) time.Time { return s.Start.Add(time.Duration(i+1) * s.Step) }

// Fetch reads consolidated values of cf (AVERAGE, MAX...) between start and
// end at the given resolution (0: the finest available).
func (c *Client) Fetch(path, cf string, start, end time.Time, resolution time.Duration) (*Series, error) {
	args := []string{"fetch", path, cf, "--start", strconv.FormatInt(start.Unix(), 10), "--end", strconv.FormatInt(end.Unix(), 10)}
	if resolution > 0 {
		args = append(args, "--resolution", strconv.FormatInt(int64(resolution/time.Second), 10))
	}
	args = c.daemonArgs(args)
	argv, free := cArgs(args)
	defer free()
	var cstart, cend C.time_t
	var step, n C.ulong
	var names **C.char
	var data *C.rrd_value_t
	errbuf := (*C.char)(C.malloc(errLen))
	defer C.free(unsafe.Pointer(errbuf))
	if err := load(); err != nil {
		return nil, err
	}
	lib.Lock()
	rc := C.fs_fetch(C.int(len(args)), argv, &cstart, &cend, &step, &n, &names, &data, errbuf, errLen)
	lib.Unlock()
	if rc != 0 {
		return nil, fmt.Errorf("rrd fetch %s: %s", path, C.GoString(errbuf))
	}
	return collect(cstart, cend, step, n, names, data), nil
}

// Xport evaluates DEF/CDEF/XPORT arguments (as `rrdtool xport` takes them)
// and returns the exported columns.
func (c *Client) Xport(args ...string) (*Series, error) {
	full := c.daemonArgs([]string{"xport"})
	full = append(full, args...)
	argv, free := cArgs(full)
	defer free()
	var cstart, cend C.time_t
	var step, n C.ulong
	var names **C.char
	var data *C.rrd_value_t
	errbuf := (*C.char)(C.malloc(errLen))
	defer C.free(unsafe.Pointer(errbuf))
	if err := load(); err != nil {
		return nil, err
	}
	lib.Lock()
	rc := C.fs_xport(C.int(len(full)), argv, &cstart, &cend, &step, &n, &names, &data, errbuf, errLen)
	lib.Unlock()
	if rc != 0 {
		return nil, fmt.Errorf("rrd xport: %s", C.GoString(errbuf))
	}
	return collect(cstart, cend, step, n, names, data), nil
}

// Graph renders a graph (arguments as `rrdtool graph -` takes them after
// the file name) and returns the image bytes (PNG unless --imgformat says
// otherwise).
func (c *Client) Graph(args ...string) ([]byte, error) {
	full := c.daemonArgs([]string{"graph", "-"})
	full = append(full, args...)
	argv, free := cArgs(full)
	defer free()
	errbuf := (*C.char)(C.malloc(errLen))
	defer C.free(unsafe.Pointer(errbuf))
	var size C.size_t
	if err := load(); err != nil {
		return nil, err
	}
	lib.Lock()
	img := C.fs_graph(C.int(len(full)), argv, &size, errbuf, errLen)
	lib.Unlock()
	if img == nil {
		return nil, fmt.Errorf("rrd graph: %s", C.GoString(errbuf))
	}
	defer C.free(unsafe.Pointer(img))
	return C.GoBytes(unsafe.Pointer(img), C.int(size)), nil
}

// collect copies a librrd result into a Series and frees it.
func collect(cstart, cend C.time_t, step, n C.ulong, names **C.char, data *C.rrd_value_t) *Series {
	s := &Series{Start: time.Unix(int64(cstart), 0), End: time.Unix(int64(cend), 0), Step: time.Duration(step) * time.Second}
	for i := C.ulong(0); i < n; i++ {
		p := C.fs_str_at(names, i)
		s.Names = append(s.Names, C.GoString(p))
		C.fs_freemem(unsafe.Pointer(p))
	}
	C.fs_freemem(unsafe.Pointer(names))
	if step == 0 || n == 0 {
		C.fs_freemem(unsafe.Pointer(data))
		return s
	}
	rows := int((cend - cstart) / C.time_t(step))
	vals := unsafe.Slice((*float64)(unsafe.Pointer(data)), rows*int(n))
	for r := 0; r < rows; r++ {
		row := make([]float64, n)
		copy(row, vals[r*int(n):(r+1)*int(n)])
		s.Rows = append(s.Rows, row)
	}
	C.fs_freemem(unsafe.Pointer(data))
	return s
}

// call runs an argv-style librrd function under the library lock.
func call(kind C.int, args []string) error {
	argv, free := cArgs(args)
	defer free()
	errbuf := (*C.char)(C.malloc(errLen))
	defer C.free(unsafe.Pointer(errbuf))
	if err := load(); err != nil {
		return err
	}
	lib.Lock()
	rc := C.fs_call(kind, C.int(len(args)), argv, errbuf, errLen)
	lib.Unlock()
	if rc != 0 {
		return fmt.Errorf("rrd %s %s: %s", args[0], argAfter(args), C.GoString(errbuf))
	}
	return nil
}

func argAfter(args []string) string {
	if len(args) > 1 {
		return args[1]
	}
	return ""
}

// cArgs converts args to a C argv; free releases it.
func cArgs(args []string) (**C.char, func()) {
	argv := (**C.char)(C.malloc(C.size_t(len(args)+1) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	s := unsafe.Slice(argv, len(args)+1)
	for i, a := range args {
		s[i] = C.CString(a)
	}
	s[len(args)] = nil
	return argv, func() {
		for i := range args {
			C.free(unsafe.Pointer(s[i]))
		}
		C.free(unsafe.Pointer(argv))
	}
}
