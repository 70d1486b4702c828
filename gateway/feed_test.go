package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/huntgate/huntgate/state"
)

type feedAnswer struct {
	Hunt    string            `json:"hunt"`
	Epoch   uint64            `json:"epoch"`
	Seq     uint64            `json:"seq"`
	Updates []json.RawMessage `json:"updates"`
	Error   struct{ Code string }
	Status  struct{ Seq uint64 }
}

// getFeed makes one feed request and decodes the answer.
func getFeed(t *testing.T, tg *testGateway, query string) (int, feedAnswer) {
	t.Helper()
	st, b := tg.adminDo(t, "GET", "/v1/hunts/"+query, "", "")
	var a feedAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("GET %s: %s: %v", query, b, err)
	}
	return st, a
}

// asyncFeed makes a feed request on its own goroutine.
func asyncFeed(t *testing.T, tg *testGateway, query string) <-chan feedAnswer {
	ch := make(chan feedAnswer, 1)
	go func() {
		st, b := tg.adminDo(t, "GET", "/v1/hunts/"+query, "", "")
		var a feedAnswer
		if st != 200 || json.Unmarshal(b, &a) != nil {
			a.Error.Code = fmt.Sprintf("status %d: %s", st, b)
		}
		ch <- a
	}()
	return ch
}

// checkFeed runs the feed scenario against a gateway: pub publishes an
// event (through this or another node), and the hunt "feed" exists with
// one player joined on tg.
func checkFeed(t *testing.T, tg *testGateway, pub func(data string) uint64) {
	t.Helper()
	alice := tg.player(t, "alice")
	alice.join("feed")
	var pushes []string
	for i := 1; i <= 3; i++ {
		pub(fmt.Sprintf(`{"n":%d}`, i))
		_, b, err := alice.c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		pushes = append(pushes, string(b))
	}
	st, a := getFeed(t, tg, "feed/updates?since=0")
	if st != 200 || a.Hunt != "feed" || a.Seq != 3 || len(a.Updates) != 3 {
		t.Fatalf("feed since 0: %d %+v", st, a)
	}
	for i, u := range a.Updates {
		if string(u) != pushes[i] {
			t.Fatalf("feed update %d: %s, the players got %s", i, u, pushes[i])
		}
	}
	if _, a := getFeed(t, tg, "feed/updates?since=2"); len(a.Updates) != 1 || string(a.Updates[0]) != pushes[2] {
		t.Fatalf("since 2: %+v", a)
	}
	// Nothing new: a short wait ends with no updates.
	if st, a := getFeed(t, tg, "feed/updates?since=3&wait=50ms"); st != 200 || a.Updates == nil || len(a.Updates) != 0 || a.Seq != 3 {
		t.Fatalf("empty long poll: %d %+v", st, a)
	}
	// A long poll answers with the next update as soon as it exists.
	ch := asyncFeed(t, tg, "feed/updates?since=3&wait=30s")
	waitFor(t, "the long poll to wait", func() bool { return tg.feed.waiting.Load() == 1 })
	seq := pub(`{"n":4}`)
	a = <-ch
	if a.Error.Code != "" || len(a.Updates) != 1 || a.Seq != seq || seq != 4 {
		t.Fatalf("long poll: %+v (seq %d)", a, seq)
	}
	var u map[string]any
	_ = json.Unmarshal(a.Updates[0], &u)
	if u["kind"] != "event" || u["seq"] != 4.0 || fmt.Sprint(u["data"]) != "map[n:4]" {
		t.Fatalf("long poll update: %s", a.Updates[0])
	}
	waitFor(t, "the long poll to be released", func() bool { return tg.feed.waiting.Load() == 0 })

	for _, c := range []struct {
		q    string
		st   int
		code string
	}{
		{"nope/updates?since=0", 404, "unknown_hunt"},
		{"nope/updates?since=0&wait=1s", 404, "unknown_hunt"},
		{"feed/updates?since=5", 409, "reset"},
		{"feed/updates?since=-1", 400, "bad_request"},
		{"feed/updates?since=0&wait=61s", 400, "bad_request"},
		{"feed/updates?since=0&wait=x", 400, "bad_request"},
	} {
		st, a := getFeed(t, tg, c.q)
		if st != c.st || a.Error.Code != c.code {
			t.Fatalf("%s: %d %+v, want %d %s", c.q, st, a, c.st, c.code)
		}
		if c.code == "reset" && a.Status.Seq != 4 {
			t.Fatalf("reset without the current status: %+v", a)
		}
	}
}

func TestFeedMemory(t *testing.T) {
	tg := startGateway(t, nil)
	tg.createHunt(t, state.Spec{ID: "feed", Width: 4, Height: 4})
	checkFeed(t, tg, func(data string) uint64 {
		seq, err := tg.engine.Publish(context.Background(), "feed", []byte(data))
		if err != nil {
			t.Fatal(err)
		}
		return seq
	})
}

// TestFeedCluster long-polls node b for updates published through node a:
// the wait makes b watch the hunt.
func TestFeedCluster(t *testing.T) {
	url := startRedis(t)
	a, ea := startClusterNode(t, url)
	b, _ := startClusterNode(t, url)
	if _, err := ea.Create(context.Background(), state.Spec{ID: "feed", Width: 4, Height: 4}); err != nil {
		t.Fatal(err)
	}
	_ = a
	checkFeed(t, b, func(data string) uint64 {
		seq, err := ea.Publish(context.Background(), "feed", []byte(data))
		if err != nil {
			t.Fatal(err)
		}
		return seq
	})
}

// TestFeedResetAndLimits: a since older than the history is a 409 reset
// with the status; long polls over --max-long-polls are refused with 503
// while polls without wait still answer; an ended hunt answers at once;
// shutdown answers a waiting poll.
func TestFeedResetAndLimits(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.MaxLongPolls = 1 }, state.MemoryConfig{HistoryMax: 2})
	tg.createHunt(t, state.Spec{ID: "f", Width: 4, Height: 4})
	tg.createHunt(t, state.Spec{ID: "g", Width: 4, Height: 4})
	for i := 0; i < 5; i++ {
		if _, err := tg.engine.Publish(context.Background(), "f", []byte(`1`)); err != nil {
			t.Fatal(err)
		}
	}
	if st, a := getFeed(t, tg, "f/updates?since=1"); st != 409 || a.Error.Code != "reset" || a.Status.Seq != 5 {
		t.Fatalf("since older than the history: %d %+v", st, a)
	}
	if st, a := getFeed(t, tg, "f/updates?since=3"); st != 200 || len(a.Updates) != 2 {
		t.Fatalf("since in the history: %d %+v", st, a)
	}
	ch := asyncFeed(t, tg, "g/updates?since=0&wait=30s")
	waitFor(t, "the long poll to wait", func() bool { return tg.feed.waiting.Load() == 1 })
	if st, a := getFeed(t, tg, "f/updates?since=5&wait=30s"); st != 503 || a.Error.Code != "too_many_polls" {
		t.Fatalf("second long poll: %d %+v", st, a)
	}
	if tg.m.feedRefused.Load() != 1 {
		t.Fatalf("refused %d", tg.m.feedRefused.Load())
	}
	if st, a := getFeed(t, tg, "f/updates?since=5"); st != 200 || len(a.Updates) != 0 {
		t.Fatalf("poll without wait: %d %+v", st, a)
	}
	if _, err := tg.engine.End(context.Background(), "f"); err != nil {
		t.Fatal(err)
	}
	// Nothing can follow an ended hunt's last update: its long poll answers
	// at once, without taking a place (the one place is still taken).
	if st, a := getFeed(t, tg, "f/updates?since=6&wait=30s"); st != 200 || a.Updates == nil || len(a.Updates) != 0 || a.Seq != 6 {
		t.Fatalf("ended hunt's long poll: %d %+v", st, a)
	}
	// Shutdown answers the poll still waiting, with no updates.
	ctx, cancel := context.WithTimeout(context.Background(), 5e9)
	defer cancel()
	go func() { _ = tg.Shutdown(ctx) }()
	if a := <-ch; a.Error.Code != "" || a.Updates == nil || len(a.Updates) != 0 {
		t.Fatalf("poll at shutdown: %+v", a)
	}
}
