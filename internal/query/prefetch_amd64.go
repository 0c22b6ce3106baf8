package query

import "unsafe"

// prefetchEntries asks the CPU to bring the packed entries at the indexes
// homes of the table starting at base into its cache, without waiting for
// them (PREFETCHT0): unlike loads, prefetches that miss do not hold up the
// instructions after them, so a run's misses all overlap.
//
//go:noescape
func prefetchEntries(base unsafe.Pointer, homes []uint32)

// hasPrefetch is true where prefetchEntries is an instruction.
const hasPrefetch = true
