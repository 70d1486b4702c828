package gateway

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestTestBroadcast: POST /v1/test/broadcast reaches every /ws connection of
// the node with the body verbatim, and nothing else: not the /echo
// connection beside them; it needs the API key and a body, and is absent
// without --test-endpoints.
func TestTestBroadcast(t *testing.T) {
	tg := startGateway(t, nil)
	var players []*client
	for _, id := range []string{"a", "b", "c"} {
		c := tg.player(t, id)
		// A pong proves the session is open on its loop.
		c.send(`{"op":"ping","ref":1}`)
		c.expect("pong")
		players = append(players, c)
	}
	echo := tg.dial(t, "/echo")
	body := `{"op":"bcast","data":{"t":1,"i":0,"s":1},"pad":"xxxx"}`
	code, resp := tg.adminDo(t, http.MethodPost, "/v1/test/broadcast", testAPIKey, body)
	if code != http.StatusOK || strings.TrimSpace(string(resp)) != `{"sent":3}` {
		t.Fatalf("broadcast: %d %s, want 200 {\"sent\":3}", code, resp)
	}
	for i, c := range players {
		_ = c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := c.c.ReadMessage()
		if err != nil || string(b) != body {
			t.Fatalf("player %d got %q, %v; want the body", i, b, err)
		}
	}
	// The /echo connection got nothing: what it reads first is its own echo.
	if err := echo.c.WriteMessage(1, []byte("mine")); err != nil {
		t.Fatal(err)
	}
	_ = echo.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, b, err := echo.c.ReadMessage(); err != nil || string(b) != "mine" {
		t.Fatalf("/echo read %q, %v; want its own echo first", b, err)
	}

	if code, _ := tg.adminDo(t, http.MethodPost, "/v1/test/broadcast", "", body); code != http.StatusUnauthorized {
		t.Errorf("without the key: %d, want 401", code)
	}
	if code, _ := tg.adminDo(t, http.MethodPost, "/v1/test/broadcast", testAPIKey, ""); code != http.StatusBadRequest {
		t.Errorf("empty body: %d, want 400", code)
	}
	// Over the 64 KiB bound, and bytes that are not UTF-8 (a text frame
	// must be), are refused before any loop sees them.
	if code, resp := tg.adminDo(t, http.MethodPost, "/v1/test/broadcast", testAPIKey, strings.Repeat("x", testBroadcastMax+1)); code != http.StatusRequestEntityTooLarge || !strings.Contains(string(resp), "too_large") {
		t.Errorf("65537 bytes: %d %s, want 413 too_large", code, resp)
	}
	if code, _ := tg.adminDo(t, http.MethodPost, "/v1/test/broadcast", testAPIKey, "\xff\xfe"); code != http.StatusBadRequest {
		t.Errorf("not UTF-8: %d, want 400", code)
	}
	// Exactly at the bound is taken.
	if code, resp := tg.adminDo(t, http.MethodPost, "/v1/test/broadcast", testAPIKey, strings.Repeat("x", testBroadcastMax)); code != http.StatusOK {
		t.Errorf("65536 bytes: %d %s, want 200", code, resp)
	}
	off := startGateway(t, func(c *Config) { c.TestEndpoints = false })
	if code, _ := off.adminDo(t, http.MethodPost, "/v1/test/broadcast", testAPIKey, body); code != http.StatusNotFound {
		t.Errorf("without --test-endpoints: %d, want 404", code)
	}
}
