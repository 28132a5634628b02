package persistence

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prechat/prechat/mapping"
)

// StoredDeadLetter is a row of dead_letters: the batch's
// mapping.DeadLetter (its Time is when it failed), with the row's id and
// when it was produced to the topic again.
type StoredDeadLetter struct {
	mapping.DeadLetter
	// ID identifies the row for requeueing.
	ID int64
	// RequeuedAt is when the message was produced again; nil: pending.
	RequeuedAt *time.Time
}

// DeadLetterFilter selects dead letters; zero fields select all.
type DeadLetterFilter struct {
	// IDs selects these rows only.
	IDs []int64
	// Pending selects rows not requeued yet.
	Pending bool
	// Limit bounds the rows returned. Default: 100.
	Limit int
}

// DeadLettersList returns dead letters, newest first.
func (s *Store) DeadLettersList(ctx context.Context, f DeadLetterFilter) ([]StoredDeadLetter, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	rows, err := s.pool.Query(ctx, `
SELECT id, topic, "partition", "offset", message_key, raw, reason, failed_at, requeued_at
FROM dead_letters
WHERE ($1::bigint[] IS NULL OR id = ANY($1)) AND (NOT $2 OR requeued_at IS NULL)
ORDER BY id DESC LIMIT $3`, nilIfEmpty(f.IDs), f.Pending, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StoredDeadLetter, error) {
		var d StoredDeadLetter
		var p int32
		err := r.Scan(&d.ID, &d.Topic, &p, &d.Offset, &d.Key, &d.Raw, &d.Reason, &d.Time, &d.RequeuedAt)
		d.Partition = int(p)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return out, nil
}

// DeadLettersMarkRequeued records that these rows were produced again; the
// rows are kept.
func (s *Store) DeadLettersMarkRequeued(ctx context.Context, ids []int64) error {
	if _, err := s.pool.Exec(ctx, `UPDATE dead_letters SET requeued_at = now() WHERE id = ANY($1)`, ids); err != nil {
		return fmt.Errorf("mark dead letters requeued: %w", err)
	}
	return nil
}

func nilIfEmpty(ids []int64) []int64 {
	if len(ids) == 0 {
		return nil
	}
	return ids
}
