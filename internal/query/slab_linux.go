package query

import (
	"syscall"
	"unsafe"
)

// Large aggregation tables live outside the Go heap, in anonymous
// mappings backed by transparent huge pages where the kernel allows it
// (madvise mode): a fresh table of a few MB then costs a few page faults
// instead of one per 4 KiB page, which on a virtual machine is a large
// part of a query's time, and the garbage collector neither scans nor
// counts it. Tables are unmapped explicitly when the aggregation is done.

const (
	// hugePage is the size of a transparent huge page on amd64 and arm64
	// (with 4 KiB base pages).
	hugePage = 2 << 20
	// mapMin is the smallest table, in bytes, that is mapped rather than
	// allocated on the heap (it takes one huge page).
	mapMin = 512 << 10
)

// mapEntries returns n zeroed entries and the mapping that holds them, to
// be passed to unmapEntries; mem is nil when the entries are on the heap
// (small tables, or when mapping fails).
func mapEntries(n int) (slots []packedEntry, mem []byte) {
	size := n * int(unsafe.Sizeof(packedEntry{}))
	if size < mapMin {
		return make([]packedEntry, n), nil
	}
	// Whole huge pages, aligned: map one more to align within.
	region := (size + hugePage - 1) &^ (hugePage - 1)
	mem, err := syscall.Mmap(-1, 0, region+hugePage, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return make([]packedEntry, n), nil
	}
	base := uintptr(unsafe.Pointer(&mem[0]))
	off := int((base+hugePage-1)&^(hugePage-1) - base)
	table := mem[off : off+region]
	_ = syscall.Madvise(table, 14) // MADV_HUGEPAGE; a hint, its failure is harmless
	// Write to every page now: a table's first access is often a read,
	// which would map the shared zero page, and the write that follows
	// would then fault again and flush the TLB of every thread's CPU.
	for i := 0; i < len(table); i += 4096 {
		table[i] = 0
	}
	return unsafe.Slice((*packedEntry)(unsafe.Pointer(&table[0])), n), mem
}

// unmapEntries releases a mapping from mapEntries (nil: nothing to do).
func unmapEntries(mem []byte) {
	if mem != nil {
		_ = syscall.Munmap(mem)
	}
}
