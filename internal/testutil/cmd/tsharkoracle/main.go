// Command tsharkoracle decodes a capture of NetFlow v5/v9/IPFIX export
// datagrams with tshark and writes the reduced result (totals, per-datagram
// summary and every flow record) as JSON: the independent oracle that
// flowscan's decoder and integration tests compare against.
//
// Usage:
//
//	go run ./internal/testutil/cmd/tsharkoracle -port 39009 -o out.tshark.json capture.pcap
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/flowscan/flowscan/internal/testutil"
)

func main() {
	port := flag.Int("port", 2055, "UDP destination port of the export datagrams")
	out := flag.String("o", "-", "output file (- for stdout)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: tsharkoracle -port PORT [-o FILE] CAPTURE.pcap")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o, err := testutil.TsharkDecode(ctx, flag.Arg(0), *port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tsharkoracle:", err)
		os.Exit(1)
	}
	b, err := testutil.MarshalOracle(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tsharkoracle:", err)
		os.Exit(1)
	}
	if *out == "-" {
		_, err = os.Stdout.Write(b)
	} else {
		err = os.WriteFile(*out, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tsharkoracle:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "%s: v%d, %d datagrams, %d templates, %d flows (%d IPv4, %d IPv6), %d packets, %d bytes\n",
		o.Capture, o.Version, o.Datagrams, o.Templates, o.Flows, o.FlowsIPv4, o.FlowsIPv6, o.Packets, o.Bytes)
}
