package api_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prechat/prechat/api"
)

func basicAuth(key string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(key+":"))
}

func TestIngestRejectsBadInputAndProducesNothing(t *testing.T) {
	t.Parallel()
	s := newFakeStack(t, api.Config{})
	ok := `"writeKey":"` + testWriteKey + `"`
	big := strings.Repeat("x", 33<<10)
	manyEvents := make([]string, 2501)
	for i := range manyEvents {
		manyEvents[i] = `{"type":"track","event":"e","anonymousId":"a"}`
	}
	hugeBatch := make([]string, 20)
	for i := range hugeBatch {
		hugeBatch[i] = `{"type":"track","event":"e","anonymousId":"a","properties":{"p":"` + strings.Repeat("y", 30<<10) + `"}}`
	}
	cases := []struct {
		name, path, body string
		header           map[string]string
		status           int
		code             string
	}{
		{"bad JSON", "/v1/t", `{"event":`, nil, 400, "bad_request"},
		{"not an object", "/v1/t", `[1,2]`, nil, 400, "bad_request"},
		{"no write key", "/v1/t", `{"event":"e","anonymousId":"a"}`, nil, 401, "unauthorized"},
		{"unknown write key", "/v1/t", `{"event":"e","anonymousId":"a","writeKey":"nope"}`, nil, 401, "unauthorized"},
		{"unknown basic auth key", "/v1/track", `{"event":"e","anonymousId":"a"}`, map[string]string{"Authorization": basicAuth("nope")}, 401, "unauthorized"},
		{"no ids", "/v1/t", `{"event":"e",` + ok + `}`, nil, 400, "bad_request"},
		{"track without event", "/v1/track", `{"anonymousId":"a",` + ok + `}`, nil, 400, "bad_request"},
		{"group without groupId", "/v1/g", `{"anonymousId":"a",` + ok + `}`, nil, 400, "bad_request"},
		{"traits not an object", "/v1/i", `{"anonymousId":"a","traits":[1],` + ok + `}`, nil, 400, "bad_request"},
		{"bad timestamp", "/v1/t", `{"event":"e","anonymousId":"a","timestamp":"yesterday",` + ok + `}`, nil, 400, "bad_request"},
		{"oversize event", "/v1/t", `{"event":"e","anonymousId":"a","properties":{"p":"` + big + `"},` + ok + `}`, nil, 413, "too_large"},
		{"oversize batch", "/v1/batch", `{"batch":[` + strings.Join(hugeBatch, ",") + `],` + ok + `}`, nil, 413, "too_large"},
		{"too many events", "/v1/b", `{"batch":[` + strings.Join(manyEvents, ",") + `],` + ok + `}`, nil, 400, "bad_request"},
		{"empty batch", "/v1/b", `{"batch":[],` + ok + `}`, nil, 400, "bad_request"},
		{"one bad event rejects the batch", "/v1/b", `{"batch":[{"type":"track","event":"e","anonymousId":"a"},{"type":"track","anonymousId":"a"}],` + ok + `}`, nil, 400, "bad_request"},
		{"batch item without type", "/v1/b", `{"batch":[{"event":"e","anonymousId":"a"}],` + ok + `}`, nil, 400, "bad_request"},
		{"not gzip", "/v1/t", `{"event":"e"}`, map[string]string{"Content-Encoding": "gzip"}, 400, "bad_request"},
		{"GET on ingest", "/v1/t", ``, nil, 405, "method_not_allowed"},
	}
	for _, c := range cases {
		method := "POST"
		if c.status == 405 {
			method = "GET"
		}
		r := s.do(method, c.path, c.body, c.header)
		if r.status != c.status || r.json(t)["error"] != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, r.status, r.body, c.status, c.code)
		}
	}
	if msgs := s.topicMessages(); len(msgs) != 0 {
		t.Fatalf("%d messages reached Kafka from rejected requests", len(msgs))
	}
}

func TestIngestCompletesAndProducesEvents(t *testing.T) {
	t.Parallel()
	s := newFakeStack(t, api.Config{})
	sent := time.Now().UTC()
	device := sent.Add(-time.Hour) // a device clock one hour behind
	r := s.do("POST", "/v1/identify", `{"anonymousId":"anon-1","userId":"u1","traits":{"email":"e@x"}}`,
		map[string]string{"Authorization": basicAuth(testWriteKey), "Content-Type": "application/json"})
	if r.status != 200 || string(r.body) != "{\"success\":true}\n" {
		t.Fatalf("identify: %d %s", r.status, r.body)
	}
	body := fmt.Sprintf(`{"event":"Clicked","userId":"u2","messageId":"m-fixed","writeKey":%q,"timestamp":%q,"sentAt":%q}`,
		testWriteKey, device.Add(-time.Second).Format(time.RFC3339Nano), device.Format(time.RFC3339Nano))
	if r := s.do("POST", "/v1/t", body, map[string]string{"Content-Type": "text/plain"}); r.status != 200 {
		t.Fatalf("track: %d %s", r.status, r.body)
	}
	batch := fmt.Sprintf(`{"writeKey":%q,"sentAt":%q,"batch":[{"type":"page","anonymousId":"anon-3","name":"Home"},{"type":"group","anonymousId":"anon-3","groupId":"g1","traits":{"plan":"pro"}}]}`,
		testWriteKey, sent.Format(time.RFC3339Nano))
	if r := s.do("POST", "/v1/b", batch, nil); r.status != 200 {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}

	msgs := s.topicMessages()
	if len(msgs) != 4 {
		t.Fatalf("%d messages in Kafka, want 4", len(msgs))
	}
	byType := map[string]map[string]any{}
	for _, m := range msgs {
		var e map[string]any
		if err := json.Unmarshal(m.Value, &e); err != nil {
			t.Fatal(err)
		}
		byType[e["type"].(string)] = e
		if _, ok := e["writeKey"]; ok {
			t.Errorf("the write key was produced: %s", m.Value)
		}
		want := e["anonymousId"]
		if want == nil {
			want = e["userId"]
		}
		if string(m.Key) != want {
			t.Errorf("key %q, want anonymousId else userId %v", m.Key, want)
		}
		for _, f := range []string{"messageId", "receivedAt", "timestamp"} {
			if s, _ := e[f].(string); s == "" {
				t.Errorf("%s not set: %s", f, m.Value)
			}
		}
	}
	track := byType["track"]
	if track["messageId"] != "m-fixed" {
		t.Errorf("a given messageId was replaced: %v", track["messageId"])
	}
	// timestamp = receivedAt - (sentAt - originalTimestamp): one second before receipt.
	received, _ := time.Parse(time.RFC3339Nano, track["receivedAt"].(string))
	ts, _ := time.Parse(time.RFC3339Nano, track["timestamp"].(string))
	if d := received.Sub(ts); d < 999*time.Millisecond || d > 1001*time.Millisecond {
		t.Errorf("timestamp not corrected for the device clock: receivedAt %v timestamp %v", received, ts)
	}
	if byType["page"]["sentAt"] == nil || byType["group"]["groupId"] != "g1" {
		t.Errorf("batch events lost fields: %v %v", byType["page"], byType["group"])
	}
}

func TestIngestDisabledWithoutWriteKeys(t *testing.T) {
	t.Parallel()
	s := newFakeStack(t, apiConfigWithoutIngest())
	if r := s.do("POST", "/v1/t", `{"event":"e","anonymousId":"a"}`, nil); r.status != http.StatusNotFound {
		t.Fatalf("ingest without write keys: %d", r.status)
	}
}
