package conn

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/huntgate/huntgate/framing"
)

// rawHead builds a request head from header lines after a GET request line.
func rawHead(lines ...string) string {
	return "GET /raw HTTP/1.1\r\n" + strings.Join(lines, "\r\n") + "\r\n\r\n"
}

var rawBase = []string{
	"Host: x",
	"Upgrade: websocket",
	"Connection: Upgrade",
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
	"Sec-WebSocket-Version: 13",
}

// rawWith is rawBase with line old replaced by repl ("" drops it) and extra
// lines added.
func rawWith(old, repl string, extra ...string) string {
	var l []string
	for _, s := range rawBase {
		switch {
		case s != old:
			l = append(l, s)
		case repl != "":
			l = append(l, repl)
		}
	}
	return rawHead(append(l, extra...)...)
}

// expectRefusal reads a refusal with status want from c and then the end of
// the connection.
func expectRefusal(t *testing.T, c *rawConn, want int) *http.Response {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || len(body) == 0 {
		t.Fatalf("body %q: %v", body, err)
	}
	if resp.StatusCode != want {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, want, body)
	}
	var ne net.Error
	if _, err := c.r.ReadByte(); err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection not closed after a refusal: %v", err)
	}
	return resp
}

// Requests real clients send are upgraded, malformed ones refused with a
// 4xx and the connection closed, whatever the socket delivers them in.
func TestHandshakeRawRequests(t *testing.T) {
	th := newTestHandler()
	n := startNode(t, testConfig(), th)
	cases := []struct {
		name   string
		head   string
		status int
	}{
		{"minimal", rawWith("", ""), 101},
		{"Firefox Connection list", rawWith("Connection: Upgrade", "Connection: keep-alive, Upgrade"), 101},
		{"names and values in any case", rawHead("host: x", "UPGRADE: WebSocket", "connection: UPGRADE",
			"SEC-WEBSOCKET-KEY: dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version: 13"), 101},
		{"Upgrade as a list", rawWith("Upgrade: websocket", "Upgrade: h2c, websocket"), 101},
		{"Connection in two fields", rawWith("Connection: Upgrade", "Connection: keep-alive", "Connection: upgrade"), 101},
		{"subprotocols and extensions", rawWith("", "", "Sec-WebSocket-Protocol: chat, superchat",
			`Sec-WebSocket-Extensions: x-webkit-deflate-frame, foo; a="b,c", permessage-deflate; client_max_window_bits`), 101},
		{"key not base64", rawWith("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Key: ????????????????????????"), 400},
		{"key too long", rawWith("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Key: "+strings.Repeat("A", 32)), 400},
		{"duplicate key", rawWith("", "", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA=="), 400},
		{"duplicate Host", rawWith("", "", "Host: y"), 400},
		{"missing Host", rawWith("Host: x", ""), 400},
		{"obs-fold", rawWith("", "", "X-A: a", " X-B: folded"), 400},
		{"space before colon", rawWith("Host: x", "Host : x"), 400},
		{"header without colon", rawWith("", "", "NoColon"), 400},
		{"NUL in value", rawWith("", "", "X-A: a\x00b"), 400},
		{"version 8", rawWith("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"), 426},
		{"POST", strings.Replace(rawWith("", ""), "GET", "POST", 1), 405},
		{"bad request line", strings.Replace(rawWith("", ""), "GET /raw", "GET  /raw", 1), 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc := dialRaw(t, n)
			if _, err := rc.Write([]byte(c.head)); err != nil {
				t.Fatal(err)
			}
			if c.status != 101 {
				resp := expectRefusal(t, rc, c.status)
				if c.status == 426 && resp.Header.Get("Sec-WebSocket-Version") != "13" {
					t.Fatalf("426 without Sec-WebSocket-Version: 13: %v", resp.Header)
				}
				return
			}
			rc.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(rc.r, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" ||
				resp.Header.Get("Upgrade") != "websocket" || resp.Header.Get("Connection") != "Upgrade" {
				t.Fatalf("response %d %v", resp.StatusCode, resp.Header)
			}
			if v := resp.Header.Get("Sec-WebSocket-Protocol"); v != "" {
				t.Fatalf("subprotocol %q nobody picked", v)
			}
			th.waitOpen(t)
		})
	}
}

// A request line that cannot lead to an upgrade is answered as soon as it
// is complete (or as soon as a byte shows it is not HTTP), not when the
// handshake timeout passes: the rest of the head may never come.
func TestHandshakeBadStartAnsweredAtOnce(t *testing.T) {
	th := newTestHandler()
	cfg := testConfig()
	cfg.HandshakeTimeout = time.Hour
	n := startNode(t, cfg, th)
	for _, c := range []struct {
		name, start string
		status      int
	}{
		{"TLS hello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400},
		{"malformed line", "GET /ws\r\n", 400},
		{"POST", "POST /ws HTTP/1.1\r\nHost: x\r\n", 405},
		{"HTTP/1.0", "GET /ws HTTP/1.0\r\n", 505},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc := dialRaw(t, n)
			if _, err := rc.Write([]byte(c.start)); err != nil {
				t.Fatal(err)
			}
			expectRefusal(t, rc, c.status)
		})
	}
}

// A head written one byte per segment parses like a head sent at once, and
// a frame sent right behind it is not lost.
func TestHandshakeByteByByte(t *testing.T) {
	th := newTestHandler()
	n := startNode(t, testConfig(), th)
	rc := dialRaw(t, n)
	head := rawWith("Connection: Upgrade", "Connection: keep-alive, Upgrade",
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits", "User-Agent: byte-by-byte")
	for i := 0; i < len(head)-1; i++ {
		if _, err := rc.Write([]byte{head[i]}); err != nil {
			t.Fatal(err)
		}
	}
	last := framing.AppendMaskedFrame([]byte{head[len(head)-1]}, framing.OpText, true, [4]byte{9, 8, 7, 6}, []byte("right behind"))
	if _, err := rc.Write(last); err != nil {
		t.Fatal(err)
	}
	rc.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(rc.r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("response %d %v", resp.StatusCode, resp.Header)
	}
	if op, p := rc.readFrame(t); op != framing.OpText || string(p) != "right behind" {
		t.Fatalf("%v %q", op, p)
	}
}
