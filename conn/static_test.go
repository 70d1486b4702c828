package conn

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// staticBody is large enough that the socket takes it in several writes.
var staticBody = bytes.Repeat([]byte("0123456789abcdef"), 32<<10)

func staticConfig() Config {
	cfg := testConfig()
	cfg.HandshakeTimeout = time.Hour
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(staticBody)) + "\r\nConnection: close\r\n\r\n")
	head := bytes.Clone(resp)
	resp = append(resp, staticBody...)
	cfg.Static = func(path []byte, isHead bool) []byte {
		switch {
		case string(path) != "/page":
			return nil
		case isHead:
			return head
		}
		return resp
	}
	return cfg
}

// readStatic reads one response and then the end of the connection.
func readStatic(t *testing.T, c *rawConn, method string) (*http.Response, []byte) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(c.r, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	if _, err := c.r.ReadByte(); err != io.EOF {
		t.Fatalf("connection not closed after the response: %v", err)
	}
	return resp, body
}

// Plain GET and HEAD requests get Config.Static's answer in full and the
// connection ends; no OnOpen or OnClose runs for them. A HEAD whose request
// line arrives before the rest of its head is not answered early with 405
// (as a HEAD is without Static).
func TestStaticServed(t *testing.T) {
	th := newTestHandler()
	n := startNode(t, staticConfig(), th)
	for _, c := range []struct {
		name, method string
		parts        []string
		body         []byte
	}{
		{"GET", "GET", []string{"GET /page?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"}, staticBody},
		{"HEAD", "HEAD", []string{"HEAD /page HTTP/1.1\r\nHost: x\r\n\r\n"}, nil},
		{"HEAD in pieces", "HEAD", []string{"HEAD /page HTTP/1.1\r\n", "Host: x\r\n", "\r\n"}, nil},
		{"pipelined input drained", "GET", []string{"GET /page HTTP/1.1\r\nHost: x\r\n\r\nGET /page HTTP/1.1\r\nHost: x\r\n\r\n"}, staticBody},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc := dialRaw(t, n)
			for i, p := range c.parts {
				if _, err := rc.Write([]byte(p)); err != nil {
					t.Fatal(err)
				}
				if i == 0 && len(c.parts) > 1 {
					// Without Static a lone HEAD request line is answered
					// 405 at once; here nothing may come yet.
					rc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
					if _, err := rc.r.Peek(1); err == nil {
						t.Fatal("answered before the head was complete")
					}
				}
			}
			resp, body := readStatic(t, rc, c.method)
			if resp.StatusCode != 200 || resp.ContentLength != int64(len(staticBody)) {
				t.Fatalf("status %d, length %d", resp.StatusCode, resp.ContentLength)
			}
			if !bytes.Equal(body, c.body) {
				t.Fatalf("body of %d bytes, want %d", len(body), len(c.body))
			}
		})
	}
	select {
	case h := <-th.opens:
		t.Fatalf("OnOpen ran for a plain request: %v", h)
	default:
	}
}

// What Static declines, and anything that asks for an upgrade, takes the
// upgrade path exactly as without Static: refusals keep their status, and a
// valid upgrade of a path Static serves is upgraded.
func TestStaticKeepsUpgradePath(t *testing.T) {
	th := newTestHandler()
	n := startNode(t, staticConfig(), th)
	for _, c := range []struct {
		name, head string
		status     int
	}{
		{"declined path", "GET /other HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"Upgrade field", "GET /page HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n\r\n", 400},
		{"two Hosts", "GET /page HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400},
		{"HTTP/1.0", "GET /page HTTP/1.0\r\n\r\n", 505},
		{"POST", "POST /page HTTP/1.1\r\nHost: x\r\n\r\n", 405},
		{"HEAD declined", "HEAD /other HTTP/1.1\r\nHost: x\r\n\r\n", 405},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc := dialRaw(t, n)
			if _, err := rc.Write([]byte(c.head)); err != nil {
				t.Fatal(err)
			}
			expectRefusal(t, rc, c.status)
		})
	}
	rc := dialRaw(t, n)
	if _, err := rc.Write([]byte("GET /page HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	rc.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(rc.r, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade of a served path: %v %v", resp, err)
	}
}
