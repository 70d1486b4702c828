package huntgatejs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/redis/go-redis/v9"

	"github.com/huntgate/huntgate/internal/redistest"
)

// sdkPage opens a tab on the gateway g whose SDK client (imported from
// /sdk/huntgate.js, as a game would) joins hunts as player, one after the
// other (again after a rate_limited refusal), and records what its
// listeners get in window.t (joined: the first hunt's status); it returns
// once every join is answered.
func sdkPage(t *testing.T, b context.Context, g *gatewayProc, player string, hunts ...string) context.Context {
	t.Helper()
	p := newTab(t, b, "http://"+g.addr+"/sdk/huntgate.js")
	list, _ := json.Marshal(hunts)
	run(t, p, evalVoid(fmt.Sprintf(`(async () => {
		const { HuntClient } = await import('/sdk/huntgate.js');
		// A WebSocket class that counts the client's dials.
		const WS = class extends WebSocket {
			constructor(u) {
				super(u);
				window.t.dials++;
			}
		};
		window.t = { client: null, dials: 0, updates: [], resets: [], errors: [], states: [], joined: null, ready: false };
		const c = new HuntClient('ws://' + location.host, { player: %q, WebSocket: WS });
		window.t.client = c;
		c.on('update', (u) => window.t.updates.push(u));
		c.on('reset', (h, st) => window.t.resets.push(st));
		c.on('error', (e) => window.t.errors.push(e.code));
		c.on('state', (s) => window.t.states.push(s));
		await c.connect();
		for (const h of %s) {
			for (;;) {
				try {
					const st = await c.join(h);
					window.t.joined = window.t.joined || st;
					break;
				} catch (e) {
					if (e.code !== 'rate_limited') throw e;
					await new Promise((r) => setTimeout(r, 200));
				}
			}
		}
		window.t.ready = true;
	})()`, player, list)))
	waitJS(t, p, "joined", "window.t && window.t.ready", 15*time.Second)
	return p
}

// reliableSeqs is the JavaScript expression of the kinds and seqs of the
// updates other than leaderboards that the page's listeners got.
const reliableSeqs = `window.t.updates.filter((u) => u.kind !== 'leaderboard').map((u) => u.kind + ':' + u.seq).join(' ')`

// TestBrowserSDKStartedIsReliable: a scheduled hunt's started update takes a
// seq like claimed and event, so the SDK delivers it once and in order and
// the updates after it follow with no resync loop and no duplicate.
func TestBrowserSDKStartedIsReliable(t *testing.T) {
	b := newBrowser(t)
	srv := redistest.Standalone(t, redistest.Options{})
	g := startGateway(t, "--redis", srv.URL(), "--dev")
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	g.createHunt(t, `{"id":"s1","width":4,"height":4,"treasures":[{"id":"t","x":1,"y":1,"points":5}],"starts_at":"`+later+`"}`)
	p := sdkPage(t, b, g, "alice", "s1")
	if st := eval[string](t, p, "window.t.joined.state"); st != "scheduled" {
		t.Fatalf("joined state %q, want scheduled", st)
	}
	// Bring the start forward to now on Redis's clock; the gateway's
	// schedule ticker then starts the hunt.
	a := srv.Client()
	defer a.Close()
	if err := a.HSet(context.Background(), "hg:{s1}:m", "starts", 1).Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.ZAdd(context.Background(), "hg:schedule", redis.Z{Score: 1, Member: "s1"}).Err(); err != nil {
		t.Fatal(err)
	}
	waitJS(t, p, "started", "window.t.updates.some((u) => u.kind === 'started')", 10*time.Second)
	for i := range 2 {
		if code, body := g.post("/v1/hunts/s1/events", fmt.Sprintf(`{"i":%d}`, i)); code != 200 {
			t.Fatalf("publish: %d %s", code, body)
		}
	}
	waitJS(t, p, "both events", "window.t.updates.some((u) => u.seq === 3)", 10*time.Second)
	if got := eval[string](t, p, reliableSeqs); got != "started:1 event:2 event:3" {
		t.Fatalf("updates %q, want started:1 event:2 event:3", got)
	}
	if got := eval[int](t, p, "window.t.resets.length + window.t.errors.length"); got != 0 {
		t.Fatalf("%d resets or errors", got)
	}
}

// TestBrowserSDKEpochFromLeaderboard: a hunt whose Redis lost writes gets a
// new epoch, which the gateway announces with a leaderboard update only
// (docs/protocol.md: an update of another epoch means rejoin); the SDK
// rejoins at once and reports the reset, without waiting for a reliable
// update that may not come.
func TestBrowserSDKEpochFromLeaderboard(t *testing.T) {
	b := newBrowser(t)
	srv := redistest.Standalone(t, redistest.Options{})
	g := startGateway(t, "--redis", srv.URL(), "--dev")
	g.createHunt(t, `{"id":"r1","width":4,"height":4,"treasures":[{"id":"t","x":1,"y":1,"points":5}]}`)
	p := sdkPage(t, b, g, "alice", "r1")
	old := eval[float64](t, p, "window.t.joined.epoch")
	for i := range 3 {
		if code, body := g.post("/v1/hunts/r1/events", fmt.Sprintf(`{"i":%d}`, i)); code != 200 {
			t.Fatalf("publish: %d %s", code, body)
		}
	}
	waitJS(t, p, "the events", "window.t.updates.some((u) => u.seq === 3)", 10*time.Second)
	// Redis loses the last two writes, as after a failover to a replica
	// that had not got them: the gateway, which saw seq 3, finds seq 1 at
	// its next count refresh (every second) and gives the hunt a new epoch.
	a := srv.Client()
	defer a.Close()
	if err := a.HSet(context.Background(), "hg:{r1}:m", "seq", 1).Err(); err != nil {
		t.Fatal(err)
	}
	waitJS(t, p, "reset", "window.t.resets.length === 1", 15*time.Second)
	st := eval[struct {
		Epoch float64
		Seq   int
	}](t, p, "window.t.resets[0]")
	if st.Epoch == old || st.Seq != 1 {
		t.Fatalf("reset to %+v, old epoch %v", st, old)
	}
	if got := eval[string](t, p, reliableSeqs); got != "event:1 event:2 event:3" {
		t.Fatalf("updates %q", got)
	}
}

// TestBrowserSDKRejoinRateLimited: after a reconnect the SDK rejoins every
// hunt at once; on a gateway whose rate limit is below that burst the last
// rejoin is refused with rate_limited. The hunt is still the client's: it
// is asked again once the limit refilled, and its updates keep coming,
// instead of being dropped with an error as if the hunt were gone.
func TestBrowserSDKRejoinRateLimited(t *testing.T) {
	b := newBrowser(t)
	g := startGateway(t, "--dev", "--rate", "2", "--rate-burst", "2")
	hunts := []string{"q1", "q2", "q3"}
	for _, h := range hunts {
		g.createHunt(t, `{"id":"`+h+`","width":4,"height":4,"treasures":[{"id":"t","x":1,"y":1,"points":5}]}`)
	}
	p := sdkPage(t, b, g, "alice", hunts...)
	// Drop the socket from the client side: the SDK reconnects at once (a
	// new connection, a full burst of 2) and rejoins the three hunts.
	run(t, p, evalVoid("window.t.client._ws.close()"))
	waitJS(t, p, "reconnected", "window.t.states.includes('reconnecting') && window.t.client.state === 'open'", 10*time.Second)
	for _, h := range hunts {
		if code, body := g.post("/v1/hunts/"+h+"/events", `{"to":"`+h+`"}`); code != 200 {
			t.Fatalf("publish: %d %s", code, body)
		}
	}
	waitJS(t, p, "an event of every hunt", "['q1', 'q2', 'q3'].every((h) => window.t.updates.some((u) => u.hunt === h && u.kind === 'event'))", 10*time.Second)
	got := eval[struct {
		Hunts  []string
		Errors []string
		Events int
	}](t, p, `({Hunts: window.t.client.hunts.sort(), Errors: window.t.errors, Events: window.t.updates.filter((u) => u.kind === 'event').length})`)
	if len(got.Hunts) != 3 || len(got.Errors) != 0 || got.Events != 3 {
		t.Fatalf("after the reconnect: %+v", got)
	}
}

// TestBrowserSDKRejoinRefusedStaysReconnecting: with Redis down, the
// gateway answers a rejoin with internal (after its Redis calls gave up);
// the SDK drops that socket to resume on the next one, and until a rejoin
// succeeds it is not open (no 'open' state, nothing sent on the socket
// being dropped). Once Redis is back it resumes the hunt.
func TestBrowserSDKRejoinRefusedStaysReconnecting(t *testing.T) {
	b := newBrowser(t)
	// With its data kept (AOF, each write synced), so that the hunt is
	// still there when Redis comes back.
	srv := redistest.Standalone(t, redistest.Options{Args: []string{"--appendonly", "yes", "--appendfsync", "always"}})
	g := startGateway(t, "--redis", srv.URL(), "--dev")
	g.createHunt(t, `{"id":"d1","width":4,"height":4,"treasures":[{"id":"t","x":1,"y":1,"points":5}]}`)
	p := sdkPage(t, b, g, "alice", "d1")
	srv.Kill()
	ready := func() bool {
		resp, err := http.Get("http://" + g.admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	deadline := time.Now().Add(10 * time.Second)
	for ready() {
		if time.Now().After(deadline) {
			t.Fatal("the gateway stayed ready with Redis down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The socket dropped from the client: the next one's rejoin is refused,
	// the client drops that socket too and dials again.
	run(t, p, evalVoid("window.t.mark = window.t.states.length; window.t.markDials = window.t.dials; window.t.client._ws.close()"))
	waitJS(t, p, "a dial after a refused rejoin", "window.t.dials >= window.t.markDials + 2", 30*time.Second)
	if states := eval[[]string](t, p, "window.t.states.slice(window.t.mark)"); slices.Contains(states, "open") {
		t.Fatalf("states while every rejoin was refused: %v", states)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitJS(t, p, "open again", "window.t.client.state === 'open'", 30*time.Second)
	if hunts := eval[[]string](t, p, "window.t.client.hunts"); !slices.Equal(hunts, []string{"d1"}) {
		t.Fatalf("hunts after Redis came back: %v", hunts)
	}
	if code, body := g.post("/v1/hunts/d1/events", `{"after":"redis"}`); code != http.StatusOK {
		t.Fatalf("publish: %d %s", code, body)
	}
	waitJS(t, p, "the event after the return", "window.t.updates.some((u) => u.kind === 'event' && u.data.after === 'redis')", 10*time.Second)
}

// evalVoid evaluates a JavaScript expression, ignoring its value.
func evalVoid(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](expr)
}
