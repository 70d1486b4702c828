package framing

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// rfcKey and rfcAccept are the example of RFC 6455 section 1.3.
const (
	rfcKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	rfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

// request builds a request head from lines, adding the blank line.
func request(lines ...string) []byte {
	return []byte(strings.Join(lines, "\r\n") + "\r\n\r\n")
}

var browserRequest = request(
	"GET /ws?token=abc.def.ghi&x=1 HTTP/1.1",
	"Host: game.example:8080",
	"Upgrade: websocket",
	"Connection: keep-alive, Upgrade",
	"Sec-WebSocket-Key: "+rfcKey,
	"Sec-WebSocket-Version: 13",
	"Origin: https://game.example",
	"authorization: Bearer xyz",
	"User-Agent: test",
)

func TestRequestEnd(t *testing.T) {
	cases := []struct {
		name string
		b    string
		max  int
		n    int
		err  error
	}{
		{"empty", "", 100, 0, nil},
		{"incomplete", "GET / HTTP/1.1\r\nHost: a\r\n", 100, 0, nil},
		{"complete", "GET / HTTP/1.1\r\n\r\n", 100, 18, nil},
		{"complete with frame bytes after it", "GET / HTTP/1.1\r\n\r\n\x81\x80abcd", 100, 18, nil},
		{"exactly max", "GET / HTTP/1.1\r\n\r\n", 18, 18, nil},
		{"one byte over max", "GET / HTTP/1.1\r\n\r\n", 17, 0, ErrRequestTooLarge},
		{"no end within max", strings.Repeat("x", 50), 40, 0, ErrRequestTooLarge},
		{"end past max", strings.Repeat("x", 50) + "\r\n\r\n", 40, 0, ErrRequestTooLarge},
	}
	for _, c := range cases {
		n, err := RequestEnd([]byte(c.b), c.max)
		if n != c.n || err != c.err {
			t.Errorf("%s: RequestEnd = %d, %v; want %d, %v", c.name, n, err, c.n, c.err)
		}
	}
}

// seen is a copy of the Request fields a Check observed.
type seen struct {
	Path, Query, Host, Origin, Authorization string
	Deflate                                  bool
}

func TestUpgrade(t *testing.T) {
	deflateOffer := "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"
	base := []string{
		"GET /ws?token=t HTTP/1.1",
		"Host: h",
		"Upgrade: websocket",
		"Connection: Upgrade",
		"Sec-WebSocket-Key: " + rfcKey,
		"Sec-WebSocket-Version: 13",
	}
	with := func(extra ...string) []byte { return request(append(append([]string(nil), base...), extra...)...) }
	without := func(drop string) []byte {
		var l []string
		for _, s := range base {
			if !strings.HasPrefix(s, drop) {
				l = append(l, s)
			}
		}
		return request(l...)
	}
	swap := func(old, new string) []byte {
		h := strings.TrimSuffix(string(with()), "\r\n\r\n")
		if !strings.Contains(h, old) {
			t.Fatalf("%q not in base request", old)
		}
		return request(strings.Replace(h, old, new, 1))
	}
	plain := &seen{Path: "/ws", Query: "token=t", Host: "h"}
	cases := []struct {
		name      string
		u         Upgrader
		check     int  // status Check returns
		noDeflate bool // Check declines deflate
		head      []byte
		status    int
		deflate   bool
		seen      *seen
		contains  []string
		absent    []string
	}{
		{name: "browser request", head: browserRequest, status: 101,
			seen:     &seen{Path: "/ws", Query: "token=abc.def.ghi&x=1", Host: "game.example:8080", Origin: "https://game.example", Authorization: "Bearer xyz"},
			contains: []string{"HTTP/1.1 101 Switching Protocols\r\n", "Sec-WebSocket-Accept: " + rfcAccept + "\r\n"},
			absent:   []string{"Sec-WebSocket-Extensions"}},
		{name: "no query", head: request("GET /echo HTTP/1.1", "Host: h", "Upgrade: WebSocket", "Connection: upgrade", "Sec-WebSocket-Key: "+rfcKey, "Sec-WebSocket-Version: 13"),
			status: 101, seen: &seen{Path: "/echo", Host: "h"}},
		{name: "long fields are kept whole", head: request("GET /ws?token="+strings.Repeat("t", 2500)+" HTTP/1.1", "Host: h", "Upgrade: websocket",
			"Connection: Upgrade", "Sec-WebSocket-Key: "+rfcKey, "Sec-WebSocket-Version: 13", "Authorization: Bearer "+strings.Repeat("a", 1000)),
			status: 101, seen: &seen{Path: "/ws", Query: "token=" + strings.Repeat("t", 2500), Host: "h", Authorization: "Bearer " + strings.Repeat("a", 1000)}},
		{name: "refused 401", check: 401, head: browserRequest, status: 401, contains: []string{"HTTP/1.1 401 Unauthorized\r\n", "Content-Length: 12\r\n\r\nUnauthorized"}},
		{name: "refused 403", check: 403, head: browserRequest, status: 403, contains: []string{"HTTP/1.1 403 Forbidden\r\n"}},
		{name: "refused odd status becomes 403", check: 42, head: browserRequest, status: 403},
		{name: "refused 418 uncached", check: 418, head: browserRequest, status: 418, contains: []string{"HTTP/1.1 418 I'm a teapot\r\n"}},
		{name: "missing Host", head: without("Host"), status: 400},
		{name: "missing Upgrade", head: without("Upgrade"), status: 400},
		{name: "missing key", head: without("Sec-WebSocket-Key"), status: 400},
		{name: "bad key length", head: with("Sec-WebSocket-Key: abc"), status: 400},
		{name: "missing version", head: without("Sec-WebSocket-Version"), status: 400},
		{name: "version 8", head: request(strings.Replace(string(with()), "Version: 13", "Version: 8", 1)), status: 426,
			contains: []string{"HTTP/1.1 426 Upgrade Required\r\n", "Sec-WebSocket-Version: 13"}},
		{name: "POST", head: request(strings.Replace(string(with()), "GET", "POST", 1)), status: 405},
		{name: "HTTP/1.0", head: request(strings.Replace(string(with()), "HTTP/1.1", "HTTP/1.0", 1)), status: 505},
		{name: "garbage", head: []byte("hello\r\n\r\n"), status: 400},
		{name: "empty", head: nil, status: 400},
		{name: "key not base64", head: swap(rfcKey, "????????????????????????"), status: 400},
		{name: "key of 18 bytes", head: swap(rfcKey, "AAAAAAAAAAAAAAAAAAAAAAAA"), status: 400},
		{name: "key too long", head: swap(rfcKey, strings.Repeat("A", 32)), status: 400},
		{name: "key too short", head: swap(rfcKey, "AAAAAAAAAAAAAAAAAAAA"), status: 400},
		{name: "duplicate key", head: with("Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA=="), status: 400},
		{name: "duplicate key other case", head: with("sec-websocket-key: " + rfcKey), status: 400},
		{name: "duplicate Host", head: with("Host: other"), status: 400},
		{name: "space before colon", head: swap("Host: h", "Host : h"), status: 400},
		{name: "obs-fold", head: with("X-A: a", " b"), status: 400},
		{name: "obs-fold with colon", head: with("X-A: a", "\tX-B: c"), status: 400},
		{name: "header without colon", head: with("NoColon"), status: 400},
		{name: "empty header name", head: with(": v"), status: 400},
		{name: "NUL in value", head: with("X-A: a\x00b"), status: 400},
		{name: "DEL in value", head: with("X-A: a\x7fb"), status: 400},
		{name: "bare LF", head: with("X-A: a\nHost: evil"), status: 400},
		{name: "bare CR", head: with("X-A: a\rb"), status: 400},
		{name: "request line double space", head: swap("GET /ws", "GET  /ws"), status: 400},
		{name: "request line extra field", head: swap("HTTP/1.1", "HTTP/1.1 x"), status: 400},
		{name: "request line NUL", head: swap("/ws?", "/w\x00s?"), status: 400},
		{name: "lowercase method", head: swap("GET", "get"), status: 405},
		{name: "HTTP/2.0", head: swap("HTTP/1.1", "HTTP/2.0"), status: 505},
		{name: "header names in any case", head: request("GET /ws?token=t HTTP/1.1", "HOST: h", "upgrade: WEBSOCKET", "CONNECTION: UPGRADE",
			"sec-websocket-key: "+rfcKey, "sec-websocket-version: 13"), status: 101, seen: plain,
			contains: []string{"Sec-WebSocket-Accept: " + rfcAccept + "\r\n"}},
		{name: "Upgrade as a list", head: swap("Upgrade: websocket", "Upgrade: h2c, WebSocket"), status: 101, seen: plain,
			contains: []string{"Sec-WebSocket-Accept: " + rfcAccept + "\r\n"}},
		{name: "Upgrade without websocket", head: swap("Upgrade: websocket", "Upgrade: h2c"), status: 400},
		{name: "Connection list with spaces", head: swap("Connection: Upgrade", "Connection:  keep-alive ,\tUPGRADE "), status: 101, seen: plain},
		{name: "Connection in two fields", head: swap("Connection: Upgrade", "Connection: keep-alive\r\nConnection: upgrade"), status: 101, seen: plain},
		{name: "Connection without upgrade", head: swap("Connection: Upgrade", "Connection: keep-alive"), status: 400},
		{name: "subprotocols not answered", head: with("Sec-WebSocket-Protocol: chat, superchat"), status: 101, seen: plain,
			absent: []string{"Sec-WebSocket-Protocol"}},
		{name: "Chrome request", u: Upgrader{Deflate: true}, head: request("GET /ws?token=t HTTP/1.1", "Host: h", "Connection: Upgrade", "Pragma: no-cache",
			"Cache-Control: no-cache", "User-Agent: Mozilla/5.0", "Upgrade: websocket", "Origin: https://o", "Sec-WebSocket-Version: 13",
			"Accept-Encoding: gzip, deflate, br", "Accept-Language: en", "Sec-WebSocket-Key: "+rfcKey,
			"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"), status: 101, deflate: true,
			seen: &seen{Path: "/ws", Query: "token=t", Host: "h", Origin: "https://o", Deflate: true}},
		{name: "several extensions with parameters", u: Upgrader{Deflate: true},
			head:   with(`Sec-WebSocket-Extensions: x-webkit-deflate-frame, foo; a="b,c"; d, permessage-deflate; client_max_window_bits=15; server_no_context_takeover`),
			status: 101, deflate: true, contains: []string{"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"}},
		{name: "extensions in two fields", u: Upgrader{Deflate: true},
			head:   with("Sec-WebSocket-Extensions: foo", "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"),
			status: 101, deflate: true},
		{name: "deflate accepted", u: Upgrader{Deflate: true}, head: with(deflateOffer), status: 101, deflate: true,
			seen:     &seen{Path: "/ws", Query: "token=t", Host: "h", Deflate: true},
			contains: []string{"\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"}},
		{name: "deflate not enabled", head: with(deflateOffer), status: 101, absent: []string{"Sec-WebSocket-Extensions"}},
		{name: "deflate declined by Check", u: Upgrader{Deflate: true}, noDeflate: true, head: with(deflateOffer), status: 101,
			absent: []string{"Sec-WebSocket-Extensions"}},
		{name: "deflate with small server window declined", u: Upgrader{Deflate: true}, head: with("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10"),
			status: 101, absent: []string{"Sec-WebSocket-Extensions"}},
		{name: "deflate malformed offer declined", u: Upgrader{Deflate: true}, head: with("Sec-WebSocket-Extensions: permessage-deflate; bogus=1"),
			status: 101, absent: []string{"Sec-WebSocket-Extensions"}},
		{name: "deflate with server_max_window_bits=15 accepted", u: Upgrader{Deflate: true},
			head:   with("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=15; client_max_window_bits"),
			status: 101, deflate: true,
			contains: []string{"\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15\r\n"}},
		{name: "server_max_window_bits=15 with no context takeover (Autobahn 13.x)", u: Upgrader{Deflate: true},
			head:   with("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; server_max_window_bits=15"),
			status: 101, deflate: true, contains: []string{"; server_max_window_bits=15\r\n"}},
		{name: "window 8 declined, then 15 accepted", u: Upgrader{Deflate: true},
			head:   with("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=15"),
			status: 101, deflate: true, contains: []string{"; server_max_window_bits=15\r\n"}},
		{name: "window 14 declined", u: Upgrader{Deflate: true}, head: with("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=14"),
			status: 101, absent: []string{"Sec-WebSocket-Extensions"}},
		{name: "window without a value declined", u: Upgrader{Deflate: true}, head: with("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits"),
			status: 101, absent: []string{"Sec-WebSocket-Extensions"}},
		{name: "window 16 declined", u: Upgrader{Deflate: true}, head: with("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=16"),
			status: 101, absent: []string{"Sec-WebSocket-Extensions"}},
		{name: "second offer accepted", u: Upgrader{Deflate: true}, head: with("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9, permessage-deflate"),
			status: 101, deflate: true, contains: []string{"permessage-deflate; server_no_context_takeover"}},
		{name: "unknown extension ignored", u: Upgrader{Deflate: true}, head: with("Sec-WebSocket-Extensions: x-webkit-deflate-frame"),
			status: 101, absent: []string{"Sec-WebSocket-Extensions"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := c.u
			var got seen
			called := false
			u.Check = func(r *Request) int {
				called = true
				got = seen{string(r.Path), string(r.Query), string(r.Host), string(r.Origin), string(r.Authorization), r.Deflate}
				if c.noDeflate {
					r.Deflate = false
				}
				return c.check
			}
			prefix := []byte("prefix")
			resp, res, err := u.Upgrade(prefix, c.head)
			if !bytes.HasPrefix(resp, []byte("prefix")) {
				t.Fatalf("dst not kept: %q", resp)
			}
			body := string(resp[len("prefix"):])
			if res.Status != c.status || res.Deflate != c.deflate {
				t.Fatalf("result %+v, want status %d deflate %v\n%s", res, c.status, c.deflate, body)
			}
			if (err == nil) != (c.status == 101) {
				t.Fatalf("err %v with status %d", err, res.Status)
			}
			if c.check != 0 && !errors.Is(err, ErrRefused) {
				t.Fatalf("err %v, want ErrRefused", err)
			}
			checkResponseShape(t, body)
			if c.seen != nil {
				if !called || got != *c.seen {
					t.Fatalf("Check saw %+v, want %+v", got, *c.seen)
				}
			}
			for _, s := range c.contains {
				if !strings.Contains(body, s) {
					t.Errorf("response lacks %q:\n%s", s, body)
				}
			}
			for _, s := range c.absent {
				if strings.Contains(body, s) {
					t.Errorf("response has %q:\n%s", s, body)
				}
			}
		})
	}
}

// checkResponseShape fails unless resp is one HTTP head followed by exactly
// the body its Content-Length announces (none for a 101).
func checkResponseShape(t *testing.T, resp string) {
	t.Helper()
	n, err := RequestEnd([]byte(resp), 1<<20)
	if n == 0 || err != nil {
		t.Fatalf("response has no complete head: %q", resp)
	}
	want := 0
	for _, line := range strings.Split(resp[:n], "\r\n") {
		if v, ok := strings.CutPrefix(line, "Content-Length: "); ok {
			want, err = strconv.Atoi(v)
			if err != nil {
				t.Fatalf("bad Content-Length in %q", resp)
			}
		}
	}
	if len(resp)-n != want {
		t.Fatalf("body of %d bytes, Content-Length %d: %q", len(resp)-n, want, resp)
	}
}

func TestUpgradeAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	u := Upgrader{Deflate: true, Check: func(r *Request) int {
		if len(r.Query) == 0 {
			return 401
		}
		return 0
	}}
	head := request(strings.TrimSuffix(string(browserRequest), "\r\n\r\n"), "Sec-WebSocket-Extensions: permessage-deflate")
	dst := make([]byte, 0, 512)
	for _, tc := range []struct {
		name string
		head []byte
		max  float64
	}{
		// gobwas/ws allocates once per response: the Sec-WebSocket-Accept
		// value on success, strconv.Itoa of the status on refusal.
		{"accept", head, 1},
		{"refuse", bytes.Replace(head, []byte("?token=abc.def.ghi&x=1"), nil, 1), 1},
	} {
		allocs := testing.AllocsPerRun(200, func() {
			if _, _, err := u.Upgrade(dst[:0], tc.head); err != nil && tc.name == "accept" {
				t.Fatal(err)
			}
		})
		t.Logf("%s: %v allocs per upgrade", tc.name, allocs)
		if allocs > tc.max {
			t.Errorf("%s: %v allocs per upgrade, want <= %v", tc.name, allocs, tc.max)
		}
	}
}

func TestBadRequestStart(t *testing.T) {
	for _, c := range []struct {
		b   string
		bad bool
	}{
		{"", false},
		{"GE", false},
		{"GET /ws HTTP/1.1\r", false},
		{"GET /ws HTTP/1.1\r\nHost: x\r\n", false},
		{"GET /ws HTTP/1.2\r\n", false},
		{"\x16\x03\x01", true},
		{"GET /\x00", true},
		{"GET /ws\r\n", true},
		{"GET /ws HTTP/1.1\n", true},
		{"POST /ws HTTP/1.1\r\n", true},
		{"GET /ws HTTP/1.0\r\n", true},
		{"GET /ws HTTP/2.0\r\n", true},
	} {
		if got := BadRequestStart([]byte(c.b)); got != c.bad {
			t.Errorf("BadRequestStart(%q) = %v, want %v", c.b, got, c.bad)
		}
	}
}
