package api

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// TrustedProxies says which hops of the client address header were
// appended by your own proxies. Each proxy appends the address it received
// the request from, so the client's address is the rightmost hop that is
// not one of them; everything left of it was written by the client and is
// never used.
type TrustedProxies struct {
	// Count is the number of proxies in front of the service: the client is
	// the Count-th hop from the right. Used when Prefixes is empty.
	// Default: 1 (one load balancer or ingress).
	Count int
	// Prefixes are the proxies' networks: the header is only read when the
	// connection comes from one of them, and the client is the rightmost
	// hop outside them.
	Prefixes []netip.Prefix
}

// ParseTrustedProxies reads TRUSTED_PROXIES: a number of proxies ("2"), or
// comma separated networks and addresses ("10.0.0.0/8, 2001:db8::/32,
// 192.0.2.7"). Empty is the default, one proxy.
func ParseTrustedProxies(s string) (TrustedProxies, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return TrustedProxies{Count: 1}, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 16 {
			return TrustedProxies{}, fmt.Errorf("%d is not a proxy count from 1 to 16", n)
		}
		return TrustedProxies{Count: n}, nil
	}
	var tp TrustedProxies
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		p, err := netip.ParsePrefix(part)
		if err != nil {
			a, aerr := netip.ParseAddr(part)
			if aerr != nil {
				return TrustedProxies{}, fmt.Errorf("%q is neither a proxy count nor a network such as 10.0.0.0/8", part)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		tp.Prefixes = append(tp.Prefixes, p.Masked())
	}
	return tp, nil
}

func (tp TrustedProxies) trusts(a netip.Addr) bool {
	for _, p := range tp.Prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientKey is the rate-limit key of the request's client: its address
// (see clientAddr), IPv6 addresses by their /64, as one host usually holds
// a whole /64.
func (s *Server) clientKey(r *http.Request) string {
	a, ok := clientAddr(r, s.cfg.ClientIPHeader, s.cfg.TrustedProxies)
	if !ok {
		return r.RemoteAddr
	}
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.String()
}

// clientAddr is the client's address: the connection's peer, or with
// header (e.g. X-Forwarded-For) the hop that the trusted proxies appended.
// ok is false when not even the peer is an address.
func clientAddr(r *http.Request, header string, tp TrustedProxies) (netip.Addr, bool) {
	peer, peerOK := parseHop(r.RemoteAddr)
	if header == "" {
		return peer, peerOK
	}
	var hops []string
	for _, v := range r.Header.Values(header) {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hops = append(hops, h)
			}
		}
	}
	if len(tp.Prefixes) == 0 {
		count := max(tp.Count, 1)
		if len(hops) == 0 {
			return peer, peerOK
		}
		// Fewer hops than proxies: the leftmost is the farthest one known.
		if a, ok := parseHop(hops[max(len(hops)-count, 0)]); ok {
			return a, true
		}
		return peer, peerOK
	}
	if !peerOK || !tp.trusts(peer) {
		return peer, peerOK // not through a trusted proxy: the header is the client's
	}
	last := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			return last, true // garbage where a proxy's hop should be: key by the proxy
		}
		if !tp.trusts(a) {
			return a, true
		}
		last = a
	}
	return last, true
}

// parseHop reads an address, with or without a port ("192.0.2.1",
// "192.0.2.1:1234", "[2001:db8::1]:1234", "2001:db8::1").
func parseHop(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		host, _, serr := net.SplitHostPort(s)
		if serr != nil {
			return netip.Addr{}, false
		}
		if a, err = netip.ParseAddr(host); err != nil {
			return netip.Addr{}, false
		}
	}
	return a.WithZone("").Unmap(), true
}
