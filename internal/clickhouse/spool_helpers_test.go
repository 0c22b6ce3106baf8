package clickhouse

// put writes b to the spool and records it (tests).
func (s *spool) put(b *batch) (int64, error) {
	buf := s.encode(b)
	if err := s.write(b.seq(), buf); err != nil {
		return 0, err
	}
	s.record(b.seq(), int64(len(buf)))
	return int64(len(buf)), nil
}
