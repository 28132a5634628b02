package persistence

import (
	"context"
	"fmt"
	"time"
)

// ExpireReport counts the rows an expiry pass deleted.
type ExpireReport struct {
	Documents, Conversations, AppliedMessages int64
}

// expireChunk bounds the rows one delete statement removes, so expiry never
// holds long locks or builds huge transactions.
const expireChunk = 5000

// Expire deletes what has outlived its window: documents past expires_at and
// conversation starts older than ttl (both hold PII, and an expired
// conversation never yields a document again), and applied-message records
// older than appliedRetention. It deletes in chunks until nothing is left.
func (s *Store) Expire(ctx context.Context, ttl, appliedRetention time.Duration) (ExpireReport, error) {
	now := s.now()
	var rep ExpireReport
	steps := []struct {
		name string
		sql  string
		arg  time.Time
		n    *int64
	}{
		{"prechat_documents", `DELETE FROM prechat_documents WHERE anonymous_id IN (SELECT anonymous_id FROM prechat_documents WHERE expires_at <= $1 LIMIT $2)`, now, &rep.Documents},
		{"conversations", `DELETE FROM conversations WHERE anonymous_id IN (SELECT anonymous_id FROM conversations WHERE event_time <= $1 LIMIT $2)`, now.Add(-ttl), &rep.Conversations},
		{"applied_messages", `DELETE FROM applied_messages WHERE message_id IN (SELECT message_id FROM applied_messages WHERE applied_at < $1 LIMIT $2)`, now.Add(-appliedRetention), &rep.AppliedMessages},
	}
	for _, st := range steps {
		for {
			tag, err := s.pool.Exec(ctx, st.sql, st.arg, expireChunk)
			if err != nil {
				return rep, fmt.Errorf("expire %s: %w", st.name, err)
			}
			*st.n += tag.RowsAffected()
			if tag.RowsAffected() < expireChunk {
				break
			}
		}
	}
	return rep, nil
}
