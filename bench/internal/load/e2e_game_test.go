package load

import (
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// gameTarget starts a fresh huntgate for one game-protocol scenario.
func gameTarget(t *testing.T) Config {
	t.Helper()
	addr, admin := startHuntgateAdmin(t)
	return Config{URL: "ws://" + addr, Admin: "http://" + admin, APIKey: e2eAPIKey, Dev: true,
		Duration: 2 * time.Second, Drain: time.Second, Loops: 2}
}

// errorCounters returns the counters that mean something went wrong.
func errorCounters(c map[string]int64) map[string]int64 {
	bad := map[string]int64{}
	for k, v := range c {
		if v == 0 {
			continue
		}
		switch {
		case k == cDialFail, k == "write_errors", k == "bad_messages", k == "slow_dial_failed":
			bad[k] = v
		case len(k) > 4 && k[:4] == "err_":
			bad[k] = v
		}
	}
	return bad
}

func TestEndToEndDig(t *testing.T) {
	cfg := gameTarget(t)
	cfg.Scenario, cfg.Players, cfg.Hunts, cfg.Rate = Dig, 300, 3, 600
	rep, err := Run(cfg, Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	f := rep.Facts
	dug, wire := rep.Ops["dug"], rep.Ops["dug.wire"]
	if f.Connections != 300 || f.Failed != 0 || rep.Ops["join"].Count != 300 {
		t.Fatalf("connections %d failed %d joins %d", f.Connections, f.Failed, rep.Ops["join"].Count)
	}
	// 600 digs/s for 2 s, all answered.
	if dug.Count != 1200 || dug.Errors != 0 || wire.Count != dug.Count || rep.Ops["dig.sendlag"].Count != 1200 {
		t.Fatalf("dug %+v wire %+v sendlag %+v", dug, wire, rep.Ops["dig.sendlag"])
	}
	if f.Counters[cDigsSent] != 1200 || f.Unanswered != 0 || rep.Ops["dig.inbox"].Count == 0 {
		t.Fatalf("digs sent %d unanswered %d inbox %+v", f.Counters[cDigsSent], f.Unanswered, rep.Ops["dig.inbox"])
	}
	if bad := errorCounters(f.Counters); len(bad) > 0 || len(f.CloseCodes) > 0 {
		t.Fatalf("errors %v close codes %v", bad, f.CloseCodes)
	}
	// Every claim reaches every player of its hunt (100 each), in order.
	if f.Counters[cFound] == 0 || f.Counters[cClaimed] != 100*f.Counters[cFound] {
		t.Fatalf("found %d claimed pushes %d", f.Counters[cFound], f.Counters[cClaimed])
	}
	if g := f.Gaps; g.Gaps != 0 || g.Dups != 0 || g.Updates < f.Counters[cClaimed] {
		t.Fatalf("seq %+v", g)
	}
}

func TestEndToEndEvent(t *testing.T) {
	cfg := gameTarget(t)
	cfg.Scenario, cfg.Players, cfg.Rates = Event, 300, []float64{10, 40}
	rep, err := Run(cfg, Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	f := rep.Facts
	if f.Connections != 300 || f.Failed != 0 || len(rep.Steps) != 2 {
		t.Fatalf("connections %d failed %d steps %d", f.Connections, f.Failed, len(rep.Steps))
	}
	for i, s := range rep.Steps {
		// Each step lasts 1 s: 10 then 40 events, each to all 300 players.
		want := []int64{10, 40}[i]
		if s.Sent != want || s.Delivered != want*300 || s.Lost != 0 || s.Complete != want || s.TTE.Count != want {
			t.Fatalf("step %d: %+v", i, s)
		}
	}
	if p := rep.Ops["publish"]; p.Count != 50 || p.Errors != 0 || f.PublishIntended != 50 {
		t.Fatalf("publish %+v intended %d", p, f.PublishIntended)
	}
	if rep.Ops["publish.lag"].Count != 50 || rep.Ops["publish.server"].Count != 50 {
		t.Fatalf("publish split: lag %+v server %+v", rep.Ops["publish.lag"], rep.Ops["publish.server"])
	}
	if g := f.Gaps; g.Updates != 50*300 || g.Gaps != 0 || g.Dups != 0 {
		t.Fatalf("seq %+v", g)
	}
	if bad := errorCounters(f.Counters); len(bad) > 0 || len(f.CloseCodes) > 0 {
		t.Fatalf("errors %v close codes %v", bad, f.CloseCodes)
	}
}

func TestEndToEndGame(t *testing.T) {
	cfg := gameTarget(t)
	cfg.Scenario, cfg.Players, cfg.Hunts = Game, 200, 2
	cfg.Duration, cfg.DigEvery, cfg.Leave, cfg.Slow = 3*time.Second, 200*time.Millisecond, 0.05, 2
	rep, err := Run(cfg, Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	f := rep.Facts
	if f.Connections != 200 || f.Failed != 0 {
		t.Fatalf("connections %d failed %d", f.Connections, f.Failed)
	}
	// About 5 digs per player and second for 3 s; some players are away.
	if d := rep.Ops["dug"]; d.Count < 1000 || d.Errors != 0 {
		t.Fatalf("dug %+v", d)
	}
	// Players left and resumed with since/epoch without losing anything.
	if f.Counters[cRejoins] == 0 || f.Gaps.Gaps != 0 || f.Gaps.Dups != 0 || f.Gaps.Resets != 0 {
		t.Fatalf("rejoins %d seq %+v", f.Counters[cRejoins], f.Gaps)
	}
	if f.Counters[cClaimed] == 0 || f.Counters["slow_msgs"] == 0 {
		t.Fatalf("claimed %d slow reader messages %d", f.Counters[cClaimed], f.Counters["slow_msgs"])
	}
	if bad := errorCounters(f.Counters); len(bad) > 0 || len(f.CloseCodes) > 0 {
		t.Fatalf("errors %v close codes %v", bad, f.CloseCodes)
	}
}

// crowd: players in two hunts dig at a steady rate while stamped events go
// to both hunts; every player gets every event once (time to everyone over
// all players), digs are answered, claims reach both hunts' players in
// order, and the memory figures are filled in.
func TestEndToEndCrowd(t *testing.T) {
	cfg := gameTarget(t)
	cfg.Scenario, cfg.Players, cfg.Hunts, cfg.Rate, cfg.EventRate = Crowd, 300, 2, 600, 2
	cfg.Grid, cfg.Treasures = 30, 100
	rep, err := Run(cfg, Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	f := rep.Facts
	if f.Connections != 300 || f.ConnectedEnd != 300 || f.Failed != 0 || f.Joins.Admitted != 300 {
		t.Fatalf("connections %d at end %d failed %d joins %+v", f.Connections, f.ConnectedEnd, f.Failed, f.Joins)
	}
	// 2 events/s for 2 s, each published to both hunts: 4 events to each
	// of the 300 players.
	if len(rep.Steps) != 1 {
		t.Fatalf("steps %+v", rep.Steps)
	}
	if s := rep.Steps[0]; s.Sent != 4 || s.Delivered != 4*300 || s.Lost != 0 || s.Complete != 4 {
		t.Fatalf("events %+v", s)
	}
	if p := rep.Ops["publish"]; p.Count != 4 || p.Errors != 0 {
		t.Fatalf("publish %+v", p)
	}
	if d := rep.Ops["dug"]; d.Count != 1200 || d.Errors != 0 || f.Unanswered != 0 {
		t.Fatalf("dug %+v unanswered %d", d, f.Unanswered)
	}
	if f.Counters[cFound] == 0 || f.Counters[cClaimed] != 150*f.Counters[cFound] {
		t.Fatalf("found %d claimed pushes %d", f.Counters[cFound], f.Counters[cClaimed])
	}
	if g := f.Gaps; g.Gaps != 0 || g.Dups != 0 || g.Updates != f.Counters[cClaimed]+4*300 {
		t.Fatalf("seq %+v claimed %d", g, f.Counters[cClaimed])
	}
	// In-process workers share the test binary, whose heap moves with
	// other tests: only the worker-process runs (million.sh) give a
	// per-player figure; here the total must be there.
	if f.LoadRSS <= 0 || f.Counters[cReconnects] != 0 {
		t.Fatalf("load rss %d (%.0f per player), reconnects %d", f.LoadRSS, f.LoadRSSPerPlayer, f.Counters[cReconnects])
	}
	if bad := errorCounters(f.Counters); len(bad) > 0 || len(f.CloseCodes) > 0 {
		t.Fatalf("errors %v close codes %v", bad, f.CloseCodes)
	}
}
