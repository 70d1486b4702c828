package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/huntgate/huntgate/internal/redistest"
	"github.com/huntgate/huntgate/state"
	"github.com/huntgate/huntgate/state/redisengine"
)

// startRedis runs a real redis-server on a free loopback port for one test
// and returns its URL.
func startRedis(t *testing.T) string {
	t.Helper()
	return redistest.Standalone(t, redistest.Options{}).URL()
}

// startClusterNode starts a gateway on the Redis engine at url.
func startClusterNode(t *testing.T, url string) (*testGateway, state.Engine) {
	t.Helper()
	return startEngineNode(t, redisengine.Config{URL: url})
}

// startEngineNode starts a gateway on a Redis engine configured by cfg.
func startEngineNode(t *testing.T, cfg redisengine.Config, mod ...func(*Config)) (*testGateway, state.Engine) {
	t.Helper()
	tg, e, _ := startEngineNodeStop(t, cfg, mod...)
	return tg, e
}

// startEngineNodeStop is startEngineNode that also returns a function that
// stops the node before the test ends (at most once).
func startEngineNodeStop(t *testing.T, cfg redisengine.Config, mod ...func(*Config)) (*testGateway, state.Engine, func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := redisengine.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	gc := Config{
		Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Loops: 2, DevMode: true,
		APIKey: testAPIKey, StatsInterval: -1, DrainWindow: 200 * time.Millisecond,
	}
	for _, m := range mod {
		m(&gc)
	}
	g, err := New(gc, e)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	tg := &testGateway{Gateway: g, ws: "ws://" + g.Addr().String(), admin: "http://" + g.AdminAddr().String()}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := g.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
			e.Close()
		})
	}
	t.Cleanup(stop)
	return tg, e, stop
}

// TestClusterTwoNodesShareAHunt runs two gateways on one Redis: a claim made
// on one node reaches the players of the other with the same seq, a treasure
// is claimed once across the nodes, backend events published on either node
// reach both, and the player count spans the cluster.
func TestClusterTwoNodesShareAHunt(t *testing.T) {
	twoNodesShareAHunt(t, redisengine.Config{URL: startRedis(t)})
}

// TestRedisClusterTwoNodesShareAHunt is TestClusterTwoNodesShareAHunt on
// a Redis Cluster of 3 primaries and 3 replicas (--redis-cluster).
func TestRedisClusterTwoNodesShareAHunt(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterOptions{})
	twoNodesShareAHunt(t, redisengine.Config{Cluster: c.Addrs()})
}

func twoNodesShareAHunt(t *testing.T, cfg redisengine.Config) {
	a, ea := startEngineNode(t, cfg)
	b, _ := startEngineNode(t, cfg)
	if _, err := ea.Create(context.Background(), fixedHunt("isle", 3)); err != nil {
		t.Fatal(err)
	}

	alice := a.player(t, "alice")
	bob := b.player(t, "bob")
	ja := alice.join("isle")
	jb := bob.join("isle")
	if ja.num("epoch") != jb.num("epoch") || ja.num("epoch") == 0 {
		t.Fatalf("nodes disagree on the epoch: %v vs %v", ja.num("epoch"), jb.num("epoch"))
	}
	waitFor(t, "two players counted across the cluster", func() bool {
		st, err := ea.Status(context.Background(), "isle")
		return err == nil && st.Players == 2
	})

	// Both dig the same cell; exactly one finds it.
	alice.send(`{"op":"dig","hunt":"isle","x":1,"y":0,"ref":"a1"}`)
	bob.send(`{"op":"dig","hunt":"isle","x":1,"y":0,"ref":"b1"}`)
	da, db := alice.until("dug"), bob.until("dug")
	fa, _ := da["found"].(bool)
	fb, _ := db["found"].(bool)
	if fa == fb {
		t.Fatalf("found: alice %v, bob %v; want exactly one", fa, fb)
	}
	winner := "alice"
	if fb {
		winner = "bob"
	}
	// Both nodes push the claim with the same seq.
	var seqs []float64
	for _, c := range []*client{alice, bob} {
		for {
			m := c.until("update")
			if m.str("kind") != "claimed" {
				continue
			}
			if m.str("player") != winner || m.str("treasure") != "t1" {
				t.Fatalf("claimed %v, want t1 by %s", m, winner)
			}
			seqs = append(seqs, m.num("seq"))
			break
		}
	}
	if seqs[0] != seqs[1] || seqs[0] != 1 {
		t.Fatalf("claimed seq alice %v, bob %v; want 1 on both", seqs[0], seqs[1])
	}

	// An event published through node B's admin API reaches alice on node A.
	code, body := b.adminDo(t, "POST", "/v1/hunts/isle/events", testAPIKey, `{"boss":"kraken","hp":[1,2]}`)
	if code != 200 {
		t.Fatalf("publish: %d %s", code, body)
	}
	for {
		m := alice.until("update")
		if m.str("kind") != "event" {
			continue
		}
		if m.num("seq") != 2 {
			t.Fatalf("event seq %v, want 2", m.num("seq"))
		}
		d, _ := m["data"].(map[string]any)
		if d["boss"] != "kraken" {
			t.Fatalf("event data %v", m["data"])
		}
		break
	}
}

// TestClusterStatsListNodes checks the nodes field of /v1/stats: on a node
// of a two-node cluster it lists both live nodes, sorted, with self on the
// answering node only; a gateway on the memory engine has no nodes key.
func TestClusterStatsListNodes(t *testing.T) {
	url := startRedis(t)
	a, ea := startClusterNode(t, url)
	_, eb := startClusterNode(t, url)
	idA := ea.(*redisengine.Engine).NodeID()
	idB := eb.(*redisengine.Engine).NodeID()

	code, body := a.adminDo(t, "GET", "/v1/stats", "", "")
	if code != 200 {
		t.Fatalf("stats: %d %s", code, body)
	}
	var st struct {
		Nodes []struct {
			ID   string `json:"id"`
			Self bool   `json:"self"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != 2 || st.Nodes[0].ID >= st.Nodes[1].ID {
		t.Fatalf("nodes %+v, want %s and %s sorted", st.Nodes, idA, idB)
	}
	for _, n := range st.Nodes {
		switch n.ID {
		case idA:
			if !n.Self {
				t.Fatalf("node A %s not marked self: %s", idA, body)
			}
		case idB:
			if n.Self {
				t.Fatalf("node B %s marked self on A: %s", idB, body)
			}
		default:
			t.Fatalf("unknown node %q: %s", n.ID, body)
		}
	}

	mem := startGateway(t, nil)
	if raw, body := statsFields(t, mem); raw["nodes"] != nil {
		t.Fatalf("memory engine stats has nodes: %s", body)
	}
}

// statsFields fetches /v1/stats and returns its top-level fields.
func statsFields(t *testing.T, tg *testGateway) (map[string]json.RawMessage, []byte) {
	t.Helper()
	code, body := tg.adminDo(t, "GET", "/v1/stats", "", "")
	if code != 200 {
		t.Fatalf("stats: %d %s", code, body)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	return raw, body
}

// failingNodes is an engine whose node listing fails.
type failingNodes struct{ *state.Memory }

func (failingNodes) Nodes(context.Context) ([]state.NodeInfo, error) {
	return nil, errors.New("nodes unavailable")
}

// TestStatsNodesErrorOmitted checks that a failing node listing leaves the
// stats served, without nodes, and logs a warning.
func TestStatsNodesErrorOmitted(t *testing.T) {
	var logs syncBuffer
	tg := startGatewayWith(t, func(c *Config) { c.Logger = zerolog.New(&logs).Level(zerolog.WarnLevel) },
		func(m *state.Memory) state.Engine { return failingNodes{m} })
	raw, body := statsFields(t, tg)
	if _, ok := raw["nodes"]; ok {
		t.Fatalf("stats has nodes although listing failed: %s", body)
	}
	if _, ok := raw["connections"]; !ok {
		t.Fatalf("stats without connections: %s", body)
	}
	if l := logs.String(); !strings.Contains(l, `"level":"warn"`) || !strings.Contains(l, "nodes unavailable") {
		t.Fatalf("no warning logged: %q", l)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestClusterStatsNodeConnections: /v1/stats on one node shows every live
// node's open connections (the others' as of their last heartbeat), which
// the dashboard charts per node.
func TestClusterStatsNodeConnections(t *testing.T) {
	url := startRedis(t)
	a, ea := startClusterNode(t, url)
	b, eb := startClusterNode(t, url)
	idA := ea.(*redisengine.Engine).NodeID()
	idB := eb.(*redisengine.Engine).NodeID()
	a.player(t, "a1")
	b.player(t, "b1")
	b.player(t, "b2")
	want := map[string]int64{idA: 1, idB: 2}
	var last []NodeStats
	deadline := time.Now().Add(3 * redisengine.DefaultHeartbeatTTL / 2) // a heartbeat is TTL/3 apart
	for {
		last = a.Stats(t.Context()).Nodes
		ok := len(last) == 2
		for _, n := range last {
			ok = ok && n.Connections != nil && *n.Connections == want[n.ID]
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, n := range last {
		if n.Connections != nil {
			t.Logf("%s: %d", n.ID, *n.Connections)
		}
	}
	t.Fatalf("node connections %+v, want %v", last, want)
}

// TestClusterDigMissOnNode: with the Redis engine, a dig on an empty cell
// is answered by the node once it has read the hunt's treasure cells
// (digs_local in /v1/stats, huntgate_digs_local_total), with the same
// dug reply as Redis gives; a dig on a treasure still goes to Redis and
// claims it, and a player on another node sees the claim.
func TestClusterDigMissOnNode(t *testing.T) {
	url := startRedis(t)
	a, ea := startClusterNode(t, url)
	b, _ := startClusterNode(t, url)
	if _, err := ea.Create(context.Background(), fixedHunt("isle", 3)); err != nil {
		t.Fatal(err)
	}
	alice := a.player(t, "alice")
	bob := b.player(t, "bob")
	alice.join("isle")
	bob.join("isle")
	n := 0
	waitFor(t, "a miss answered on the node", func() bool {
		n++
		alice.send(`{"op":"dig","hunt":"isle","x":10,"y":%d,"ref":"m%d"}`, 1+n%60, n)
		d := alice.until("dug")
		if found, _ := d["found"].(bool); found || d.str("ref") != fmt.Sprintf("m%d", n) || d.num("x") != 10 {
			t.Fatalf("miss: %v", d)
		}
		return a.Stats(t.Context()).DigsLocal > 0
	})
	alice.send(`{"op":"dig","hunt":"isle","x":2,"y":0,"ref":"hit"}`)
	d := alice.until("dug")
	if found, _ := d["found"].(bool); !found || d.str("treasure") != "t2" || d.str("ref") != "hit" {
		t.Fatalf("dig on t2: %v", d)
	}
	for {
		m := bob.until("update")
		if m.str("kind") == "claimed" {
			if m.str("player") != "alice" || m.str("treasure") != "t2" {
				t.Fatalf("claim seen on the other node: %v", m)
			}
			break
		}
	}
	if got := b.Stats(t.Context()).DigsLocal; got != 0 {
		t.Fatalf("node b answered %d digs it never got", got)
	}
	_, body := a.adminDo(t, "GET", "/metrics", testAPIKey, "")
	if !strings.Contains(string(body), "huntgate_digs_local_total ") {
		t.Fatal("no huntgate_digs_local_total in /metrics")
	}
}
