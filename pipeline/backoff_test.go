package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/prechat/prechat/pipeline"
)

func TestBackoffDoublesUpToMaxAndResets(t *testing.T) {
	t.Parallel()
	b := pipeline.Backoff{Min: time.Millisecond, Max: 4 * time.Millisecond}
	var got []time.Duration
	for range 4 {
		got = append(got, b.Next())
		if !b.Wait(t.Context()) {
			t.Fatal("Wait returned false with a live context")
		}
	}
	want := []time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond, 4 * time.Millisecond}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("waits %v, want %v", got, want)
		}
	}
	b.Reset()
	if b.Next() != time.Millisecond {
		t.Fatalf("after Reset the next wait is %v, want Min", b.Next())
	}
}

func TestBackoffWaitEndsWithItsContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	b := pipeline.Backoff{Min: time.Hour, Max: time.Hour}
	if b.Wait(ctx) {
		t.Fatal("Wait slept through a cancelled context")
	}
}
