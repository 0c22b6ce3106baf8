package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/testutil"
)

var (
	// flowscanBin is the binary built by TestMain, empty if the build failed.
	flowscanBin string
	// buildErr says why the binary could not be built.
	buildErr error
	// repoRoot is the module root.
	repoRoot string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

// runMain builds ./cmd/flowscan into a temporary directory and runs the tests.
func runMain(m *testing.M) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	repoRoot = filepath.Clean(filepath.Join(wd, "..", ".."))
	dir, err := os.MkdirTemp("", "flowscan-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if !testingShort() {
		flowscanBin, buildErr = buildFlowscan(dir)
	}
	return m.Run()
}

// testingShort reports -short before flag parsing by testing.M.Run.
func testingShort() bool {
	for _, a := range os.Args[1:] {
		if a == "-test.short" || a == "-test.short=true" || a == "-short" {
			return true
		}
	}
	return false
}

// buildFlowscan runs go build on ./cmd/flowscan with a time limit.
func buildFlowscan(dir string) (string, error) {
	if _, err := os.Stat(filepath.Join(repoRoot, "cmd", "flowscan")); err != nil {
		return "", fmt.Errorf("no ./cmd/flowscan: %w", err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("go tool not in PATH: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(dir, "flowscan")
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, "./cmd/flowscan")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/flowscan: %v\n%s", err, out)
	}
	return bin, nil
}

// needFlowscan skips the test when the binary is unavailable.
func needFlowscan(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test skipped in -short mode")
	}
	if flowscanBin == "" {
		t.Skipf("flowscan binary unavailable, skipping: %v", buildErr)
	}
}

// needTool skips the test when an external tool is not installed.
func needTool(t *testing.T, name, hint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (%s); skipping", name, hint)
	}
	return p
}

// proc is a started external process.
type proc struct {
	name   string
	cmd    *exec.Cmd
	out    *testutil.LockedBuffer
	done   chan struct{}
	err    error // valid after done is closed
	killed bool
}

// start runs a command in the background; cleanup kills it if still running.
func start(t *testing.T, name string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), out: &testutil.LockedBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				t.Errorf("%s (pid %d) did not die after SIGKILL", name, p.cmd.Process.Pid)
			}
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, tail(p.out.String(), 4000))
		}
	})
	return p
}

// running reports whether the process has not exited yet.
func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// wait waits up to d for the process to exit and returns its exit error.
func (p *proc) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		t.Fatalf("%s did not exit within %v; output:\n%s", p.name, d, tail(p.out.String(), 4000))
		return nil
	}
}

// signal sends sig and waits up to d for the process to exit.
func (p *proc) signal(t *testing.T, sig syscall.Signal, d time.Duration) error {
	t.Helper()
	if sig == syscall.SIGKILL {
		p.killed = true
	}
	if err := p.cmd.Process.Signal(sig); err != nil && p.running() {
		t.Fatalf("signal %s to %s: %v", sig, p.name, err)
	}
	return p.wait(t, d)
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// freeTCPPort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// eventually polls cond every 50 ms until it returns true or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// collector is a running `flowscan collect`.
type collector struct {
	*proc
	port    int    // UDP listen port
	metrics string // metrics ADDR:PORT
	dir     string
}

// startCollector runs flowscan collect on 127.0.0.1:port writing to dir and
// waits until its metrics endpoint answers (the sockets are bound by then).
func startCollector(t *testing.T, port int, dir string, extra ...string) *collector {
	t.Helper()
	c := &collector{port: port, dir: dir, metrics: fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))}
	args := append([]string{"collect", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--dir", dir,
		"--metrics", c.metrics, "--tz", "UTC"}, extra...)
	c.proc = start(t, "flowscan collect", flowscanBin, args...)
	eventually(t, 15*time.Second, "the collector's metrics endpoint", func() bool {
		if !c.running() {
			t.Fatalf("collector exited early: %v\n%s", c.err, c.out.String())
		}
		_, err := c.scrape()
		return err == nil
	})
	return c
}

// scrape fetches the collector's metrics as name{labels} -> value.
func (c *collector) scrape() (map[string]float64, error) {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get("http://" + c.metrics + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s", resp.Status)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// metricSum sums every series of the metric name.
func metricSum(m map[string]float64, name string) float64 {
	var s float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

// dumpRecord is one flow as printed by `flowscan dump --format json`.
type dumpRecord struct {
	Exporter     string `json:"exporter"`
	SrcAddr      string `json:"src_addr"`
	DstAddr      string `json:"dst_addr"`
	NextHop      string `json:"next_hop"`
	SrcPort      uint16 `json:"src_port"`
	DstPort      uint16 `json:"dst_port"`
	Proto        uint8  `json:"proto"`
	TOS          uint8  `json:"tos"`
	TCPFlags     uint8  `json:"tcp_flags"`
	InIf         uint32 `json:"in_if"`
	OutIf        uint32 `json:"out_if"`
	SrcAS        uint32 `json:"src_as"`
	DstAS        uint32 `json:"dst_as"`
	SrcMask      uint8  `json:"src_mask"`
	DstMask      uint8  `json:"dst_mask"`
	Bytes        uint64 `json:"bytes"`
	Packets      uint64 `json:"packets"`
	Start        string `json:"start"`
	End          string `json:"end"`
	SamplingRate uint32 `json:"sampling_rate"`
}

// dumpMeta is one file's metadata as printed by `dump --meta --format json`.
type dumpMeta struct {
	File      string `json:"file"`
	Complete  bool   `json:"complete"`
	Recovered bool   `json:"recovered"`
	Flows     uint64 `json:"flows"`
	Packets   uint64 `json:"packets"`
	Bytes     uint64 `json:"bytes"`
	LostFlows uint64 `json:"lost_flows"`
	Exporters []struct {
		Exporter  string `json:"exporter"`
		Domain    uint32 `json:"domain"`
		Format    string `json:"format"`
		Datagrams uint64 `json:"datagrams"`
		Flows     uint64 `json:"flows"`
		LostFlows uint64 `json:"lost_flows"`
	} `json:"exporters"`
}

// runFlowscan runs a short flowscan command and returns its stdout.
func runFlowscan(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, flowscanBin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("flowscan %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// dumpFlows reads the flows of files or directories with flowscan dump.
func dumpFlows(t *testing.T, paths ...string) []dumpRecord {
	t.Helper()
	out, err := runFlowscan(t, append([]string{"dump", "--format", "json"}, paths...)...)
	if err != nil {
		t.Fatal(err)
	}
	return decodeLines[dumpRecord](t, out)
}

// dumpMetas reads the metadata of files or directories with flowscan dump.
func dumpMetas(t *testing.T, paths ...string) []dumpMeta {
	t.Helper()
	out, err := runFlowscan(t, append([]string{"dump", "--meta", "--format", "json"}, paths...)...)
	if err != nil {
		t.Fatal(err)
	}
	return decodeLines[dumpMeta](t, out)
}

// decodeLines decodes one JSON object per line.
func decodeLines[T any](t *testing.T, out []byte) []T {
	t.Helper()
	var recs []T
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var r T
		err := dec.Decode(&r)
		if err == io.EOF {
			return recs
		}
		if err != nil {
			t.Fatalf("decoding dump output: %v", err)
		}
		recs = append(recs, r)
	}
}

// listFiles returns the names of regular files under dir, skipping the
// state directory.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".flowscan" {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}
