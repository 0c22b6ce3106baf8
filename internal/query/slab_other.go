//go:build !linux

package query

// mapEntries returns n zeroed entries on the heap (mem is always nil off
// Linux).
func mapEntries(n int) (slots []packedEntry, mem []byte) { return make([]packedEntry, n), nil }

// unmapEntries does nothing off Linux.
func unmapEntries(mem []byte) {}
