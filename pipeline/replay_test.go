package pipeline_test

import (
	"context"
	"github.com/prechat/prechat/mapping/mappingtest"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/prechat/prechat/persistence"
	"github.com/prechat/prechat/persistence/persistencetest"
	"github.com/prechat/prechat/pipeline"
	"github.com/prechat/prechat/pipeline/pipelinetest"
)

func (tb *testBundle) replay(t *testing.T, store pipeline.Store, opts pipeline.ReplayOptions) pipeline.Range {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rng, err := pipeline.Replay(ctx, pipeline.Config{
		Brokers:      tb.brokers,
		Topic:        tb.topic,
		GroupID:      tb.group,
		Materializer: tb.mat,
		Policy:       mappingtest.Policy(),
		BatchSize:    300,
		MaxWait:      100 * time.Millisecond,
	}, store, opts)
	if err != nil {
		t.Fatal(err)
	}
	return rng
}

func TestReplayConvergesAndRebuildMatchesTheLiveState(t *testing.T) {
	tb := setup(t, 3)
	g := tb.generator(7)
	var raws [][]byte
	for i := range 1500 {
		if i%100 == 50 {
			raws = append(raws, g.Poison())
		} else {
			raws = append(raws, g.Event())
		}
	}
	pipelinetest.Produce(t, tb.brokers, tb.topic, raws...)
	tb.start(t, 200)
	tb.waitConsumed(t, int64(len(raws)))
	live := fingerprint(t, tb.store)
	liveOffsets, err := tb.store.OffsetsGet(context.Background(), tb.group, tb.topic)
	if err != nil {
		t.Fatal(err)
	}

	// Replay from earliest into the live database, beside the live consumer.
	rng := tb.replay(t, tb.store, pipeline.ReplayOptions{From: pipeline.From{Earliest: true}})
	if rng.Messages() != int64(len(raws)) {
		t.Fatalf("replayed %d messages, want %d", rng.Messages(), len(raws))
	}
	if got := fingerprint(t, tb.store); !reflect.DeepEqual(got, live) {
		t.Fatalf("replay from earliest changed the state:\n got %v\nwant %v", got, live)
	}
	if got, _ := tb.store.OffsetsGet(context.Background(), tb.group, tb.topic); !reflect.DeepEqual(got, liveOffsets) {
		t.Fatalf("replay moved the live offsets: %v, want %v", got, liveOffsets)
	}

	// Rebuild into an empty database: same state, and the offsets to continue from.
	rebuilt, _ := persistencetest.NewStore(t, nil)
	tb.replay(t, rebuilt, pipeline.ReplayOptions{From: pipeline.From{Earliest: true}, RecordPositions: true})
	if got := fingerprint(t, rebuilt); !reflect.DeepEqual(got, live) {
		t.Fatalf("rebuilt state differs from the live state:\n got %v\nwant %v", got, live)
	}
	if got, _ := rebuilt.OffsetsGet(context.Background(), tb.group, tb.topic); !reflect.DeepEqual(got, liveOffsets) {
		t.Fatalf("rebuilt offsets %v, want the live %v", got, liveOffsets)
	}
}

func TestReplayRanges(t *testing.T) {
	tb := setup(t, 2)
	at := func(i int) string { return tb.now.Add(time.Duration(i) * time.Second).Format(time.RFC3339Nano) }
	var raws [][]byte
	for i := range 20 {
		raws = append(raws, []byte(`{"type":"identify","messageId":"r`+itoa(i)+`","anonymousId":"a`+itoa(i%2)+`","traits":{"n":`+itoa(i)+`},"timestamp":"`+at(i)+`"}`))
	}
	pipelinetest.Produce(t, tb.brokers, tb.topic, raws...)
	empty := func() *persistence.Store { s, _ := persistencetest.NewStore(t, nil); return s }

	rng := tb.replay(t, empty(), pipeline.ReplayOptions{From: pipeline.From{Offsets: map[int]int64{0: 3}}})
	if len(rng.Start) != 1 || rng.Start[0] != 3 || rng.Messages() != rng.End[0]-3 {
		t.Fatalf("offsets range %+v", rng)
	}
	rng = tb.replay(t, empty(), pipeline.ReplayOptions{From: pipeline.From{Earliest: true}, To: map[int]int64{0: 2, 1: 1}})
	if rng.Messages() != 3 {
		t.Fatalf("bounded range %+v: %d messages, want 3", rng, rng.Messages())
	}
	rng = tb.replay(t, empty(), pipeline.ReplayOptions{From: pipeline.From{Time: time.Now().Add(time.Hour)}})
	if rng.Messages() != 0 {
		t.Fatalf("a start after the last message replays %d messages", rng.Messages())
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
