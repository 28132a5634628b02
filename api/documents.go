package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/prechat/prechat/mapping"
)

// validAnonymousID bounds what a visitor id may be: Segment's ids are UUIDs
// or similar tokens.
var validAnonymousID = regexp.MustCompile(`^[A-Za-z0-9._~:@+=-]{1,128}$`)

// maxAfter bounds the messageIds of one after= parameter.
const maxAfter = 20

// getDocument serves GET /v1/prechat/{anonymousId}[?wait=s][&after=id,…].
func (s *Server) getDocument(w http.ResponseWriter, r *http.Request) {
	anon := r.PathValue("anonymousId")
	if !validAnonymousID.MatchString(anon) {
		writeError(w, http.StatusBadRequest, "bad_request", "anonymousId must be 1 to 128 letters, digits or ._~:@+=-", 0)
		return
	}
	wait, after, err := s.pollParams(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error(), 0)
		return
	}
	client := s.clientKey(r)
	if ok, retry := s.limiter.allow(client); !ok {
		writeError(w, http.StatusTooManyRequests, "rate_limited", "too many requests", retry)
		return
	}
	token := r.Header.Get(TokenHeader)
	doc, ready, err := s.check(r.Context(), anon, token, after)
	switch {
	case err != nil:
		s.unavailable(w, "read document", err)
	case ready:
		writeDocument(w, doc, true)
	case wait == 0:
		s.timedOut(w, doc)
	default:
		s.longPoll(w, r, client, anon, token, after, wait)
	}
}

// pollParams parses wait= (seconds) and after= (comma separated messageIds).
func (s *Server) pollParams(r *http.Request) (time.Duration, []string, error) {
	q := r.URL.Query()
	var after []string
	if v := q.Get("after"); v != "" {
		after = strings.Split(v, ",")
		if len(after) > maxAfter {
			return 0, nil, errors.New("after takes at most 20 messageIds")
		}
		for _, id := range after {
			if id == "" || len(id) > mapping.MaxIDLength {
				return 0, nil, errors.New("after must list messageIds separated by commas")
			}
		}
	}
	var wait time.Duration
	if v := q.Get("wait"); v != "" {
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || secs < 0 || secs > s.cfg.MaxWait.Seconds() {
			return 0, nil, errors.New("wait must be a number of seconds from 0 to " + strconv.Itoa(int(s.cfg.MaxWait.Seconds())))
		}
		wait = time.Duration(secs * float64(time.Second))
	} else if len(after) > 0 {
		wait = s.cfg.DefaultAfterWait
	}
	return wait, after, nil
}

// check reads the document and whether it reflects every after messageId.
// doc is nil when there is none, or when token does not open it (see
// readable): a request without the conversation's secret gets exactly the
// answers, and takes exactly the path, of a request for an unknown visitor.
// The reads share one deadline, ReadTimeout, which bounds the wait for a
// pooled connection too: a saturated pool answers 503, not a hung request.
//
// The after messageIds are checked first: once they are all applied and no
// refresh of the visitor is queued, the refresh that reflects them has
// committed, so the document is then read from storage. The cache may not
// have seen that commit's notification yet, and a document read before the
// check could predate it.
func (s *Server) check(ctx context.Context, anon, token string, after []string) (doc []byte, ready bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReadTimeout)
	defer cancel()
	applied := true
	if len(after) > 0 {
		reflected, err := s.docs.Reflects(ctx, anon, after)
		if err != nil {
			return nil, false, err
		}
		applied = reflected
	}
	stored, err := s.document(ctx, anon, len(after) == 0 || !applied)
	if err != nil {
		return nil, false, err
	}
	doc = s.readable(stored, token)
	if doc != nil && applied {
		linkDocument(ctx, stored.trace)
	}
	return doc, doc != nil && applied, nil
}

// document returns what storage holds for the visitor (a nil body when
// there is no document); from the cache when useCache allows, else from
// storage, caching what it read, the absence of a document included.
func (s *Server) document(ctx context.Context, anon string, useCache bool) (cachedDoc, error) {
	if useCache {
		if d, ok := s.cache.get(anon, s.cfg.Now()); ok {
			s.metrics.cache.WithLabelValues("hit").Inc()
			return d, nil
		}
	}
	s.metrics.cache.WithLabelValues("miss").Inc()
	epoch := s.cache.epoch()
	body, tokenHash, trace, err := s.docs.DocumentRead(ctx, anon)
	if errors.Is(err, mapping.ErrNotFound) {
		body, tokenHash, trace, err = nil, "", "", nil
	}
	if err != nil {
		return cachedDoc{}, err
	}
	return s.cache.put(anon, body, tokenHash, trace, epoch, s.cfg.Now()), nil
}

// longPoll waits until the document is ready, woken by notifications, or
// until wait has passed. A client may hold MaxWaitersPerClient of them
// (beyond: 429), the process MaxWaiters (beyond: 503).
func (s *Server) longPoll(w http.ResponseWriter, r *http.Request, client, anon, token string, after []string, wait time.Duration) {
	if !s.clientWaiters.tryAcquire(client) {
		writeError(w, http.StatusTooManyRequests, "rate_limited", "too many waiting requests from this client", 1)
		return
	}
	defer s.clientWaiters.release(client)
	if !s.waiters.tryAcquire() {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "too many waiting requests", 1)
		return
	}
	defer s.waiters.release()
	woken, unsubscribe := s.notifier.Subscribe(anon)
	defer unsubscribe()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	recheck := time.NewTicker(s.cfg.RecheckInterval)
	defer recheck.Stop()
	for {
		// Subscribed before this check, so a commit between the check and the
		// wait below still wakes it.
		doc, ready, err := s.check(r.Context(), anon, token, after)
		switch {
		case err != nil && r.Context().Err() != nil:
			return
		case err != nil:
			s.unavailable(w, "read document", err)
			return
		case ready:
			writeDocument(w, doc, true)
			return
		}
		select {
		case <-woken:
			spanEvent(r.Context(), "notified")
		case <-recheck.C:
		case <-deadline.C:
			doc, ready, err := s.check(r.Context(), anon, token, after)
			if err != nil {
				s.unavailable(w, "read document", err)
				return
			}
			if ready {
				writeDocument(w, doc, true)
				return
			}
			s.timedOut(w, doc)
			return
		case <-s.draining:
			writeError(w, http.StatusServiceUnavailable, "unavailable", "server shutting down; retry", 1)
			return
		case <-r.Context().Done():
			return
		}
	}
}

// timedOut answers a request whose document is missing (404) or does not
// yet reflect the requested events (200 with complete false).
func (s *Server) timedOut(w http.ResponseWriter, doc []byte) {
	if doc == nil {
		writeError(w, http.StatusNotFound, "not_found", "no pre-chat document for this visitor", 0)
		return
	}
	writeDocument(w, doc, false)
}

// writeDocument writes the stored document; complete false marks one that
// does not reflect every requested event.
func writeDocument(w http.ResponseWriter, doc []byte, complete bool) {
	if !complete {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(doc, &fields); err == nil {
			fields["complete"] = json.RawMessage("false")
			if b, err := json.Marshal(fields); err == nil {
				doc = b
			}
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(doc)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(doc)
}

// unavailable logs the storage error behind a failed read and answers 503
// with Retry-After: the client should retry; nothing is wrong with its request.
func (s *Server) unavailable(w http.ResponseWriter, what string, err error) {
	s.log.Error(what+" failed", zap.Error(err))
	writeError(w, http.StatusServiceUnavailable, "unavailable", "storage unavailable; retry", 1)
}
