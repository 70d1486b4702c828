package framing

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func TestNewClientKey(t *testing.T) {
	a, b := NewClientKey(), NewClientKey()
	if a == b {
		t.Fatal("two equal keys")
	}
	raw, err := base64.StdEncoding.DecodeString(string(a[:]))
	if err != nil || len(raw) != 16 {
		t.Fatalf("key %q is not base64 of 16 bytes", a)
	}
}

func TestAcceptKey(t *testing.T) {
	if got := acceptKey([]byte(rfcKey)); string(got[:]) != rfcAccept {
		t.Fatalf("accept %q, want %q", got, rfcAccept)
	}
}

// TestClientServerHandshake runs the client request through the Upgrader and
// the Upgrader's answer through CheckClientResponse.
func TestClientServerHandshake(t *testing.T) {
	for _, c := range []struct {
		name                   string
		clientDeflate, srvDefl bool
		want                   bool
	}{
		{"plain", false, false, false},
		{"deflate both", true, true, true},
		{"deflate client only", true, false, false},
		{"deflate server only", false, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			key := NewClientKey()
			req := AppendClientRequest(nil, "localhost:9000", "/ws?player=7", key, c.clientDeflate, [][2]string{{"Origin", "http://localhost"}, {"Authorization", "Bearer t"}})
			if n, err := RequestEnd(req, 4096); n != len(req) || err != nil {
				t.Fatalf("request head: %d %v\n%s", n, err, req)
			}
			var got seen
			u := Upgrader{Deflate: c.srvDefl, Check: func(r *Request) int {
				got = seen{string(r.Path), string(r.Query), string(r.Host), string(r.Origin), string(r.Authorization), r.Deflate}
				return 0
			}}
			resp, sres, err := u.Upgrade(nil, req)
			if err != nil {
				t.Fatalf("upgrade: %v\n%s", err, resp)
			}
			want := seen{"/ws", "player=7", "localhost:9000", "http://localhost", "Bearer t", c.want}
			if got != want {
				t.Fatalf("server saw %+v, want %+v", got, want)
			}
			cres, err := CheckClientResponse(resp, key)
			if err != nil {
				t.Fatalf("client check: %v\n%s", err, resp)
			}
			if cres != sres || cres.Deflate != c.want || cres.Status != 101 {
				t.Fatalf("client %+v server %+v, want deflate %v", cres, sres, c.want)
			}
		})
	}
}

func TestCheckClientResponse(t *testing.T) {
	key := [24]byte([]byte(rfcKey))
	ok := []string{
		"HTTP/1.1 101 Switching Protocols",
		"Upgrade: websocket",
		"Connection: Upgrade",
		"Sec-WebSocket-Accept: " + rfcAccept,
	}
	resp := func(lines ...string) []byte { return []byte(strings.Join(lines, "\r\n") + "\r\n\r\n") }
	replace := func(old, new string) []byte {
		return bytes.Replace(resp(ok...), []byte(old), []byte(new), 1)
	}
	cases := []struct {
		name    string
		head    []byte
		status  int
		deflate bool
		err     error
	}{
		{"ok", resp(ok...), 101, false, nil},
		{"ok lower case names, token list", resp("HTTP/1.1 101 x", "upgrade: WebSocket", "connection: keep-alive, upgrade", "sec-websocket-accept: "+rfcAccept), 101, false, nil},
		{"deflate", resp(append(ok, "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover")...), 101, true, nil},
		{"deflate with context takeover", resp(append(ok, "Sec-WebSocket-Extensions: permessage-deflate")...), 101, false, ErrBadExtension},
		{"deflate with window bits", resp(append(ok, "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; server_max_window_bits=10")...), 101, false, ErrBadExtension},
		{"unknown extension", resp(append(ok, "Sec-WebSocket-Extensions: foo")...), 101, false, ErrBadExtension},
		{"wrong accept", replace(rfcAccept, "AAAAAAAAAAAAAAAAAAAAAAAAAAA="), 101, false, ErrBadAccept},
		{"no accept", replace("Sec-WebSocket-Accept", "X-Other"), 101, false, ErrBadAccept},
		{"no upgrade", replace("Upgrade: websocket", "Upgrade: h2c"), 101, false, ErrBadResponse},
		{"no connection", replace("Connection: Upgrade", "Connection: close"), 101, false, ErrBadResponse},
		{"refused", resp("HTTP/1.1 401 Unauthorized", "Content-Length: 0"), 401, false, ErrBadStatus},
		{"not http", []byte("SSH-2.0-OpenSSH\r\n\r\n"), 0, false, ErrBadResponse},
		{"bad header line", resp("HTTP/1.1 101 Switching Protocols", "nonsense"), 101, false, ErrBadResponse},
	}
	for _, c := range cases {
		res, err := CheckClientResponse(c.head, key)
		if err != c.err || res.Status != c.status || res.Deflate != c.deflate {
			t.Errorf("%s: %+v %v, want status %d deflate %v err %v", c.name, res, err, c.status, c.deflate, c.err)
		}
	}
}
