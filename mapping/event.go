package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"
)

// Type is a Segment event type.
type Type string

// The Segment spec's event types. Prechat acts on identify, group, alias and
// the conversation-start track; page and screen are accepted and ignored.
const (
	TypeIdentify Type = "identify"
	TypeTrack    Type = "track"
	TypePage     Type = "page"
	TypeScreen   Type = "screen"
	TypeGroup    Type = "group"
	TypeAlias    Type = "alias"
)

// ConversationStarted is the track event that materialises a pre-chat
// document, exactly as named by Segment's Live Agent destination.
const ConversationStarted = "Live Chat Conversation Started"

// MaxIDLength bounds messageId, anonymousId, userId, groupId and previousId.
// Segment requires messageId to be shorter than 100 characters; Prechat
// applies a more generous bound to every identifier.
const MaxIDLength = 256

// Object is a JSON object whose values are kept as raw JSON, so that values
// reach the document exactly as the client sent them.
type Object map[string]json.RawMessage

// Event is one Segment-spec event, decoded and validated by Decode.
//
// Times are zero when the event did not carry them; they are truncated to
// microseconds, the precision Postgres stores.
type Event struct {
	Type        Type
	MessageID   string
	AnonymousID string
	UserID      string
	GroupID     string
	PreviousID  string
	// Event is the track event's name.
	Event string
	// Name is the page or screen name.
	Name       string
	Traits     Object
	Properties Object
	Context    json.RawMessage

	Timestamp         time.Time
	SentAt            time.Time
	ReceivedAt        time.Time
	OriginalTimestamp time.Time
}

// IsConversationStart reports whether e is the track event that builds a
// pre-chat document.
func (e *Event) IsConversationStart() bool {
	return e.Type == TypeTrack && e.Event == ConversationStarted
}

// Time returns the event time that orders it against other events:
// timestamp, else receivedAt − (sentAt − originalTimestamp), else receivedAt,
// else fallback (the pipeline passes the Kafka message time).
func (e *Event) Time(fallback time.Time) time.Time {
	switch {
	case !e.Timestamp.IsZero():
		return e.Timestamp
	case !e.ReceivedAt.IsZero() && !e.SentAt.IsZero() && !e.OriginalTimestamp.IsZero():
		return e.ReceivedAt.Add(-e.SentAt.Sub(e.OriginalTimestamp))
	case !e.ReceivedAt.IsZero():
		return e.ReceivedAt
	}
	return fallback.Truncate(time.Microsecond)
}

// Stamp returns the event's last-writer-wins stamp (see Stamp).
func (e *Event) Stamp(fallback time.Time) Stamp {
	return Stamp{At: e.Time(fallback), MessageID: e.MessageID}
}

// wireEvent is the JSON shape of a Segment event before validation.
type wireEvent struct {
	Type              string          `json:"type"`
	MessageID         id              `json:"messageId"`
	AnonymousID       id              `json:"anonymousId"`
	UserID            id              `json:"userId"`
	GroupID           id              `json:"groupId"`
	PreviousID        id              `json:"previousId"`
	Event             json.RawMessage `json:"event"`
	Name              json.RawMessage `json:"name"`
	Traits            json.RawMessage `json:"traits"`
	Properties        json.RawMessage `json:"properties"`
	Context           json.RawMessage `json:"context"`
	Timestamp         json.RawMessage `json:"timestamp"`
	SentAt            json.RawMessage `json:"sentAt"`
	ReceivedAt        json.RawMessage `json:"receivedAt"`
	OriginalTimestamp json.RawMessage `json:"originalTimestamp"`
}

// id is a Segment identifier: the spec says string, but some libraries send
// numbers; both decode to the same text.
type id string

func (i *id) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*i = id(s)
	case string(b) == "null":
		*i = ""
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')):
		*i = id(b)
	default:
		return errors.New("an identifier must be a string or a number")
	}
	return nil
}

// Decode parses and validates one Segment event. Every error wraps
// ErrInvalidEvent and says what is wrong; such a message is a dead letter.
//
// A message without messageId gets fallbackID, so that replays of the same
// log derive the same identifier.
func Decode(raw []byte, fallbackID string) (Event, error) {
	if !utf8.Valid(raw) {
		return Event{}, invalidEvent("not valid UTF-8")
	}
	var w wireEvent
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		return Event{}, invalidEvent("not a JSON event object: %s", jsonProblem(err))
	}
	if dec.More() {
		return Event{}, invalidEvent("not a JSON event object: data after the object")
	}
	e := Event{
		Type:        Type(w.Type),
		MessageID:   string(w.MessageID),
		AnonymousID: string(w.AnonymousID),
		UserID:      string(w.UserID),
		GroupID:     string(w.GroupID),
		PreviousID:  string(w.PreviousID),
		Context:     w.Context,
	}
	if e.MessageID == "" {
		e.MessageID = fallbackID
	}
	if err := e.decodeFields(&w); err != nil {
		return Event{}, err
	}
	if err := e.validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

func (e *Event) decodeFields(w *wireEvent) error {
	var err error
	if e.Event, err = optionalString("event", w.Event); err != nil {
		return err
	}
	if e.Name, err = optionalString("name", w.Name); err != nil {
		return err
	}
	if e.Traits, err = optionalObject("traits", w.Traits); err != nil {
		return err
	}
	if e.Properties, err = optionalObject("properties", w.Properties); err != nil {
		return err
	}
	for _, t := range []struct {
		name string
		raw  json.RawMessage
		dst  *time.Time
	}{
		{"timestamp", w.Timestamp, &e.Timestamp},
		{"sentAt", w.SentAt, &e.SentAt},
		{"receivedAt", w.ReceivedAt, &e.ReceivedAt},
		{"originalTimestamp", w.OriginalTimestamp, &e.OriginalTimestamp},
	} {
		if *t.dst, err = optionalTime(t.name, t.raw); err != nil {
			return err
		}
	}
	return nil
}

func (e *Event) validate() error {
	switch e.Type {
	case TypeIdentify, TypeTrack, TypePage, TypeScreen, TypeGroup, TypeAlias:
	case "":
		return invalidEvent("type is missing")
	default:
		return invalidEvent("type %q is not a Segment event type", truncate(string(e.Type)))
	}
	for _, f := range []struct{ name, value string }{
		{"messageId", e.MessageID}, {"anonymousId", e.AnonymousID}, {"userId", e.UserID},
		{"groupId", e.GroupID}, {"previousId", e.PreviousID},
	} {
		if len(f.value) > MaxIDLength {
			return invalidEvent("%s is longer than %d bytes", f.name, MaxIDLength)
		}
		if strings.ContainsRune(f.value, 0) {
			return invalidEvent("%s contains a NUL character", f.name)
		}
	}
	if e.MessageID == "" {
		return invalidEvent("messageId is missing")
	}
	switch {
	case e.Type == TypeAlias && (e.UserID == "" || e.PreviousID == ""):
		return invalidEvent("alias needs both userId and previousId")
	case e.AnonymousID == "" && e.UserID == "":
		return invalidEvent("neither anonymousId nor userId is set")
	case e.Type == TypeTrack && e.Event == "":
		return invalidEvent("track has no event name")
	case e.Type == TypeGroup && e.GroupID == "":
		return invalidEvent("group has no groupId")
	case e.IsConversationStart() && e.AnonymousID == "":
		return invalidEvent("%q has no anonymousId, which its pre-chat document is keyed by", ConversationStarted)
	}
	if err := noNUL("traits", e.Traits); err != nil {
		return err
	}
	return noNUL("properties", e.Properties)
}

func optionalString(field string, raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalidEvent("%s is not a string", field)
	}
	if strings.ContainsRune(s, 0) {
		return "", invalidEvent("%s contains a NUL character", field)
	}
	return s, nil
}

func optionalObject(field string, raw json.RawMessage) (Object, error) {
	if isNull(raw) {
		return nil, nil
	}
	if raw[0] != '{' {
		return nil, invalidEvent("%s is not a JSON object", field)
	}
	var o Object
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, invalidEvent("%s is not a JSON object: %s", field, jsonProblem(err))
	}
	return o, nil
}

func optionalTime(field string, raw json.RawMessage) (time.Time, error) {
	if isNull(raw) {
		return time.Time{}, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return time.Time{}, invalidEvent("%s is not an ISO-8601 string", field)
	}
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, invalidEvent("%s %q is not an ISO-8601 date-time", field, truncate(s))
	}
	if t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, invalidEvent("%s %q is out of range", field, truncate(s))
	}
	return t.UTC().Truncate(time.Microsecond), nil
}

// noNUL rejects keys or string values holding U+0000, which Postgres cannot
// store in text or jsonb: one such event would otherwise fail its whole batch.
func noNUL(field string, o Object) error {
	for k, v := range o {
		if strings.ContainsRune(k, 0) {
			return invalidEvent("%s has a key with a NUL character", field)
		}
		if bytes.Contains(v, []byte(`\u0000`)) && containsNUL(v) {
			return invalidEvent("%s.%s contains a NUL character (\\u0000), which Postgres cannot store", field, truncate(k))
		}
	}
	return nil
}

func containsNUL(raw json.RawMessage) bool {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return true
	}
	var walk func(any) bool
	walk = func(v any) bool {
		switch v := v.(type) {
		case string:
			return strings.ContainsRune(v, 0)
		case []any:
			for _, x := range v {
				if walk(x) {
					return true
				}
			}
		case map[string]any:
			for k, x := range v {
				if strings.ContainsRune(k, 0) || walk(x) {
					return true
				}
			}
		}
		return false
	}
	return walk(v)
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

func jsonProblem(err error) string {
	msg := err.Error()
	return strings.TrimPrefix(msg, "json: ")
}

// truncate keeps operator-facing messages short when echoing input.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// PartitionKey is the Kafka message key for the event: anonymousId, else
// userId, so that one visitor's events stay in order on one partition.
func (e *Event) PartitionKey() string {
	if e.AnonymousID != "" {
		return e.AnonymousID
	}
	return e.UserID
}
