package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/prechat/prechat/mapping"
	"github.com/prechat/prechat/mapping/mappingtest"
	"github.com/prechat/prechat/persistence"
	"github.com/prechat/prechat/persistence/persistencetest"
	"github.com/prechat/prechat/pipeline"
	"github.com/prechat/prechat/pipeline/pipelinetest"
)

type testBundle struct {
	brokers []string
	topic   string
	group   string
	store   *persistence.Store
	dbURL   string
	mat     *mapping.Materializer
	now     time.Time

	// lanes is the started consumers' Lanes (0: the default).
	lanes int
	// registerer receives the next started consumer's metrics.
	registerer prometheus.Registerer
	// refreshCoalesce is the consumers' RefreshCoalesce (0: the default).
	refreshCoalesce time.Duration
	// logs records the consumers' log entries.
	logs     zapcore.Core
	observed *observer.ObservedLogs

	mu sync.Mutex
	// applications counts, per messageId, the committed batches that held it.
	applications map[string]int
	// refusedWith records, per partition and offset of a message the store
	// refused, how many messages the batch that dead-lettered it applied.
	refusedWith map[[2]int64]int
}

// recordingStore is the real store, counting which messages each committed
// batch applied, so tests can prove none is applied twice.
type recordingStore struct {
	*persistence.Store
	tb *testBundle
}

func (s recordingStore) ApplyBatch(ctx context.Context, b *mapping.Batch) (mapping.BatchResult, error) {
	res, err := s.Store.ApplyBatch(ctx, b)
	if err == nil {
		s.tb.mu.Lock()
		for _, a := range b.Applied {
			s.tb.applications[a.MessageID]++
		}
		for _, d := range b.DeadLetters {
			if strings.HasPrefix(d.Reason, "storage refused it: ") {
				s.tb.refusedWith[[2]int64{int64(d.Partition), d.Offset}] = len(b.Applied)
			}
		}
		s.tb.mu.Unlock()
	}
	return res, err
}

func setup(t *testing.T, partitions int32) *testBundle {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: this test needs Postgres; -short runs the tests on the in-memory store only (setupFake)")
	}
	t.Parallel()
	tb := &testBundle{
		topic:        pipelinetest.Name(t, "topic"),
		group:        pipelinetest.Name(t, "group"),
		mat:          &mapping.Materializer{Settings: mappingtest.Settings(), TTL: 30 * time.Minute},
		now:          time.Now().UTC().Truncate(time.Microsecond),
		applications: map[string]int{},
		refusedWith:  map[[2]int64]int{},
	}
	tb.logs, tb.observed = observer.New(zap.InfoLevel)
	tb.brokers = pipelinetest.NewCluster(t, partitions, tb.topic)
	tb.store, tb.dbURL = persistencetest.NewStore(t, nil)
	return tb
}

// start runs a consumer until the returned stop function is called.
func (tb *testBundle) start(t *testing.T, batchSize int) (stop func()) {
	t.Helper()
	return tb.startAs(t, "consumer", batchSize, recordingStore{tb.store, tb})
}

// startAs runs a consumer named name (its logger's name) over store until
// the returned stop function is called.
func (tb *testBundle) startAs(t *testing.T, name string, batchSize int, store pipeline.Store) (stop func()) {
	t.Helper()
	c, err := pipeline.New(pipeline.Config{
		Brokers:           tb.brokers,
		Topic:             tb.topic,
		GroupID:           tb.group,
		Materializer:      tb.mat,
		Policy:            mappingtest.Policy(),
		BatchSize:         batchSize,
		Lanes:             tb.lanes,
		BatchTimeout:      20 * time.Millisecond,
		MaxWait:           100 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond,
		SessionTimeout:    6 * time.Second,
		RebalanceTimeout:  6 * time.Second,
		JoinGroupBackoff:  200 * time.Millisecond,
		RetryMin:          20 * time.Millisecond,
		RetryMax:          200 * time.Millisecond,
		Registerer:        tb.registerer,
		RefreshCoalesce:   tb.refreshCoalesce,
		Logger:            zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), tb.logs)).Named(name),
	}, store)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("consumer: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("consumer did not stop within 30s")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitConsumed waits until the stored offsets cover total messages and the
// refresh queue is empty (every document shows them). Errors
// reading them are retried until the deadline, as the consumer's are: after
// an outage the test's own pool may still hold a terminated connection.
func (tb *testBundle) waitConsumed(t *testing.T, total int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var sum int64
	var lastErr error
	for time.Now().Before(deadline) {
		offs, err := tb.store.OffsetsGet(context.Background(), tb.group, tb.topic)
		if lastErr = err; err == nil {
			sum = 0
			for _, o := range offs {
				sum += o
			}
			if sum >= total {
				var backlog int64
				if backlog, lastErr = tb.store.RefreshBacklog(context.Background()); lastErr == nil && backlog == 0 {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("consumed %d of %d messages within 60s, or documents still queued (last error: %v)", sum, total, lastErr)
}

// reference applies the events to a fresh database in one batch, without
// Kafka, and returns its fingerprint.
func (tb *testBundle) reference(t *testing.T, raws [][]byte) map[string]string {
	t.Helper()
	ref, _ := persistencetest.NewStore(t, nil)
	b := mapping.NewBatch()
	policy := mappingtest.Policy()
	for _, r := range raws {
		if e, err := mapping.Decode(r, ""); err == nil {
			policy.Admit(&e, tb.now)
			b.Add(&e, tb.now)
		}
	}
	if _, err := ref.ApplyBatch(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	persistencetest.Refresh(t, ref, tb.mat)
	return fingerprint(t, ref)
}

func fingerprint(t *testing.T, s *persistence.Store) map[string]string {
	t.Helper()
	fp, err := s.Fingerprint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// assertConverged checks that the stored state equals the reference and
// that every event that can change a document was applied exactly once.
func (tb *testBundle) assertConverged(t *testing.T, want map[string]string, raws [][]byte) {
	t.Helper()
	if got := fingerprint(t, tb.store); !reflect.DeepEqual(got, want) {
		t.Fatalf("state differs from the in-order reference:\n got %v\nwant %v", got, want)
	}
	tb.assertAppliedOnce(t, raws)
}

func (tb *testBundle) assertAppliedOnce(t *testing.T, raws [][]byte) {
	t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, r := range raws {
		e, err := mapping.Decode(r, "")
		if err != nil || !e.CanChangeDocument() {
			continue
		}
		if n := tb.applications[e.MessageID]; n != 1 {
			t.Errorf("message %s applied %d times, want exactly once", e.MessageID, n)
		}
	}
}

func (tb *testBundle) generator(seed uint64) *mappingtest.Generator {
	g := mappingtest.NewGenerator(seed, 50, 20, 5)
	g.Base = tb.now
	return g
}

func TestConsumerMaterializesTheConversationDocument(t *testing.T) {
	tb := setup(t, 3)
	at := tb.now.Format(time.RFC3339Nano)
	raws := [][]byte{
		[]byte(`{"type":"identify","messageId":"m1","anonymousId":"a1","userId":"u1","traits":{"email":"ada@example.com","firstName":"Ada","lastName":"Lovelace"},"timestamp":"` + at + `"}`),
		[]byte(`{"type":"group","messageId":"m2","anonymousId":"a1","userId":"u1","groupId":"g1","traits":{"website":"example.com","revenue":100},"timestamp":"` + at + `"}`),
		[]byte(`{"type":"track","messageId":"m3","anonymousId":"a1","userId":"u1","event":"Live Chat Conversation Started","properties":{"caseStatus":"New","subject":"Shoes"},"timestamp":"` + at + `"}`),
	}
	pipelinetest.Produce(t, tb.brokers, tb.topic, raws...)
	tb.start(t, 100)
	tb.waitConsumed(t, int64(len(raws)))

	raw, _, err := tb.store.DocumentGet(context.Background(), "a1")
	if err != nil {
		t.Fatal(err)
	}
	var doc mapping.Document
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, d := range doc.Details {
		labels = append(labels, string(d.Entity)+":"+d.Label+"="+string(d.Value))
	}
	want := []string{
		`Contact:User Email="ada@example.com"`, `Contact:First Name="Ada"`, `Contact:Last Name="Lovelace"`,
		`Case:Case Status="New"`, `Case:Subject="Shoes"`,
		`Account:Account Website="example.com"`, `Account:Account Revenue=100`,
	}
	if !reflect.DeepEqual(labels, want) {
		t.Fatalf("details = %v\nwant %v", labels, want)
	}
	if doc.VisitorName != "Ada Lovelace" || doc.ConversationMessageID != "m3" || !reflect.DeepEqual(doc.Applied, []string{"m1", "m2", "m3"}) {
		t.Fatalf("unexpected document: %s", raw)
	}
	if doc.Chat.ChatURL != "https://d.la3-c1cs-phx.salesforceliveagent.com/chat" {
		t.Fatalf("chat URL %q", doc.Chat.ChatURL)
	}
}

func TestConsumerConvergesUnderReorderingAndDuplicates(t *testing.T) {
	t.Parallel()
	// One lane applies batches one at a time; four apply the four
	// partitions' batches at once, contending for shared users and groups.
	for _, lanes := range []int{1, 4} {
		t.Run(fmt.Sprintf("lanes=%d", lanes), func(t *testing.T) { testConvergesUnderReorderingAndDuplicates(t, lanes) })
	}
}

func testConvergesUnderReorderingAndDuplicates(t *testing.T, lanes int) {
	tb := setup(t, 4)
	tb.lanes = lanes
	raws := tb.generator(1).Events(2000)
	want := tb.reference(t, raws)

	r := rand.New(rand.NewPCG(2, 2))
	sent := append([][]byte(nil), raws...)
	for range 400 {
		sent = append(sent, raws[r.IntN(len(raws))])
	}
	r.Shuffle(len(sent), func(i, j int) { sent[i], sent[j] = sent[j], sent[i] })
	pipelinetest.Produce(t, tb.brokers, tb.topic, sent...)
	tb.start(t, 150)
	tb.waitConsumed(t, int64(len(sent)))

	if got := fingerprint(t, tb.store); !reflect.DeepEqual(got, want) {
		t.Fatalf("state differs from the in-order reference:\n got %v\nwant %v", got, want)
	}
}

func TestConsumerDeadLettersPoisonAndGoesOn(t *testing.T) {
	tb := setup(t, 2)
	g := tb.generator(3)
	var raws, good [][]byte
	poison := 0
	for i := range 300 {
		if i%10 == 5 {
			raws = append(raws, g.Poison())
			poison++
			continue
		}
		e := g.Event()
		raws, good = append(raws, e), append(good, e)
	}
	want := tb.reference(t, good)
	pipelinetest.Produce(t, tb.brokers, tb.topic, raws...)
	tb.start(t, 64)
	tb.waitConsumed(t, int64(len(raws)))

	got := fingerprint(t, tb.store)
	for table, sum := range want {
		if table == "dead_letters" {
			continue
		}
		if got[table] != sum {
			t.Errorf("%s: %s, want %s (good events must all apply)", table, got[table], sum)
		}
	}
	conn, err := pgx.Connect(context.Background(), tb.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n, withReason int
	err = conn.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE reason LIKE 'invalid event: %' AND raw <> '') FROM dead_letters WHERE topic = $1`, tb.topic).Scan(&n, &withReason)
	if err != nil {
		t.Fatal(err)
	}
	if n != poison || withReason != poison {
		t.Fatalf("dead letters = %d (%d with reason and raw message), want %d", n, withReason, poison)
	}
	tb.assertAppliedOnce(t, good)
}

func TestConsumerRestartedMidStreamLosesAndDoublesNothing(t *testing.T) {
	tb := setup(t, 3)
	raws := tb.generator(4).Events(3000)
	want := tb.reference(t, raws)
	pipelinetest.Produce(t, tb.brokers, tb.topic, raws...)

	for round := range 3 {
		stop := tb.start(t, 50)
		// Let it apply part of the log, then stop it mid-stream.
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			tb.mu.Lock()
			n := len(tb.applications)
			tb.mu.Unlock()
			if n > (round+1)*600 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		stop()
	}
	tb.start(t, 50)
	tb.waitConsumed(t, int64(len(raws)))

	tb.assertConverged(t, want, raws)
}

// partitionsStore is the recording store of one member of a group, noting
// the partitions of the batches it committed.
type partitionsStore struct {
	recordingStore
	mu      sync.Mutex
	applied map[int]bool
}

func (s *partitionsStore) ApplyBatch(ctx context.Context, b *mapping.Batch) (mapping.BatchResult, error) {
	res, err := s.recordingStore.ApplyBatch(ctx, b)
	if err == nil {
		s.mu.Lock()
		for _, p := range b.Positions {
			s.applied[p.Partition] = true
		}
		s.mu.Unlock()
	}
	return res, err
}

// partitions are those of the batches the member committed, sorted.
func (s *partitionsStore) partitions() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]int, 0, len(s.applied))
	for p := range s.applied {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// assignment is the latest "partitions assigned" of the consumer named
// name: its generation and partitions (generation -1 before the first).
func (tb *testBundle) assignment(name string) (generation int64, partitions []int) {
	generation = -1
	for _, e := range tb.observed.FilterMessage("partitions assigned").All() {
		if e.LoggerName != name {
			continue
		}
		fields := e.ContextMap()
		generation, _ = fields["generation"].(int64)
		if g, ok := fields["generation"].(int32); ok {
			generation = int64(g)
		}
		partitions = partitions[:0]
		ps, _ := fields["partitions"].([]any)
		for _, p := range ps {
			switch p := p.(type) {
			case int:
				partitions = append(partitions, p)
			case int64:
				partitions = append(partitions, int(p))
			}
		}
	}
	slices.Sort(partitions)
	return generation, partitions
}

// TestConsumerGroupOfTwoSharesPartitionsAndSurvivesAMemberLeaving: two
// members of one group each hold, and apply batches of, a share of the
// partitions; when one leaves mid-stream the other takes over its
// partitions, and nothing is lost or applied twice.
func TestConsumerGroupOfTwoSharesPartitionsAndSurvivesAMemberLeaving(t *testing.T) {
	tb := setup(t, 4)
	raws := tb.generator(5).Events(3000)
	want := tb.reference(t, raws)

	a := &partitionsStore{recordingStore: recordingStore{tb.store, tb}, applied: map[int]bool{}}
	b := &partitionsStore{recordingStore: recordingStore{tb.store, tb}, applied: map[int]bool{}}
	stopA := tb.startAs(t, "a", 40, a)
	tb.startAs(t, "b", 40, b)
	var heldByA []int
	eventuallyTrue(t, 30*time.Second, "a and b share the four partitions in one generation", func() bool {
		genA, pa := tb.assignment("a")
		genB, pb := tb.assignment("b")
		heldByA = pa
		all := slices.Sorted(slices.Values(append(slices.Clone(pa), pb...)))
		return genA >= 0 && genA == genB && len(pa) > 0 && len(pb) > 0 && slices.Equal(all, []int{0, 1, 2, 3})
	})
	pipelinetest.Produce(t, tb.brokers, tb.topic, raws[:1500]...)
	eventuallyTrue(t, 30*time.Second, "a and b each commit batches of their partitions", func() bool {
		return len(a.partitions()) > 0 && len(b.partitions()) > 0
	})
	if got := a.partitions(); !isSubset(got, heldByA) {
		t.Fatalf("a committed batches of partitions %v, holding %v", got, heldByA)
	}
	stopA() // member A leaves mid-stream; B takes over its partitions
	pipelinetest.Produce(t, tb.brokers, tb.topic, raws[1500:]...)
	tb.waitConsumed(t, int64(len(raws)))

	if got := b.partitions(); !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Errorf("after a left, b committed batches of partitions %v, want all four", got)
	}
	tb.assertConverged(t, want, raws)
}

func TestConsumerWaitsOutAPostgresOutageAndLosesNothing(t *testing.T) {
	tb := setup(t, 2)
	raws := tb.generator(6).Events(1200)
	want := tb.reference(t, raws)
	pipelinetest.Produce(t, tb.brokers, tb.topic, raws[:400]...)
	tb.start(t, 100)
	tb.waitConsumed(t, 400)

	// Take the database away: refuse new connections and end the open ones.
	admin, err := pgx.Connect(context.Background(), persistencetest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	var db string
	conn, err := pgx.Connect(context.Background(), tb.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(context.Background(), `SELECT current_database()`).Scan(&db); err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())
	setAllowed := func(allowed bool) {
		t.Helper()
		if _, err := admin.Exec(context.Background(), "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" WITH ALLOW_CONNECTIONS "+map[bool]string{true: "true", false: "false"}[allowed]); err != nil {
			t.Fatal(err)
		}
		if !allowed {
			if _, err := admin.Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, db); err != nil {
				t.Fatal(err)
			}
		}
	}
	setAllowed(false)
	t.Cleanup(func() { setAllowed(true) })
	pipelinetest.Produce(t, tb.brokers, tb.topic, raws[400:]...)

	// The consumer must keep retrying, not drop the batch or give up.
	deadline := time.Now().Add(20 * time.Second)
	for tb.observed.FilterMessageSnippet("failed; retrying").Len() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no retries observed while Postgres was unavailable")
		}
		time.Sleep(20 * time.Millisecond)
	}
	setAllowed(true)
	tb.waitConsumed(t, int64(len(raws)))

	tb.assertConverged(t, want, raws)
	if n := tb.observed.FilterMessage("batch abandoned; its messages will be consumed again").Len(); n != 0 {
		t.Fatalf("%d batches abandoned during the outage", n)
	}
}

func TestConsumerDropsEventsOfForgottenIDsAndCountsThem(t *testing.T) {
	tb := setup(t, 2)
	reg := prometheus.NewRegistry()
	tb.registerer = reg
	at := tb.now.Format(time.RFC3339Nano)
	if _, err := tb.store.Forget(context.Background(), mapping.KindUser, "gone-user"); err != nil {
		t.Fatal(err)
	}
	pipelinetest.Produce(t, tb.brokers, tb.topic,
		[]byte(`{"type":"identify","messageId":"s1","userId":"gone-user","traits":{"email":"x@example.com"},"timestamp":"`+at+`"}`),
		[]byte(`{"type":"track","messageId":"s2","anonymousId":"kept","userId":"gone-user","event":"Live Chat Conversation Started","timestamp":"`+at+`"}`),
		[]byte(`{"type":"identify","messageId":"s3","userId":"kept-user","traits":{"email":"y@example.com"},"timestamp":"`+at+`"}`),
		[]byte(`not json`),
	)
	tb.start(t, 10)
	tb.waitConsumed(t, 4)
	if n := eventsCount(t, reg, "identify", "suppressed") + eventsCount(t, reg, "track", "suppressed"); n != 2 {
		t.Fatalf("suppressed events counted %v, want 2", n)
	}
	if n := eventsCount(t, reg, "identify", "applied"); n != 1 {
		t.Fatalf("applied identifies counted %v, want 1", n)
	}
	if n := eventsCount(t, reg, "invalid", "dead_letter"); n != 1 {
		t.Fatalf("dead letters counted %v, want 1", n)
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if tb.applications["s1"] != 0 || tb.applications["s2"] != 0 || tb.applications["s3"] != 1 {
		t.Fatalf("applications %v: the forgotten user's events must be dropped, the others applied", tb.applications)
	}
	conn, err := pgx.Connect(context.Background(), tb.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var dropped int64
	if err := conn.QueryRow(context.Background(), `SELECT dropped FROM suppressions WHERE id = 'gone-user'`).Scan(&dropped); err != nil || dropped != 2 {
		t.Fatalf("suppressions.dropped = %d (%v), want 2", dropped, err)
	}
}

// eventsCount is prechat_events_total for one event type and outcome.
func eventsCount(t *testing.T, reg *prometheus.Registry, typ, outcome string) float64 {
	t.Helper()
	return counter(t, reg, "prechat_events_total", map[string]string{"type": typ, "outcome": outcome})
}

// counter is the value of the counter name with these labels (0 when it
// has not been counted).
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			matched := 0
			for _, l := range m.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want == l.GetValue() {
					matched++
				}
			}
			if matched == len(labels) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestConsumerSkipsMessagesDeletedByRetention: when the offset stored for a
// partition points before what Kafka's retention kept, the consumer goes on
// from the first retained message, counts the skipped ones and says so,
// instead of stalling on an out-of-range fetch.
func TestConsumerSkipsMessagesDeletedByRetention(t *testing.T) {
	tb := setup(t, 1)
	reg := prometheus.NewRegistry()
	tb.registerer = reg
	raws := tb.generator(8).Events(100)
	pipelinetest.Produce(t, tb.brokers, tb.topic, raws...)
	pipelinetest.DeleteRecords(t, tb.brokers, tb.topic, 0, 60)
	// The group had applied the first 10 messages when the next 50 were
	// deleted.
	conn, err := pgx.Connect(context.Background(), tb.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `INSERT INTO kafka_offsets (consumer_group, topic, "partition", next_offset) VALUES ($1, $2, 0, 10)`, tb.group, tb.topic); err != nil {
		t.Fatal(err)
	}

	tb.start(t, 30)
	tb.waitConsumed(t, 100)
	if skipped := counter(t, reg, "prechat_retention_skipped_messages_total", nil); skipped != 50 {
		t.Errorf("prechat_retention_skipped_messages_total = %v, want 50", skipped)
	}
	if n := tb.observed.FilterMessageSnippet("deleted by retention").Len(); n != 1 {
		t.Errorf("%d retention warnings logged, want 1", n)
	}
	tb.assertAppliedOnce(t, raws[60:])
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, r := range raws[:60] {
		if e, err := mapping.Decode(r, ""); err == nil && tb.applications[e.MessageID] != 0 {
			t.Errorf("message %s, before the retained ones, was applied", e.MessageID)
		}
	}
}
