package main

import (
	"context"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/mapping/mappingtest"
	"github.com/prechat/prechat/persistence"
	"github.com/prechat/prechat/persistence/persistencetest"
	"github.com/prechat/prechat/pipeline/pipelinetest"
)

func TestDeadLettersListAndRequeue(t *testing.T) {
	t.Parallel()
	topic := pipelinetest.Name(t, "topic")
	brokers := pipelinetest.NewCluster(t, 1, topic)
	store, dbURL := persistencetest.NewStore(t, nil)
	fixed := `{"type":"identify","messageId":"m1","anonymousId":"a1","traits":{"email":"e@x"}}`
	b := mapping.NewBatch()
	b.DeadLetters = []mapping.DeadLetter{
		{Topic: topic, Partition: 0, Offset: 7, Key: []byte("a1"), Raw: []byte(fixed), Reason: "invalid event: an older rule", Time: time.Now()},
		{Topic: topic, Partition: 0, Offset: 8, Raw: []byte(`{bad`), Reason: "invalid event: not a JSON event object", Time: time.Now()},
	}
	if _, err := store.ApplyBatch(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	env := []string{"DATABASE_URL=" + dbURL, "KAFKA_BROKERS=" + strings.Join(brokers, ","), "KAFKA_TOPIC=" + topic}

	code, out, stderr := runCmd(t, env, "deadletters", "list")
	if code != 0 || !strings.Contains(out, "invalid event: an older rule") || !strings.Contains(out, "2 dead letter(s) shown") || !strings.Contains(out, topic+"/0@7") {
		t.Fatalf("list: exit %d\n%s%s", code, out, stderr)
	}
	rows, err := store.DeadLettersList(context.Background(), persistenceFilterPending())
	if err != nil || len(rows) != 2 {
		t.Fatalf("pending rows: %d %v", len(rows), err)
	}
	older := rows[1].ID // newest first
	code, out, stderr = runCmd(t, env, "deadletters", "requeue", itoa(older))
	if code != 0 || !strings.Contains(out, "requeued 1 dead letter(s)") {
		t.Fatalf("requeue: exit %d\n%s%s", code, out, stderr)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := r.ReadMessage(ctx)
	if err != nil || string(m.Value) != fixed || string(m.Key) != "a1" {
		t.Fatalf("requeued message %q key %q: %v", m.Value, m.Key, err)
	}
	code, out, _ = runCmd(t, env, "deadletters", "list", "--pending")
	if code != 0 || !strings.Contains(out, "1 dead letter(s) shown") || strings.Contains(out, "an older rule") {
		t.Fatalf("pending after requeue:\n%s", out)
	}
	code, out, _ = runCmd(t, env, "deadletters", "list")
	if code != 0 || !strings.Contains(out, "2 dead letter(s) shown") {
		t.Fatalf("the requeued row must be kept:\n%s", out)
	}
	if code, _, stderr := runCmd(t, env, "deadletters", "requeue", "999999"); code != 1 || !strings.Contains(stderr, "found 0 of the 1") {
		t.Fatalf("unknown id: exit %d %s", code, stderr)
	}
	if code, _, _ := runCmd(t, env, "deadletters", "requeue"); code != exitUsage {
		t.Fatalf("requeue without ids: exit %d", code)
	}
}

func TestForgetCommand(t *testing.T) {
	t.Parallel()
	store, dbURL := persistencetest.NewStore(t, nil)
	at := time.Now().UTC().Format(time.RFC3339Nano)
	b := mapping.NewBatch()
	for _, raw := range []string{
		`{"type":"identify","messageId":"i1","anonymousId":"a1","userId":"u1","traits":{"email":"e@x"},"context":` + mappingtest.Proof("u1") + `,"timestamp":"` + at + `"}`,
		`{"type":"track","messageId":"c1","anonymousId":"a1","event":"Live Chat Conversation Started","timestamp":"` + at + `"}`,
	} {
		e, err := mapping.Decode([]byte(raw), "")
		if err != nil {
			t.Fatal(err)
		}
		mappingtest.Policy().Admit(&e, time.Now())
		b.Add(&e, time.Now())
	}
	if _, err := store.ApplyBatch(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	persistencetest.Refresh(t, store, &mapping.Materializer{Settings: mappingtest.Settings(), TTL: time.Hour})
	env := []string{"DATABASE_URL=" + dbURL}
	// The verified identify's traits are u1's only: one traits row.
	code, out, stderr := runCmd(t, env, "forget", "--user-id", "u1")
	if code != 0 {
		t.Fatalf("forget: exit %d %s", code, stderr)
	}
	for _, want := range []string{"forgot user u1", "anonymousIds: a1", "deleted      1 rows from prechat_documents", "deleted      1 rows from traits", "--user-id u1 --lift"} {
		if !strings.Contains(out, want) {
			t.Errorf("forget output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCmd(t, env, "forget", "--user-id", "u1", "--lift")
	if code != 0 || !strings.Contains(out, "lifted the suppression of 2 id(s): a1, u1") {
		t.Fatalf("lift: exit %d\n%s", code, out)
	}
	if code, _, stderr := runCmd(t, env, "forget", "--user-id", "u1", "--lift"); code != 1 || !strings.Contains(stderr, "u1 is not suppressed") {
		t.Fatalf("lift again: exit %d %s", code, stderr)
	}
	if code, _, _ := runCmd(t, env, "forget", "--user-id", "u1", "--anonymous-id", "a1"); code != exitUsage {
		t.Fatalf("both ids: exit %d", code)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func persistenceFilterPending() persistence.DeadLetterFilter {
	return persistence.DeadLetterFilter{Pending: true}
}

func TestReplayCommand(t *testing.T) {
	t.Parallel()
	topic := pipelinetest.Name(t, "topic")
	brokers := pipelinetest.NewCluster(t, 2, topic)
	gen := mappingtest.NewGenerator(9, 30, 10, 3)
	raws := gen.Events(400)
	raws = append(raws, []byte(`{"broken`))
	pipelinetest.Produce(t, brokers, topic, raws...)
	store, dbURL := persistencetest.NewStore(t, nil)
	env := []string{"DATABASE_URL=" + dbURL, "KAFKA_BROKERS=" + strings.Join(brokers, ","), "KAFKA_TOPIC=" + topic,
		"KAFKA_GROUP=live", "SETTINGS_FILE=" + writeSettings(t, mappingtest.SettingsJSON)}

	code, out, stderr := runCmd(t, env, "replay", "--rebuild")
	if code != 0 || !strings.Contains(out, "replaying 401 messages") || !strings.Contains(out, "401/401 events (100%)") || !strings.Contains(out, "consumer group live continues") {
		t.Fatalf("rebuild: exit %d\n%s%s", code, out, stderr)
	}
	rebuilt, err := store.Fingerprint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	offsets, _ := store.OffsetsGet(context.Background(), "live", topic)
	if offsets[0]+offsets[1] != 401 {
		t.Fatalf("rebuild recorded offsets %v, want the end of the log", offsets)
	}
	if code, _, stderr := runCmd(t, env, "replay", "--rebuild"); code != 1 || !strings.Contains(stderr, "writes into an empty database") {
		t.Fatalf("a second rebuild into the same database: exit %d %s", code, stderr)
	}
	code, out, stderr = runCmd(t, env, "replay", "--from", "earliest")
	if code != 0 || !strings.Contains(out, "replayed 401 messages") {
		t.Fatalf("replay: exit %d\n%s%s", code, out, stderr)
	}
	if again, _ := store.Fingerprint(context.Background()); !reflect.DeepEqual(again, rebuilt) {
		t.Fatalf("replay from earliest changed the state")
	}
	code, out, _ = runCmd(t, env, "replay", "--from", "0:10,1:10", "--to", "0:20,1:15")
	if code != 0 || !strings.Contains(out, "replayed 15 messages") {
		t.Fatalf("replay of a range: exit %d\n%s", code, out)
	}
	for _, bad := range [][]string{{"replay"}, {"replay", "--from", "yesterday"}, {"replay", "--from", "earliest", "--to", "0"}, {"replay", "--rebuild", "--from", "0:1"}} {
		if code, _, _ := runCmd(t, env, bad...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", bad, code, exitUsage)
		}
	}
}
