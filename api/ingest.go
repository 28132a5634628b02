package api

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/prechat/prechat/mapping"
)

// ingestPaths are the Segment HTTP Tracking API paths, long and short (the
// short ones are what analytics.js posts to), and the type each implies;
// "" is a batch.
var ingestPaths = []struct{ name, typ string }{
	{"identify", "identify"}, {"i", "identify"},
	{"track", "track"}, {"t", "track"},
	{"page", "page"}, {"p", "page"},
	{"screen", "screen"}, {"s", "screen"},
	{"group", "group"}, {"g", "group"},
	{"alias", "alias"}, {"a", "alias"},
	{"batch", ""}, {"b", ""}, {"import", ""},
}

// ingestError is an ingest failure with its HTTP status and code.
type ingestError struct {
	status int
	code   string
	msg    string
}

func (e *ingestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &ingestError{http.StatusBadRequest, "bad_request", fmt.Sprintf(format, args...)}
}

// ingest serves the Segment HTTP Tracking API for one path: it checks the
// write key and limits, completes each event (messageId, receivedAt, the
// corrected timestamp), validates it as the pipeline will, and answers 200
// only after Kafka acknowledged every event. Any bad event rejects the whole
// request and nothing is produced.
func (s *Server) ingest(typ string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		records, err := s.ingestRecords(r, typ)
		if err == nil {
			ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
			err = s.producer.Produce(ctx, records)
			cancel()
			if err != nil {
				s.log.Warn("ingest: producing failed", zap.Int("events", len(records)), zap.Error(err))
				err = &ingestError{http.StatusServiceUnavailable, "unavailable", "Kafka did not acknowledge the events; retry"}
			}
		}
		var ie *ingestError
		result := "produced"
		if errors.As(err, &ie) {
			result = ie.code
		} else if err != nil {
			result = "bad_request"
		}
		s.metrics.ingested.WithLabelValues(result).Add(float64(max(len(records), 1)))
		switch {
		case err == nil:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"success":true}` + "\n"))
		case errors.As(err, &ie):
			retry := 0
			if ie.status == http.StatusServiceUnavailable {
				retry = 1
			}
			writeError(w, ie.status, ie.code, ie.msg, retry)
		default:
			writeError(w, http.StatusBadRequest, "bad_request", err.Error(), 0)
		}
	}
}

// ingestRecords reads, authenticates and completes the request's events.
func (s *Server) ingestRecords(r *http.Request, typ string) ([]mapping.Record, error) {
	body, err := s.readBody(r, typ)
	if err != nil {
		return nil, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return nil, badRequest("the body is not a JSON object")
	}
	var events []map[string]json.RawMessage
	if typ == "" {
		if err := json.Unmarshal(top["batch"], &events); err != nil || len(events) == 0 {
			return nil, badRequest("a batch needs a non-empty \"batch\" array of event objects")
		}
		if len(events) > s.cfg.MaxBatchEvents {
			return nil, badRequest("a batch holds at most %d events, not %d", s.cfg.MaxBatchEvents, len(events))
		}
	} else {
		events = []map[string]json.RawMessage{top}
	}
	ok, server := s.authorized(r, top, events)
	if !ok {
		return nil, &ingestError{http.StatusUnauthorized, "unauthorized", "unknown or missing write key"}
	}
	now := s.cfg.Now().UTC()
	records := make([]mapping.Record, 0, len(events))
	for i, e := range events {
		if e == nil {
			return nil, badRequest("event %d is not a JSON object", i)
		}
		if typ != "" {
			e["type"] = quote(typ)
		}
		if _, ok := e["sentAt"]; !ok && top["sentAt"] != nil && typ == "" {
			e["sentAt"] = top["sentAt"]
		}
		if server {
			if err := s.vouch(e); err != nil {
				return nil, badRequest("event %d: %v", i, err)
			}
		}
		raw, err := complete(e, now)
		if err != nil {
			return nil, badRequest("event %d: %v", i, err)
		}
		if len(raw) > s.cfg.MaxEventBytes {
			return nil, &ingestError{http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("event %d is larger than %d bytes", i, s.cfg.MaxEventBytes)}
		}
		ev, err := mapping.Decode(raw, "")
		if err != nil {
			return nil, badRequest("event %d: %v", i, err)
		}
		records = append(records, mapping.Record{Key: []byte(ev.PartitionKey()), Value: raw})
	}
	return records, nil
}

// readBody reads the body, gunzipping it if needed, within the size limit.
func (s *Server) readBody(r *http.Request, typ string) ([]byte, error) {
	limit := s.cfg.MaxBatchBytes
	if typ != "" {
		limit = s.cfg.MaxEventBytes
	}
	tooLarge := &ingestError{http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the body is larger than %d bytes", limit)}
	if r.ContentLength > int64(limit) {
		return nil, tooLarge
	}
	var src io.Reader = io.LimitReader(r.Body, int64(limit)+1)
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, badRequest("the body is not valid gzip")
		}
		src = io.LimitReader(zr, int64(limit)+1)
	}
	body, err := io.ReadAll(src)
	if err != nil {
		return nil, badRequest("reading the body failed: %v", err)
	}
	if len(body) > limit {
		return nil, tooLarge
	}
	return body, nil
}

// authorized checks the write key: Basic auth user, else the body's
// writeKey, compared in constant time against every configured key. server
// reports a server write key.
func (s *Server) authorized(r *http.Request, top map[string]json.RawMessage, events []map[string]json.RawMessage) (ok, server bool) {
	key, _, ok := r.BasicAuth()
	if !ok {
		raw := top["writeKey"]
		if raw == nil && len(events) > 0 {
			raw = events[0]["writeKey"]
		}
		_ = json.Unmarshal(raw, &key)
	}
	if key == "" {
		return false, false
	}
	return matchKey(key, s.cfg.WriteKeys) || matchKey(key, s.cfg.ServerWriteKeys), matchKey(key, s.cfg.ServerWriteKeys)
}

// matchKey compares key with every one of keys in constant time.
func matchKey(key string, keys []string) bool {
	match := 0
	for _, k := range keys {
		match |= subtle.ConstantTimeCompare([]byte(key), []byte(k))
	}
	return match == 1
}

// vouch adds the proof that the site's server stands behind the event's
// userId: context.prechat.userHash, signed with IdentitySecret (replacing
// any the sender put there). Events without a userId are left as they are.
func (s *Server) vouch(e map[string]json.RawMessage) error {
	userID, err := mapping.IdentifierText(e["userId"])
	if err != nil || userID == "" {
		return nil // Decode reports a malformed userId
	}
	ctx := map[string]json.RawMessage{}
	if raw, ok := e["context"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &ctx); err != nil || ctx == nil {
			return errors.New("context is not a JSON object")
		}
	}
	prechat := map[string]json.RawMessage{}
	if raw, ok := ctx["prechat"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &prechat); err != nil || prechat == nil {
			return errors.New("context.prechat is not a JSON object")
		}
	}
	prechat["userHash"] = quote(mapping.UserHash(s.cfg.IdentitySecret, userID))
	var err1, err2 error
	ctx["prechat"], err1 = json.Marshal(prechat)
	e["context"], err2 = json.Marshal(ctx)
	return errors.Join(err1, err2)
}

// complete sets what Segment's servers set: messageId when absent,
// receivedAt, originalTimestamp, and timestamp corrected for the device's
// clock, receivedAt − (sentAt − originalTimestamp), when the client sent
// sentAt. The write key is removed.
func complete(e map[string]json.RawMessage, now time.Time) ([]byte, error) {
	delete(e, "writeKey")
	if id := stringField(e, "messageId"); id == "" {
		e["messageId"] = quote("api-" + uuid())
	}
	e["receivedAt"] = quote(now.Format(time.RFC3339Nano))
	sentAt, err := timeField(e, "sentAt")
	if err != nil {
		return nil, err
	}
	original, err := timeField(e, "originalTimestamp")
	if err != nil {
		return nil, err
	}
	ts, err := timeField(e, "timestamp")
	if err != nil {
		return nil, err
	}
	if original.IsZero() && !ts.IsZero() {
		original = ts
		e["originalTimestamp"] = e["timestamp"]
	}
	switch {
	case !sentAt.IsZero() && !original.IsZero():
		e["timestamp"] = quote(now.Add(-sentAt.Sub(original)).Format(time.RFC3339Nano))
	case ts.IsZero() && !original.IsZero():
		e["timestamp"] = e["originalTimestamp"]
	case ts.IsZero():
		e["timestamp"] = e["receivedAt"]
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func stringField(e map[string]json.RawMessage, name string) string {
	var s string
	_ = json.Unmarshal(e[name], &s)
	return s
}

func timeField(e map[string]json.RawMessage, name string) (time.Time, error) {
	raw, ok := e[name]
	if !ok || string(raw) == "null" {
		return time.Time{}, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}, fmt.Errorf("%s is not an ISO-8601 string", name)
	}
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is not an ISO-8601 date-time", name, s)
	}
	return t, nil
}

func quote(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// uuid returns a random RFC 4122 version 4 UUID.
func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
