package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawGet sends one plain request to the player port and reads the answer
// and then the end of the connection.
func rawGet(t *testing.T, addr, method, path string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, method+" "+path+" HTTP/1.1\r\nHost: x\r\nUser-Agent: test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, path, err)
	}
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("%s %s: connection still open after the answer: %v", method, path, err)
	}
	return resp, body
}

// The SDK is served on the player port in every mode, byte for byte the
// file of clients/js (what npm publishes), as JavaScript; the play page only
// in development mode; unknown paths get 404; HEAD gets the headers alone;
// a plain GET of /ws is still refused by the upgrade path with its reason.
func TestPlayerPortStatic(t *testing.T) {
	sdk, err := os.ReadFile("../clients/js/huntgate.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, dev := range []bool{true, false} {
		tg := startGateway(t, func(c *Config) { c.DevMode = dev })
		addr := tg.Addr().String()
		resp, body := rawGet(t, addr, "GET", "/sdk/huntgate.js?v=1")
		if resp.StatusCode != 200 || !bytes.Equal(body, sdk) {
			t.Fatalf("dev=%v: /sdk/huntgate.js: status %d, %d bytes, equal to clients/js/huntgate.js: %v", dev, resp.StatusCode, len(body), bytes.Equal(body, sdk))
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
			t.Fatalf("Content-Type %q", ct)
		}
		if resp.Header.Get("Cache-Control") == "" || resp.ContentLength != int64(len(sdk)) || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("headers %v", resp.Header)
		}
		resp, body = rawGet(t, addr, "HEAD", "/sdk/huntgate.js")
		if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Content-Length") != strconv.Itoa(len(sdk)) {
			t.Fatalf("HEAD: status %d, body %d bytes, Content-Length %q", resp.StatusCode, len(body), resp.Header.Get("Content-Length"))
		}
		resp, body = rawGet(t, addr, "GET", "/")
		if dev {
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !bytes.Contains(body, []byte("/play.js")) {
				t.Fatalf("dev: GET /: %d %v", resp.StatusCode, resp.Header)
			}
			if resp.Header.Get("Content-Security-Policy") == "" {
				t.Fatal("page without a Content-Security-Policy")
			}
			for _, p := range []string{"/play.js", "/play.css"} {
				if resp, _ := rawGet(t, addr, "GET", p); resp.StatusCode != 200 {
					t.Fatalf("%s: %d", p, resp.StatusCode)
				}
			}
		} else if resp.StatusCode != 404 {
			t.Fatalf("production: GET / answered %d, want 404", resp.StatusCode)
		}
		if resp, _ := rawGet(t, addr, "GET", "/nothing-here"); resp.StatusCode != 404 {
			t.Fatalf("unknown path: %d", resp.StatusCode)
		}
		resp, body = rawGet(t, addr, "GET", "/ws")
		if resp.StatusCode != 400 || !bytes.Contains(body, []byte("Upgrade")) {
			t.Fatalf("plain GET /ws: %d %q", resp.StatusCode, body)
		}
		// Players are served as before.
		c := tg.dial(t, "/ws?token="+token(t, testSecret, "alice", time.Now().Add(time.Hour), nil))
		c.send(`{"op":"ping","ref":1}`)
		c.expect("pong")
	}
}

// The dashboard and its files are served by the admin listener without a
// key, like every read-only admin endpoint.
func TestDashboardServed(t *testing.T) {
	tg := startGateway(t, nil)
	for path, ctype := range map[string]string{
		"/dashboard":     "text/html; charset=utf-8",
		"/dashboard.js":  "text/javascript; charset=utf-8",
		"/dashboard.css": "text/css; charset=utf-8",
	} {
		resp, err := http.Get(tg.admin + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ctype || len(body) == 0 {
			t.Fatalf("%s: %d %q, %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
	}
}

// Join requests answered with an error are counted in /v1/stats
// (joins_refused), which the dashboard charts; other errors are not.
func TestStatsJoinsRefused(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.MaxHunts = 1 })
	tg.createHunt(t, fixedHunt("a", 1))
	tg.createHunt(t, fixedHunt("b", 1))
	c := tg.player(t, "alice")
	c.join("a")
	c.send(`{"op":"join","hunt":"b","ref":1}`)
	c.expectError("too_many_hunts")
	c.send(`{"op":"dig","hunt":"nope","x":0,"y":0,"ref":3}`)
	c.expectError("unknown_hunt")
	d := tg.player(t, "bob")
	d.send(`{"op":"join","hunt":"nope","ref":2}`)
	d.expectError("unknown_hunt")
	if got := tg.Stats(t.Context()).JoinsRefused; got != 2 {
		t.Fatalf("joins_refused = %d, want 2", got)
	}
}
