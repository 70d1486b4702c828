package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/huntgate/huntgate/state"
)

const (
	testSecret = "test-secret"
	testAPIKey = "test-key"
)

// testGateway is a gateway started in-process on loopback ports chosen by the kernel.
type testGateway struct {
	*Gateway
	engine *state.Memory
	ws     string // ws://host:port
	admin  string // http://host:port
}

// startGateway starts a gateway with 2 loops, dev mode, a JWT secret, an API
// key and the test endpoints; mod may change the configuration first.
func startGateway(t testing.TB, mod func(*Config), mem ...state.MemoryConfig) *testGateway {
	t.Helper()
	return startGatewayWith(t, mod, nil, mem...)
}

// startGatewayWith is startGateway with the engine wrapped by wrap (if not nil).
func startGatewayWith(t testing.TB, mod func(*Config), wrap func(*state.Memory) state.Engine, mem ...state.MemoryConfig) *testGateway {
	t.Helper()
	cfg := Config{
		Addr:          "127.0.0.1:0",
		AdminAddr:     "127.0.0.1:0",
		Loops:         2,
		DevMode:       true,
		JWTSecret:     testSecret,
		APIKey:        testAPIKey,
		TestEndpoints: true,
		StatsInterval: -1,
		DrainWindow:   200 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	var mc state.MemoryConfig
	if len(mem) > 0 {
		mc = mem[0]
	}
	if mc.Epoch == 0 {
		mc.Epoch = 1 << 40 // exact in a float64, as JSON clients need
	}
	engine := state.NewMemory(mc)
	var e state.Engine = engine
	if wrap != nil {
		e = wrap(engine)
	}
	g, err := New(cfg, e)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	tg := &testGateway{Gateway: g, engine: engine, ws: "ws://" + g.Addr().String()}
	if a := g.AdminAddr(); a != nil {
		tg.admin = "http://" + a.String()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		engine.Close()
	})
	return tg
}

// createHunt creates a hunt through the engine.
func (tg *testGateway) createHunt(t testing.TB, s state.Spec) {
	t.Helper()
	if _, err := tg.engine.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

// client is a gorilla/websocket test client.
type client struct {
	t testing.TB
	c *websocket.Conn
}

// dial connects to path (with query) and fails the test on error.
func (tg *testGateway) dial(t testing.TB, pathQuery string) *client {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(tg.ws+pathQuery, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", pathQuery, err, status)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c}
}

// player connects as a dev-mode player.
func (tg *testGateway) player(t testing.TB, id string) *client {
	return tg.dial(t, "/ws?player="+url.QueryEscape(id))
}

// dialStatus returns the HTTP status of a refused handshake (101 if accepted).
func (tg *testGateway) dialStatus(t testing.TB, pathQuery string, h http.Header) int {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(tg.ws+pathQuery, h)
	if err == nil {
		c.Close()
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", pathQuery, err)
	}
	return resp.StatusCode
}

func (c *client) sendRaw(s string) {
	c.t.Helper()
	if err := c.c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) send(format string, args ...any) {
	c.t.Helper()
	c.sendRaw(fmt.Sprintf(format, args...))
}

// msg is a decoded server message.
type msg map[string]any

func (m msg) str(k string) string { s, _ := m[k].(string); return s }
func (m msg) num(k string) float64 {
	f, _ := m[k].(float64)
	return f
}

// read reads one message within 5 s.
func (c *client) read() msg {
	c.t.Helper()
	m, err := c.tryRead(5 * time.Second)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return m
}

func (c *client) tryRead(d time.Duration) (msg, error) {
	_ = c.c.SetReadDeadline(time.Now().Add(d))
	op, b, err := c.c.ReadMessage()
	if err != nil {
		return nil, err
	}
	if op != websocket.TextMessage {
		return nil, fmt.Errorf("non-text message %d", op)
	}
	var m msg
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("bad JSON %s: %w", b, err)
	}
	return m, nil
}

// expect reads one message and checks its op.
func (c *client) expect(op string) msg {
	c.t.Helper()
	m := c.read()
	if m.str("op") != op {
		c.t.Fatalf("got %v, want op %q", m, op)
	}
	return m
}

// until reads messages until one with op arrives and returns it.
func (c *client) until(op string) msg {
	c.t.Helper()
	for {
		if m := c.read(); m.str("op") == op {
			return m
		}
	}
}

// expectError reads one message and checks it is an error with code.
func (c *client) expectError(code string) msg {
	c.t.Helper()
	m := c.expect("error")
	if m.str("code") != code {
		c.t.Fatalf("got %v, want error %q", m, code)
	}
	return m
}

// expectClose reads until the connection closes and returns the close error.
func (c *client) expectClose() *websocket.CloseError {
	c.t.Helper()
	for {
		_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _, err := c.c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce
		}
		c.t.Fatalf("connection ended without a close frame: %v", err)
	}
}

// join joins hunt and returns the joined reply.
func (c *client) join(hunt string) msg {
	c.t.Helper()
	c.send(`{"op":"join","hunt":%q}`, hunt)
	return c.expect("joined")
}

// token signs a player token.
func token(t testing.TB, secret, sub string, exp time.Time, hunts []string) string {
	t.Helper()
	c := PlayerClaims{Hunts: hunts}
	c.Subject = sub
	if !exp.IsZero() {
		c.ExpiresAt = jwt.NewNumericDate(exp)
	}
	s, err := SignToken(secret, c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// adminDo makes an admin request and returns the status and body.
func (tg *testGateway) adminDo(t testing.TB, method, path, key string, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewBufferString(body)
	}
	req, err := http.NewRequest(method, tg.admin+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// waitFor polls cond until it holds or 10 s pass (for state that has no signal).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fixedHunt is a hunt spec with treasures at (i, 0) worth i+1 points, plus
// one at (63, 63) that keeps the hunt open when the others are claimed.
func fixedHunt(id string, n int) state.Spec {
	s := state.Spec{ID: id, Width: 64, Height: 64, Treasures: []state.Treasure{{ID: "keeper", X: 63, Y: 63, Points: 1}}}
	for i := 0; i < n; i++ {
		s.Treasures = append(s.Treasures, state.Treasure{ID: fmt.Sprintf("t%d", i), X: i, Y: 0, Points: int64(i + 1)})
	}
	return s
}
