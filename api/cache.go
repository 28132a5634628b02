package api

import (
	"encoding/json"
	"sync"
	"time"
)

// docCache keeps recently served documents in memory. Entries are dropped
// when a notification names their visitor (Notifier.Watch), and never
// served past their expiresAt. A document read from storage is only cached
// if no invalidation happened since the read began (epoch), so a read that
// raced with a change cannot pin the old document.
type docCache struct {
	max int

	mu      sync.Mutex
	gen     uint64
	entries map[string]cachedDoc
}

type cachedDoc struct {
	body    []byte
	expires time.Time
}

func newDocCache(max int) *docCache {
	return &docCache{max: max, entries: map[string]cachedDoc{}}
}

// epoch is the invalidation count, taken before a storage read.
func (c *docCache) epoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *docCache) get(id string, now time.Time) ([]byte, bool) {
	if c.max <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e.body, true
}

// put caches body, read from storage since epoch, unless something was
// invalidated meanwhile.
func (c *docCache) put(id string, body []byte, epoch uint64) {
	if c.max <= 0 {
		return
	}
	var meta struct {
		ExpiresAt time.Time `json:"expiresAt"`
	}
	if json.Unmarshal(body, &meta) != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != epoch {
		return
	}
	if len(c.entries) >= c.max {
		for k := range c.entries { // drop an arbitrary entry
			delete(c.entries, k)
			break
		}
	}
	c.entries[id] = cachedDoc{body: body, expires: meta.ExpiresAt}
}

// invalidate drops the visitors' entries, or every entry for nil.
func (c *docCache) invalidate(ids []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if ids == nil {
		clear(c.entries)
		return
	}
	for _, id := range ids {
		delete(c.entries, id)
	}
}
