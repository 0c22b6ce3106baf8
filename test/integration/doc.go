// Package integration holds flowscan's end-to-end tests. They build the
// flowscan binary once, run it as a separate process against real exporters
// (softflowd replaying testdata/traffic.pcap) and the built-in generator,
// and compare what `flowscan dump` reads back from the flow files with
// tshark's independent decoding of the very datagrams that were sent.
//
// The tests run in the normal `go test ./...`. They skip, saying why, when
// a tool they need (softflowd, tshark, capture rights on lo) is missing or
// when ./cmd/flowscan does not build, and under -short. All traffic stays on
// 127.0.0.1; every wait is bounded and every process is killed on cleanup.
package integration
