package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/huntgate/huntgate/gateway"
	"github.com/huntgate/huntgate/state"
)

func noEnv(string) (string, bool) { return "", false }

// healthcheck exits 0 against a running gateway's admin listener, found by
// flag or by HUNTGATE_ADMIN_ADDR (wildcard host checked on loopback), and
// non-zero when nothing listens, when /healthz is not 200, or when the
// answer takes longer than --timeout.
func TestHealthcheck(t *testing.T) {
	g, err := gateway.New(gateway.Config{Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Loops: 1, StatsInterval: -1}, state.NewMemory(state.MemoryConfig{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = g.Shutdown(ctx)
	})
	admin := g.AdminAddr().String()
	_, port, _ := net.SplitHostPort(admin)
	var out bytes.Buffer
	if code := healthcheck([]string{"--admin-addr", admin}, noEnv, &out); code != 0 {
		t.Fatalf("healthy gateway: exit %d: %s", code, out.String())
	}
	env := func(k string) (string, bool) {
		if k == "HUNTGATE_ADMIN_ADDR" {
			return ":" + port, true
		}
		return "", false
	}
	if code := healthcheck(nil, env, &out); code != 0 {
		t.Fatalf("by environment, wildcard host: exit %d: %s", code, out.String())
	}
	// Through run, as the Dockerfile's HEALTHCHECK calls it.
	if code := run([]string{"healthcheck", "--admin-addr", admin}); code != 0 {
		t.Fatalf("run healthcheck: exit %d", code)
	}

	// Nothing listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	if code := healthcheck([]string{"--admin-addr", dead}, noEnv, &out); code == 0 {
		t.Fatal("exit 0 with nothing listening")
	}
	// Not 200.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }))
	defer bad.Close()
	if code := healthcheck([]string{"--admin-addr", bad.Listener.Addr().String()}, noEnv, &out); code == 0 {
		t.Fatal("exit 0 on a 503")
	}
	// Too slow: a listener that accepts and never answers.
	slow, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	// (Without the timeout this call would never return.)
	if code := healthcheck([]string{"--admin-addr", slow.Addr().String(), "--timeout", "200ms"}, noEnv, &out); code == 0 {
		t.Fatal("exit 0 from a listener that never answers")
	}
	if code := healthcheck([]string{"--admin-addr", "nonsense"}, noEnv, &out); code != 2 {
		t.Fatalf("bad address: exit %d, want 2", code)
	}
}
