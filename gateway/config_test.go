package gateway

import (
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/huntgate/huntgate/conn"
	"golang.org/x/sys/unix"
)

func TestParseFlagsAndEnv(t *testing.T) {
	env := map[string]string{
		"HUNTGATE_ADDR":           ":9000",
		"HUNTGATE_ADMIN_ADDR":     "127.0.0.1:9001",
		"HUNTGATE_LOOPS":          "3",
		"HUNTGATE_DEV":            "true",
		"HUNTGATE_JWT_SECRET":     "s3",
		"HUNTGATE_TEST_ENDPOINTS": "1",
		"HUNTGATE_HISTORY_AGE":    "30s",
		"HUNTGATE_RATE_BURST":     "7",
		"HUNTGATE_WORK_QUEUE":     "64",
		"HUNTGATE_CPUS":           "1,3-4",
		"HUNTGATE_REDIS_CLUSTER":  "127.0.0.1:7000, 127.0.0.1:7001",
		"HUNTGATE_REDIS_WAIT":     "1",
		"HUNTGATE_ENGINE_TIMEOUT": "750ms",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	c, err := ParseFlags([]string{"--loops", "5", "--api-key=k", "--max-message", "1024"}, lookup, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":9000" || c.AdminAddr != "127.0.0.1:9001" || !c.DevMode || c.JWTSecret != "s3" || !c.TestEndpoints ||
		c.HistoryAge != 30*time.Second || c.RateBurst != 7 || c.WorkQueue != 64 || !slices.Equal(c.CPUs, []int{1, 3, 4}) ||
		!slices.Equal(c.RedisCluster, []string{"127.0.0.1:7000", "127.0.0.1:7001"}) || c.RedisWait != 1 || c.RedisWaitTimeout != 100*time.Millisecond ||
		c.EngineTimeout != 750*time.Millisecond {
		t.Fatalf("env not applied: %+v", c)
	}
	if c.Loops != 5 || c.APIKey != "k" || c.MaxMessage != 1024 {
		t.Fatalf("flags must win over env: %+v", c)
	}
	if c.HistoryMax != 4096 || c.Rate != 50 || c.MaxHunts != 16 || c.LogLevel != "info" || c.Pin {
		t.Fatalf("defaults: %+v", c)
	}
	if EnvName("admin-addr") != "HUNTGATE_ADMIN_ADDR" {
		t.Fatal(EnvName("admin-addr"))
	}
	if c, err := ParseFlags(nil, nil, io.Discard); err != nil || c.WorkQueue != 65536 || c.EngineTimeout != 2*time.Second {
		t.Fatalf("--work-queue, --engine-timeout defaults: %d %v %v", c.WorkQueue, c.EngineTimeout, err)
	}
	for _, bad := range [][]string{{"--loops", "x"}, {"--log-level", "loud"}, {"--nope"}, {"extra"}, {"--loops", "-1"}, {"--work-queue", "-1"}, {"--workers", "-1"}, {"--workers", "100000000"}, {"--engine-timeout", "-1s"}, {"--engine-timeout", "1ns"}, {"--webhook-outbox", "-1"}, {"--webhook-timeout", "-1s"}, {"--webhook-max-age", "-1s"}, {"--cpus", "2-1"}, {"--cpus", ""},
		{"--redis-cluster", ""}, {"--redis-cluster", "nohostport"}, {"--redis", "redis://x", "--redis-cluster", "a:1"},
		{"--redis-wait", "1"}, {"--redis-wait", "-1", "--redis", "redis://x"}} {
		if _, err := ParseFlags(bad, nil, io.Discard); err == nil {
			t.Fatalf("%v accepted", bad)
		}
	}
	if _, err := ParseFlags(nil, func(string) (string, bool) { return "x", true }, io.Discard); err == nil {
		t.Fatal("bad env value accepted")
	}
	// The burst follows --rate unless set.
	c, err = ParseFlags([]string{"--rate", "400"}, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if d := c.withDefaults(); d.RateBurst != 800 {
		t.Fatalf("--rate 400: burst %d, want 800", d.RateBurst)
	}
	var zero Config
	d := zero.withDefaults()
	if d.Addr != ":8080" || d.AdminAddr != "127.0.0.1:8081" || d.MaxMessage != 4096 || d.RateBurst != 100 || d.WorkQueue != 65536 || d.EngineTimeout != DefaultEngineTimeout {
		t.Fatalf("zero-value defaults: %+v", d)
	}
}

func TestAuthenticator(t *testing.T) {
	a := NewAuthenticator("s", false)
	exp := time.Now().Add(time.Minute)
	tok := token(t, "s", "p1", exp, []string{"h1"})
	id, err := a.Authenticate([]byte("token="+tok), nil)
	if err != nil || id.Player != "p1" || !id.Allows([]byte("h1")) || id.Allows([]byte("h2")) {
		t.Fatalf("%+v %v", id, err)
	}
	if id, err := a.Authenticate(nil, []byte("bearer "+token(t, "s", "p2", exp, nil))); err != nil || !id.Allows([]byte("any")) {
		t.Fatalf("bearer: %+v %v", id, err)
	}
	if _, err := a.Authenticate([]byte("player=p"), nil); err == nil {
		t.Fatal("player= accepted without dev mode")
	}
	none := NewAuthenticator("", false)
	if _, err := none.Authenticate([]byte("token="+tok), nil); err == nil {
		t.Fatal("token accepted without a secret")
	}
	long := make([]byte, 65)
	for i := range long {
		long[i] = 'a'
	}
	for _, s := range []string{"", string(long), "a b", "é", "a/b"} {
		if ValidPlayerID(s) {
			t.Fatalf("%q valid", s)
		}
	}
	for _, s := range []string{"A-z_0.9", string(long[:64]), "x"} {
		if !ValidPlayerID(s) {
			t.Fatalf("valid id %q refused", s)
		}
	}
}

// TestCPUsPinLoops: --cpus alone pins every loop to the listed CPUs.
func TestCPUsPinLoops(t *testing.T) {
	var mask unix.CPUSet
	if err := unix.SchedGetaffinity(0, &mask); err != nil {
		t.Fatal(err)
	}
	last := -1
	for c := 0; c < len(mask)*64; c++ {
		if mask.IsSet(c) {
			last = c
		}
	}
	tg := startGateway(t, func(c *Config) { c.CPUs = []int{last} })
	got := make(chan string, len(tg.loops))
	tg.node.PostAll(func(*conn.Loop) {
		var set unix.CPUSet
		err := unix.SchedGetaffinity(0, &set)
		got <- fmt.Sprintf("%d CPUs, CPU %d: %v %v", set.Count(), last, set.IsSet(last), err)
	})
	want := fmt.Sprintf("1 CPUs, CPU %d: true <nil>", last)
	for range tg.loops {
		select {
		case s := <-got:
			if s != want {
				t.Fatalf("loop affinity %q, want %q", s, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("loop probe timed out")
		}
	}
}
