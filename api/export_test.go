package api

// IngestsHeld reports the ingest requests holding a slot and the body
// bytes they reserved, so that tests wait until a slow request holds its
// share instead of sleeping.
func (s *Server) IngestsHeld() (requests int, bytes int64) {
	return len(s.ingests.requests), s.ingests.bytes.used.Load()
}
