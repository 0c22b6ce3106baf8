package reexport

import (
	"net"
	"testing"
	"time"

	"github.com/flowscan/flowscan/internal/flow"
)

// TestSmallBatchesUseTheWholeQueue: the queue bound counts flows, so many
// one-flow batches (sFlow, low rates) are not dropped while the queue has
// room.
func TestSmallBatchesUseTheWholeQueue(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	e, err := New(Config{Format: "ipfix", Target: pc.LocalAddr().String(), Queue: 2048})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var one [1]flow.Record
	for i := 0; i < 1000; i++ {
		one[0].Bytes = uint64(i)
		e.Flows(one[:])
	}
	deadline := time.Now().Add(5 * time.Second)
	for e.Stats().Pending > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := e.Stats(); st.Dropped != 0 || st.Flows != 1000 {
		t.Errorf("1000 one-flow batches into a 2048-flow queue: %+v", st)
	}
}
