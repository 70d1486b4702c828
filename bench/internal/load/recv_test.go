package load

import (
	"strconv"
	"testing"

	"github.com/huntgate/huntgate/bench/internal/measure"
	"github.com/huntgate/huntgate/framing"
)

// recvFixture is one worker loop with one joined player, to run the
// per-delivery path of the game scenarios without a network.
func recvFixture(mode string) (*worker, *loopState, *player, *gameScenario) {
	w := &worker{cfg: WorkerConfig{}}
	w.cfg.Scenario = mode
	rec := measure.NewRecorder(1)
	sh := rec.Shard(0)
	ls := &loopState{shard: sh, msgsIn: sh.Counter(cMsgsIn), msgsOut: sh.Counter(cMsgsOut),
		claimed: sh.Counter(cClaimed), leaderboards: sh.Counter("update_leaderboard"), join: sh.Op("join"), dug: sh.Op("dug"), dugWire: sh.Op("dug.wire")}
	w.rec = rec
	w.loops = []*loopState{ls}
	p := &player{id: "p1", hunt: "h-0", open: true, joined: true, slot: -1}
	return w, ls, p, &gameScenario{mode: mode}
}

func eventMsg(seq int64, id int64, t int64) []byte {
	b := []byte(`{"op":"update","hunt":"h-0","epoch":1763800000,"seq":`)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `,"kind":"event","data":{"t":`...)
	b = strconv.AppendInt(b, t, 10)
	b = append(b, `,"i":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"s":0}}`...)
	return b
}

func TestReceiveAccounting(t *testing.T) {
	w, ls, p, g := recvFixture(Event)
	for seq := int64(1); seq <= 3; seq++ {
		g.onMessage(w, ls, nil, p, framing.OpText, eventMsg(seq, seq, 1000))
	}
	g.onMessage(w, ls, nil, p, framing.OpText, eventMsg(5, 5, 1000))
	g.onMessage(w, ls, nil, p, framing.OpText, []byte(`{"op":"update","hunt":"h-0","epoch":1763800000,"seq":5,"kind":"leaderboard","top":[]}`))
	gs := w.rec.GapTotals()
	if gs.Updates != 4 || gs.Gaps != 1 {
		t.Fatalf("gaps %+v", gs)
	}
	if recs := w.rec.Bcast(); len(recs) != 4 {
		t.Fatalf("broadcast records %d, want 4", len(recs))
	}
	if _, c := w.rec.Totals(); c["update_leaderboard"] != 1 {
		t.Fatalf("counters %v", c)
	}
	if string(p.epochRaw) != "1763800000" {
		t.Fatalf("epoch kept %q", p.epochRaw)
	}
}

// TestReceiveStartedIsReliable: started takes the next seq like every
// reliable kind, so an event after it is no gap (and one after a started
// that never came is).
func TestReceiveStartedIsReliable(t *testing.T) {
	w, _, p, g := recvFixture(Event)
	ls := w.loops[0]
	started := func(seq int) []byte {
		return []byte(`{"op":"update","hunt":"h-0","epoch":1763800000,"seq":` + strconv.Itoa(seq) + `,"kind":"started"}`)
	}
	g.onMessage(w, ls, nil, p, framing.OpText, started(1))
	g.onMessage(w, ls, nil, p, framing.OpText, eventMsg(2, 2, 1000))
	if gs := w.rec.GapTotals(); gs.Updates != 2 || gs.Gaps != 0 {
		t.Fatalf("started then event: %+v, want 2 updates, no gap", gs)
	}
	g.onMessage(w, ls, nil, p, framing.OpText, eventMsg(4, 4, 1000)) // started 3 lost
	if gs := w.rec.GapTotals(); gs.Updates != 3 || gs.Gaps != 1 {
		t.Fatalf("after a lost update: %+v, want 3 updates, 1 gap", gs)
	}
}

// BenchmarkReceiveEvent is the load generator's cost per event delivery
// after framing: parse, seq accounting, broadcast receipt, one-way latency.
func BenchmarkReceiveEvent(b *testing.B) {
	w, ls, p, g := recvFixture(Event)
	msgs := make([][]byte, 1024)
	for i := range msgs {
		msgs[i] = eventMsg(int64(i+1), int64(i), 1763800000123456789)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g.onMessage(w, ls, nil, p, framing.OpText, msgs[i%len(msgs)])
	}
}

// BenchmarkReceiveLeaderboard is the cost of a latest-value push (dig).
func BenchmarkReceiveLeaderboard(b *testing.B) {
	w, ls, p, g := recvFixture(Dig)
	m := []byte(`{"op":"update","hunt":"h-0","epoch":1763800000,"seq":77,"kind":"leaderboard","top":[{"player":"p1","score":90},{"player":"p2","score":80},{"player":"p3","score":70}]}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		g.onMessage(w, ls, nil, p, framing.OpText, m)
	}
}
