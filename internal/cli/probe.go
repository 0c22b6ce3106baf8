package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/flowfile"
	"github.com/flowscan/flowscan/internal/probe"
)

func init() {
	register(40, "probe", "build flows from an interface or a pcap file and export NetFlow/IPFIX or write flow files", runProbe)
}

func runProbe(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("probe", "(--interface IF | --read FILE.pcap) (--export HOST:PORT [--format v9] | --dir DIR) [flags]",
		"Builds unidirectional flows (key: addresses, ports, protocol, VLAN) from packets, the fprobe /\n"+
			"softflowd successor. Packets come from a live interface (AF_PACKET; needs CAP_NET_RAW) or a\n"+
			"classic pcap file (packet time is the clock, so output matches the capture's time). Flows end\n"+
			"after --idle without packets, --active after their first packet, --fin after a TCP FIN/RST,\n"+
			"or early when --max-flows is reached; all end at exit. They are exported as NetFlow v5, v9 or\n"+
			"IPFIX over UDP, or written as flow files. A summary goes to stderr at exit.", stderr)
	iface := fs.String("interface", "", "capture live on interface `IF`")
	read := fs.String("read", "", "read packets from pcap `FILE` (classic libpcap format)")
	export := fs.String("export", "", "export flows over UDP to collector `HOST:PORT`")
	format := fs.String("format", "v9", "export `FORMAT`: v5, v9 or ipfix")
	dir := fs.String("dir", "", "write flow files under `DIR` instead of exporting")
	interval := fs.Duration("interval", 5*time.Minute, "flow file length with --dir")
	idle := fs.Duration("idle", probe.DefaultIdleTimeout, "end a flow after this long without packets")
	active := fs.Duration("active", probe.DefaultActiveTimeout, "end a flow this long after its first packet")
	fin := fs.Duration("fin", probe.DefaultFinTimeout, "end a TCP flow this long after its last packet once it saw FIN or RST (negative: off)")
	maxFlows := fs.Int("max-flows", probe.DefaultMaxFlows, "flow table size; when full, the least recently seen flow ends early")
	engine := fs.Uint("engine-id", 0, "engine ID (v5: type<<8|id), v9 source ID or IPFIX observation domain")
	rcvBuf := sizeFlag(4 << 20)
	fs.Var(&rcvBuf, "rcvbuf", "socket receive buffer `SIZE` for --interface (e.g. 4MiB, or plain bytes)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if (*iface == "") == (*read == "") {
		fmt.Fprintln(stderr, "flowscan probe: give exactly one of --interface or --read")
		fs.Usage()
		return errUsage
	}
	if (*export == "") == (*dir == "") {
		fmt.Fprintln(stderr, "flowscan probe: give exactly one of --export or --dir")
		fs.Usage()
		return errUsage
	}
	if *engine > 0xffffffff {
		return fmt.Errorf("--engine-id %d out of range", *engine)
	}
	exportFormat, err := probe.ParseExportFormat(*format)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	var live *probe.Live
	var inIf uint32
	if *iface != "" {
		live, err = probe.OpenLive(*iface, int(rcvBuf))
		if err != nil {
			return err
		}
		defer live.Close()
		inIf = uint32(live.IfIndex())
	}

	// The probe's clock: packet time for pcap input, the wall clock live.
	var p *probe.Probe
	var clock atomic.Int64
	now := func() time.Time {
		if live != nil {
			return time.Now()
		}
		return time.Unix(0, clock.Load())
	}

	var (
		exporter *probe.Exporter
		writer   *flowfile.Writer
		sinkErr  error
	)
	if *export != "" {
		conn, err := net.Dial("udp", *export)
		if err != nil {
			return fmt.Errorf("--export: %w", err)
		}
		defer conn.Close()
		if exporter, err = probe.NewExporter(conn, exportFormat, uint32(*engine)); err != nil {
			return err
		}
	}
	openWriter := func() error {
		if writer != nil || *dir == "" {
			return nil
		}
		host, _ := os.Hostname()
		w, err := flowfile.NewWriter(flowfile.Config{Dir: *dir, Interval: *interval, Hostname: host, Now: now})
		if err != nil {
			return err
		}
		writer = w
		return nil
	}
	if live != nil {
		if err := openWriter(); err != nil {
			return err
		}
	}
	emit := func(recs []flow.Record) {
		clock.Store(p.Now().UnixNano())
		var err error
		switch {
		case exporter != nil:
			err = exporter.Export(recs, p.Now())
		default:
			// Pcap input: the writer starts at the first flow's time.
			if err = openWriter(); err == nil {
				err = writer.Write(recs)
			}
		}
		if err != nil && sinkErr == nil {
			sinkErr = err
			if exporter != nil {
				fmt.Fprintf(stderr, "flowscan probe: --export %s: %v (carrying on; failed datagrams are counted)\n", *export, err)
			} else {
				fmt.Fprintf(stderr, "flowscan probe: %v\n", err)
			}
		}
	}
	p, err = probe.New(probe.Config{
		IdleTimeout: *idle, ActiveTimeout: *active, FinTimeout: *fin, MaxFlows: *maxFlows,
		Domain: uint32(*engine), InIf: inIf, Emit: emit,
	})
	if err != nil {
		return err
	}

	start := time.Now()
	var runErr error
	if live != nil {
		fmt.Fprintf(stderr, "flowscan probe: capturing on %s\n", *iface)
		runErr = live.Run(ctx, p, func() {
			if writer != nil {
				_ = writer.Tick()
			}
		})
	} else {
		f, err := os.Open(*read)
		if err != nil {
			return err
		}
		runErr = probe.ReadPcap(p, f)
		f.Close()
		if runErr != nil {
			runErr = fmt.Errorf("%s: %w", *read, runErr)
		}
	}
	p.Flush()
	clock.Store(p.Now().UnixNano())
	if writer != nil {
		if err := writer.Close(); err != nil && sinkErr == nil {
			sinkErr = err
		}
	}

	st := p.Stats()
	fmt.Fprintf(stderr, "flowscan probe: %d packets (%d IP, %d bytes; %d non-IP, %d malformed, %d fragments) in %v\n",
		st.Packets, st.IPPackets, st.IPBytes, st.NonIP, st.Malformed, st.Fragments, time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(stderr, "flowscan probe: %d flows ended (idle %d, active %d, fin/rst %d, at exit %d, expired early %d)\n",
		st.Exported(), st.ExpiredIdle, st.ExpiredActive, st.ExpiredFin, st.ExpiredFlushed, st.Evicted)
	if live != nil {
		if drops, err := live.Drops(); err == nil && drops > 0 {
			fmt.Fprintf(stderr, "flowscan probe: kernel dropped %d packets\n", drops)
		}
	}
	if exporter != nil {
		// Every ended flow went to the exporter: it was sent, skipped
		// (IPv6 in v5) or lost with a datagram that could not be sent.
		es := exporter.Stats()
		ended := st.Exported()
		lost := ended - min(ended, es.Records+es.SkippedIPv6)
		fmt.Fprintf(stderr, "flowscan probe: %s to %s: %d of %d flows sent in %d datagrams",
			exportFormat, *export, es.Records, ended, es.Datagrams)
		if es.SkippedIPv6 > 0 {
			fmt.Fprintf(stderr, ", %d IPv6 flows skipped (v5 cannot carry IPv6)", es.SkippedIPv6)
		}
		if es.Errors > 0 {
			fmt.Fprintf(stderr, ", %d datagrams not sent (%d flows lost)", es.Errors, lost)
		}
		fmt.Fprintln(stderr)
		if es.Errors > 0 {
			hint := ""
			if errors.Is(sinkErr, syscall.ECONNREFUSED) {
				hint = "; nothing listens on that port?"
			}
			sinkErr = fmt.Errorf("--export %s: %d of %d datagrams could not be sent, %d of %d flows lost (first error: %v%s)",
				*export, es.Errors, es.Errors+es.Datagrams, lost, ended, sinkErr, hint)
		}
	}
	if writer != nil {
		ws := writer.Stats()
		fmt.Fprintf(stderr, "flowscan probe: %d records in %d files under %s\n", ws.RecordsWritten, ws.FilesCompleted, *dir)
	}
	return errors.Join(runErr, sinkErr)
}
