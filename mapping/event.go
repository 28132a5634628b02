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

	// Prechat is what the event carries under context.prechat: identity
	// proofs and the conversation's token hash.
	Prechat PrechatContext

	// At is the event time that Policy.Admit settled on (the claimed time
	// bounded to a window around the Kafka record time); zero before
	// admission.
	At time.Time
	// Verified is set by Policy.Admit when the event carries a valid
	// identity proof for its userId.
	Verified bool
}

// IsConversationStart reports whether e is the track event that builds a
// pre-chat document.
func (e *Event) IsConversationStart() bool {
	return e.Type == TypeTrack && e.Event == ConversationStarted
}

// CanChangeDocument reports whether the event can change a document, and so is
// recorded as applied for read-your-writes (GET …?after=): identify, group,
// alias, the conversation start, and any event carrying both anonymousId and
// userId (it links them). Page, screen and other tracks with one id are
// accepted and change nothing.
func (e *Event) CanChangeDocument() bool {
	switch {
	case e.Type == TypeIdentify, e.Type == TypeGroup, e.Type == TypeAlias, e.IsConversationStart():
		return true
	}
	return e.AnonymousID != "" && e.UserID != ""
}

// Time returns the event time that orders it against other events: At
// once admitted (Policy.Admit), else the time the event claims: timestamp,
// else receivedAt − (sentAt − originalTimestamp), else receivedAt, else
// fallback (the pipeline passes the Kafka message time).
func (e *Event) Time(fallback time.Time) time.Time {
	switch {
	case !e.At.IsZero():
		return e.At
	case !e.Timestamp.IsZero():
		return e.Timestamp
	case !e.ReceivedAt.IsZero() && !e.SentAt.IsZero() && !e.OriginalTimestamp.IsZero():
		return e.ReceivedAt.Add(-e.SentAt.Sub(e.OriginalTimestamp))
	case !e.ReceivedAt.IsZero():
		return e.ReceivedAt
	}
	return fallback.UTC().Truncate(time.Microsecond)
}

// Stamp returns the event's last-writer-wins stamp (see Stamp).
func (e *Event) Stamp(fallback time.Time) Stamp {
	return Stamp{At: e.Time(fallback), MessageID: e.MessageID}
}

// wireEvent is the JSON shape of a Segment event before validation.
type wireEvent struct {
	Type              string          `json:"type"`
	MessageID         json.RawMessage `json:"messageId"`
	AnonymousID       json.RawMessage `json:"anonymousId"`
	UserID            json.RawMessage `json:"userId"`
	GroupID           json.RawMessage `json:"groupId"`
	PreviousID        json.RawMessage `json:"previousId"`
	Event             *string         `json:"event"`
	Name              *string         `json:"name"`
	Traits            Object          `json:"traits"`
	Properties        Object          `json:"properties"`
	Context           json.RawMessage `json:"context"`
	Timestamp         *string         `json:"timestamp"`
	SentAt            *string         `json:"sentAt"`
	ReceivedAt        *string         `json:"receivedAt"`
	OriginalTimestamp *string         `json:"originalTimestamp"`
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
	if err := json.Unmarshal(raw, &w); err != nil {
		return Event{}, decodeProblem(err)
	}
	e := Event{Type: Type(w.Type), Context: w.Context}
	var prechatProblem error
	e.Prechat, prechatProblem = prechatContext(w.Context)
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *string
	}{
		{"messageId", w.MessageID, &e.MessageID},
		{"anonymousId", w.AnonymousID, &e.AnonymousID},
		{"userId", w.UserID, &e.UserID},
		{"groupId", w.GroupID, &e.GroupID},
		{"previousId", w.PreviousID, &e.PreviousID},
	} {
		var err error
		if *f.dst, err = identifier(f.name, f.raw); err != nil {
			return Event{}, err
		}
	}
	if e.MessageID == "" {
		e.MessageID = fallbackID
	}
	if w.Event != nil {
		e.Event = *w.Event
	}
	if w.Name != nil {
		e.Name = *w.Name
	}
	e.Traits, e.Properties = w.Traits, w.Properties
	for _, t := range []struct {
		name string
		raw  *string
		dst  *time.Time
	}{
		{"timestamp", w.Timestamp, &e.Timestamp},
		{"sentAt", w.SentAt, &e.SentAt},
		{"receivedAt", w.ReceivedAt, &e.ReceivedAt},
		{"originalTimestamp", w.OriginalTimestamp, &e.OriginalTimestamp},
	} {
		var err error
		if *t.dst, err = optionalTime(t.name, t.raw); err != nil {
			return Event{}, err
		}
	}
	if err := e.validate(); err != nil {
		return Event{}, err
	}
	if err := e.checkValues(); err != nil {
		return Event{}, err
	}
	switch {
	case !e.IsConversationStart():
		e.Prechat.TokenHash = "" // only a conversation start carries one
	case prechatProblem != nil:
		return Event{}, prechatProblem
	}
	return e, nil
}

// decodeProblem explains a JSON error in terms of the event's fields.
func decodeProblem(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te) && te.Field == "":
		return invalidEvent("not a JSON event object: it is a JSON %s", te.Value)
	case errors.As(err, &te):
		want := map[string]string{"traits": "a JSON object", "properties": "a JSON object"}[te.Field]
		if want == "" {
			want = "a string"
			if strings.HasSuffix(te.Field, "imestamp") || strings.HasSuffix(te.Field, "At") {
				want = "an ISO-8601 string"
			}
		}
		return invalidEvent("%s is not %s (it is a JSON %s)", te.Field, want, te.Value)
	case errors.As(err, &se) && strings.Contains(se.Error(), "after top-level value"):
		return invalidEvent("not a JSON event object: data after the object")
	}
	return invalidEvent("not a JSON event object: %s", jsonProblem(err))
}

// IdentifierText is the text of a Segment identifier field (userId,
// anonymousId …) as Decode reads it: a string, or a number's literal text;
// "" when absent or null.
func IdentifierText(raw json.RawMessage) (string, error) { return identifier("identifier", raw) }

// identifier reads a Segment identifier: the spec says string, but some
// libraries send numbers; both decode to the same text.
func identifier(field string, raw json.RawMessage) (string, error) {
	switch {
	case isNull(raw):
		return "", nil
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", invalidEvent("%s is not a string", field)
		}
		return s, nil
	case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'):
		return string(raw), nil
	}
	return "", invalidEvent("%s must be a string or a number", field)
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
	for _, f := range []struct{ name, value string }{{"event", e.Event}, {"name", e.Name}, {"type", string(e.Type)}} {
		if strings.ContainsRune(f.value, 0) {
			return invalidEvent("%s contains a NUL character", f.name)
		}
	}
	if !isNull(e.Context) && e.Context[0] != '{' {
		return invalidEvent("context is not a JSON object")
	}
	if err := noNUL("traits", e.Traits); err != nil {
		return err
	}
	return noNUL("properties", e.Properties)
}

func optionalTime(field string, raw *string) (time.Time, error) {
	if raw == nil || *raw == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, *raw)
	if err != nil {
		return time.Time{}, invalidEvent("%s %q is not an ISO-8601 date-time", field, truncate(*raw))
	}
	if t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, invalidEvent("%s %q is out of range", field, truncate(*raw))
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
