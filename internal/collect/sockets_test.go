package collect_test

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/collect"
	"github.com/flowscan/flowscan/internal/flow"
	"github.com/flowscan/flowscan/internal/gen"
)

// TestManySocketsConcurrentExporters: with several SO_REUSEPORT sockets on
// one address, exporters on different source ports are spread over the
// sockets, whose readers decode concurrently under the pipeline lock while
// the test rotates files; every flow is stored once and accounted to its
// exporter.
func TestManySocketsConcurrentExporters(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sockets   int
		exporters int
	}{
		{"one socket", 1, 4},
		{"four sockets", 4, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			r := start(t, dir, func(c *collect.Config) { c.SocketsPerAddr = tc.sockets })
			const datagrams, perDatagram = 200, 20
			var wg sync.WaitGroup
			for e := 0; e < tc.exporters; e++ {
				conn, err := net.Dial("udp", r.c.Addrs()[0])
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { conn.Close() })
				wg.Add(1)
				go func() {
					defer wg.Done()
					v9 := &gen.V9Encoder{SourceID: uint32(e)}
					mix := gen.NewMix(int64(e), gen.MixOptions{IPv6Share: 0.2})
					recs := make([]flow.Record, perDatagram)
					var buf []byte
					for i := 0; i < datagrams; i++ {
						now := time.Now()
						for j := range recs {
							mix.Next(&recs[j], now)
						}
						buf = v9.Append(buf[:0], now, recs)
						if _, err := conn.Write(buf); err != nil {
							t.Error(err)
							return
						}
						if i%50 == 0 {
							time.Sleep(2 * time.Millisecond) // stay far below the socket buffer
						}
					}
				}()
			}
			rotations := make(chan struct{})
			go func() {
				defer close(rotations)
				for i := 0; i < 5; i++ {
					_ = r.c.Rotate() // races with the readers on purpose (run with -race)
					time.Sleep(5 * time.Millisecond)
				}
			}()
			wg.Wait()
			<-rotations
			want := float64(tc.exporters * datagrams * perDatagram)
			r.waitMetric(t, want, "flowscan_flows_total")
			r.stop(t)
			got, metas := readAll(t, dir)
			if len(got) != int(want) {
				t.Fatalf("stored %d flows, sent %v", len(got), want)
			}
			domains := map[uint32]uint64{}
			for _, m := range metas {
				for _, e := range m.Exporters {
					domains[e.Domain] += e.Flows
				}
			}
			for e := 0; e < tc.exporters; e++ {
				if domains[uint32(e)] != datagrams*perDatagram {
					t.Errorf("exporter domain %d: %d flows in the metadata, want %d", e, domains[uint32(e)], datagrams*perDatagram)
				}
			}
		})
	}
}
