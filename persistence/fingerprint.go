package persistence

import (
	"context"
	"fmt"
)

// fingerprintQueries list the state that events determine, each in a fixed
// order and without wall-clock columns, so equal event logs give equal
// fingerprints whatever the order, repetition or timing of their delivery.
var fingerprintQueries = []struct{ name, sql string }{
	{"traits", `SELECT subject_kind, subject_id, observer, traits::text FROM traits ORDER BY 1, 2, 3`},
	{"identity_links", `SELECT anonymous_id, user_id, event_time, message_id, verified FROM identity_links ORDER BY 1, 2`},
	{"group_memberships", `SELECT member_kind, member_id, group_id, event_time, message_id FROM group_memberships ORDER BY 1, 2, 3`},
	{"conversations", `SELECT anonymous_id, message_id, event_time, properties::text, token_hash FROM conversations ORDER BY 1`},
	{"prechat_documents", `SELECT anonymous_id, document::text, expires_at, token_hash FROM prechat_documents ORDER BY 1`},
	{"applied_messages", `SELECT message_id, event_type, anonymous_id, user_id FROM applied_messages ORDER BY 1`},
	{"dead_letters", `SELECT topic, "partition", "offset", message_key, raw, reason FROM dead_letters ORDER BY 1, 2, 3`},
}

// Fingerprint is an md5 per table over the state that events determine
// (traits, links, memberships, conversations, documents, applied messageIds,
// dead letters), keyed by table name. Two databases that applied the same log
// have equal fingerprints, which is how replays and tests check convergence.
func (s *Store) Fingerprint(ctx context.Context) (map[string]string, error) {
	out := make(map[string]string, len(fingerprintQueries))
	for _, q := range fingerprintQueries {
		var sum string
		var n int64
		err := s.pool.QueryRow(ctx, `SELECT md5(coalesce(string_agg(r::text, E'\n'), '')), count(*) FROM (`+q.sql+`) r`).Scan(&sum, &n)
		if err != nil {
			return nil, fmt.Errorf("fingerprint %s: %w", q.name, err)
		}
		out[q.name] = fmt.Sprintf("%d:%s", n, sum)
	}
	return out, nil
}

// Empty reports whether the database holds no state at all: no traits,
// links, memberships, conversations, documents, applied events, dead
// letters or offsets. A rebuild refuses to write into anything else.
func (s *Store) Empty(ctx context.Context) (bool, error) {
	var any bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM traits) OR EXISTS (SELECT 1 FROM identity_links)
    OR EXISTS (SELECT 1 FROM group_memberships) OR EXISTS (SELECT 1 FROM conversations)
    OR EXISTS (SELECT 1 FROM prechat_documents) OR EXISTS (SELECT 1 FROM applied_messages)
    OR EXISTS (SELECT 1 FROM dead_letters) OR EXISTS (SELECT 1 FROM kafka_offsets)`).Scan(&any)
	if err != nil {
		return false, fmt.Errorf("check the database is empty: %w", err)
	}
	return !any, nil
}
