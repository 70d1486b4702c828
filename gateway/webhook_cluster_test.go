package gateway

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/huntgate/huntgate/internal/redistest"
	"github.com/huntgate/huntgate/state"
	"github.com/huntgate/huntgate/state/redisengine"
)

// webhookClusterNode starts a gateway with webhooks to url on a Redis engine
// of cfg with the webhook backlog on; stop crashes it as far as webhooks
// go: its deliveries stop where they are and its leases are not given up.
func webhookClusterNode(t *testing.T, cfg redisengine.Config, url string) (tg *testGateway, e *redisengine.Engine, stop func()) {
	cfg.WebhookBacklog = 10_000
	tg, se, stop := startEngineNodeStop(t, cfg, func(c *Config) {
		c.WebhookURL, c.WebhookSecret, c.WebhookTimeout = url, testWebhookSecret, 200*time.Millisecond
	})
	return tg, se.(*redisengine.Engine), stop
}

func adminPublish(t *testing.T, tg *testGateway, hunt string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if st, b := tg.adminDo(t, "POST", "/v1/hunts/"+hunt+"/events", testAPIKey, fmt.Sprintf(`{"i":%d}`, i)); st != 200 {
			t.Fatalf("publish: %d %s", st, b)
		}
	}
}

// TestWebhookRedis: webhooks with --redis. Two nodes share the hunts; a
// receiver that fails its first attempts, answers too slowly once and goes
// away for a while gets every reliable update of two hunts, written on
// either node, in seq order and signed; then the node delivering a hunt
// dies in the middle of a delivery and the other goes on from the last
// acknowledged update: nothing lost, nothing out of order.
func TestWebhookRedis(t *testing.T) {
	srv := redistest.Standalone(t, redistest.Options{})
	webhooksInCluster(t, redisengine.Config{URL: srv.URL()}, srv.Client())
}

// TestWebhookRedisCluster is TestWebhookRedis on a Redis Cluster of 3
// primaries and 3 replicas (--redis-cluster).
func TestWebhookRedisCluster(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterOptions{})
	webhooksInCluster(t, redisengine.Config{Cluster: c.Addrs()}, c.Client())
}

func webhooksInCluster(t *testing.T, cfg redisengine.Config, rc redis.UniversalClient) {
	old := webhookScan
	webhookScan = 200 * time.Millisecond
	t.Cleanup(func() { webhookScan = old })
	r := newReceiver(t)
	r.failNext, r.slowNext = 3, 1
	a, ea, stopA := webhookClusterNode(t, cfg, r.url())
	b, eb, stopB := webhookClusterNode(t, cfg, r.url())
	for _, s := range []state.Spec{fixedHunt("a", 3), {ID: "b", Width: 2, Height: 2}} {
		if _, err := ea.Create(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	p := b.player(t, "alice")
	p.join("a")
	adminPublish(t, a, "a", 5)
	adminPublish(t, b, "b", 5)
	for x := 0; x < 2; x++ {
		p.send(`{"op":"dig","hunt":"a","x":%d,"y":0}`, x)
		p.until("dug")
	}
	r.checkAtLeastOnce(map[string]uint64{"a": 7, "b": 5})

	// The receiver goes away; the updates wait in Redis and are retried
	// until it is back.
	r.down()
	adminPublish(t, b, "a", 3)
	adminPublish(t, a, "b", 3)
	failures := func() int64 { return a.wh.failures.Load() + b.wh.failures.Load() }
	before := failures()
	waitFor(t, "failed attempts while the receiver is away", func() bool { return failures() >= before+4 })
	r.up()
	r.checkAtLeastOnce(map[string]uint64{"a": 10, "b": 8})

	// The node delivering hunt a dies while its request is at the receiver.
	block := make(chan struct{})
	r.mu.Lock()
	r.block = block
	reqs := r.requests
	r.mu.Unlock()
	adminPublish(t, a, "a", 3) // seqs 11-13
	waitFor(t, "a delivery under way", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.requests > reqs
	})
	holder, err := rc.Get(context.Background(), redisengine.DefaultPrefix+"{a}:wl").Result()
	if err != nil {
		t.Fatal(err)
	}
	survivor, stop := b, stopA
	if holder == eb.NodeID() {
		survivor, stop = a, stopB
	} else if holder != ea.NodeID() {
		t.Fatalf("lease held by %q, not a node", holder)
	}
	stop()
	r.mu.Lock()
	r.block = nil
	r.mu.Unlock()
	close(block)
	adminPublish(t, survivor, "a", 2) // 14, 15
	if st, body := survivor.adminDo(t, "DELETE", "/v1/hunts/a", testAPIKey, ""); st != 200 {
		t.Fatalf("end: %d %s", st, body)
	}
	adminPublish(t, survivor, "b", 1)
	r.checkAtLeastOnce(map[string]uint64{"a": 16, "b": 9})
	if survivor.wh.delivered.Load() == 0 || survivor.wh.claims.Load() == 0 {
		t.Fatalf("survivor delivered %d with %d claims", survivor.wh.delivered.Load(), survivor.wh.claims.Load())
	}
	// Everything acknowledged: the backlogs empty out.
	waitFor(t, "the backlogs to empty", func() bool {
		n1, _ := rc.XLen(context.Background(), redisengine.DefaultPrefix+"{a}:w").Result()
		n2, _ := rc.XLen(context.Background(), redisengine.DefaultPrefix+"{b}:w").Result()
		return n1 == 0 && n2 == 0
	})
	st, body := survivor.adminDo(t, "GET", "/metrics", "", "")
	if st != 200 || !strings.Contains(string(body), "huntgate_webhook_claims_total ") {
		t.Fatalf("metrics: %d %s", st, body)
	}
}
