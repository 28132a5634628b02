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
	"net"
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

// ingestError is an ingest failure with its HTTP status and code;
// retryAfter > 0 sets Retry-After.
type ingestError struct {
	status     int
	code       string
	msg        string
	retryAfter int
}

func (e *ingestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &ingestError{status: http.StatusBadRequest, code: "bad_request", msg: fmt.Sprintf(format, args...)}
}

// refuseDrain bounds the time a refused ingest request's body is still
// read (see ingestRequest).
const refuseDrain = 500 * time.Millisecond

var errUnauthorized = &ingestError{status: http.StatusUnauthorized, code: "unauthorized", msg: "unknown or missing write key"}

// ingestLimits bound the ingest's work: per client its rate and its
// concurrent requests, per process the concurrent requests and the body
// bytes they hold.
type ingestLimits struct {
	perClient *rateLimiter
	clients   *clientSlots
	requests  semaphore
	bytes     *byteBudget
}

// ingest serves the Segment HTTP Tracking API for one path: it checks the
// write key and limits, completes each event (messageId, receivedAt, the
// corrected timestamp), validates it as the pipeline will, and answers 200
// only after Kafka acknowledged every event. Any bad event rejects the whole
// request and nothing is produced.
func (s *Server) ingest(typ string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		events, err := s.ingestRequest(w, r, typ)
		var ie *ingestError
		result := "produced"
		if errors.As(err, &ie) {
			result = ie.code
		} else if err != nil {
			result = "bad_request"
		}
		s.metrics.ingested.WithLabelValues(result).Add(float64(max(events, 1)))
		switch {
		case err == nil:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"success":true}` + "\n"))
		case errors.As(err, &ie):
			if ie.status == http.StatusServiceUnavailable && ie.retryAfter == 0 {
				ie.retryAfter = 1
			}
			writeError(w, ie.status, ie.code, ie.msg, ie.retryAfter)
		default:
			writeError(w, http.StatusBadRequest, "bad_request", err.Error(), 0)
		}
	}
}

// ingestRequest admits, reads and produces one ingest request, cheapest
// checks first: the client's rate, a Basic auth write key, the process's
// request and byte budgets; only then is the body read, within its size
// limit and IngestReadTimeout, and a write key in the body checked before
// any event is completed. events is the number of events it carried.
func (s *Server) ingestRequest(w http.ResponseWriter, r *http.Request, typ string) (events int, err error) {
	rc := http.NewResponseController(w)
	refuse := func(err error) (int, error) {
		// net/http drains up to 256 KiB of an unread body before answering,
		// so that the sender, still writing, reads the answer rather than a
		// reset connection; at the sender's pace, though. Drain for at most
		// refuseDrain, then close.
		_ = rc.SetReadDeadline(time.Now().Add(refuseDrain))
		_ = r.Body.Close()
		return 0, err
	}
	client := s.clientKey(r)
	if ok, retry := s.ingests.perClient.allow(client); !ok {
		return refuse(&ingestError{http.StatusTooManyRequests, "rate_limited", "too many requests", retry})
	}
	key, basic := basicAuthKey(r)
	ok, server := s.knownKey(key)
	if basic && !ok {
		return refuse(errUnauthorized)
	}
	limit := s.cfg.MaxBatchBytes
	if typ != "" {
		limit = s.cfg.MaxEventBytes
	}
	if r.ContentLength > int64(limit) {
		return refuse(tooLarge(limit))
	}
	if !s.ingests.clients.tryAcquire(client) {
		return refuse(&ingestError{http.StatusTooManyRequests, "rate_limited", "too many ingest requests at once from this client", 1})
	}
	defer s.ingests.clients.release(client)
	if !s.ingests.requests.tryAcquire() {
		return refuse(&ingestError{status: http.StatusServiceUnavailable, code: "unavailable", msg: "too many ingest requests at once; retry"})
	}
	defer s.ingests.requests.release()
	reserve := int64(limit)
	if r.ContentLength > 0 && r.Header.Get("Content-Encoding") != "gzip" {
		reserve = r.ContentLength
	}
	if !s.ingests.bytes.tryAcquire(reserve) {
		return refuse(&ingestError{status: http.StatusServiceUnavailable, code: "unavailable", msg: "too many ingest bytes at once; retry"})
	}
	defer s.ingests.bytes.release(reserve)
	_ = rc.SetReadDeadline(time.Now().Add(s.cfg.IngestReadTimeout))
	body, err := readBody(r, limit)
	if err != nil {
		return 0, err
	}
	p, err := decodePayload(body, typ, s.cfg.MaxBatchEvents)
	if err != nil {
		return 0, err
	}
	if !basic {
		if ok, server = s.knownKey(p.writeKey()); !ok {
			return len(p.events), errUnauthorized
		}
	}
	records, err := s.records(p, typ, server)
	if err != nil {
		return len(p.events), err
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	countEvents(ctx, len(records))
	if err := s.producer.Produce(ctx, records); err != nil {
		s.log.Warn("ingest: producing failed", zap.Int("events", len(records)), zap.Error(err))
		return len(records), &ingestError{status: http.StatusServiceUnavailable, code: "unavailable", msg: "Kafka did not acknowledge the events; retry"}
	}
	return len(records), nil
}

// records completes and validates the payload's events; server says they
// came with a server write key (see vouch).
func (s *Server) records(p *payload, typ string, server bool) ([]mapping.Record, error) {
	now := s.cfg.Now().UTC()
	records := make([]mapping.Record, 0, len(p.events))
	for i, e := range p.events {
		if e == nil {
			return nil, badRequest("event %d is not a JSON object", i)
		}
		if typ != "" {
			e["type"] = quote(typ)
		}
		if _, ok := e["sentAt"]; !ok && p.top["sentAt"] != nil && typ == "" {
			e["sentAt"] = p.top["sentAt"]
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
			return nil, &ingestError{status: http.StatusRequestEntityTooLarge, code: "too_large", msg: fmt.Sprintf("event %d is larger than %d bytes", i, s.cfg.MaxEventBytes)}
		}
		ev, err := mapping.Decode(raw, "")
		if err != nil {
			return nil, badRequest("event %d: %v", i, err)
		}
		records = append(records, mapping.Record{Key: []byte(ev.PartitionKey()), Value: raw})
	}
	return records, nil
}

func tooLarge(limit int) error {
	return &ingestError{status: http.StatusRequestEntityTooLarge, code: "too_large", msg: fmt.Sprintf("the body is larger than %d bytes", limit)}
}

// readBody reads the body, gunzipping it if needed, within limit bytes.
func readBody(r *http.Request, limit int) ([]byte, error) {
	var src io.Reader = io.LimitReader(r.Body, int64(limit)+1)
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(src)
		if err != nil {
			if isTimeout(err) {
				return nil, errSlowBody
			}
			return nil, badRequest("the body is not valid gzip")
		}
		src = io.LimitReader(zr, int64(limit)+1)
	}
	body, err := io.ReadAll(src)
	if isTimeout(err) {
		return nil, errSlowBody
	}
	if err != nil {
		return nil, badRequest("reading the body failed: %v", err)
	}
	if len(body) > limit {
		return nil, tooLarge(limit)
	}
	return body, nil
}

var errSlowBody = &ingestError{status: http.StatusRequestTimeout, code: "timeout", msg: "the body did not arrive in time"}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// payload is an ingest request's body: its top-level fields (for a batch,
// all but "batch") and its events (for a single event, the body itself).
type payload struct {
	top    map[string]json.RawMessage
	events []map[string]json.RawMessage
}

// writeKey is the body's writeKey, else the first event's.
func (p *payload) writeKey() string {
	raw := p.top["writeKey"]
	if raw == nil && len(p.events) > 0 && p.events[0] != nil {
		raw = p.events[0]["writeKey"]
	}
	var key string
	_ = json.Unmarshal(raw, &key)
	return key
}

// decodePayload decodes a body as one event, or for typ "" as a batch,
// whose "batch" array it decodes item by item and stops reading once it
// holds more than maxEvents.
func decodePayload(body []byte, typ string, maxEvents int) (*payload, error) {
	notObject := badRequest("the body is not a JSON object")
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, notObject
	}
	p := &payload{top: map[string]json.RawMessage{}}
	batch := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, notObject
		}
		key, _ := tok.(string)
		if typ == "" && key == "batch" {
			if p.events, err = decodeBatch(dec, maxEvents); err != nil {
				return nil, err
			}
			batch = true
			continue
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, notObject
		}
		p.top[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, notObject
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, notObject
	}
	switch {
	case typ != "":
		p.events = []map[string]json.RawMessage{p.top}
	case !batch || len(p.events) == 0:
		return nil, badRequest("a batch needs a non-empty \"batch\" array of event objects")
	}
	return p, nil
}

// decodeBatch decodes the "batch" array at dec, counting its items as it
// goes.
func decodeBatch(dec *json.Decoder, maxEvents int) ([]map[string]json.RawMessage, error) {
	notArray := badRequest("a batch needs a non-empty \"batch\" array of event objects")
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return nil, notArray
	}
	var events []map[string]json.RawMessage
	for dec.More() {
		if len(events) == maxEvents {
			return nil, badRequest("a batch holds at most %d events", maxEvents)
		}
		var e map[string]json.RawMessage
		if err := dec.Decode(&e); err != nil {
			return nil, notArray
		}
		events = append(events, e)
	}
	if _, err := dec.Token(); err != nil {
		return nil, notArray
	}
	return events, nil
}

// basicAuthKey is the Basic auth user, Segment's place for the write key;
// ok is false without Basic auth.
func basicAuthKey(r *http.Request) (key string, ok bool) {
	key, _, ok = r.BasicAuth()
	return key, ok
}

// knownKey compares key in constant time against every configured key;
// server reports a server write key.
func (s *Server) knownKey(key string) (ok, server bool) {
	if key == "" {
		return false, false
	}
	server = matchKey(key, s.cfg.ServerWriteKeys)
	return matchKey(key, s.cfg.WriteKeys) || server, server
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
