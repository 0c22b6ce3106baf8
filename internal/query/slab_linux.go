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
	// allocated on the heap.
	mapMin = hugePage
)

// mapEntries returns n zeroed entries and the mapping that holds them, to
// be passed to unmapEntries; mem is nil when the entries are on the heap
// (small tables, or when mapping fails).
func mapEntries(n int) (slots []packedEntry, mem []byte) {
	size := n * int(unsafe.Sizeof(packedEntry{}))
	if size < mapMin {
		return make([]packedEntry, n), nil
	}
	mem, err := syscall.Mmap(-1, 0, size+hugePage, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return make([]packedEntry, n), nil
	}
	base := uintptr(unsafe.Pointer(&mem[0]))
	off := int((base+hugePage-1)&^(hugePage-1) - base)
	_ = syscall.Madvise(mem[off:off+size], 14) // MADV_HUGEPAGE; a hint, its failure is harmless
	return unsafe.Slice((*packedEntry)(unsafe.Pointer(&mem[off])), n), mem
}

// unmapEntries releases a mapping from mapEntries (nil: nothing to do).
func unmapEntries(mem []byte) {
	if mem != nil {
		_ = syscall.Munmap(mem)
	}
}
