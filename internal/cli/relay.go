package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/flowscan/flowscan/internal/metrics"
	"github.com/flowscan/flowscan/internal/relay"
)

func init() {
	register(25, "relay", "copy NetFlow/IPFIX/sFlow datagrams unchanged to several collectors (flow fan-out)", runRelay)
}

// destinationList is the repeatable --to flag. Unlike stringList it does
// not split on commas, which belong to a destination's option lists.
type destinationList []relay.Destination

func (d *destinationList) String() string {
	parts := make([]string, len(*d))
	for i, x := range *d {
		parts[i] = x.String()
	}
	return strings.Join(parts, " ")
}

func (d *destinationList) Set(v string) error {
	dest, err := relay.ParseDestination(v)
	if err != nil {
		return err
	}
	*d = append(*d, dest)
	return nil
}

func runRelay(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("relay", "--listen ADDR:PORT --to DEST [--to DEST...]",
		"Receives NetFlow v5/v9, IPFIX and sFlow datagrams and copies each, byte for byte, to every\n"+
			"destination whose filters it passes. A slow or dead destination never holds up the others:\n"+
			"each has its own bounded queue, and what does not fit is dropped and counted.\n\n"+
			"DEST is HOST:PORT[;exporter=ADDR|PREFIX[,...]][;format=NAME[,...]][;spoof][;queue=N]\n"+
			"  exporter=  only datagrams from these exporters (addresses or prefixes)\n"+
			"  format=    only these formats: netflow5 (v5), netflow9 (v9), ipfix, sflow5 (sflow)\n"+
			"  spoof      send from the original exporter's address and port, so the receiving\n"+
			"             collector still sees who exported (raw socket: root or CAP_NET_RAW; the\n"+
			"             exporter and the destination must be of the same address family)\n"+
			"  queue=     datagrams that may wait for this destination (default 8192)\n"+
			"Quote DEST in the shell (it contains ';'). Examples:\n"+
			"  --to 192.0.2.10:2055\n"+
			"  --to '[2001:db8::5]:2055;exporter=10.0.0.0/8;format=ipfix,v9;spoof'", stderr)
	var listen stringList
	var dests destinationList
	fs.Var(&listen, "listen", "receive on UDP `ADDR:PORT` (repeatable, or comma-separated; default 127.0.0.1:2055)")
	fs.Var(&dests, "to", "copy to destination `DEST` (repeatable; see above)")
	rcvbuf := sizeFlag(relay.DefaultRcvBuf)
	fs.Var(&rcvbuf, "rcvbuf", "socket receive buffer `SIZE` (e.g. 4MiB, or plain bytes)")
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics on `ADDR:PORT` at /metrics (default off)")
	logLevel := fs.String("log-level", "info", "log `LEVEL`: debug, info, warn or error")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if len(dests) == 0 {
		fmt.Fprintln(stderr, "flowscan relay: at least one --to destination is needed")
		fs.Usage()
		return errUsage
	}
	if len(listen) == 0 {
		listen = stringList{"127.0.0.1:2055"}
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	fwd, err := relay.NewForwarder(dests, logger)
	if err != nil {
		return err
	}
	var receivers []*relay.Receiver
	closeAll := func() {
		for _, r := range receivers {
			r.Close()
		}
	}
	for _, addr := range listen {
		r, err := relay.Listen(ctx, addr, int(rcvbuf))
		if err != nil {
			closeAll()
			fwd.Close()
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		receivers = append(receivers, r)
	}
	if *metricsAddr != "" {
		reg := metrics.NewRegistry()
		reg.Register(func(w *metrics.Writer) {
			for _, r := range receivers {
				l := metrics.L("listen", r.Addr().String())
				w.Sample("flowscan_relay_received_datagrams_total", metrics.Counter, "Datagrams received by the relay.", float64(r.Received()), l)
				w.Sample("flowscan_relay_truncated_datagrams_total", metrics.Counter, "Datagrams too long to relay (over 9216 bytes).", float64(r.Truncated()), l)
				w.Sample("flowscan_relay_socket_drops_total", metrics.Counter, "Datagrams the kernel dropped on the receive socket (buffer full).", float64(r.KernelDrops()), l)
			}
		})
		reg.Register(fwd.WriteMetrics)
		serveMetrics(*metricsAddr, reg, logger)
	}
	var addrs []string
	for _, r := range receivers {
		addrs = append(addrs, r.Addr().String())
	}
	logger.Info("relaying", "listen", addrs, "to", dests.String())

	var wg sync.WaitGroup
	errs := make(chan error, len(receivers))
	for _, r := range receivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Run(func(src netip.AddrPort, data []byte) { fwd.Datagram(src, data) }); err != nil {
				errs <- err
			}
		}()
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
	}
	closeAll()
	wg.Wait()
	closeErr := fwd.Close()

	var received, socketDrops uint64
	for _, r := range receivers {
		received += r.Received()
		socketDrops += r.KernelDrops()
	}
	fmt.Fprintf(stdout, "received %d datagrams (%d dropped by the kernel)\n", received, socketDrops)
	for _, s := range fwd.Stats() {
		fmt.Fprintf(stdout, "  %s: forwarded %d (%d bytes), dropped %d, filtered %d, errors %d\n",
			s.Destination, s.Forwarded, s.Bytes, s.Dropped, s.Filtered, s.Errors)
	}
	return errors.Join(runErr, closeErr)
}
