package api

import (
	"container/list"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// rateLimiter is a token bucket per client: rate tokens a second, up to
// burst. It tracks at most max clients, least recently seen first out, so a
// flood of distinct addresses cannot grow it without bound; a client that
// was idle long enough to refill its bucket is forgotten early, as it is
// the same as a new one.
type rateLimiter struct {
	rate, burst float64
	max         int
	now         func() time.Time

	mu      sync.Mutex
	buckets map[string]*list.Element // of *bucket
	lru     *list.List               // front: most recently seen
}

type bucket struct {
	client string
	tokens float64
	last   time.Time
}

func newRateLimiter(rate float64, burst, max int, now func() time.Time) *rateLimiter {
	return &rateLimiter{rate: rate, burst: float64(burst), max: max, now: now,
		buckets: map[string]*list.Element{}, lru: list.New()}
}

// allow takes a token for client, or reports how many seconds until one is
// available.
func (l *rateLimiter) allow(client string) (ok bool, retryAfter int) {
	if l.rate <= 0 {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	// A bucket idle this long is full again: forgetting it changes nothing.
	refill := time.Duration(l.burst / l.rate * float64(time.Second))
	for e := l.lru.Back(); e != nil && now.Sub(e.Value.(*bucket).last) > refill; e = l.lru.Back() {
		l.drop(e)
	}
	var b *bucket
	if e := l.buckets[client]; e != nil {
		l.lru.MoveToFront(e)
		b = e.Value.(*bucket)
	} else {
		for l.lru.Len() >= l.max {
			l.drop(l.lru.Back())
		}
		b = &bucket{client: client, tokens: l.burst, last: now}
		l.buckets[client] = l.lru.PushFront(b)
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, int(math.Ceil((1 - b.tokens) / l.rate))
}

func (l *rateLimiter) drop(e *list.Element) {
	delete(l.buckets, e.Value.(*bucket).client)
	l.lru.Remove(e)
}

// tracked is the number of clients the limiter holds a bucket for.
func (l *rateLimiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// semaphore bounds concurrent requests of a kind (long-polls, ingests).
type semaphore chan struct{}

func (s semaphore) tryAcquire() bool {
	select {
	case s <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s semaphore) release() { <-s }

// clientSlots bounds each client's concurrent requests of a kind
// (long-polls, ingests). It holds only the clients with a request in
// flight, so its size is bounded by the kind's process-wide cap.
type clientSlots struct {
	max int

	mu sync.Mutex
	n  map[string]int
}

func newClientSlots(max int) *clientSlots { return &clientSlots{max: max, n: map[string]int{}} }

// tryAcquire takes one of client's slots, or reports false when it holds
// them all.
func (c *clientSlots) tryAcquire(client string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[client] >= c.max {
		return false
	}
	c.n[client]++
	return true
}

// release gives back a slot that tryAcquire took.
func (c *clientSlots) release(client string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[client]--; c.n[client] <= 0 {
		delete(c.n, client)
	}
}

// byteBudget bounds the bytes held at once by requests of a kind.
type byteBudget struct {
	max  int64
	used atomic.Int64
}

// tryAcquire reserves n bytes, or reports false when that would exceed the
// budget.
func (b *byteBudget) tryAcquire(n int64) bool {
	for {
		used := b.used.Load()
		if used+n > b.max {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

func (b *byteBudget) release(n int64) { b.used.Add(-n) }
