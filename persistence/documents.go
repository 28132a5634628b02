package persistence

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prechat/prechat/mapping"
)

// affectedVisitors lists the visitors with an unexpired conversation start
// whose documents the batch may change: those it touched directly, those
// linked to a user it touched, and the members of a group it touched.
func (s *Store) affectedVisitors(ctx context.Context, tx pgx.Tx, st *mapping.State, ttl time.Duration) ([]string, error) {
	anons, users, groups := map[string]bool{}, map[string]bool{}, map[string]bool{}
	touch := func(sub mapping.Subject) {
		switch sub.Kind {
		case mapping.KindAnonymous:
			anons[sub.ID] = true
		case mapping.KindUser:
			users[sub.ID] = true
		case mapping.KindGroup:
			groups[sub.ID] = true
		}
	}
	for sub := range st.Traits {
		touch(sub)
	}
	for l := range st.Links {
		anons[l.AnonymousID] = true
	}
	for m := range st.Memberships {
		touch(m.Member)
	}
	for a := range st.Conversations {
		anons[a] = true
	}
	if len(anons)+len(users)+len(groups) == 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `
WITH touched AS (
    SELECT unnest($1::text[]) AS anonymous_id
    UNION
    SELECT anonymous_id FROM identity_links WHERE user_id = ANY($2)
    UNION
    SELECT member_id FROM group_memberships WHERE member_kind = 'anonymous' AND group_id = ANY($3)
    UNION
    SELECT l.anonymous_id FROM group_memberships m JOIN identity_links l ON l.user_id = m.member_id
    WHERE m.member_kind = 'user' AND m.group_id = ANY($3)
)
SELECT c.anonymous_id FROM conversations c JOIN touched USING (anonymous_id)
WHERE c.event_time > $4
ORDER BY c.anonymous_id`, setKeys(anons), setKeys(users), setKeys(groups), s.now().Add(-ttl))
	if err != nil {
		return nil, fmt.Errorf("find visitors to refresh: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("find visitors to refresh: %w", err)
	}
	return ids, nil
}

// loadState reads everything the documents of these visitors are built
// from into a mapping.State, so that the stored state resolves visitors
// with exactly the rule the model uses (mapping.State.Visitor).
func loadState(ctx context.Context, tx pgx.Tx, anons []string) (*mapping.State, error) {
	st := mapping.NewState()
	var b pgx.Batch
	b.Queue(`SELECT anonymous_id, message_id, event_time, properties FROM conversations WHERE anonymous_id = ANY($1)`, anons).
		Query(func(rows pgx.Rows) error {
			var c mapping.Conversation
			var anon string
			_, err := pgx.ForEachRow(rows, []any{&anon, &c.MessageID, &c.At, &c.Properties}, func() error {
				c.At = c.At.UTC()
				st.Conversations[anon] = c
				c = mapping.Conversation{}
				return nil
			})
			return err
		})
	b.Queue(`SELECT anonymous_id, user_id, event_time, message_id FROM identity_links WHERE anonymous_id = ANY($1)`, anons).
		Query(func(rows pgx.Rows) error {
			var l mapping.Link
			var s mapping.Stamp
			_, err := pgx.ForEachRow(rows, []any{&l.AnonymousID, &l.UserID, &s.At, &s.MessageID}, func() error {
				s.At = s.At.UTC()
				st.Links[l] = s
				return nil
			})
			return err
		})
	const members = `(member_kind = 'anonymous' AND member_id = ANY($1))
    OR (member_kind = 'user' AND member_id IN (SELECT user_id FROM identity_links WHERE anonymous_id = ANY($1)))`
	b.Queue(`SELECT member_kind, member_id, group_id, event_time, message_id FROM group_memberships WHERE `+members, anons).
		Query(func(rows pgx.Rows) error {
			var m mapping.Membership
			var s mapping.Stamp
			_, err := pgx.ForEachRow(rows, []any{&m.Member.Kind, &m.Member.ID, &m.GroupID, &s.At, &s.MessageID}, func() error {
				s.At = s.At.UTC()
				st.Memberships[m] = s
				return nil
			})
			return err
		})
	b.Queue(`
SELECT subject_kind, subject_id, key, value, event_time, message_id FROM traits
WHERE (subject_kind = 'anonymous' AND subject_id = ANY($1))
   OR (subject_kind = 'user' AND subject_id IN (SELECT user_id FROM identity_links WHERE anonymous_id = ANY($1)))
   OR (subject_kind = 'group' AND subject_id IN (SELECT group_id FROM group_memberships WHERE `+members+`))`, anons).
		Query(func(rows pgx.Rows) error {
			var sub mapping.Subject
			var key string
			var t mapping.Trait
			_, err := pgx.ForEachRow(rows, []any{&sub.Kind, &sub.ID, &key, &t.Value, &t.At, &t.MessageID}, func() error {
				t.At = t.At.UTC()
				traits := st.Traits[sub]
				traits.Put(key, t)
				st.Traits[sub] = traits
				t = mapping.Trait{}
				return nil
			})
			return err
		})
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return nil, fmt.Errorf("load visitors: %w", err)
	}
	return st, nil
}

// writeDocuments rebuilds the visitors' documents and writes those that
// changed.
func (s *Store) writeDocuments(ctx context.Context, tx pgx.Tx, anons []string, m *mapping.Materializer) (mapping.BatchResult, error) {
	if len(anons) == 0 {
		return mapping.BatchResult{}, nil
	}
	st, err := loadState(ctx, tx, anons)
	if err != nil {
		return mapping.BatchResult{}, err
	}
	ids, docs, expires := make([]string, 0, len(anons)), make([][]byte, 0, len(anons)), make([]time.Time, 0, len(anons))
	for _, a := range anons {
		v, ok := st.Visitor(a)
		if !ok {
			continue
		}
		doc := m.Document(v)
		raw, err := json.Marshal(doc)
		if err != nil {
			return mapping.BatchResult{}, fmt.Errorf("encode document of %s: %w", a, err)
		}
		ids, docs, expires = append(ids, a), append(docs, raw), append(expires, doc.ExpiresAt)
	}
	rows, err := tx.Query(ctx, `
INSERT INTO prechat_documents AS d (anonymous_id, document, expires_at)
SELECT * FROM unnest($1::text[], $2::jsonb[], $3::timestamptz[])
ON CONFLICT (anonymous_id) DO UPDATE
SET document = excluded.document, expires_at = excluded.expires_at, written_at = now()
WHERE d.document IS DISTINCT FROM excluded.document
RETURNING anonymous_id`, ids, docs, expires)
	if err != nil {
		return mapping.BatchResult{}, fmt.Errorf("write documents: %w", err)
	}
	written, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return mapping.BatchResult{}, fmt.Errorf("write documents: %w", err)
	}
	return mapping.BatchResult{Documents: len(written), Visitors: written}, nil
}

// DocumentGet returns the stored, unexpired document of a visitor as the
// JSON the API serves, or ErrNotFound.
func (s *Store) DocumentGet(ctx context.Context, anonymousID string) ([]byte, error) {
	var doc []byte
	err := s.pool.QueryRow(ctx, `SELECT document::text FROM prechat_documents WHERE anonymous_id = $1 AND expires_at > $2`,
		anonymousID, s.now()).Scan(&doc)
	if err != nil {
		return nil, fmt.Errorf("get document of %s: %w", anonymousID, interpret(err))
	}
	return doc, nil
}

func setKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
