package mapping_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prechat/prechat/mapping"
)

// eventCase is one file in testdata/events: a raw message for Decode and
// either the decoded event (as eventView JSON) or the expected error.
type eventCase struct {
	Name string `json:"name"`
	// Event is the message as JSON; Text is used instead when the message
	// is not valid JSON or must keep its exact bytes.
	Event json.RawMessage `json:"event"`
	Text  *string         `json:"text"`
	// FallbackID is Decode's fallbackID; Fallback the time passed to
	// Event.Time (default defaultFallback).
	FallbackID string `json:"fallbackId"`
	Fallback   string `json:"fallback"`
	// WantError is a substring of the error, which must wrap ErrInvalidEvent.
	WantError string `json:"wantError"`
	// Want is the decoded event as eventView JSON.
	Want json.RawMessage `json:"want"`
	// Conversation is whether IsConversationStart must hold (valid cases).
	Conversation bool `json:"conversationStart"`
}

// eventView is the decoded event as JSON, with zero fields left out and the
// event time (Event.Time with the case's fallback) and stamp added.
type eventView struct {
	Type              mapping.Type    `json:"type"`
	MessageID         string          `json:"messageId"`
	AnonymousID       string          `json:"anonymousId,omitempty"`
	UserID            string          `json:"userId,omitempty"`
	GroupID           string          `json:"groupId,omitempty"`
	PreviousID        string          `json:"previousId,omitempty"`
	Event             string          `json:"event,omitempty"`
	Name              string          `json:"name,omitempty"`
	Traits            mapping.Object  `json:"traits,omitempty"`
	Properties        mapping.Object  `json:"properties,omitempty"`
	Context           json.RawMessage `json:"context,omitempty"`
	TokenHash         string          `json:"tokenHash,omitempty"`
	Timestamp         string          `json:"timestamp,omitempty"`
	SentAt            string          `json:"sentAt,omitempty"`
	ReceivedAt        string          `json:"receivedAt,omitempty"`
	OriginalTimestamp string          `json:"originalTimestamp,omitempty"`
	Time              string          `json:"time"`
}

func viewEvent(t *testing.T, e mapping.Event, fallback time.Time) eventView {
	t.Helper()
	ts := func(name string, v time.Time) string {
		if v.IsZero() {
			return ""
		}
		if v.Location() != time.UTC {
			t.Errorf("%s %v is not in UTC", name, v)
		}
		if v.Nanosecond()%1000 != 0 {
			t.Errorf("%s %v is not truncated to microseconds", name, v)
		}
		return v.Format(time.RFC3339Nano)
	}
	at := e.Time(fallback)
	if st := e.Stamp(fallback); !st.At.Equal(at) || st.MessageID != e.MessageID {
		t.Errorf("Stamp = %+v, want {At: %v, MessageID: %q}", st, at, e.MessageID)
	}
	return eventView{
		Type: e.Type, MessageID: e.MessageID, AnonymousID: e.AnonymousID, UserID: e.UserID,
		GroupID: e.GroupID, PreviousID: e.PreviousID, Event: e.Event, Name: e.Name,
		Traits: e.Traits, Properties: e.Properties, Context: e.Context, TokenHash: e.Prechat.TokenHash,
		Timestamp: ts("timestamp", e.Timestamp), SentAt: ts("sentAt", e.SentAt),
		ReceivedAt: ts("receivedAt", e.ReceivedAt), OriginalTimestamp: ts("originalTimestamp", e.OriginalTimestamp),
		Time: at.UTC().Format(time.RFC3339Nano),
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	cases := loadCases[eventCase](t, "events")
	for _, file := range sortedKeys(cases) {
		c := cases[file]
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			raw := []byte(c.Event)
			if c.Text != nil {
				raw = []byte(*c.Text)
			}
			if c.Name == "" || len(raw) == 0 && c.Text == nil || (c.WantError == "") == (len(c.Want) == 0) {
				t.Fatalf("case file is incomplete: name, event or text, and exactly one of want and wantError are required")
			}
			fb := c.Fallback
			if fb == "" {
				fb = defaultFallback
			}
			fallback, err := time.Parse(time.RFC3339Nano, fb)
			if err != nil {
				t.Fatalf("fallback: %v", err)
			}
			checkDecode(t, raw, c.FallbackID, fallback, c.WantError, c.Want, c.Conversation)
		})
	}
}

func checkDecode(t *testing.T, raw []byte, fallbackID string, fallback time.Time, wantError string, want json.RawMessage, conversation bool) {
	t.Helper()
	e, err := mapping.Decode(raw, fallbackID)
	if wantError != "" {
		if err == nil {
			t.Fatalf("Decode succeeded, want an error containing %q; got %+v", wantError, e)
		}
		if !errors.Is(err, mapping.ErrInvalidEvent) {
			t.Errorf("error %q does not wrap ErrInvalidEvent", err)
		}
		if !strings.Contains(err.Error(), wantError) {
			t.Errorf("error %q does not contain %q", err, wantError)
		}
		if !isZeroEvent(e) {
			t.Errorf("Decode returned a non-zero event with its error: %+v", e)
		}
		return
	}
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	assertJSONEqual(t, viewEvent(t, e, fallback), want)
	if got := e.IsConversationStart(); got != conversation {
		t.Errorf("IsConversationStart() = %v, want %v", got, conversation)
	}
}

func isZeroEvent(e mapping.Event) bool {
	return e.Type == "" && e.MessageID == "" && e.AnonymousID == "" && e.UserID == "" &&
		e.Traits == nil && e.Properties == nil && e.Timestamp.IsZero()
}

// TestDecodeBytes covers inputs a JSON case file cannot hold: invalid UTF-8
// and identifiers at and past MaxIDLength.
func TestDecodeBytes(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", mapping.MaxIDLength+1)
	max := strings.Repeat("y", mapping.MaxIDLength)
	fallback := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		raw        string
		fallbackID string
		wantError  string
		want       string
	}{
		{name: "invalid UTF-8 in a trait value",
			raw:       "{\"type\":\"identify\",\"messageId\":\"m\",\"userId\":\"u\",\"traits\":{\"name\":\"J\xffne\"}}",
			wantError: "not valid UTF-8"},
		{name: "invalid UTF-8 in a key",
			raw:       "{\"type\":\"identify\",\"messageId\":\"m\",\"userId\":\"u\",\"traits\":{\"n\xc3\":1}}",
			wantError: "not valid UTF-8"},
		{name: "truncated multi-byte sequence at the end",
			raw:       "{\"type\":\"identify\",\"messageId\":\"m\",\"userId\":\"u\"}\xe2\x82",
			wantError: "not valid UTF-8"},
		{name: "messageId too long",
			raw:       `{"type":"identify","messageId":"` + long + `","userId":"u"}`,
			wantError: "messageId is longer than 256 bytes"},
		{name: "anonymousId too long",
			raw:       `{"type":"page","messageId":"m","anonymousId":"` + long + `"}`,
			wantError: "anonymousId is longer than 256 bytes"},
		{name: "userId too long",
			raw:       `{"type":"identify","messageId":"m","userId":"` + long + `"}`,
			wantError: "userId is longer than 256 bytes"},
		{name: "groupId too long",
			raw:       `{"type":"group","messageId":"m","userId":"u","groupId":"` + long + `"}`,
			wantError: "groupId is longer than 256 bytes"},
		{name: "previousId too long",
			raw:       `{"type":"alias","messageId":"m","userId":"u","previousId":"` + long + `"}`,
			wantError: "previousId is longer than 256 bytes"},
		{name: "fallback id too long",
			raw:        `{"type":"identify","userId":"u"}`,
			fallbackID: long,
			wantError:  "messageId is longer than 256 bytes"},
		{name: "multi-byte id over the byte limit",
			raw:       `{"type":"identify","messageId":"m","userId":"` + strings.Repeat("é", mapping.MaxIDLength/2+1) + `"}`,
			wantError: "userId is longer than 256 bytes"},
		{name: "ids of exactly MaxIDLength bytes are valid",
			raw: `{"type":"alias","messageId":"` + max + `","anonymousId":"` + max + `","userId":"` + max + `","previousId":"` + max + `"}`,
			want: `{"type":"alias","messageId":"` + max + `","anonymousId":"` + max + `","userId":"` + max +
				`","previousId":"` + max + `","time":"2030-01-01T00:00:00Z"}`},
		{name: "valid UTF-8 beyond ASCII is kept",
			raw:  `{"type":"identify","messageId":"m","userId":"ü","traits":{"名前":"José 🚀"}}`,
			want: `{"type":"identify","messageId":"m","userId":"ü","traits":{"名前":"José 🚀"},"time":"2030-01-01T00:00:00Z"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkDecode(t, []byte(tt.raw), tt.fallbackID, fallback, tt.wantError, json.RawMessage(tt.want), false)
		})
	}
}

// TestDecodeKeepsRawValues checks that trait and property values reach the
// event byte for byte, so that numbers and strings keep their exact form.
func TestDecodeKeepsRawValues(t *testing.T) {
	t.Parallel()
	raw := `{"type":"track","event":"Live Chat Conversation Started","messageId":"m","anonymousId":"a",` +
		`"properties":{"revenue":100.50,"big":12345678901234567890,"s":"a\u00e9b","n":null,"o":{"k":[1,2]}}}`
	e, err := mapping.Decode([]byte(raw), "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"revenue": `100.50`,
		"big":     `12345678901234567890`,
		"s":       `"a\u00e9b"`,
		"n":       `null`,
		"o":       `{"k":[1,2]}`,
	}
	if len(e.Properties) != len(want) {
		t.Errorf("properties = %v, want %d keys", e.Properties, len(want))
	}
	for k, w := range want {
		if got := string(e.Properties[k]); got != w {
			t.Errorf("properties[%q] = %s, want %s", k, got, w)
		}
	}
}

// TestEventTime checks the event-time rule on events built directly.
func TestEventTime(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	fallback := at("2024-01-01T00:00:00.000000999Z")
	tests := []struct {
		name string
		e    mapping.Event
		want time.Time
	}{
		{"timestamp wins", mapping.Event{Timestamp: at("2024-01-02T00:00:00Z"), ReceivedAt: at("2024-01-03T00:00:00Z"),
			SentAt: at("2024-01-03T00:00:00Z"), OriginalTimestamp: at("2024-01-01T00:00:00Z")}, at("2024-01-02T00:00:00Z")},
		{"clock skew corrected", mapping.Event{ReceivedAt: at("2024-01-02T12:00:00Z"),
			SentAt: at("2024-01-02T12:00:30Z"), OriginalTimestamp: at("2024-01-02T12:00:00Z")}, at("2024-01-02T11:59:30Z")},
		{"client clock behind", mapping.Event{ReceivedAt: at("2024-01-02T12:00:00Z"),
			SentAt: at("2024-01-02T11:00:01Z"), OriginalTimestamp: at("2024-01-02T11:00:00Z")}, at("2024-01-02T11:59:59Z")},
		{"receivedAt without sentAt", mapping.Event{ReceivedAt: at("2024-01-02T12:00:00Z"),
			OriginalTimestamp: at("2024-01-02T11:00:00Z")}, at("2024-01-02T12:00:00Z")},
		{"receivedAt without originalTimestamp", mapping.Event{ReceivedAt: at("2024-01-02T12:00:00Z"),
			SentAt: at("2024-01-02T11:00:00Z")}, at("2024-01-02T12:00:00Z")},
		{"sentAt and originalTimestamp without receivedAt fall back", mapping.Event{SentAt: at("2024-01-02T11:00:00Z"),
			OriginalTimestamp: at("2024-01-02T10:00:00Z")}, at("2024-01-01T00:00:00Z")},
		{"nothing: fallback truncated to microseconds", mapping.Event{}, at("2024-01-01T00:00:00Z")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.e.Time(fallback); !got.Equal(tt.want) {
				t.Errorf("Time = %v, want %v", got, tt.want)
			}
		})
	}
}
