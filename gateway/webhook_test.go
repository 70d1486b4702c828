package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/huntgate/huntgate/state"
	"github.com/huntgate/huntgate/state/redisengine"
)

const testWebhookSecret = "hook-secret"

// receiver is a real HTTP webhook receiver on a loopback port that can fail,
// answer slowly, and go away and come back on the same port.
type receiver struct {
	t    testing.TB
	addr string
	srv  *http.Server

	mu      sync.Mutex
	got     map[string][]uint64  // hunt -> seqs in arrival order (2xx answers only)
	firstAt map[uint64]time.Time // seq -> first 2xx arrival (any hunt; benchmarks use one)
	bodies  map[string]string    // delivery -> body
	gaps    map[string]string    // delivery -> X-Huntgate-Gap, when sent
	// announced: "hunt:seq" -> the seq after the gap that seq was followed by,
	// as X-Huntgate-Gap said.
	announced map[string]uint64
	requests  int
	failNext  int           // answer 500 to this many requests
	slowNext  int           // sleep past the gateway's timeout on this many
	block     chan struct{} // non-nil: requests wait for it to close
	bad       []string      // protocol violations seen
	arrived   chan struct{}
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{t: t, got: map[string][]uint64{}, bodies: map[string]string{}, gaps: map[string]string{}, announced: map[string]uint64{}, firstAt: map[uint64]time.Time{}, arrived: make(chan struct{}, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.serve(ln)
	t.Cleanup(func() { r.down() })
	benchReceiversMu.Lock()
	benchReceivers = append(benchReceivers, r)
	benchReceiversMu.Unlock()
	return r
}

func (r *receiver) url() string { return "http://" + r.addr + "/hook" }

func (r *receiver) serve(ln net.Listener) {
	r.srv = &http.Server{Handler: http.HandlerFunc(r.handle)}
	go func() { _ = r.srv.Serve(ln) }()
}

// down closes the listener and every connection: the receiver is gone.
func (r *receiver) down() { _ = r.srv.Close() }

// up serves again on the same port.
func (r *receiver) up() {
	var ln net.Listener
	var err error
	waitFor(r.t, "the receiver's port to be free again", func() bool {
		ln, err = net.Listen("tcp", r.addr)
		return err == nil
	})
	r.serve(ln)
}

func (r *receiver) handle(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.requests++
	block := r.block
	fail := r.failNext > 0
	if fail {
		r.failNext--
	}
	slow := !fail && r.slowNext > 0
	if slow {
		r.slowNext--
	}
	r.mu.Unlock()
	if block != nil {
		<-block
	}
	if fail {
		http.Error(w, "try again", http.StatusInternalServerError)
		return
	}
	// Recorded on arrival: a slow answer's 2xx reaches nobody (the gateway
	// gave up and sent it again), but the receiver did get it then.
	defer func() {
		if slow {
			time.Sleep(600 * time.Millisecond) // past the test's 200 ms timeout
		}
	}()
	mac := hmac.New(sha256.New, []byte(testWebhookSecret))
	mac.Write(body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	var u struct {
		Op    string `json:"op"`
		Hunt  string `json:"hunt"`
		Epoch uint64 `json:"epoch"`
		Seq   uint64 `json:"seq"`
		Kind  string `json:"kind"`
	}
	err := json.Unmarshal(body, &u)
	r.mu.Lock()
	defer r.mu.Unlock() // before the deferred sleep
	switch {
	case !hmac.Equal([]byte(req.Header.Get("X-Huntgate-Signature")), []byte(want)):
		r.bad = append(r.bad, "bad signature on "+string(body))
	case err != nil || u.Op != "update" || u.Kind == "leaderboard" || req.Method != "POST" || req.URL.Path != "/hook":
		r.bad = append(r.bad, fmt.Sprintf("bad request %s %s %s", req.Method, req.URL.Path, body))
	case req.Header.Get("X-Huntgate-Delivery") != fmt.Sprintf("%s:%d:%d", u.Hunt, u.Epoch, u.Seq):
		r.bad = append(r.bad, "delivery id "+req.Header.Get("X-Huntgate-Delivery")+" for "+string(body))
	}
	r.got[u.Hunt] = append(r.got[u.Hunt], u.Seq)
	if _, ok := r.firstAt[u.Seq]; !ok {
		r.firstAt[u.Seq] = time.Now()
	}
	r.bodies[req.Header.Get("X-Huntgate-Delivery")] = string(body)
	if g := req.Header.Get("X-Huntgate-Gap"); g != "" {
		r.gaps[req.Header.Get("X-Huntgate-Delivery")] = g
		if n, err := strconv.ParseUint(g, 10, 64); err == nil && u.Seq > n {
			r.announced[u.Hunt+":"+strconv.FormatUint(u.Seq-n-1, 10)] = u.Seq
		}
	}
	select {
	case r.arrived <- struct{}{}:
	default:
	}
}

// check waits until every hunt's seqs 1..n[hunt] arrived and checks they
// came in order (a repeat of the previous one, a retry whose 2xx was lost,
// is allowed) and that nothing was malformed.
func (r *receiver) check(n map[string]uint64) { r.t.Helper(); r.checkSeqs(n, false) }

// checkAtLeastOnce is check that also allows a copy of any earlier seq (a
// node that took a hunt over sends again what the dead one had not
// acknowledged); each new seq must still come right after the highest one
// before it.
func (r *receiver) checkAtLeastOnce(n map[string]uint64) { r.t.Helper(); r.checkSeqs(n, true) }

func (r *receiver) checkSeqs(n map[string]uint64, copies bool) {
	r.t.Helper()
	defer func() {
		if r.t.Failed() {
			r.mu.Lock()
			r.t.Logf("received %v, %d requests", r.got, r.requests)
			r.mu.Unlock()
		}
	}()
	waitFor(r.t, "every update at the receiver", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for h, want := range n {
			if slices.Max(append([]uint64{0}, r.got[h]...)) < want {
				return false
			}
		}
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.bad {
		r.t.Error(b)
	}
	for h, want := range n {
		var last, top uint64
		for _, s := range r.got[h] {
			if s > top+1 && r.announced[h+":"+strconv.FormatUint(top, 10)] == s {
				top = s - 1 // a hole that the delivery itself announced
			}
			if s > top+1 || (!copies && s != last && s != last+1 && s != top+1) {
				r.t.Fatalf("hunt %s: seqs arrived as %v: %d after %d: not in order or with a hole", h, r.got[h], s, last)
			}
			last, top = s, max(top, s)
		}
		if top != want {
			r.t.Fatalf("hunt %s: last %d, want %d", h, top, want)
		}
	}
}

func webhookGateway(t *testing.T, url string, mod func(*Config)) *testGateway {
	return startGateway(t, func(c *Config) {
		c.WebhookURL, c.WebhookSecret, c.WebhookTimeout = url, testWebhookSecret, 200*time.Millisecond
		if mod != nil {
			mod(c)
		}
	})
}

// TestWebhookDelivery: a receiver that fails its first attempts, answers
// too slowly once, and goes away for a while gets every reliable update of
// two hunts, in order, signed, as players get them.
func TestWebhookDelivery(t *testing.T) {
	r := newReceiver(t)
	r.failNext, r.slowNext = 3, 1
	tg := webhookGateway(t, r.url(), nil)
	ctx := context.Background()
	tg.createHunt(t, fixedHunt("a", 3))
	tg.createHunt(t, state.Spec{ID: "b", Width: 2, Height: 2})
	p := tg.player(t, "alice")
	p.join("a")
	publish := func(h string, n int) {
		for i := 0; i < n; i++ {
			if _, err := tg.engine.Publish(ctx, h, []byte(fmt.Sprintf(`{"i":%d}`, i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish("a", 5)
	publish("b", 5)
	for x := 0; x < 2; x++ {
		p.send(`{"op":"dig","hunt":"a","x":%d,"y":0}`, x)
		p.until("dug")
	}
	r.check(map[string]uint64{"a": 7, "b": 5})

	// The receiver goes away; updates wait and are retried until it is back.
	r.down()
	publish("a", 3)
	publish("b", 3)
	before := tg.wh.failures.Load()
	waitFor(t, "failed attempts while the receiver is away", func() bool { return tg.wh.failures.Load() >= before+4 })
	r.up()
	if _, err := tg.engine.End(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	r.check(map[string]uint64{"a": 11, "b": 8})

	// What the receiver got is what players got.
	var push string
	for {
		_, b, err := p.c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), `"kind":"ended"`) {
			push = string(b)
			break
		}
	}
	r.mu.Lock()
	hook := r.bodies[fmt.Sprintf("a:%d:11", tg.engine.Epoch())]
	r.mu.Unlock()
	if hook != push {
		t.Fatalf("webhook body %s, player push %s", hook, push)
	}
	// The receiver holds the last body before the deliverer has read its
	// 2xx and taken the update out of the outbox.
	waitFor(t, "the outbox to empty", func() bool { return tg.wh.outbox() == 0 })
	if tg.wh.overflow.Load() != 0 || tg.wh.expired.Load() != 0 || tg.wh.outbox() != 0 {
		t.Fatalf("dropped %d/%d, outbox %d", tg.wh.overflow.Load(), tg.wh.expired.Load(), tg.wh.outbox())
	}
	st, body := tg.adminDo(t, "GET", "/metrics", "", "")
	if st != 200 || !strings.Contains(string(body), "huntgate_webhook_delivered_total ") || !strings.Contains(string(body), `huntgate_webhook_dropped_total{reason="overflow"} 0`) {
		t.Fatalf("metrics: %d %s", st, body)
	}
}

// TestWebhookOutboxBounded: with the receiver stuck, updates over the
// outbox bound are refused and counted, the event loops keep serving, and
// the ones queued are delivered once it answers.
func TestWebhookOutboxBounded(t *testing.T) {
	r := newReceiver(t)
	block := make(chan struct{})
	r.block = block
	tg := webhookGateway(t, r.url(), func(c *Config) { c.WebhookOutbox, c.WebhookTimeout = 3, time.Minute })
	tg.createHunt(t, state.Spec{ID: "h", Width: 2, Height: 2})
	p := tg.player(t, "alice")
	p.join("h")
	for i := 0; i < 10; i++ {
		if _, err := tg.engine.Publish(context.Background(), "h", []byte(`1`)); err != nil {
			t.Fatal(err)
		}
	}
	// The loop still answers while the receiver hangs.
	p.send(`{"op":"ping","ref":1}`)
	p.until("pong")
	if n := tg.wh.overflow.Load(); n != 7 {
		t.Fatalf("overflow %d, want 7", n)
	}
	close(block)
	r.check(map[string]uint64{"h": 3})
	r.mu.Lock()
	if got := r.got["h"]; len(got) != 3 {
		t.Fatalf("received %v: the refused updates were delivered after all", got)
	}
	r.mu.Unlock()
	// The next update delivered says how many before it were not.
	if _, err := tg.engine.Publish(context.Background(), "h", []byte(`2`)); err != nil {
		t.Fatal(err)
	}
	r.check(map[string]uint64{"h": 11})
	r.mu.Lock()
	defer r.mu.Unlock()
	if g := r.gaps[fmt.Sprintf("h:%d:11", tg.engine.Epoch())]; g != "7" || len(r.gaps) != 1 {
		t.Fatalf("X-Huntgate-Gap %v, want 7 on seq 11 only", r.gaps)
	}
}

// TestWebhookConfig: bad webhook flags are refused, and so is a Redis
// engine that keeps no webhook backlog (nothing would be delivered).
func TestWebhookConfig(t *testing.T) {
	for _, c := range []Config{
		{WebhookURL: "http://x"},
		{WebhookURL: "ftp://x", WebhookSecret: "s"},
	} {
		if err := c.Validate(); err == nil {
			t.Fatalf("%+v accepted", c)
		}
	}
}

func TestWebhookNeedsBacklog(t *testing.T) {
	e, err := redisengine.New(context.Background(), redisengine.Config{URL: startRedis(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, err = New(Config{Addr: "127.0.0.1:0", AdminAddr: "-", WebhookURL: "http://127.0.0.1:1/", WebhookSecret: "s"}, e)
	if err == nil || !strings.Contains(err.Error(), "backlog") {
		t.Fatalf("New = %v, want an error about the backlog", err)
	}
}
