package mapping_test

import (
	"testing"
	"time"

	"github.com/prechat/prechat/mapping"
)

// TestAdmitBoundsEventTime: a client's claimed time counts only within the
// window around the record time; outside it the record time is used, so a
// far-future identify cannot win last-writer-wins for ever and a far-future
// conversation start cannot outlive PRECHAT_TTL.
func TestAdmitBoundsEventTime(t *testing.T) {
	t.Parallel()
	record := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	p := &mapping.Policy{}
	tests := []struct {
		name      string
		timestamp string
		want      time.Time
		clamped   bool
	}{
		{"within the window", "2026-12-02T11:00:00Z", record.Add(-time.Hour), false},
		{"a day back is still believed", "2026-12-01T12:00:00Z", record.Add(-24 * time.Hour), false},
		{"a little ahead (clock skew)", "2026-12-02T12:04:00Z", record.Add(4 * time.Minute), false},
		{"far future", "9999-12-31T23:59:00Z", record, true},
		{"six minutes ahead", "2026-12-02T12:06:00Z", record, true},
		{"far past", "1970-01-01T00:00:00Z", record, true},
	}
	for _, tt := range tests {
		e, err := mapping.Decode([]byte(`{"type":"track","event":"Live Chat Conversation Started","messageId":"m","anonymousId":"a","timestamp":"`+tt.timestamp+`"}`), "")
		if err != nil {
			t.Fatal(err)
		}
		a := p.Admit(&e, record)
		if !e.Time(record).Equal(tt.want) || a.Clamped != tt.clamped {
			t.Errorf("%s: time %v clamped %v, want %v %v", tt.name, e.Time(record), a.Clamped, tt.want, tt.clamped)
		}
		st := mapping.NewState()
		st.Apply(&e, record)
		v, _ := st.Visitor("a")
		doc := (&mapping.Materializer{Settings: &mapping.Settings{}, TTL: 30 * time.Minute}).Document(v)
		if limit := record.Add(mapping.DefaultTimeFuture + 30*time.Minute); doc.ExpiresAt.After(limit) {
			t.Errorf("%s: the document expires at %v, after %v", tt.name, doc.ExpiresAt, limit)
		}
	}
	// A configured window, and admission is repeatable (a replay).
	narrow := &mapping.Policy{Window: mapping.Window{Past: time.Minute, Future: time.Second}}
	e, _ := mapping.Decode([]byte(`{"type":"identify","messageId":"m","anonymousId":"a","timestamp":"2026-12-02T11:58:00Z"}`), "")
	for range 2 {
		if a := narrow.Admit(&e, record); !a.Clamped || !e.Time(record).Equal(record) {
			t.Errorf("narrow window: clamped %v time %v", a.Clamped, e.Time(record))
		}
	}
}

// TestFarFutureIdentifyDoesNotWinForever: an attacker's identify dated 9999
// is applied at its record time, so the owner's later write wins.
func TestFarFutureIdentifyDoesNotWinForever(t *testing.T) {
	t.Parallel()
	record := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	p := &mapping.Policy{}
	st := mapping.NewState()
	for i, ev := range []struct {
		raw    string
		record time.Time
	}{
		{`{"type":"identify","messageId":"evil","anonymousId":"a","traits":{"email":"attacker@example.com"},"timestamp":"9999-12-31T00:00:00Z"}`, record},
		{`{"type":"identify","messageId":"good","anonymousId":"a","traits":{"email":"owner@example.com"}}`, record.Add(time.Minute)},
	} {
		e, err := mapping.Decode([]byte(ev.raw), "")
		if err != nil {
			t.Fatal(i, err)
		}
		p.Admit(&e, ev.record)
		st.Apply(&e, ev.record)
	}
	got := st.Traits[mapping.Subject{Kind: mapping.KindAnonymous, ID: "a"}]["email"]
	if string(got.Value) != `"owner@example.com"` {
		t.Errorf("email = %s, want the later owner's write", got.Value)
	}
}
