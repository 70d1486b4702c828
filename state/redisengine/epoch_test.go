package redisengine

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/huntgate/huntgate/internal/redistest"
	"github.com/huntgate/huntgate/state"
)

// epochNodes starts two engines on srv: pub, which does not watch the hunt,
// and sub, which watches it and collects its updates; the hunt "h" is
// created and sub's copy of it is in step.
func epochNodes(t *testing.T, srv *redistest.Server) (pub, sub *Engine, c *collector, a *redis.Client, epoch uint64) {
	t.Helper()
	mk := func() *Engine {
		e, err := New(ctx, Config{URL: srv.URL()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Close() })
		return e
	}
	pub, sub = mk(), mk()
	c = newCollector()
	sub.Subscribe(c.sink)
	st, err := pub.Create(ctx, state.Spec{ID: "h", Width: 1, Height: 1})
	if err != nil {
		t.Fatal(err)
	}
	a = srv.Client()
	t.Cleanup(func() { _ = a.Close() })
	watchAndWait(t, a, sub, "h", 1)
	if !sub.AwaitLocal(ctx, "h") {
		t.Fatal("no copy of the watched hunt")
	}
	return pub, sub, c, a, st.Epoch
}

// publishN publishes events data "e<from>".."e<to>" through e.
func publishN(t *testing.T, e *Engine, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if _, err := e.Publish(ctx, "h", []byte("e"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
}

// noReuse fails if the sink got two updates of one epoch and seq with
// different content, or an update of the old epoch beyond seq max.
func noReuse(t *testing.T, ups []state.Update, old uint64, max uint64) {
	t.Helper()
	seen := map[string]string{}
	for _, u := range ups {
		if !u.Kind.Reliable() {
			continue
		}
		key := fmt.Sprint(u.Epoch, "/", u.Seq)
		if d, ok := seen[key]; ok && d != string(u.Data) {
			t.Fatalf("seq %s delivered as %q and as %q", key, d, u.Data)
		}
		seen[key] = string(u.Data)
		if u.Epoch == old && (u.Seq > max || string(u.Data) != "e"+strconv.FormatUint(u.Seq, 10)) {
			t.Fatalf("old epoch update %d %q after the regression", u.Seq, u.Data)
		}
	}
}

// afterRegression checks the outcome: the hunt has a new epoch, no resume
// under the old one is served, and the stream goes on under the new one.
func afterRegression(t *testing.T, pub, sub *Engine, c *collector, old uint64) {
	t.Helper()
	var st state.Status
	eventually(t, "a new epoch", func() bool {
		var err error
		st, err = pub.Status(ctx, "h")
		return err == nil && st.Epoch != old
	})
	for since := uint64(0); since <= 5; since++ {
		if ups, ok, err := pub.History(ctx, "h", old, since); ok || err != nil {
			t.Fatalf("resume under the old epoch since %d served: %v %v", since, ups, err)
		}
	}
	if _, err := pub.Publish(ctx, "h", []byte("after")); err != nil {
		t.Fatal(err)
	}
	ups := c.waitFor(t, "the event after the regression", func(ups []state.Update) bool {
		return len(ups) > 0 && string(ups[len(ups)-1].Data) == "after"
	})
	if u := ups[len(ups)-1]; u.Epoch != st.Epoch {
		t.Fatalf("event after the regression in epoch %d, want %d", u.Epoch, st.Epoch)
	}
	noReuse(t, ups, old, 4)
	eventually(t, "the copy in the new epoch", func() bool {
		cp, _, _, ok := sub.JoinLocal("h", "p", false, 0, 0)
		return ok && cp.Epoch == st.Epoch
	})
}

// TestEpochAfterRestoreFromOlderRDB: redis-server restarts from an RDB saved
// before the last two events, and a node that never watched the hunt
// publishes at once, reusing seq 3. The node that saw seq 4 finds Redis
// behind it and gives the hunt a new epoch: no resume under the old epoch
// is served again, its players never get the reused seq, and the stream
// goes on in the new epoch.
func TestEpochAfterRestoreFromOlderRDB(t *testing.T) {
	srv := redistest.Standalone(t, redistest.Options{})
	pub, sub, c, a, epoch := epochNodes(t, srv)
	publishN(t, pub, 1, 2)
	if err := a.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	publishN(t, pub, 3, 4)
	c.waitFor(t, "four events", func(ups []state.Update) bool { return len(ups) == 4 })
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	resubscribed(t, srv, sub)
	eventually(t, "Redis back with the old data", func() bool {
		_, err := pub.Publish(ctx, "h", []byte("reused"))
		return err == nil
	})
	afterRegression(t, pub, sub, c, epoch)
	if sub.Regressions() == 0 {
		t.Fatal("regression not counted")
	}
}

// TestEpochAfterFailoverLostWrites: a replica stops getting writes after
// seq 2 and is then what the nodes reach (its data restored on the
// primary's address, as a failover to it would); the next write comes
// through the node that saw seq 4, and its script takes a new epoch before
// it takes a seq.
func TestEpochAfterFailoverLostWrites(t *testing.T) {
	srv := redistest.Standalone(t, redistest.Options{Args: []string{"--repl-diskless-sync-delay", "0"}})
	replica := redistest.Standalone(t, redistest.Options{Args: []string{"--replicaof", "127.0.0.1", strconv.Itoa(srv.Port)}})
	pub, sub, c, _, epoch := epochNodes(t, srv)
	publishN(t, sub, 1, 2)
	rc := replica.Client()
	defer rc.Close()
	meta := sub.keysOf("h").meta
	eventually(t, "the replica at seq 2", func() bool {
		n, err := rc.HGet(ctx, meta, "seq").Int()
		return err == nil && n == 2
	})
	if err := rc.SlaveOf(ctx, "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	publishN(t, sub, 3, 4)
	c.waitFor(t, "four events", func(ups []state.Update) bool { return len(ups) == 4 })
	if err := rc.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	copyFile(t, filepath.Join(replica.Dir, "dump.rdb"), filepath.Join(srv.Dir, "dump.rdb"))
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	resubscribed(t, srv, sub)
	eventually(t, "a write through the node that saw seq 4", func() bool {
		_, err := sub.Publish(ctx, "h", []byte("guarded"))
		return err == nil
	})
	ups := c.waitFor(t, "the guarded write", func(ups []state.Update) bool {
		return len(ups) > 0 && string(ups[len(ups)-1].Data) == "guarded"
	})
	if u := ups[len(ups)-1]; u.Epoch == epoch {
		t.Fatalf("write after the failover reused epoch %d seq %d", u.Epoch, u.Seq)
	}
	afterRegression(t, pub, sub, c, epoch)
}

// resubscribed waits until e's pub/sub connection is subscribed to the
// hunt on the restarted srv, so that its sink sees what is written next.
func resubscribed(t *testing.T, srv *redistest.Server, e *Engine) {
	t.Helper()
	a := srv.Client()
	defer a.Close()
	ch := e.keysOf("h").ch
	eventually(t, "resubscription", func() bool { return numSub(t, a, ch) == 1 })
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestNoFalseRegression: a node's status reads race with the updates its
// reader applies meanwhile (a read answered before a publish whose message
// is handled first), so a status may show an older seq than the node has
// seen without Redis having lost anything. That is not a regression: no
// warning, no count, and the hunt keeps its epoch.
func TestNoFalseRegression(t *testing.T) {
	a := admin(t)
	sub := newEngine(t, Config{})
	pub := newEngine(t, Config{Prefix: sub.prefix})
	st, err := pub.Create(ctx, state.Spec{ID: "h", Width: 2, Height: 2})
	if err != nil {
		t.Fatal(err)
	}
	watchAndWait(t, a, sub, "h", 1)
	if !sub.AwaitLocal(ctx, "h") {
		t.Fatal("no copy")
	}
	stop := publishLoop(t, pub, "h")
	for range 500 {
		if _, err := sub.Status(ctx, "h"); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	now, err := pub.Status(ctx, "h")
	if err != nil {
		t.Fatal(err)
	}
	if sub.Regressions() != 0 || now.Epoch != st.Epoch {
		t.Fatalf("%d regressions counted, epoch %d -> %d, with nothing lost", sub.Regressions(), st.Epoch, now.Epoch)
	}
}
