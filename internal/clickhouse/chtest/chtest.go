// Package chtest starts private ClickHouse servers on loopback for tests:
// each with its own data directory and free ports, optionally several
// as the shards of one cluster. Tests skip when clickhouse-server is not
// installed (apt install clickhouse-server).
package chtest

import (
	"fmt"
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
)

// Binary is the server executable.
const Binary = "/usr/sbin/clickhouse-server"

// Server is one running server.
type Server struct {
	t        testing.TB
	Dir      string
	HTTPPort int
	TCPPort  int
	cmd      *exec.Cmd
	config   string
}

// URL is the server's HTTP address with database db.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("http://127.0.0.1:%d/%s", s.HTTPPort, db)
}

// Available reports whether a server can be started here.
func Available() bool {
	_, err := os.Stat(Binary)
	return err == nil
}

// Start starts one server (skipping the test if none is installed).
func Start(t testing.TB) *Server {
	return StartCluster(t, "", 1)[0]
}

// StartCluster starts n servers; with a cluster name, each one's
// remote_servers configuration defines that cluster with the n servers as
// its shards (one replica each).
func StartCluster(t testing.TB, cluster string, n int) []*Server {
	t.Helper()
	if !Available() {
		t.Skip("clickhouse-server not installed (apt install clickhouse-server)")
	}
	servers := make([]*Server, n)
	for i := range servers {
		servers[i] = &Server{t: t, Dir: t.TempDir(), HTTPPort: freePort(t), TCPPort: freePort(t)}
	}
	var remote string
	if cluster != "" {
		var b strings.Builder
		fmt.Fprintf(&b, "<remote_servers><%s>", cluster)
		for _, s := range servers {
			fmt.Fprintf(&b, "<shard><replica><host>127.0.0.1</host><port>%d</port></replica></shard>", s.TCPPort)
		}
		fmt.Fprintf(&b, "</%s></remote_servers>", cluster)
		remote = b.String()
	}
	for _, s := range servers {
		s.writeConfig(remote)
		s.start()
	}
	return servers
}

func (s *Server) writeConfig(remote string) {
	d := s.Dir
	cfg := fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>%[1]s/server.log</log><errorlog>%[1]s/server.err.log</errorlog><console>0</console></logger>
  <http_port>%[2]d</http_port>
  <tcp_port>%[3]d</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>%[1]s/data/</path>
  <tmp_path>%[1]s/data/tmp/</tmp_path>
  <user_files_path>%[1]s/data/user_files/</user_files_path>
  <format_schema_path>%[1]s/data/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
  %[4]s
</yandex>
`, d, s.HTTPPort, s.TCPPort, remote)
	users := `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
`
	s.config = filepath.Join(d, "config.xml")
	for name, text := range map[string]string{"config.xml": cfg, "users.xml": users} {
		if err := os.WriteFile(filepath.Join(d, name), []byte(text), 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
}

func (s *Server) start() {
	s.t.Helper()
	cmd := exec.Command(Binary, "--config-file="+s.config)
	cmd.Dir = s.Dir
	out, err := os.Create(filepath.Join(s.Dir, "stdout.log"))
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting clickhouse-server: %v", err)
	}
	s.cmd = cmd
	s.t.Cleanup(s.Kill)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ping", s.HTTPPort))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(s.Dir, "server.err.log"))
	s.t.Fatalf("clickhouse-server on port %d did not answer within 30 s; error log:\n%s", s.HTTPPort, tail(log, 2000))
}

// CPU returns the CPU time (user and system) the server has used so far,
// from /proc (Linux), at the kernel's clock-tick resolution (10 ms).
func (s *Server) CPU() (time.Duration, error) {
	if s.cmd == nil {
		return 0, fmt.Errorf("chtest: server on port %d is not running", s.HTTPPort)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) in ")": state is
	// field 3, utime and stime fields 14 and 15.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("chtest: cannot read %q", b)
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("chtest: cannot read %q", b)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil // USER_HZ is 100 on Linux
}

// WaitIdle waits until the server used no more than 20 ms of CPU in
// 500 ms (background merges done), for at most max.
func (s *Server) WaitIdle(max time.Duration) {
	deadline := time.Now().Add(max)
	prev, _ := s.CPU()
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		cur, err := s.CPU()
		if err != nil || cur-prev <= 20*time.Millisecond {
			return
		}
		prev = cur
	}
}

// Stop stops the server with SIGKILL (as a crash would); Restart starts
// it again on the same data and ports.
func (s *Server) Stop() { s.Kill() }

// Kill stops the server at once if it runs.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Restart starts a stopped server again.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
