package persistence

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/prechat/prechat/mapping"
)

// RefreshQueued refreshes, in one transaction, the documents of at most
// limit visitors from the refresh queue (oldest first; see
// Config.FanOutLimit), and removes them from it. Concurrent callers take
// different visitors (SKIP LOCKED). Queued in the result is how many it
// took; fewer than limit means the queue is drained. Expired visitors are
// dropped from the queue without a refresh.
func (s *Store) RefreshQueued(ctx context.Context, m *mapping.Materializer, limit int) (mapping.BatchResult, error) {
	var res mapping.BatchResult
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		// Serialise with the document phase of concurrent batches, which
		// may be changing the same visitors.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, documentsLock); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
DELETE FROM document_refreshes WHERE anonymous_id IN (
    SELECT anonymous_id FROM document_refreshes ORDER BY queued_at, anonymous_id LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING anonymous_id`, limit)
		if err != nil {
			return err
		}
		taken, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(taken) == 0 {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT anonymous_id FROM conversations WHERE anonymous_id = ANY($1) AND event_time > $2 ORDER BY anonymous_id`,
			taken, s.now().Add(-m.TTL))
		if err != nil {
			return err
		}
		live, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if res, err = s.writeDocuments(ctx, tx, live, m); err != nil {
			return err
		}
		res.Queued = len(taken)
		return notifyIDs(ctx, tx, res.Visitors)
	})
	if err != nil {
		return mapping.BatchResult{}, fmt.Errorf("refresh queued documents: %w", classify(err))
	}
	return res, nil
}
