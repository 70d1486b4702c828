package redisengine

import (
	"testing"
	"time"

	"github.com/huntgate/huntgate/state"
)

// TestWebhookBacklog: the backlog holds every reliable update (dig, event,
// end; no leaderboard) in seq order whichever node wrote it; one node at a
// time holds a hunt's lease; a claim's acknowledgement trims what was
// delivered, so the next holder starts after it; updates over the bound or
// older than the age are dropped and reported once as the gap.
func TestWebhookBacklog(t *testing.T) {
	a := newEngine(t, Config{WebhookBacklog: 5})
	b := newEngine(t, Config{WebhookBacklog: 5, Prefix: a.prefix})
	if _, err := a.Create(ctx, state.Spec{ID: "h", Width: 4, Height: 1, Treasures: []state.Treasure{{ID: "t", X: 1, Y: 0, Points: 3}, {ID: "u", X: 2, Y: 0, Points: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Publish(ctx, "h", []byte(`1`)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Dig(ctx, "h", "p", 1, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctx, "h", []byte(`2`)); err != nil {
		t.Fatal(err)
	}
	claim := func(e *Engine, ack string, gapAck uint64, n int) state.WebhookBatch {
		t.Helper()
		bt, err := e.WebhookClaim(ctx, "h", ack, gapAck, n, 2*time.Second, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return bt
	}
	kinds := func(bt state.WebhookBatch) (s []state.Kind, seqs []uint64) {
		for _, en := range bt.Entries {
			s, seqs = append(s, en.Update.Kind), append(seqs, en.Update.Seq)
		}
		return
	}
	got := claim(a, "", 0, 10)
	if k, seqs := kinds(got); !got.Held || got.Gap != 0 || len(k) != 3 || k[0] != state.KindEvent || k[1] != state.KindClaimed || k[2] != state.KindEvent || seqs[2] != 3 {
		t.Fatalf("first claim: %+v", got)
	}
	if bt := claim(b, "", 0, 10); bt.Held || len(bt.Entries) != 0 {
		t.Fatalf("b claimed a hunt a holds: %+v", bt)
	}
	if p, err := b.WebhookPending(ctx); err != nil || len(p) != 0 {
		t.Fatalf("b's pending %v %v, want none (a holds h)", p, err)
	}
	if p, err := a.WebhookPending(ctx); err != nil || len(p) != 1 || p[0] != "h" {
		t.Fatalf("a's pending %v %v, want [h]", p, err)
	}
	// a acknowledges the first two and gives the lease up: b starts at seq 3.
	if bt := claim(a, got.Entries[1].ID, 0, 0); !bt.Held {
		t.Fatal("a lost its lease")
	}
	if err := a.WebhookRelease(ctx, "h"); err != nil {
		t.Fatal(err)
	}
	got = claim(b, "", 0, 10)
	if _, seqs := kinds(got); !got.Held || len(seqs) != 1 || seqs[0] != 3 {
		t.Fatalf("b after a's ack: %+v", got)
	}
	// Over the bound of 5: the oldest go, counted as the gap.
	for i := 0; i < 6; i++ {
		if _, err := a.Publish(ctx, "h", []byte(`3`)); err != nil {
			t.Fatal(err)
		}
	}
	got = claim(b, "", 0, 10)
	if _, seqs := kinds(got); got.Gap != 2 || len(seqs) != 5 || seqs[0] != 5 || seqs[4] != 9 {
		t.Fatalf("after overflow: gap %d, %+v", got.Gap, seqs)
	}
	// Reported with the delivery of seq 5: not reported again.
	got = claim(b, got.Entries[0].ID, 2, 10)
	if _, seqs := kinds(got); got.Gap != 0 || len(seqs) != 4 || seqs[0] != 6 {
		t.Fatalf("after the gap's report: gap %d, %+v", got.Gap, seqs)
	}
	// The end is recorded; a leaderboard never is.
	if _, err := a.End(ctx, "h"); err != nil {
		t.Fatal(err)
	}
	got = claim(b, got.Entries[3].ID, 0, 10)
	if k, seqs := kinds(got); len(k) != 1 || k[0] != state.KindEnded || seqs[0] != 10 {
		t.Fatalf("after end: %+v", got)
	}
	// Age: entries older than the bound (1 ms of Redis's clock, polled until
	// the entry is that old) are dropped at the claim, and counted.
	deadline := time.Now().Add(2 * time.Second)
	for {
		bt, err := b.WebhookClaim(ctx, "h", "", 0, 10, 2*time.Second, time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if len(bt.Entries) == 0 {
			if bt.Gap != 1 {
				t.Fatalf("after age: gap %d, want 1", bt.Gap)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("entry not dropped by age: %+v", bt)
		}
	}
}

// TestWebhookBacklogOff: without WebhookBacklog nothing is kept.
func TestWebhookBacklogOff(t *testing.T) {
	e := newEngine(t, Config{})
	if _, err := e.Create(ctx, state.Spec{ID: "h", Width: 1, Height: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Publish(ctx, "h", []byte(`1`)); err != nil {
		t.Fatal(err)
	}
	if n, err := e.rdb.XLen(ctx, e.keysOf("h").wq).Result(); err != nil || n != 0 || e.WebhookBacklog() != 0 {
		t.Fatalf("backlog %d %v", n, err)
	}
}
