package huntgatejs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/huntgate/huntgate/internal/redistest"
)

// The browser tests drive Debian's chromium through chromedp: the Chrome
// DevTools Protocol from Go, so they run inside `go test` with the gateway
// binary and redis-server they start, without a Node toolchain or a
// downloaded browser build.

// chromium returns the browser to drive, skipping the test when there is
// none (scripts/test.sh installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("HUNTGATE_REQUIRE_BROWSER") != "" {
		t.Fatal("chromium not found (HUNTGATE_REQUIRE_BROWSER is set)")
	}
	t.Skip("chromium not found: run scripts/test.sh or apt-get install -y chromium")
	return ""
}

// The tests share one headless chromium (starting one takes seconds on a
// busy machine); each test opens its own tabs. It runs as root in CI, where
// the sandbox is unavailable.
var browser struct {
	once   sync.Once
	ctx    context.Context
	err    error
	cancel func()
}

// newBrowser returns the shared browser, starting it on first use.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromium(t)
	browser.once.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path),
			chromedp.NoSandbox,
			chromedp.Headless,
			chromedp.DisableGPU,
			chromedp.WindowSize(1280, 1000),
			chromedp.Flag("disable-dev-shm-usage", true),
		)
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancel := chromedp.NewContext(actx)
		browser.ctx, browser.cancel = ctx, func() {
			cancel()
			cancelAlloc()
		}
		browser.err = chromedp.Do(ctx)
	})
	if browser.err != nil {
		t.Fatalf("start chromium: %v", browser.err)
	}
	return browser.ctx
}

// newTab opens url in a new tab of the browser b.
func newTab(t *testing.T, b context.Context, url string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b)
	t.Cleanup(cancel)
	// The first run creates the tab, which lives as long as the context of
	// that run: no timeout on it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok && e.ExceptionDetails != nil {
			d := e.ExceptionDetails
			desc := ""
			if d.Exception != nil {
				desc = d.Exception.Description
			}
			t.Errorf("%s: JavaScript exception: %s %s (%s:%d)", url, d.Text, desc, d.URL, d.LineNumber)
		}
	}); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, chromedp.Navigate(url))
	return ctx
}

func run(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// waitJS polls a JavaScript condition until it holds or d passes.
func waitJS(t *testing.T, ctx context.Context, what, expr string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ok, err := chromedp.Run(tctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v: %s (%v)", what, d, expr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// artifacts is where screenshots go: $HUNTGATE_ARTIFACTS, or a fixed
// directory under the system's temporary directory that each run refreshes.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("HUNTGATE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "huntgate-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// screenshot saves the tab's viewport as a PNG test artifact.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(tctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(artifacts(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// playPage is the URL of the play page for hunt on a w x h grid as player.
func playPage(g *gatewayProc, hunt string, w, h int, player string) string {
	return fmt.Sprintf("http://%s/?hunt=%s&w=%d&h=%d&player=%s", g.addr, hunt, w, h, player)
}

// Two players on the play page: one clicks the cell of a treasure, the
// other sees the claim in its feed, with the seq the dig reported.
func TestBrowserPlayPageClaim(t *testing.T) {
	b := newBrowser(t)
	g := startGateway(t, "--dev")
	g.createHunt(t, `{"id":"t1","width":8,"height":8,"treasures":[{"id":"gold","x":2,"y":3,"points":40},{"id":"far","x":7,"y":7,"points":5}]}`)
	alice := newTab(t, b, playPage(g, "t1", 8, 8, "alice"))
	bob := newTab(t, b, playPage(g, "t1", 8, 8, "bob"))
	for _, p := range []context.Context{alice, bob} {
		waitJS(t, p, "joined", "window.play && window.play.joined", 15*time.Second)
	}
	// Click in the middle of cell (2, 3) of alice's grid.
	pt := eval[struct{ X, Y float64 }](t, alice, `(() => { const r = document.getElementById('grid').getBoundingClientRect(); const c = r.width / 8; return {X: r.left + 2.5 * c, Y: r.top + 3.5 * c}; })()`)
	run(t, alice, chromedp.MouseClickXY(pt.X, pt.Y))
	waitJS(t, alice, "alice's find", "window.play.finds === 1", 10*time.Second)
	waitJS(t, bob, "bob sees the claim", "window.play.updates.some(u => u.kind === 'claimed' && u.seq === 1)", 10*time.Second)
	feed := eval[string](t, bob, "document.getElementById('feed').textContent")
	if !strings.Contains(feed, "alice found gold") || !strings.Contains(feed, "+40") {
		t.Fatalf("bob's feed: %q", feed)
	}
	score := eval[string](t, alice, "document.getElementById('score').textContent")
	if score != "40" {
		t.Fatalf("alice's score shows %q, want 40", score)
	}
	top := eval[string](t, bob, "document.getElementById('top').textContent")
	if !strings.Contains(top, "alice") || !strings.Contains(top, "40") {
		t.Fatalf("bob's leaderboard: %q", top)
	}
	screenshot(t, alice, "play-alice.png")
	screenshot(t, bob, "play-bob.png")
}

// Resume through the SDK in cluster mode: two pages follow a hunt on
// gateway A while the backend publishes events through gateway B (same
// Redis). A is killed (SIGKILL, no drain) and started again on the same port
// while events keep coming; both pages end with every event, in contiguous
// seqs, none twice, and without a reset.
func TestBrowserResumeAcrossRestart(t *testing.T) {
	b := newBrowser(t)
	redis := redistest.Standalone(t, redistest.Options{})
	port := freePort(t)
	aArgs := []string{"--redis", redis.URL(), "--dev", "--addr", "127.0.0.1:" + port}
	a := startGateway(t, aArgs...)
	backend := startGateway(t, "--redis", redis.URL())
	backend.createHunt(t, `{"id":"r1","width":16,"height":16,"random":{"count":10,"seed":1,"max_points":10}}`)
	pages := []context.Context{newTab(t, b, playPage(a, "r1", 16, 16, "alice")), newTab(t, b, playPage(a, "r1", 16, 16, "bob"))}
	for _, p := range pages {
		waitJS(t, p, "joined", "window.play && window.play.joined", 15*time.Second)
	}

	const events = 60
	published := make(chan int, events)
	pubErr := make(chan error, 1)
	go func() {
		// Paced so that the restart falls in the middle of the stream.
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for i := range events {
			<-tick.C
			if code, body := backend.post("/v1/hunts/r1/events", fmt.Sprintf(`{"i":%d}`, i)); code != http.StatusOK {
				pubErr <- fmt.Errorf("publish %d: %d %s", i, code, body)
				return
			}
			published <- i
		}
		pubErr <- nil
	}()
	for i := range 15 {
		if <-published != i {
			t.Fatal("events out of order")
		}
	}
	a.kill(t)
	for _, p := range pages {
		waitJS(t, p, "reconnecting", "window.play.states.includes('reconnecting')", 10*time.Second)
	}
	a = startGateway(t, aArgs...)
	if err := <-pubErr; err != nil {
		t.Fatal(err)
	}
	var st struct{ Seq int }
	backend.getJSON(t, "/v1/hunts/r1", &st)
	if st.Seq < events {
		t.Fatalf("hunt seq %d after %d events", st.Seq, events)
	}
	for i, p := range pages {
		waitJS(t, p, "all events", fmt.Sprintf("window.play.updates.length > 0 && window.play.updates[window.play.updates.length - 1].seq === %d", st.Seq), 30*time.Second)
		got := eval[struct {
			Seqs   []int
			States []string
			Resets int
		}](t, p, `({Seqs: window.play.updates.map(u => u.seq), States: window.play.states, Resets: window.play.resets})`)
		if got.Resets != 0 {
			t.Errorf("page %d: %d resets", i, got.Resets)
		}
		if len(got.Seqs) != events || got.Seqs[0] != st.Seq-events+1 {
			t.Errorf("page %d: %d updates from seq %d, want %d from %d", i, len(got.Seqs), got.Seqs[0], events, st.Seq-events+1)
		}
		for k := 1; k < len(got.Seqs); k++ {
			if got.Seqs[k] != got.Seqs[k-1]+1 {
				t.Errorf("page %d: seq %d after %d (duplicate or gap)", i, got.Seqs[k], got.Seqs[k-1])
			}
		}
		if n := len(got.States); n < 3 || got.States[n-1] != "open" {
			t.Errorf("page %d: states %v, want ... reconnecting, open", i, got.States)
		}
		t.Logf("page %d: %d updates, seqs %d..%d, states %v", i, len(got.Seqs), got.Seqs[0], got.Seqs[len(got.Seqs)-1], got.States)
		screenshot(t, p, fmt.Sprintf("resume-page%d.png", i))
	}
	// What the pages missed while A was down came from history: the
	// restarted A replayed it on their rejoins.
	var stats struct{ Replayed int64 }
	a.getJSON(t, "/v1/stats", &stats)
	if stats.Replayed == 0 {
		t.Fatal("the restarted gateway replayed nothing: the pages did not resume with since")
	}
	t.Logf("replayed on resume: %d updates", stats.Replayed)
}

// The dashboard's figures follow traffic and agree with /v1/stats.
func TestBrowserDashboard(t *testing.T) {
	b := newBrowser(t)
	g := startGateway(t, "--dev")
	d := newTab(t, b, "http://"+g.admin+"/dashboard")
	waitJS(t, d, "first poll", "window.dash && window.dash.last", 10*time.Second)

	const players = 3
	var conns []*websocket.Conn
	for i := range players {
		c, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://%s/ws?player=p%d", g.addr, i), nil)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"op":"join","hunt":"demo","ref":1}`)); err != nil {
			t.Fatal(err)
		}
	}
	// A join the gateway refuses.
	if err := conns[0].WriteMessage(websocket.TextMessage, []byte(`{"op":"join","hunt":"nope","ref":2}`)); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(2)
		go func() { // drain replies
			defer wg.Done()
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
		go func() { // about 40 pings a second per player, under the rate limit
			defer wg.Done()
			tick := time.NewTicker(25 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if c.WriteMessage(websocket.TextMessage, []byte(`{"op":"ping"}`)) != nil {
						return
					}
				}
			}
		}()
	}
	value := func(id string) string {
		return fmt.Sprintf("Number(document.getElementById('v-%s').dataset.value)", id)
	}
	waitJS(t, d, "connections", value("conns")+" === "+strconv.Itoa(players), 10*time.Second)
	waitJS(t, d, "players in demo", `document.querySelector('#hunts tr[data-hunt="demo"] td:nth-child(2)').textContent === '`+strconv.Itoa(players)+`'`, 10*time.Second)
	waitJS(t, d, "messages in per second", value("in")+" > 50", 10*time.Second)
	waitJS(t, d, "messages out per second", value("out")+" > 50", 10*time.Second)
	waitJS(t, d, "refused joins", value("refused")+" === 1", 10*time.Second)
	waitJS(t, d, "a few seconds of charts", "window.dash.samples.length >= 6", 15*time.Second)
	screenshot(t, d, "dashboard.png")

	close(stop)
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	// Quiet now: the next polls must show what /v1/stats shows.
	var st struct {
		Connections struct {
			Total int64
			Loops []int64
		}
		Messages        struct{ In, Out int64 }
		SlowCloses      int64 `json:"slow_closes"`
		RateLimitCloses int64 `json:"rate_limit_closes"`
		JoinsRefused    int64 `json:"joins_refused"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for g.getJSON(t, "/v1/stats", &st); st.Connections.Total != 0; g.getJSON(t, "/v1/stats", &st) {
		if time.Now().After(deadline) {
			t.Fatalf("connections still open: %d", st.Connections.Total)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitJS(t, d, "dashboard caught up", fmt.Sprintf("window.dash.last.messages.in === %d && window.dash.last.messages.out === %d", st.Messages.In, st.Messages.Out), 10*time.Second)
	type figures struct {
		Conns, Slow, RateLimit, Refused string
		InTotal, OutTotal               string
		Loops                           string
	}
	shown := eval[figures](t, d, `({Conns: document.getElementById('v-conns').dataset.value, Slow: document.getElementById('v-slow').dataset.value,
		RateLimit: document.getElementById('v-ratelimit').dataset.value, Refused: document.getElementById('v-refused').dataset.value,
		InTotal: document.getElementById('s-in').textContent, OutTotal: document.getElementById('s-out').textContent,
		Loops: document.getElementById('v-loops').textContent})`)
	loops := make([]string, len(st.Connections.Loops))
	for i, n := range st.Connections.Loops {
		loops[i] = strconv.FormatInt(n, 10)
	}
	want := figures{"0", strconv.FormatInt(st.SlowCloses, 10), strconv.FormatInt(st.RateLimitCloses, 10), strconv.FormatInt(st.JoinsRefused, 10),
		"total " + thousands(st.Messages.In), "total " + thousands(st.Messages.Out), strings.Join(loops, " / ")}
	if shown != want {
		t.Fatalf("dashboard shows %+v, /v1/stats says %+v", shown, want)
	}
	if st.JoinsRefused != 1 || st.Messages.In < 100 {
		t.Fatalf("stats: %+v", st)
	}
}

// thousands formats n as the dashboard does (en-US grouping).
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// getJSON reads an admin GET endpoint into out.
func (g *gatewayProc) getJSON(t *testing.T, path string, out any) {
	t.Helper()
	resp, err := http.Get("http://" + g.admin + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}
