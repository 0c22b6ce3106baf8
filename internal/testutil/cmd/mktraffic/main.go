// Command mktraffic writes the synthetic traffic capture used as exporter
// input by flowscan's tests (testdata/traffic.pcap).
//
// Regenerate it from the repository root with
//
//	go run ./internal/testutil/cmd/mktraffic -o testdata/traffic.pcap
//
// or with go generate ./internal/testutil. The output is deterministic for a
// given -seed; after regenerating, rerun testdata/captures/regen.sh.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/flowscan/flowscan/internal/testutil"
)

func main() {
	out := flag.String("o", "testdata/traffic.pcap", "output pcap file")
	seed := flag.Uint64("seed", 1, "random seed")
	packets := flag.Int("packets", 2500, "approximate number of packets")
	dur := flag.Duration("duration", 60*time.Second, "span of packet timestamps")
	flag.Parse()

	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mktraffic:", err)
		os.Exit(1)
	}
	sum, err := testutil.GenerateTraffic(f, testutil.TrafficConfig{Seed: *seed, Packets: *packets, Duration: *dur})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mktraffic:", err)
		os.Exit(1)
	}
	fmt.Printf("%s: %d packets (%d IPv4, %d IPv6), %d IP bytes, %d conversations, %d unidirectional flows, %s .. %s\n",
		*out, sum.Packets, sum.IPv4Packets, sum.IPv6Packets, sum.IPBytes, sum.Conversations, sum.Flows,
		sum.First.Format(time.RFC3339Nano), sum.Last.Format(time.RFC3339Nano))
}
