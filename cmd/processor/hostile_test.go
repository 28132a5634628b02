package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/prechat/prechat/mapping/mappingtest"
	"github.com/prechat/prechat/persistence"
	"github.com/prechat/prechat/persistence/persistencetest"
	"github.com/prechat/prechat/pipeline/pipelinetest"
)

// hostile is an event that one client can send to stop a partition if it
// is accepted but storage or rendering refuses it later.
type hostile struct {
	name string
	// path is the ingest path it is posted to; "" when only a Kafka producer
	// can send it.
	path string
	// event is the event, without writeKey; key is its Kafka key.
	event, key string
	// ingestStatus and ingestReason are the ingest's answer when it refuses it.
	ingestStatus int
	ingestReason string
	// recordTime is the Kafka record time its producer sets (zero: now).
	recordTime time.Time
	// deadReason is in the reason of its dead letter; "" when the event is
	// applied instead, at its record time (the window around it bounds the
	// event time, see mapping.Policy).
	deadReason string
}

func hostilePayloads() []hostile {
	deep := strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100)
	huge := "[" + strings.Repeat("0,", 100000) + "0]"
	return []hostile{
		// Applied at its record time: its document expires within the TTL.
		{name: "conversation start dated 9999-12-31", path: "t", key: "hostile-1",
			event: `{"type":"track","event":"Live Chat Conversation Started","messageId":"hostile-1","anonymousId":"hostile-1","properties":{"subject":"x"},"timestamp":"9999-12-31T23:59:00Z"}`},
		{name: "trait 1e200000", path: "i", key: "hostile-2",
			event:        `{"type":"identify","messageId":"hostile-2","anonymousId":"hostile-2","traits":{"email":1e200000}}`,
			ingestStatus: 400, ingestReason: "traits.email holds the number 1e200000, out of range", deadReason: "traits.email holds the number 1e200000, out of range"},
		{name: "lone surrogate in a trait", path: "i", key: "hostile-3",
			event:        `{"type":"identify","messageId":"hostile-3","anonymousId":"hostile-3","userId":"u-3","traits":{"firstName":"\ud800"}}`,
			ingestStatus: 400, ingestReason: `traits.firstName contains an invalid Unicode escape (\\ud800`, deadReason: `traits.firstName contains an invalid Unicode escape (\ud800`},
		{name: "lone surrogate in a property", path: "t", key: "hostile-4",
			event:        `{"type":"track","event":"Live Chat Conversation Started","messageId":"hostile-4","anonymousId":"hostile-4","properties":{"subject":"\udc00"}}`,
			ingestStatus: 400, ingestReason: "properties.subject contains an invalid Unicode escape", deadReason: "properties.subject contains an invalid Unicode escape"},
		{name: "number out of range in the context", path: "g", key: "hostile-5",
			event:        `{"type":"group","messageId":"hostile-5","anonymousId":"hostile-5","groupId":"g","context":{"n":-1e999999}}`,
			ingestStatus: 400, ingestReason: "context holds the number -1e999999", deadReason: "context holds the number -1e999999"},
		{name: "nested 100 levels deep", path: "i", key: "hostile-6",
			event:        `{"type":"identify","messageId":"hostile-6","anonymousId":"hostile-6","traits":{"address":` + deep + `}}`,
			ingestStatus: 400, ingestReason: "traits.address is nested deeper than 64 levels", deadReason: "traits.address is nested deeper than 64 levels"},
		{name: "huge array", path: "g", key: "hostile-7",
			event:        `{"type":"group","messageId":"hostile-7","anonymousId":"hostile-7","groupId":"g","traits":{"website":` + huge + `}}`,
			ingestStatus: 413, ingestReason: "larger than 32768 bytes", deadReason: "traits is larger than 32768 bytes"},
		// Decode cannot see the record time: admission refuses an event
		// whose time, bounded by the window around it, a document could not
		// hold.
		{name: "record time in the year 200000", key: "hostile-8", recordTime: time.Date(200000, 1, 1, 0, 0, 0, 0, time.UTC),
			event:      `{"type":"track","event":"Live Chat Conversation Started","messageId":"hostile-8","anonymousId":"hostile-8","properties":{"subject":"x"}}`,
			deadReason: "is after 9998-12-31: its document could not hold it"},
	}
}

// TestHostileInputNeverStallsAPartition sends each hostile payload through
// the ingest and straight into Kafka, to the real binary: the ingest answers
// a clear 4xx, or 200 and the event is then a dead letter with its reason
// (or applied harmlessly), the Kafka message becomes a dead letter with its
// reason (or is applied harmlessly), and a conversation start sent after it
// to the same partition gets its document within seconds. Before Decode
// refused these and the pipeline split refused batches (and the event-time
// window), each of them stopped its partition for good.
func TestHostileInputNeverStallsAPartition(t *testing.T) {
	t.Parallel()
	topic := pipelinetest.Name(t, "topic")
	brokers := pipelinetest.NewCluster(t, 2, topic)
	store, dbURL := persistencetest.NewStore(t, nil)
	proc := startProcessor(t, []string{"DATABASE_URL=" + dbURL, "KAFKA_BROKERS=" + strings.Join(brokers, ","), "KAFKA_TOPIC=" + topic,
		"KAFKA_GROUP=" + pipelinetest.Name(t, "group"), "SETTINGS_FILE=" + writeSettings(t, mappingtest.SettingsJSON),
		"HTTP_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0", "WRITE_KEYS=wk",
		// This suite is about poison, not access: the hostile payloads are
		// sent as they are, without a conversation secret (token_test.go
		// and api's access tests cover DOCUMENT_ACCESS=token).
		"DOCUMENT_ACCESS=anonymousId"}, "serve")
	base := "http://" + proc.logAddr(t, "http listening", 30*time.Second)
	admin := "http://" + proc.logAddr(t, "admin listening", 30*time.Second)
	ctx := context.Background()
	// conversationStart sends a conversation start of visitor to partition
	// (through Kafka) or through the ingest (partition < 0), and waits up to
	// 10 seconds for its document.
	conversationStart := func(t *testing.T, visitor string, partition int32) {
		t.Helper()
		raw := `{"type":"track","event":"Live Chat Conversation Started","messageId":"` + visitor + `","anonymousId":"` + visitor +
			`","properties":{"subject":"after"},"timestamp":"` + time.Now().UTC().Format(time.RFC3339Nano) + `"}`
		if partition >= 0 {
			pipelinetest.ProduceAt(t, brokers, topic, partition, time.Now().UnixMilli(), []byte(visitor), []byte(raw))
		} else if code, body := ingest(base, "t", raw); code != http.StatusOK {
			t.Fatalf("ingest of a conversation start: %d %s", code, body)
		}
		start := time.Now()
		code, body := get(base + "/v1/prechat/" + visitor + "?wait=10&after=" + visitor)
		if code != http.StatusOK || !hasDetail([]byte(body), "Subject", "after") {
			t.Fatalf("the conversation start sent after it got no document within %v: %d %s\nprocessor log:\n%s", time.Since(start), code, body, proc.stderr.String())
		}
	}
	// appliedHarmlessly waits for the document of the hostile conversation
	// start and checks that it expires within the TTL of now.
	appliedHarmlessly := func(t *testing.T, h hostile) {
		t.Helper()
		code, body := get(base + "/v1/prechat/" + h.key + "?wait=10&after=" + h.key)
		doc, ok := servedDocument([]byte(body))
		if code != http.StatusOK || !ok || doc.ExpiresAt.After(time.Now().Add(31*time.Minute)) {
			t.Fatalf("document of the hostile conversation start: %d %s", code, body)
		}
	}
	deadLetter := func(t *testing.T, match func(persistence.StoredDeadLetter) bool) persistence.StoredDeadLetter {
		t.Helper()
		var found persistence.StoredDeadLetter
		eventually(t, 10*time.Second, "its dead letter", func() bool {
			dls, err := store.DeadLettersList(ctx, persistence.DeadLetterFilter{Limit: 1000})
			for _, d := range dls {
				if err == nil && match(d) {
					found = d
					return true
				}
			}
			return false
		})
		return found
	}
	for i, h := range hostilePayloads() {
		t.Run(h.name, func(t *testing.T) {
			partition := int32(partitionOf(h.key))
			if h.path != "" {
				code, body := ingest(base, h.path, h.event)
				switch {
				case code == http.StatusOK && h.deadReason == "":
					appliedHarmlessly(t, h)
				case code == http.StatusOK:
					d := deadLetter(t, func(d persistence.StoredDeadLetter) bool {
						return bytes.Contains(d.Raw, []byte(`"messageId":"`+h.key+`"`))
					})
					if !strings.Contains(d.Reason, h.deadReason) {
						t.Errorf("ingested, its dead letter's reason is %q, want %q", d.Reason, h.deadReason)
					}
				case code != h.ingestStatus || !strings.Contains(body, h.ingestReason):
					t.Errorf("ingest answered %d %s; want 200, or %d naming %q", code, body, h.ingestStatus, h.ingestReason)
				}
				conversationStart(t, visitorOn(partition, fmt.Sprintf("after-ingest-%d", i)), -1)
			}
			at := h.recordTime
			if at.IsZero() {
				at = time.Now()
			}
			offset := pipelinetest.ProduceAt(t, brokers, topic, partition, at.Unix()*1000, []byte(h.key), []byte(h.event))
			conversationStart(t, fmt.Sprintf("after-kafka-%d", i), partition)
			if h.deadReason == "" {
				appliedHarmlessly(t, h)
				return
			}
			d := deadLetter(t, func(d persistence.StoredDeadLetter) bool { return d.Partition == int(partition) && d.Offset == offset })
			if !strings.Contains(d.Reason, h.deadReason) || !bytes.Equal(d.Raw, []byte(h.event)) {
				t.Errorf("dead letter at %d/%d: reason %q (want %q), raw %.100q", partition, offset, d.Reason, h.deadReason, d.Raw)
			}
		})
	}
	if _, body := get(admin + "/metrics"); !strings.Contains(body, "prechat_batch_splits_total 0") {
		t.Errorf("prechat_batch_splits_total is not 0 (every hostile event is refused before the store):\n%s", grepLines(body, "prechat_batch_splits_total"))
	}
}

// ingest posts an event with the write key to the ingest path.
func ingest(base, path, event string) (int, string) {
	body := strings.Replace(event, "{", `{"writeKey":"wk",`, 1)
	res, err := http.Post(base+"/v1/"+path, "text/plain", strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(res.Body)
	return res.StatusCode, b.String()
}

// partitionOf is the partition of two that the ingest's writer picks for
// key (Kafka's murmur2 partitioner).
func partitionOf(key string) int {
	return (&kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: []byte(key)}, 0, 1)
}

// visitorOn returns a visitor id starting with prefix whose events the
// ingest writes to partition.
func visitorOn(partition int32, prefix string) string {
	for n := 0; ; n++ {
		if id := fmt.Sprintf("%s-%d", prefix, n); partitionOf(id) == int(partition) {
			return id
		}
	}
}

// grepLines returns the lines of s that contain substr.
func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
