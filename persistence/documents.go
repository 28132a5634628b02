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

// affectedVisitorsQuery finds the visitors with an unexpired conversation
// start among those in $1, those with a verified link to the users in $2,
// and those whose verified user is a member of the groups in $3: under the
// trust model only they see a user's or a group's shared traits (a visitor's
// own view of a group touches that visitor, in $1).
//
// Its inputs are bounded by the batch size, so every step is an index probe
// per id. Each LATERAL subquery is fenced with OFFSET 0, which keeps Postgres
// from flattening it into a join it might plan as a full scan: on tables that
// grow faster than autovacuum analyses them (a new deployment, a replay) such
// plans made each batch slower than the last (BenchmarkPipeline, 200,000 new
// visitors, two lanes: from 400 ms to 4 s per batch).
// affectedLive is the common part of the queries below: "live", the
// affected visitors with an unexpired conversation start.
const affectedLive = `
WITH touched AS (
    SELECT unnest($1::text[]) AS anonymous_id
    UNION
    SELECT l.anonymous_id FROM unnest($2::text[]) AS u(id),
        LATERAL (SELECT anonymous_id FROM identity_links WHERE user_id = u.id AND verified OFFSET 0) l
    UNION
    SELECT l.anonymous_id FROM unnest($3::text[]) AS g(id),
        LATERAL (SELECT member_id FROM group_memberships WHERE group_id = g.id AND member_kind = 'user' OFFSET 0) m,
        LATERAL (SELECT anonymous_id FROM identity_links WHERE user_id = m.member_id AND verified OFFSET 0) l
),
live AS (
    SELECT c.anonymous_id FROM touched,
    LATERAL (SELECT anonymous_id FROM conversations WHERE anonymous_id = touched.anonymous_id AND event_time > $4 OFFSET 0) c
)
`

// affectedVisitorsQuery lists at most $5 of them, in key order.
const affectedVisitorsQuery = affectedLive + `SELECT anonymous_id FROM live ORDER BY anonymous_id LIMIT $5`

// queueAffectedQuery queues those the batch did not touch itself (it
// refreshes those) for a later refresh, without reading them into the
// processor.
const queueAffectedQuery = affectedLive + `INSERT INTO document_refreshes (anonymous_id)
SELECT anonymous_id FROM live WHERE anonymous_id <> ALL($1) ORDER BY anonymous_id
ON CONFLICT (anonymous_id) DO NOTHING`

// affectedVisitors lists the visitors with an unexpired conversation start
// whose documents the batch may change: those it touched directly, those
// linked to a user it touched, and the members of a group it touched. When
// they are more than FanOutLimit, it queues the others (document_refreshes)
// and lists only those the batch touched directly, so the batch's own
// visitors still read their writes; queued says how many were queued.
func (s *Store) affectedVisitors(ctx context.Context, tx pgx.Tx, st *mapping.State, ttl time.Duration) (ids []string, queued int, err error) {
	anons, users, groups := map[string]bool{}, map[string]bool{}, map[string]bool{}
	touch := func(sub mapping.Subject) {
		switch {
		case sub.Observer != "":
			anons[sub.Observer] = true
		case sub.Kind == mapping.KindAnonymous:
			anons[sub.ID] = true
		case sub.Kind == mapping.KindUser:
			users[sub.ID] = true
		case sub.Kind == mapping.KindGroup:
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
		return nil, 0, nil
	}
	since := s.now().Add(-ttl)
	find := func(users, groups []string, limit int) ([]string, error) {
		rows, err := tx.Query(ctx, affectedVisitorsQuery, setKeys(anons), users, groups, since, limit)
		if err != nil {
			return nil, fmt.Errorf("find visitors to refresh: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("find visitors to refresh: %w", err)
		}
		return ids, nil
	}
	if ids, err = find(setKeys(users), setKeys(groups), s.fanOutLimit+1); err != nil || len(ids) <= s.fanOutLimit {
		return ids, 0, err
	}
	tag, err := tx.Exec(ctx, queueAffectedQuery, setKeys(anons), setKeys(users), setKeys(groups), since)
	if err != nil {
		return nil, 0, fmt.Errorf("queue visitors to refresh: %w", err)
	}
	ids, err = find([]string{}, []string{}, len(anons))
	return ids, int(tag.RowsAffected()), err
}

// visitorRowsQuery reads, in one round trip and through the primary keys,
// everything the documents of the visitors in $1 are built from: their
// conversation starts, links, memberships (theirs and their verified
// users') and the traits of the visitors, their verified users, the shared
// profiles of their users' groups and their own views of their groups.
// Columns: row kind, then three keys whose meaning depends on it (link:
// anonymousId, userId, "verified" or ""; membership: member kind, member id,
// groupId; traits: subject kind, subject id, observer), a JSON value, and
// the stamp.
const visitorRowsQuery = `
WITH a AS (SELECT DISTINCT unnest($1::text[]) AS id),
l AS (
    SELECT il.anonymous_id, il.user_id, il.event_time, il.message_id, il.verified
    FROM a JOIN identity_links il ON il.anonymous_id = a.id
),
u AS (SELECT DISTINCT user_id AS id FROM l WHERE verified),
m AS (
    SELECT gm.member_kind, gm.member_id, gm.group_id, gm.event_time, gm.message_id
    FROM a JOIN group_memberships gm ON gm.member_kind = 'anonymous' AND gm.member_id = a.id
    UNION ALL
    SELECT gm.member_kind, gm.member_id, gm.group_id, gm.event_time, gm.message_id
    FROM u JOIN group_memberships gm ON gm.member_kind = 'user' AND gm.member_id = u.id
),
s AS (
    SELECT 'anonymous' AS kind, id, '' AS observer FROM a
    UNION ALL SELECT 'user', id, '' FROM u
    UNION ALL SELECT DISTINCT 'group', group_id, '' FROM m WHERE member_kind = 'user'
    UNION ALL SELECT 'group', group_id, member_id FROM m WHERE member_kind = 'anonymous'
)
SELECT 'conversation', c.anonymous_id, c.token_hash, '', c.properties, c.event_time, c.message_id
FROM a JOIN conversations c ON c.anonymous_id = a.id
UNION ALL
SELECT 'link', anonymous_id, user_id, CASE WHEN verified THEN 'verified' ELSE '' END, NULL, event_time, message_id FROM l
UNION ALL
SELECT 'membership', member_kind, member_id, group_id, NULL, event_time, message_id FROM m
UNION ALL
SELECT 'traits', t.subject_kind, t.subject_id, t.observer, t.traits, NULL, NULL
FROM s JOIN traits t ON t.subject_kind = s.kind AND t.subject_id = s.id AND t.observer = s.observer`

// loadState reads everything the documents of these visitors are built
// from into a mapping.State, so that the stored state resolves visitors
// with exactly the rule the model uses (mapping.State.Visitor).
func loadState(ctx context.Context, tx pgx.Tx, anons []string) (*mapping.State, error) {
	rows, err := tx.Query(ctx, visitorRowsQuery, anons)
	if err != nil {
		return nil, fmt.Errorf("load visitors: %w", err)
	}
	st := mapping.NewState()
	var (
		kind, a, b, c string
		value         []byte
		at            *time.Time
		msg           *string
	)
	_, err = pgx.ForEachRow(rows, []any{&kind, &a, &b, &c, &value, &at, &msg}, func() error {
		var s mapping.Stamp
		if at != nil && msg != nil {
			s = mapping.Stamp{At: at.UTC(), MessageID: *msg}
		}
		switch kind {
		case "conversation":
			var props mapping.Object
			if err := json.Unmarshal(value, &props); err != nil {
				return fmt.Errorf("conversation of %s: %w", mapping.LogID(a), err)
			}
			st.Conversations[a] = mapping.Conversation{Stamp: s, Properties: props, TokenHash: b}
		case "link":
			st.Links[mapping.Link{AnonymousID: a, UserID: b}] = mapping.LinkState{Stamp: s, Verified: c == "verified"}
		case "membership":
			st.Memberships[mapping.Membership{Member: mapping.Subject{Kind: mapping.Kind(a), ID: b}, GroupID: c}] = s
		case "traits":
			traits, err := decodeTraits(value)
			if err != nil {
				return fmt.Errorf("traits of %s %s: %w", a, mapping.LogID(b), err)
			}
			st.Traits[mapping.Subject{Kind: mapping.Kind(a), ID: b, Observer: c}] = traits
		}
		value = nil
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load visitors: %w", err)
	}
	return st, nil
}

// writeDocuments rebuilds the visitors' documents and writes those that
// changed, RefreshChunk visitors at a time: a change to a user or group with
// very many live documents holds one chunk of states and documents in
// memory, and sends statements of one chunk, however many it refreshes.
func (s *Store) writeDocuments(ctx context.Context, tx pgx.Tx, anons []string, m *mapping.Materializer) (mapping.BatchResult, error) {
	var res mapping.BatchResult
	for chunk := range slices.Chunk(anons, s.refreshChunk) {
		r, err := s.writeDocumentChunk(ctx, tx, chunk, m)
		if err != nil {
			return mapping.BatchResult{}, err
		}
		res.Documents += r.Documents
		res.Visitors = append(res.Visitors, r.Visitors...)
	}
	return res, nil
}

// writeDocumentChunk rebuilds and writes the documents of some visitors.
func (s *Store) writeDocumentChunk(ctx context.Context, tx pgx.Tx, anons []string, m *mapping.Materializer) (mapping.BatchResult, error) {
	st, err := loadState(ctx, tx, anons)
	if err != nil {
		return mapping.BatchResult{}, err
	}
	ids, docs, expires := make([]string, 0, len(anons)), make([][]byte, 0, len(anons)), make([]time.Time, 0, len(anons))
	tokens := make([]string, 0, len(anons))
	for _, v := range st.Visitors(anons) {
		doc := m.Document(v)
		raw, err := json.Marshal(doc)
		if err != nil {
			return mapping.BatchResult{}, fmt.Errorf("encode document of %s: %w", mapping.LogID(v.AnonymousID), err)
		}
		ids, docs, expires = append(ids, v.AnonymousID), append(docs, raw), append(expires, doc.ExpiresAt)
		tokens = append(tokens, v.Conversation.TokenHash)
	}
	rows, err := tx.Query(ctx, `
INSERT INTO prechat_documents AS d (anonymous_id, document, expires_at, token_hash)
SELECT * FROM unnest($1::text[], $2::json[], $3::timestamptz[], $4::text[])
ON CONFLICT (anonymous_id) DO UPDATE
SET document = excluded.document, expires_at = excluded.expires_at, token_hash = excluded.token_hash, written_at = now()
WHERE d.document::text IS DISTINCT FROM excluded.document::text OR d.token_hash IS DISTINCT FROM excluded.token_hash
RETURNING anonymous_id`, ids, docs, expires, tokens)
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
// JSON the API serves, with the hash of its conversation secret (lowercase
// hex SHA-256; "" when the conversation start carried none), or ErrNotFound.
func (s *Store) DocumentGet(ctx context.Context, anonymousID string) (doc []byte, tokenHash string, err error) {
	err = s.pool.QueryRow(ctx, `SELECT document::text, token_hash FROM prechat_documents WHERE anonymous_id = $1 AND expires_at > $2`,
		anonymousID, s.now()).Scan(&doc, &tokenHash)
	if err != nil {
		return nil, "", fmt.Errorf("get document of %s: %w", mapping.LogID(anonymousID), interpret(err))
	}
	return doc, tokenHash, nil
}

func setKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
