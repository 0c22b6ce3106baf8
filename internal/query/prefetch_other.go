//go:build !amd64

package query

import "unsafe"

// prefetchEntries does nothing here: the table's add reads the entries
// ahead instead.
func prefetchEntries(base unsafe.Pointer, homes []uint32) {}

// hasPrefetch is true where prefetchEntries is an instruction.
const hasPrefetch = false
