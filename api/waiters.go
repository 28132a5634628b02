package api

import "sync"

// clientWaiters bounds each client's concurrent long-polls. It holds only
// the clients that are waiting, so its size is bounded by MaxWaiters.
type clientWaiters struct {
	max int

	mu sync.Mutex
	n  map[string]int
}

func newClientWaiters(max int) *clientWaiters {
	return &clientWaiters{max: max, n: map[string]int{}}
}

// acquire takes one of client's places, or reports that it holds them all.
func (c *clientWaiters) acquire(client string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[client] >= c.max {
		return false
	}
	c.n[client]++
	return true
}

// release gives back a place that acquire took.
func (c *clientWaiters) release(client string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[client]--; c.n[client] <= 0 {
		delete(c.n, client)
	}
}
