package persistence

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"

	"github.com/prechat/prechat/mapping"
)

// NotifyChannel is the Postgres channel on which a committed batch names,
// comma separated, the visitors whose documents or applied events changed.
const NotifyChannel = "prechat_documents"

// maxPayload keeps each NOTIFY payload under Postgres's 8000-byte limit.
const maxPayload = 7900

// notifyStatement names, in notifications chunked under the payload limit,
// the visitors a batch applied events of (ok false: none): waiting readers
// re-check, an after= wait on an event that changed no document is
// answered at the batch's commit, the others when their refresh commits.
func notifyStatement(b *mapping.Batch) (_ statement, ok bool) {
	seen := make(map[string]bool, len(b.Applied))
	ids := make([]string, 0, len(b.Applied))
	for _, a := range b.Applied {
		if a.AnonymousID != "" && !seen[a.AnonymousID] {
			seen[a.AnonymousID] = true
			ids = append(ids, a.AnonymousID)
		}
	}
	return notifyIDsStatement(ids)
}

// notifyIDs queues, in tx, notifications naming ids.
func notifyIDs(ctx context.Context, tx pgx.Tx, ids []string) error {
	st, ok := notifyIDsStatement(ids)
	if !ok {
		return nil
	}
	if _, err := tx.Exec(ctx, st.sql, st.args...); err != nil {
		return fmt.Errorf("notify visitors: %w", err)
	}
	return nil
}

// notifyIDsStatement queues notifications naming ids, chunked under the
// payload limit (ok false: no ids).
func notifyIDsStatement(ids []string) (_ statement, ok bool) {
	var payloads []string
	var cur strings.Builder
	for _, id := range ids {
		if cur.Len() > 0 && cur.Len()+1+len(id) > maxPayload {
			payloads = append(payloads, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(',')
		}
		cur.WriteString(id)
	}
	if cur.Len() > 0 {
		payloads = append(payloads, cur.String())
	}
	if len(payloads) == 0 {
		return statement{}, false
	}
	return statement{sql: `SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`, args: []any{NotifyChannel, payloads}}, true
}

// Hub fans the notifications of one LISTEN connection out to any number of
// in-process waiters, so long-polling readers need no connection of their
// own. Run must be running for Subscribe to deliver anything.
type Hub struct {
	listener pgxlisten.Listener

	mu       sync.Mutex
	subs     map[string]map[chan struct{}]struct{}
	watchers []func(ids []string)
}

// NewHub returns a hub listening through its own connection to databaseURL;
// it reconnects after reconnectDelay when the connection is lost. On every
// (re)connection it wakes all waiters, since notifications sent while it was
// disconnected are lost.
func NewHub(databaseURL string, reconnectDelay time.Duration, logError func(error)) *Hub {
	h := &Hub{subs: map[string]map[chan struct{}]struct{}{}}
	h.listener = pgxlisten.Listener{
		Connect:        func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, databaseURL) },
		ReconnectDelay: reconnectDelay,
		LogError: func(ctx context.Context, err error) {
			if logError != nil && ctx.Err() == nil {
				logError(err)
			}
		},
	}
	h.listener.Handle(NotifyChannel, hubHandler{h})
	return h
}

// Run listens until ctx is cancelled.
func (h *Hub) Run(ctx context.Context) error {
	err := h.listener.Listen(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Subscribe returns a channel that receives a value whenever a batch that
// concerns anonymousID commits (coalesced: at most one pending), and a
// function that ends the subscription.
func (h *Hub) Subscribe(anonymousID string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.subs[anonymousID] == nil {
		h.subs[anonymousID] = map[chan struct{}]struct{}{}
	}
	h.subs[anonymousID][ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs[anonymousID], ch)
		if len(h.subs[anonymousID]) == 0 {
			delete(h.subs, anonymousID)
		}
		h.mu.Unlock()
	}
}

// Watch registers fn to be called with the visitors named by every
// notification, before any waiter is woken, and with nil after every
// (re)connection, when anything may have changed. Caches use it to
// invalidate.
func (h *Hub) Watch(fn func(ids []string)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.watchers = append(h.watchers, fn)
}

// Waiters is the number of current subscriptions.
func (h *Hub) Waiters() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, s := range h.subs {
		n += len(s)
	}
	return n
}

func (h *Hub) wake(ids []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, fn := range h.watchers {
		fn(ids)
	}
	for _, id := range ids {
		for ch := range h.subs[id] {
			signal(ch)
		}
	}
}

func (h *Hub) wakeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, fn := range h.watchers {
		fn(nil)
	}
	for _, s := range h.subs {
		for ch := range s {
			signal(ch)
		}
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

type hubHandler struct{ h *Hub }

func (hh hubHandler) HandleNotification(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	hh.h.wake(strings.Split(n.Payload, ","))
	return nil
}

// HandleBacklog runs on every (re)connection: waiters re-check, since
// notifications may have been missed while disconnected.
func (hh hubHandler) HandleBacklog(context.Context, string, *pgx.Conn) error {
	hh.h.wakeAll()
	return nil
}

// AppliedMissing returns those of messageIDs that are not (yet) recorded as
// applied.
func (s *Store) AppliedMissing(ctx context.Context, messageIDs []string) ([]string, error) {
	if len(messageIDs) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `
SELECT id FROM unnest($1::text[]) AS id
WHERE NOT EXISTS (SELECT 1 FROM applied_messages a WHERE a.message_id = id)`, messageIDs)
	if err != nil {
		return nil, fmt.Errorf("check applied messages: %w", err)
	}
	missing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("check applied messages: %w", err)
	}
	slices.Sort(missing)
	return missing, nil
}

// Reflects reports whether the visitor's stored document reflects every
// one of messageIDs: all of them are applied and no refresh of the
// visitor's document is queued (document_refreshes). A batch queues the
// refresh of every visitor it changes in the transaction that records its
// messageIds, and the refresh that rebuilds the document deletes it, so a
// document read after Reflects returned true shows those events.
func (s *Store) Reflects(ctx context.Context, anonymousID string, messageIDs []string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `
SELECT NOT EXISTS (SELECT 1 FROM unnest($2::text[]) AS id
                   WHERE NOT EXISTS (SELECT 1 FROM applied_messages a WHERE a.message_id = id))
   AND NOT EXISTS (SELECT 1 FROM document_refreshes WHERE subject_kind = 'anonymous' AND subject_id = $1)`,
		anonymousID, messageIDs).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("check the document of %s reflects %d messages: %w", mapping.LogID(anonymousID), len(messageIDs), err)
	}
	return ok, nil
}
