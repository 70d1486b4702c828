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
	g, p, hunts := rateLimitedReconnect(t)
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

// rateLimitedReconnect starts a gateway with a burst of 2 requests, a page
// joined to three hunts on it, and drops the page's socket from the client
// side: the SDK reconnects at once (a new connection, a full burst of 2)
// and rejoins the three hunts, so one rejoin is refused with rate_limited.
func rateLimitedReconnect(t *testing.T) (*gatewayProc, context.Context, []string) {
	b := newBrowser(t)
	g := startGateway(t, "--dev", "--rate", "2", "--rate-burst", "2")
	hunts := []string{"q1", "q2", "q3"}
	for _, h := range hunts {
		g.createHunt(t, `{"id":"`+h+`","width":4,"height":4,"treasures":[{"id":"t","x":1,"y":1,"points":5}]}`)
	}
	p := sdkPage(t, b, g, "alice", hunts...)
	run(t, p, evalVoid("window.t.client._ws.close()"))
	return g, p, hunts
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

// TestBrowserSDKRank: rank() sends the rank op and resolves with the
// player's place and neighbours; before a claim it rejects with not_ranked.
func TestBrowserSDKRank(t *testing.T) {
	b := newBrowser(t)
	g := startGateway(t, "--dev")
	g.createHunt(t, `{"id":"k1","width":4,"height":4,"treasures":[{"id":"a","x":1,"y":1,"points":5},{"id":"b","x":2,"y":2,"points":9},{"id":"c","x":3,"y":3,"points":1}]}`)
	// Bob claims first and ranks above alice, so rank('k1', 0) tells an
	// around of 0 from the gateway's default of 5 (which would list bob).
	bp := sdkPage(t, b, g, "bob", "k1")
	run(t, bp, evalVoid(`(async () => {
		await window.t.client.dig('k1', 2, 2);
		window.t.dugDone = true;
	})()`))
	waitJS(t, bp, "bob's dig", "window.t.dugDone === true", 10*time.Second)
	p := sdkPage(t, b, g, "alice", "k1")
	run(t, p, evalVoid(`(async () => {
		const c = window.t.client;
		try {
			await c.rank('k1');
			window.t.before = 'resolved';
		} catch (e) {
			window.t.before = e.code;
		}
		await c.dig('k1', 1, 1);
		window.t.rank = await c.rank('k1', 0);
		window.t.rankDone = true;
	})()`))
	waitJS(t, p, "the rank answers", "window.t.rankDone === true", 10*time.Second)
	if got := eval[string](t, p, "window.t.before"); got != "not_ranked" {
		t.Fatalf("rank before a claim: %q, want not_ranked", got)
	}
	got := eval[struct {
		Op, Hunt, Player string
		Score, Rank      int
		Seq              int
		Around           []struct {
			Rank   int
			Player string
			Score  int
		}
	}](t, p, "window.t.rank")
	if got.Op != "rank" || got.Hunt != "k1" || got.Player != "alice" || got.Score != 5 || got.Rank != 2 || got.Seq != 2 ||
		len(got.Around) != 1 || got.Around[0].Player != "alice" || got.Around[0].Rank != 2 || got.Around[0].Score != 5 {
		t.Fatalf("rank %+v", got)
	}
}

// TestBrowserSDKLeaveDuringRejoinRetry: a hunt whose rejoin after a
// reconnect was refused with rate_limited is not joined on the new socket
// while its retry waits; leave() then resolves at once and cancels the
// retry, instead of sending a leave the gateway answers with not_joined.
func TestBrowserSDKLeaveDuringRejoinRetry(t *testing.T) {
	g, p, hunts := rateLimitedReconnect(t)
	// The reconnect's third rejoin is refused: its retry waits 0.5 to 1 s.
	waitJS(t, p, "a rejoin retry waiting", "[...window.t.client._hunts.values()].some((h) => h.retry)", 10*time.Second)
	// Found and left in one evaluation, so the retry cannot fire between.
	left := eval[string](t, p, `(() => {
		const h = [...window.t.client._hunts.values()].find((h) => h.retry);
		window.t.leaveDone = false;
		window.t.client.leave(h.name).then(() => { window.t.leave = 'ok'; }, (e) => { window.t.leave = e.code; }).finally(() => { window.t.leaveDone = true; });
		window.t.leftHunt = h;
		return h.name;
	})()`)
	waitJS(t, p, "the leave", "window.t.leaveDone === true", 10*time.Second)
	got := eval[struct {
		Leave  string
		Hunts  []string
		Retry  bool
		Errors []string
	}](t, p, `({Leave: window.t.leave, Hunts: window.t.client.hunts.sort(), Retry: !!window.t.leftHunt.retry, Errors: window.t.errors})`)
	want := slices.DeleteFunc(slices.Clone(hunts), func(h string) bool { return h == left })
	if got.Leave != "ok" || !slices.Equal(got.Hunts, want) || got.Retry || len(got.Errors) != 0 {
		t.Fatalf("leave of %s during its rejoin retry: %+v, want ok, hunts %v, no retry, no error", left, got, want)
	}
	// The other hunts are still served on this socket.
	for _, h := range want {
		if code, body := g.post("/v1/hunts/"+h+"/events", `{"to":"`+h+`"}`); code != 200 {
			t.Fatalf("publish: %d %s", code, body)
		}
	}
	waitJS(t, p, "the other hunts' events", fmt.Sprintf("%q.split(' ').every((h) => window.t.updates.some((u) => u.hunt === h && u.kind === 'event'))", want[0]+" "+want[1]), 10*time.Second)
}
