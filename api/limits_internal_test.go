package api

import (
	"fmt"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestClientAddrTakesTheHopTrustedProxiesAppended: the client is the hop
// the trusted proxies appended, never what the client wrote to the left of
// it; with networks, only a request from a trusted proxy has its header
// read.
func TestClientAddrTakesTheHopTrustedProxiesAppended(t *testing.T) {
	t.Parallel()
	cidrs, err := ParseTrustedProxies("10.0.0.0/8, 2001:db8:ffff::/48, 192.0.2.200")
	if err != nil {
		t.Fatal(err)
	}
	one, two := TrustedProxies{Count: 1}, TrustedProxies{Count: 2}
	cases := []struct {
		name   string
		tp     TrustedProxies
		remote string
		hops   []string // header lines
		want   string
	}{
		{"no header configured", one, "198.51.100.1:5000", nil, "198.51.100.1"},
		{"one proxy: the rightmost hop", one, "10.0.0.1:5000", []string{"6.6.6.6, 203.0.113.9"}, "203.0.113.9"},
		{"one proxy, client wrote many", one, "10.0.0.1:5000", []string{"1.1.1.1, 2.2.2.2, 3.3.3.3, 203.0.113.9"}, "203.0.113.9"},
		{"one proxy, several header lines", one, "10.0.0.1:5000", []string{"6.6.6.6", "203.0.113.9"}, "203.0.113.9"},
		{"two proxies: second from the right", two, "10.0.0.1:5000", []string{"6.6.6.6, 203.0.113.9, 10.1.1.1"}, "203.0.113.9"},
		{"two proxies, fewer hops: the leftmost", two, "10.0.0.1:5000", []string{"203.0.113.9"}, "203.0.113.9"},
		{"no header: the peer", one, "198.51.100.1:5000", nil, "198.51.100.1"},
		{"hop with a port", one, "10.0.0.1:5000", []string{"6.6.6.6, 203.0.113.9:4711"}, "203.0.113.9"},
		{"IPv6 hop with a port", one, "10.0.0.1:5000", []string{"[2001:db8::7]:4711"}, "2001:db8::7"},
		{"IPv4-mapped IPv6", one, "10.0.0.1:5000", []string{"::ffff:203.0.113.9"}, "203.0.113.9"},
		{"garbage hop: the peer", one, "10.0.0.1:5000", []string{"6.6.6.6, not-an-ip"}, "10.0.0.1"},
		{"networks: rightmost untrusted", cidrs, "10.0.0.1:5000", []string{"6.6.6.6, 203.0.113.9, 10.2.2.2, 192.0.2.200"}, "203.0.113.9"},
		{"networks: IPv6 proxies", cidrs, "[2001:db8:ffff::1]:5000", []string{"6.6.6.6, 2001:db8:1::5, 2001:db8:ffff::2"}, "2001:db8:1::5"},
		{"networks: peer not trusted, header ignored", cidrs, "198.51.100.1:5000", []string{"203.0.113.9"}, "198.51.100.1"},
		{"networks: every hop trusted", cidrs, "10.0.0.1:5000", []string{"10.3.3.3, 10.2.2.2"}, "10.3.3.3"},
		{"networks: garbage left of the proxies", cidrs, "10.0.0.1:5000", []string{"nonsense, 10.2.2.2"}, "10.2.2.2"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/v1/prechat/x", nil)
		r.RemoteAddr = c.remote
		header := ""
		if c.hops != nil || c.name != "no header configured" {
			header = "X-Forwarded-For"
		}
		for _, h := range c.hops {
			r.Header.Add("X-Forwarded-For", h)
		}
		got, ok := clientAddr(r, header, c.tp)
		if !ok || got != netip.MustParseAddr(c.want) {
			t.Errorf("%s: %v (%t), want %s", c.name, got, ok, c.want)
		}
	}
}

// TestClientKeyGroupsIPv6By64: the addresses of one /64 share a bucket,
// IPv4 addresses do not.
func TestClientKeyGroupsIPv6By64(t *testing.T) {
	t.Parallel()
	s := &Server{cfg: Config{}.withDefaults()}
	key := func(remote string) string {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		return s.clientKey(r)
	}
	if a, b := key("[2001:db8:1:2:aaaa::1]:1"), key("[2001:db8:1:2:bbbb::2]:2"); a != b || a != "2001:db8:1:2::/64" {
		t.Errorf("one /64 gives keys %q and %q", a, b)
	}
	if a, b := key("[2001:db8:1:2::1]:1"), key("[2001:db8:1:3::1]:1"); a == b {
		t.Errorf("two /64s share the key %q", a)
	}
	if a, b := key("192.0.2.1:1"), key("192.0.2.2:1"); a == b {
		t.Errorf("two IPv4 addresses share the key %q", a)
	}
}

func TestParseTrustedProxies(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                        "{1 []}",
		"2":                       "{2 []}",
		"10.0.0.0/8":              "{0 [10.0.0.0/8]}",
		" 10.1.2.3/8 , 192.0.2.7": "{0 [10.0.0.0/8 192.0.2.7/32]}",
		"2001:db8::/32":           "{0 [2001:db8::/32]}",
	} {
		got, err := ParseTrustedProxies(in)
		if err != nil || fmt.Sprint(got) != want {
			t.Errorf("ParseTrustedProxies(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "17", "-1", "10.0.0.0/33", "proxy.internal", "10.0.0.0/8,,"} {
		if _, err := ParseTrustedProxies(in); err == nil {
			t.Errorf("ParseTrustedProxies(%q) accepted", in)
		}
	}
}

// TestRateLimiterMemoryIsBounded: a flood of distinct clients keeps at
// most max buckets, and the heap does not grow with the flood; clients
// seen recently keep their (empty) buckets through it.
func TestRateLimiterMemoryIsBounded(t *testing.T) {
	now := time.Unix(1e9, 0)
	l := newRateLimiter(1, 2, 1000, func() time.Time { return now })
	for range 2 {
		l.allow("regular")
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	const flood = 300000
	for i := range flood {
		l.allow(fmt.Sprintf("198.%d.%d.%d", i>>16&255, i>>8&255, i&255))
		if i%500 == 0 {
			l.allow("regular") // seen all along: never the least recent
		}
	}
	grown := int64(heap()) - int64(before)
	if n := l.tracked(); n > 1000 {
		t.Fatalf("%d clients tracked after a flood of %d, want at most 1000", n, flood)
	}
	// 300,000 buckets would take about 60 MB; 1000 take about 200 KB.
	if grown > 4<<20 {
		t.Fatalf("the heap grew by %d bytes over a flood of %d clients", grown, flood)
	}
	if ok, _ := l.allow("regular"); ok {
		t.Fatal("the flood reset the bucket of a client seen all along")
	}
	t.Logf("heap grew by %d bytes over %d distinct clients; %d tracked", grown, flood, l.tracked())
}

// TestRateLimiterForgetsRefilledClients: a client idle long enough to
// refill its bucket is dropped without waiting for the cap.
func TestRateLimiterForgetsRefilledClients(t *testing.T) {
	t.Parallel()
	now := time.Unix(1e9, 0)
	l := newRateLimiter(10, 20, 1000, func() time.Time { return now })
	for i := range 50 {
		l.allow(fmt.Sprint(i))
	}
	now = now.Add(3 * time.Second) // 20 tokens at 10/s: full after 2s
	l.allow("new")
	if n := l.tracked(); n != 1 {
		t.Fatalf("%d clients tracked, want only the new one", n)
	}
}

// TestDecodePayloadStopsAtTheEventLimit: a body of many tiny items is not
// decoded beyond the limit: the work is bounded by MaxBatchEvents, not by
// what fits in the body.
func TestDecodePayloadStopsAtTheEventLimit(t *testing.T) {
	body := []byte(`{"writeKey":"k","batch":[` + strings.TrimSuffix(strings.Repeat(`{},`, 160000), ",") + `]}`)
	var err error
	allocs := testing.AllocsPerRun(3, func() { _, err = decodePayload(body, "", 2500) })
	if err == nil || !strings.Contains(err.Error(), "at most 2500 events") {
		t.Fatalf("decodePayload: %v", err)
	}
	// Decoding all 160,000 items takes over 300,000 allocations.
	if allocs > 30000 {
		t.Fatalf("%.0f allocations to refuse a batch over the limit", allocs)
	}
	p, err := decodePayload([]byte(`{"batch":[{"a":1},null],"writeKey":"k","sentAt":"x"}`), "", 2)
	if err != nil || len(p.events) != 2 || p.events[1] != nil || p.writeKey() != "k" || string(p.top["sentAt"]) != `"x"` {
		t.Fatalf("decodePayload: %+v %v", p, err)
	}
	for _, bad := range []string{``, `null`, `[]`, `{"batch":{}}`, `{"batch":[1]}`, `{"batch":[]}`, `{}`, `{"a":1}{}`, `{"a":1} x`, `{"batch":[{}]`} {
		if _, err := decodePayload([]byte(bad), "", 10); err == nil {
			t.Errorf("decodePayload(%q) accepted", bad)
		}
	}
}
