package api

import (
	"encoding/json"
	"sync"
	"time"
)

// absentTTL bounds how long the answer "no document" is cached. A
// notification naming the visitor (or the listener's reconnection) drops it
// long before in practice; the bound only limits the harm of a notification
// that never came.
const absentTTL = time.Minute

// docCache keeps recent storage answers in memory: documents with their
// token hashes, and the absence of a document, so that the long-polls of
// unknown visitors do not query Postgres at every recheck. Entries are
// dropped when a notification names their visitor (Notifier.Watch); a
// document is never served past its expiresAt, an absence for at most
// absentTTL. An answer read from storage is only cached if no invalidation
// happened since the read began (epoch), so a read that raced with a change
// cannot pin the old answer. Documents and absences are bounded separately,
// each by max, so floods of unknown ids never push documents out.
type docCache struct {
	max int

	mu      sync.Mutex
	gen     uint64
	entries map[string]cachedDoc
	absent  map[string]time.Time
}

// cachedDoc is what storage holds for a visitor: the document (nil when
// there is none), the token hash of its conversation and the traceparent of
// the refresh that wrote it.
type cachedDoc struct {
	body      []byte
	tokenHash string
	trace     string
	expires   time.Time
}

func newDocCache(max int) *docCache {
	return &docCache{max: max, entries: map[string]cachedDoc{}, absent: map[string]time.Time{}}
}

// epoch is the invalidation count, taken before a storage read.
func (c *docCache) epoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// get returns the cached answer for id, if there is one still valid at now.
func (c *docCache) get(id string, now time.Time) (cachedDoc, bool) {
	if c.max <= 0 {
		return cachedDoc{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[id]; ok && now.Before(e.expires) {
		return e, true
	}
	if until, ok := c.absent[id]; ok && now.Before(until) {
		return cachedDoc{}, true
	}
	return cachedDoc{}, false
}

// put caches what storage answered for id (body nil: no document), read
// since epoch, unless something was invalidated meanwhile, and returns it.
func (c *docCache) put(id string, body []byte, tokenHash, trace string, epoch uint64, now time.Time) cachedDoc {
	d := cachedDoc{body: body, tokenHash: tokenHash, trace: trace}
	if c.max <= 0 {
		return d
	}
	if body != nil {
		var meta struct {
			ExpiresAt time.Time `json:"expiresAt"`
		}
		if json.Unmarshal(body, &meta) != nil {
			return d
		}
		d.expires = meta.ExpiresAt
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != epoch {
		return d
	}
	if body == nil {
		delete(c.entries, id)
		room(c.absent, c.max)
		c.absent[id] = now.Add(absentTTL)
		return d
	}
	delete(c.absent, id)
	room(c.entries, c.max)
	c.entries[id] = d
	return d
}

// room drops an arbitrary entry of m when it holds max.
func room[V any](m map[string]V, max int) {
	if len(m) >= max {
		for k := range m {
			delete(m, k)
			break
		}
	}
}

// invalidate drops the visitors' entries, or every entry for nil.
func (c *docCache) invalidate(ids []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if ids == nil {
		clear(c.entries)
		clear(c.absent)
		return
	}
	for _, id := range ids {
		delete(c.entries, id)
		delete(c.absent, id)
	}
}
