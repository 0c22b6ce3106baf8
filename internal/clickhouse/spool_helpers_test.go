package clickhouse

import "github.com/flowscan/flowscan/internal/flow"

// put writes b to the spool and records it (tests).
func (s *spool) put(b *batch) (int64, error) {
	buf := s.encode(b)
	if err := s.write(b.seq(), buf); err != nil {
		return 0, err
	}
	s.record(b.seq(), int64(len(buf)))
	return int64(len(buf)), nil
}

// testBatch makes a sealed batch of recs with id, as a Native block or,
// with rowBinary, as the RowBinary rows of flowscan's spool files before
// the Native format.
func testBatch(id uint64, recs []flow.Record, rowBinary, attempted bool) *batch {
	b := &batch{id: id, rows: len(recs), attempted: attempted, minT: 1 << 31, rowBinary: rowBinary}
	if !rowBinary {
		b.build.reset(make([]byte, nativeSize(len(recs))), len(recs))
	}
	for i := range recs {
		if rowBinary {
			b.data = AppendRow(b.data, &recs[i], b.id)
		} else {
			b.build.add(&recs[i], b.id)
		}
		b.minT = min(b.minT, unixSeconds(recs[i].End))
		b.maxT = max(b.maxT, unixSeconds(recs[i].End))
	}
	if !rowBinary {
		b.data = b.build.seal()
	}
	return b
}

// formatName names a batch format in subtest names.
func formatName(rowBinary bool) string {
	if rowBinary {
		return "RowBinary"
	}
	return "Native"
}
