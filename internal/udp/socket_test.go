package udp

import (
	"bytes"
	"context"
	"math"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestReadBatch(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(addr, func(t *testing.T) {
			s, granted, err := Listen(context.Background(), addr, 1<<20)
			if err != nil {
				t.Skipf("listen %s: %v", addr, err)
			}
			defer s.Close()
			if granted <= 0 {
				t.Errorf("granted receive buffer %d", granted)
			}
			conn, err := net.Dial("udp", s.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			want := [][]byte{[]byte("one"), bytes.Repeat([]byte{7}, SlotSize), bytes.Repeat([]byte{9}, SlotSize+1), []byte("four")}
			for _, d := range want {
				if _, err := conn.Write(d); err != nil {
					t.Fatal(err)
				}
			}
			local := netip.MustParseAddrPort(conn.LocalAddr().String())
			b := NewBatch()
			var got [][]byte
			truncated := 0
			deadline := time.Now().Add(5 * time.Second)
			for len(got)+truncated < len(want) && time.Now().Before(deadline) {
				if err := s.ReadBatch(b); err != nil {
					t.Fatal(err)
				}
				truncated += b.Truncated
				for i := 0; i < b.N; i++ {
					if b.Src(i) != local {
						t.Errorf("source %v, want %v", b.Src(i), local)
					}
					got = append(got, bytes.Clone(b.Data(i)))
				}
			}
			if truncated != 1 || len(got) != 3 || !bytes.Equal(got[0], want[0]) || !bytes.Equal(got[1], want[1]) || !bytes.Equal(got[2], want[3]) {
				t.Errorf("got %d datagrams (%d truncated), want 3 intact and the oversize one truncated", len(got), truncated)
			}
			done := make(chan error, 1)
			go func() { done <- s.ReadBatch(b) }()
			time.Sleep(50 * time.Millisecond)
			s.Close()
			select {
			case err := <-done:
				if !IsClosed(err) {
					t.Errorf("ReadBatch after Close: %v, want a closed error", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("ReadBatch did not return after Close")
			}
		})
	}
}

// TestDrops: datagrams that overflow a small receive buffer are counted
// without reading anything, and the count survives Close.
func TestDrops(t *testing.T) {
	s, _, err := Listen(context.Background(), "127.0.0.1:0", 4096)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Drops(); got != 0 {
		t.Errorf("fresh socket: %d drops", got)
	}
	conn, err := net.Dial("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const sent = 200
	payload := bytes.Repeat([]byte{1}, 1000)
	for i := 0; i < sent; i++ {
		if _, err := conn.Write(payload); err != nil {
			t.Fatal(err)
		}
	}
	drops := s.Drops()
	if drops == 0 || drops >= sent {
		t.Errorf("%d drops of %d datagrams sent to a 4 KiB buffer, want some but not all", drops, sent)
	}
	s.Close()
	if got := s.Drops(); got != drops {
		t.Errorf("after Close: %d drops, want the last count %d", got, drops)
	}
}

// TestTryReadBatch: an empty socket returns at once with an empty batch; a
// waiting datagram is read.
func TestTryReadBatch(t *testing.T) {
	s, _, err := Listen(context.Background(), "127.0.0.1:0", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := NewBatch()
	done := make(chan error, 1)
	go func() { done <- s.TryReadBatch(b) }()
	select {
	case err := <-done:
		if err != nil || b.N != 0 || b.Truncated != 0 {
			t.Fatalf("empty socket: %v, %d datagrams, %d truncated", err, b.N, b.Truncated)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("TryReadBatch waited on an empty socket")
	}
	conn, err := net.Dial("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.N == 0 && time.Now().Before(deadline) {
		if err := s.TryReadBatch(b); err != nil {
			t.Fatal(err)
		}
		if b.N == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	if b.N != 1 || string(b.Data(0)) != "hello" {
		t.Fatalf("read %d datagrams, want the one sent", b.N)
	}
	// ReadBatch still waits after a TryReadBatch.
	go func() { done <- s.ReadBatch(b) }()
	select {
	case err := <-done:
		t.Fatalf("ReadBatch returned on an empty socket: %v, %d datagrams", err, b.N)
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := conn.Write([]byte("again")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil || b.N != 1 || string(b.Data(0)) != "again" {
			t.Fatalf("ReadBatch: %v, %d datagrams", err, b.N)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadBatch did not return the datagram")
	}
}

// TestDropsPastWrap feeds readings of the kernel's 32-bit drop counter
// through the accumulator: the total keeps growing across the wrap.
func TestDropsPastWrap(t *testing.T) {
	tests := []struct {
		readings []uint32
		want     uint64
	}{
		{[]uint32{0, 10, 25}, 25},
		{[]uint32{math.MaxUint32 - 5, 4}, math.MaxUint32 - 5 + 10},
		{[]uint32{math.MaxUint32, 0, 3}, math.MaxUint32 + 4},
		{[]uint32{100, 100, 100}, 100},
	}
	for _, tt := range tests {
		var s Socket
		var total uint64
		for _, r := range tt.readings {
			total += uint64(s.addDrops(r))
		}
		if total != tt.want {
			t.Errorf("readings %v: total %d, want %d", tt.readings, total, tt.want)
		}
	}
}
