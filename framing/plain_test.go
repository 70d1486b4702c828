package framing

import "testing"

func TestPlainRequest(t *testing.T) {
	const key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	for _, c := range []struct {
		name, head string
		path       string
		isHead, ok bool
	}{
		{"GET /", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "/", false, true},
		{"query dropped", "GET /sdk/huntgate.js?v=2 HTTP/1.1\r\nHost: x\r\n\r\n", "/sdk/huntgate.js", false, true},
		{"HEAD", "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", "/", true, true},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", "/", false, true},
		{"upgrade request", "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + key + "Sec-WebSocket-Version: 13\r\n\r\n", "", false, false},
		{"any Upgrade field", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n\r\n", "", false, false},
		{"empty Upgrade field", "GET / HTTP/1.1\r\nUpgrade:\r\n\r\n", "", false, false},
		{"POST", "POST / HTTP/1.1\r\nHost: x\r\n\r\n", "", false, false},
		{"HTTP/1.0", "GET / HTTP/1.0\r\n\r\n", "", false, false},
		{"absolute form", "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", "", false, false},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", "", false, false},
		{"space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", "", false, false},
		{"folded line", "GET / HTTP/1.1\r\nHost: x\r\n  y\r\n\r\n", "", false, false},
		{"control byte", "GET / HTTP/1.1\r\nHost: x\x01\r\n\r\n", "", false, false},
		{"bad request line", "GET /\r\n\r\n", "", false, false},
	} {
		path, isHead, ok := PlainRequest([]byte(c.head))
		if ok != c.ok || string(path) != c.path || isHead != c.isHead {
			t.Errorf("%s: PlainRequest = %q, %v, %v; want %q, %v, %v", c.name, path, isHead, ok, c.path, c.isHead, c.ok)
		}
	}
}

func TestPlainRequestStart(t *testing.T) {
	for _, c := range []struct {
		b    string
		want bool
	}{
		{"HEAD / HTTP/1.1\r\n", true},
		{"GET / HTTP/1.1\r\n", true},
		{"HEAD / HTTP/1.1", false},
		{"HEAD / HTTP/1.0\r\n", false},
		{"POST / HTTP/1.1\r\n", false},
		{"\x16\x03\x01", false},
	} {
		if got := PlainRequestStart([]byte(c.b)); got != c.want {
			t.Errorf("PlainRequestStart(%q) = %v, want %v", c.b, got, c.want)
		}
	}
}
