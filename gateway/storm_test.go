package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/huntgate/huntgate/internal/redistest"
	"github.com/huntgate/huntgate/state/redisengine"
)

// scriptCalls returns how many scripts (EVALSHA and EVAL) Redis has run,
// from INFO commandstats: every engine call that reads or writes a hunt is
// one, so its growth counts the round trips the gateway made for hunts.
func scriptCalls(t testing.TB, rc *redis.Client) int64 {
	t.Helper()
	info, err := rc.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (name != "cmdstat_evalsha" && name != "cmdstat_eval") {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		c, err := strconv.ParseInt(calls, 10, 64)
		if err != nil {
			t.Fatalf("commandstats line %q: %v", line, err)
		}
		n += c
	}
	return n
}

// nodeCount is the player count of node in hunt as Redis holds it.
func nodeCount(rc *redis.Client, hunt, node string) int {
	n, _ := rc.HGet(context.Background(), redisengine.DefaultPrefix+"{"+hunt+"}:n", node).Int()
	return n
}

// TestClusterJoinStormNoRoundTrips: once a node watches a hunt, a crowd
// joining it (fresh joins and resumes) is answered from the node's copy of
// the hunt: the joins cost no Redis call of their own, only the batched
// count writes (at most one per hunt every 100 ms), and so do the leaves
// of the same crowd disconnecting at once. Resumes replay exactly the
// missed events. The old code ran one script per join and per leave.
func TestClusterJoinStormNoRoundTrips(t *testing.T) {
	url := startRedis(t)
	tg, e := startClusterNode(t, url)
	ctx := context.Background()
	if _, err := e.Create(ctx, fixedHunt("storm", 3)); err != nil {
		t.Fatal(err)
	}
	opt, _ := redis.ParseURL(url)
	rc := redis.NewClient(opt)
	defer rc.Close()

	first := tg.player(t, "p0")
	j0 := first.join("storm")
	epoch := uint64(j0.num("epoch"))
	for i := range 3 {
		if _, err := e.Publish(ctx, "storm", []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	first.until("update")
	first.until("update")
	if u := first.until("update"); u.num("seq") != 3 {
		t.Fatalf("third event %v", u)
	}

	const n = 400
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = tg.player(t, fmt.Sprintf("p%d", i+1))
	}
	node := e.(*redisengine.Engine).NodeID()
	before := scriptCalls(t, rc)
	for i, c := range clients {
		if i%2 == 0 {
			c.send(`{"op":"join","hunt":"storm"}`)
		} else {
			c.send(`{"op":"join","hunt":"storm","since":1,"epoch":%d}`, epoch)
		}
	}
	for i, c := range clients {
		j := c.expect("joined")
		if j.num("seq") != 3 || uint64(j.num("epoch")) != epoch {
			t.Fatalf("join %d: %v", i, j)
		}
		if i%2 == 1 {
			if j["reset"] != false || j.num("replayed") != 2 {
				t.Fatalf("resume %d: %v", i, j)
			}
			for _, want := range []string{"1", "2"} {
				u := c.expect("update")
				if d, _ := json.Marshal(u["data"]); string(d) != want {
					t.Fatalf("resume %d replayed %v, want data %s", i, u, want)
				}
			}
		}
	}
	joins := scriptCalls(t, rc) - before
	t.Logf("%d joins: %d Redis scripts (%.3f per join)", n, joins, float64(joins)/n)
	if joins >= n/8 {
		t.Fatalf("%d joins ran %d Redis scripts; want the batched count writes only", n, joins)
	}
	waitFor(t, "the batched count to reach Redis", func() bool { return nodeCount(rc, "storm", node) == n+1 })

	// Every update after the joins reaches the crowd once.
	if _, err := e.Publish(ctx, "storm", []byte(`"after"`)); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		if u := c.expect("update"); u.num("seq") != 4 {
			t.Fatalf("client %d: %v after the joins", i, u)
		}
	}

	// The crowd disconnects at once: the leaves are counted on the node and
	// written in batches too.
	before = scriptCalls(t, rc)
	for _, c := range clients {
		c.c.Close()
	}
	waitFor(t, "the leaves to reach Redis", func() bool { return nodeCount(rc, "storm", node) == 1 })
	leaves := scriptCalls(t, rc) - before
	t.Logf("%d leaves: %d Redis scripts", n, leaves)
	if leaves >= n/8 {
		t.Fatalf("%d leaves ran %d Redis scripts", n, leaves)
	}
	if st, err := e.Status(ctx, "storm"); err != nil || st.Players != 1 {
		t.Fatalf("players %d (%v), want 1", st.Players, err)
	}
}

// TestClusterFirstJoinsShareOneRead: the first joins of a hunt on a node
// wait together for the node's copy of the hunt instead of each asking
// Redis, and all get the same status.
func TestClusterFirstJoinsShareOneRead(t *testing.T) {
	url := startRedis(t)
	tg, e := startClusterNode(t, url)
	ctx := context.Background()
	if _, err := e.Create(ctx, fixedHunt("fresh", 3)); err != nil {
		t.Fatal(err)
	}
	opt, _ := redis.ParseURL(url)
	rc := redis.NewClient(opt)
	defer rc.Close()
	const n = 100
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = tg.player(t, fmt.Sprintf("f%d", i))
	}
	before := scriptCalls(t, rc)
	for _, c := range clients {
		c.send(`{"op":"join","hunt":"fresh"}`)
	}
	for i, c := range clients {
		if j := c.expect("joined"); j.num("seq") != 0 || j.str("hunt") != "fresh" {
			t.Fatalf("join %d: %v", i, j)
		}
	}
	calls := scriptCalls(t, rc) - before
	t.Logf("%d first joins: %d Redis scripts", n, calls)
	if calls >= n/4 {
		t.Fatalf("%d first joins ran %d Redis scripts", n, calls)
	}
	waitFor(t, "all counted", func() bool {
		st, err := e.Status(ctx, "fresh")
		return err == nil && st.Players == n
	})
}

// getJSON fetches an admin path and decodes its JSON body.
func getJSON(t *testing.T, tg *testGateway, path string) (int, map[string]any) {
	t.Helper()
	code, body := tg.adminDo(t, "GET", path, "", "")
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s: %v in %s", path, err, body)
	}
	return code, m
}

// TestClusterReadyFollowsRedis: /readyz turns 503 when redis-server is
// stopped and 200 when it is back, with the reason in /readyz, /v1/stats
// and /metrics; joins are refused meanwhile, not hung.
func TestClusterReadyFollowsRedis(t *testing.T) {
	srv := redistest.Standalone(t, redistest.Options{})
	tg, e := startClusterNode(t, srv.URL())
	ctx := context.Background()
	if _, err := e.Create(ctx, fixedHunt("r", 1)); err != nil {
		t.Fatal(err)
	}
	if code, _ := getJSON(t, tg, "/readyz"); code != 200 {
		t.Fatalf("readyz %d with redis up", code)
	}
	p := tg.player(t, "a")
	p.join("r")

	srv.Kill()
	stopped := time.Now()
	waitFor(t, "readyz 503", func() bool {
		code, m := getJSON(t, tg, "/readyz")
		return code == 503 && strings.HasPrefix(fmt.Sprint(m["reason"]), "engine: redis unreachable")
	})
	t.Logf("not ready %v after redis-server was killed", time.Since(stopped).Round(time.Millisecond))
	_, st := getJSON(t, tg, "/v1/stats")
	eng, _ := st["engine"].(map[string]any)
	if eng["ready"] != false || !strings.Contains(fmt.Sprint(eng["error"]), "unreachable") {
		t.Fatalf("stats engine %v", st["engine"])
	}
	_, metrics := tg.adminDo(t, "GET", "/metrics", "", "")
	if !strings.Contains(string(metrics), "\nhuntgate_engine_ready 0\n") {
		t.Fatalf("metrics without huntgate_engine_ready 0:\n%s", metrics)
	}
	// A join now is answered with an error, not from the node's copy.
	q := tg.player(t, "b")
	q.send(`{"op":"join","hunt":"r"}`)
	if m := q.read(); m.str("op") != "error" {
		t.Fatalf("join with redis down: %v", m)
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	waitFor(t, "readyz 200", func() bool {
		code, _ := getJSON(t, tg, "/readyz")
		return code == 200
	})
	t.Logf("ready %v after redis-server was back", time.Since(back).Round(time.Millisecond))
	_, st = getJSON(t, tg, "/v1/stats")
	if eng, _ := st["engine"].(map[string]any); eng["ready"] != true || eng["error"] != nil {
		t.Fatalf("stats engine %v after redis is back", st["engine"])
	}
}
