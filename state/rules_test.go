package state

import (
	"errors"
	"fmt"
	"math/rand"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newTestHunt(t *testing.T) *Hunt {
	t.Helper()
	h, err := NewHunt(Spec{ID: "h", Width: 5, Height: 4, Treasures: []Treasure{
		{ID: "gold", X: 1, Y: 1, Points: 10},
		{ID: "silver", X: 4, Y: 3, Points: 5},
	}}, 77)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHuntApply(t *testing.T) {
	dig := func(p string, x, y int) Command { return Command{Op: OpDig, Player: p, X: x, Y: y, At: t0} }
	type step struct {
		cmd   Command
		err   error
		dig   DigResult
		kinds string // kinds of the updates, space separated
		seq   uint64 // hunt seq after the command
	}
	tests := []struct {
		name  string
		steps []step
		left  int
		state string
		top   []Entry
	}{
		{
			name:  "miss",
			steps: []step{{cmd: dig("a", 0, 0), seq: 0}},
			left:  2, state: StateOpen, top: []Entry{},
		},
		{
			name: "hit then the same cell again",
			steps: []step{
				{cmd: dig("a", 1, 1), dig: DigResult{Found: true, Treasure: "gold", Points: 10, Score: 10, Rank: 1, Seq: 1}, kinds: "claimed leaderboard", seq: 1},
				{cmd: dig("b", 1, 1), seq: 1},
			},
			left: 1, state: StateOpen, top: []Entry{{"a", 10}},
		},
		{
			name: "last treasure ends the hunt",
			steps: []step{
				{cmd: dig("a", 4, 3), dig: DigResult{Found: true, Treasure: "silver", Points: 5, Score: 5, Rank: 1, Seq: 1}, kinds: "claimed leaderboard", seq: 1},
				{cmd: dig("b", 1, 1), dig: DigResult{Found: true, Treasure: "gold", Points: 10, Score: 10, Rank: 1, Seq: 2}, kinds: "claimed leaderboard ended", seq: 3},
				{cmd: dig("c", 0, 0), err: ErrEnded, seq: 3},
			},
			left: 0, state: StateEnded, top: []Entry{{"b", 10}, {"a", 5}},
		},
		{
			name: "out of grid",
			steps: []step{
				{cmd: dig("a", -1, 0), err: ErrOutOfGrid},
				{cmd: dig("a", 5, 0), err: ErrOutOfGrid},
				{cmd: dig("a", 0, 4), err: ErrOutOfGrid},
				{cmd: dig("a", 0, -1), err: ErrOutOfGrid},
			},
			left: 2, state: StateOpen, top: []Entry{},
		},
		{
			name: "publish and end",
			steps: []step{
				{cmd: Command{Op: OpPublish, Data: []byte(`{"x":1}`), At: t0}, kinds: "event", seq: 1},
				{cmd: Command{Op: OpEnd, At: t0}, kinds: "ended", seq: 2},
				{cmd: Command{Op: OpEnd, At: t0}, err: ErrEnded, seq: 2},
				{cmd: Command{Op: OpPublish, Data: []byte(`1`), At: t0}, err: ErrEnded, seq: 2},
				{cmd: dig("a", 1, 1), err: ErrEnded, seq: 2},
			},
			left: 2, state: StateEnded, top: []Entry{},
		},
		{
			name:  "unknown op",
			steps: []step{{cmd: Command{Op: 99}, err: errUnknownOp}},
			left:  2, state: StateOpen, top: []Entry{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHunt(t)
			for i, s := range tt.steps {
				ups, res, err := h.Apply(s.cmd, nil)
				if !errors.Is(err, s.err) {
					t.Fatalf("step %d: error %v, want %v", i, err, s.err)
				}
				if res.Dig != s.dig {
					t.Fatalf("step %d: dig %+v, want %+v", i, res.Dig, s.dig)
				}
				kinds := ""
				for j, u := range ups {
					if j > 0 {
						kinds += " "
					}
					kinds += u.Kind.String()
					if u.Hunt != "h" || u.Epoch != 77 || !u.At.Equal(t0) {
						t.Fatalf("step %d: update %+v lacks hunt, epoch or time", i, u)
					}
				}
				if kinds != s.kinds {
					t.Fatalf("step %d: updates %q, want %q", i, kinds, s.kinds)
				}
				if res.Seq != s.seq || h.Seq() != s.seq {
					t.Fatalf("step %d: seq %d/%d, want %d", i, res.Seq, h.Seq(), s.seq)
				}
			}
			st := h.Status()
			if st.TreasuresLeft != tt.left || st.State != tt.state || fmt.Sprint(st.Top) != fmt.Sprint(tt.top) {
				t.Fatalf("status %+v, want left %d state %s top %v", st, tt.left, tt.state, tt.top)
			}
		})
	}
}

func TestHuntUpdateFields(t *testing.T) {
	h := newTestHunt(t)
	data := []byte(`{"raw": [1, 2]}`)
	ups, _, _ := h.Apply(Command{Op: OpPublish, Data: data, At: t0}, nil)
	if string(ups[0].Data) != string(data) || ups[0].Seq != 1 {
		t.Fatalf("event %+v", ups[0])
	}
	ups, _, _ = h.Apply(Command{Op: OpDig, Player: "ann", X: 1, Y: 1, At: t0}, nil)
	c, l := ups[0], ups[1]
	if c.Kind != KindClaimed || c.Treasure != "gold" || c.Player != "ann" || c.Points != 10 || c.Seq != 2 {
		t.Fatalf("claimed %+v", c)
	}
	if l.Kind != KindLeaderboard || l.Seq != 2 || fmt.Sprint(l.Top) != "[{ann 10}]" {
		t.Fatalf("leaderboard %+v", l)
	}
	ups, _, _ = h.Apply(Command{Op: OpEnd, At: t0}, nil)
	if ups[0].Kind != KindEnded || ups[0].Seq != 3 || fmt.Sprint(ups[0].Top) != "[{ann 10}]" {
		t.Fatalf("ended %+v", ups[0])
	}
}

func TestHuntPlayers(t *testing.T) {
	h := newTestHunt(t)
	for _, tc := range []struct {
		op   Op
		want int
	}{{OpLeave, 0}, {OpJoin, 1}, {OpJoin, 2}, {OpLeave, 1}, {OpLeave, 0}, {OpLeave, 0}, {OpJoin, 1}} {
		ups, _, err := h.Apply(Command{Op: tc.op, Player: "p"}, nil)
		if err != nil || len(ups) != 0 {
			t.Fatalf("op %d: %v %v", tc.op, ups, err)
		}
		if got := h.Status().Players; got != tc.want {
			t.Fatalf("after op %d players %d, want %d", tc.op, got, tc.want)
		}
	}
}

func TestKind(t *testing.T) {
	for _, tc := range []struct {
		k        Kind
		name     string
		reliable bool
	}{
		{KindClaimed, "claimed", true}, {KindLeaderboard, "leaderboard", false},
		{KindEvent, "event", true}, {KindEnded, "ended", true}, {0, "unknown", false}, {200, "unknown", false},
	} {
		if tc.k.String() != tc.name || tc.k.Reliable() != tc.reliable {
			t.Errorf("kind %d: %q %v, want %q %v", tc.k, tc.k.String(), tc.k.Reliable(), tc.name, tc.reliable)
		}
	}
}

// TestHuntRandomDigs plays random digs, publishes and ends on random hunts
// and checks, after every command: seq grows by one per reliable update, a
// leaderboard update carries its claim's seq, each treasure is claimed once,
// treasures_left counts down, and the top and every rank match a brute-force
// ranking rebuilt from the claimed updates alone.
func TestHuntRandomDigs(t *testing.T) {
	for seed := int64(1); seed <= 30; seed++ {
		rng := rand.New(rand.NewSource(seed))
		w, hgt := 1+rng.Intn(12), 1+rng.Intn(12)
		large := seed%3 == 0 // some hunts use the sparse cell index
		if large {
			w, hgt = 300, 300
		}
		count := rng.Intn(w*hgt/2 + 1)
		if large {
			count = 200
		}
		h, err := NewHunt(Spec{ID: "r", Width: w, Height: hgt, Random: &RandomSpec{Count: count, Seed: seed, MaxPoints: 4}}, 1)
		if err != nil {
			t.Fatal(err)
		}
		ref := &bruteRank{score: map[string]int64{}, tick: map[string]int{}}
		claimed := map[string]bool{}
		var seq uint64
		players := 1 + rng.Intn(8)
		for step := 0; step < 3000 && !h.Ended(); step++ {
			var cmd Command
			switch r := rng.Intn(100); {
			case r < 2:
				cmd = Command{Op: OpPublish, Data: []byte("{}")}
			case r == 2 && seed%5 == 0:
				cmd = Command{Op: OpEnd}
			default:
				cmd = Command{Op: OpDig, Player: fmt.Sprintf("p%d", rng.Intn(players)), X: rng.Intn(w+1) - 1 + rng.Intn(2), Y: rng.Intn(hgt)}
				if large {
					// Aim at treasures half of the time on a big grid.
					if tr := h.Treasures(); rng.Intn(2) == 0 && len(tr) > 0 {
						pick := tr[rng.Intn(len(tr))]
						cmd.X, cmd.Y = pick.X, pick.Y
					}
				}
			}
			ups, res, err := h.Apply(cmd, nil)
			if cmd.Op == OpDig && (cmd.X < 0 || cmd.X >= w) {
				if !errors.Is(err, ErrOutOfGrid) {
					t.Fatalf("seed %d: dig off the grid: %v", seed, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("seed %d step %d: %v", seed, step, err)
			}
			for _, u := range ups {
				switch {
				case u.Kind.Reliable():
					if u.Seq != seq+1 {
						t.Fatalf("seed %d: reliable seq %d after %d", seed, u.Seq, seq)
					}
					seq = u.Seq
				case u.Seq != seq:
					t.Fatalf("seed %d: leaderboard seq %d, last reliable %d", seed, u.Seq, seq)
				}
				if u.Kind == KindClaimed {
					if claimed[u.Treasure] {
						t.Fatalf("seed %d: %s claimed twice", seed, u.Treasure)
					}
					claimed[u.Treasure] = true
					ref.add(u.Player, u.Points)
				}
				if u.Kind == KindLeaderboard || u.Kind == KindEnded {
					order := ref.order()
					if want := order[:min(TopSize, len(order))]; fmt.Sprint(u.Top) != fmt.Sprint(want) {
						t.Fatalf("seed %d: %s top %v, want %v", seed, u.Kind, u.Top, want)
					}
				}
			}
			if res.Dig.Found {
				order := ref.order()
				if order[res.Dig.Rank-1].Player != cmd.Player || res.Dig.Score != ref.score[cmd.Player] || res.Dig.Seq != seq-uint64(len(ups)-2) {
					t.Fatalf("seed %d: dig result %+v, reference %v", seed, res.Dig, order)
				}
			}
			if h.Seq() != seq || h.Status().TreasuresLeft != count-len(claimed) {
				t.Fatalf("seed %d: status %+v, seq %d, claimed %d", seed, h.Status(), seq, len(claimed))
			}
		}
		order := ref.order()
		for i, e := range order {
			if r, s, ok := h.Leaderboard().Rank(e.Player); !ok || r != i+1 || s != e.Score {
				t.Fatalf("seed %d: Rank(%s) %d %d, want %d %d", seed, e.Player, r, s, i+1, e.Score)
			}
		}
		if count > 0 && len(claimed) == count && !h.Ended() {
			t.Fatalf("seed %d: all treasures claimed but the hunt is open", seed)
		}
	}
}

// TestHuntZeroPointClaim: a treasure may be worth 0 points. Claiming one puts
// the digger on the board at 0, after whoever reached 0 before, so the claim
// shows in the top and has a rank; a player who only joined is not on it.
func TestHuntZeroPointClaim(t *testing.T) {
	h, err := NewHunt(Spec{ID: "h", Width: 3, Height: 1, Treasures: []Treasure{
		{ID: "a", X: 0, Y: 0}, {ID: "b", X: 1, Y: 0}, {ID: "c", X: 2, Y: 0, Points: 1},
	}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	h.Apply(Command{Op: OpJoin, Player: "watcher"}, nil)
	for i, tc := range []struct {
		player string
		x      int
		want   DigResult
		top    string
	}{
		{"ann", 0, DigResult{Found: true, Treasure: "a", Score: 0, Rank: 1, Seq: 1}, "[{ann 0}]"},
		{"bob", 1, DigResult{Found: true, Treasure: "b", Score: 0, Rank: 2, Seq: 2}, "[{ann 0} {bob 0}]"},
		{"bob", 2, DigResult{Found: true, Treasure: "c", Points: 1, Score: 1, Rank: 1, Seq: 3}, "[{bob 1} {ann 0}]"},
	} {
		_, res, err := h.Apply(Command{Op: OpDig, Player: tc.player, X: tc.x}, nil)
		if err != nil || res.Dig != tc.want || fmt.Sprint(h.Status().Top) != tc.top {
			t.Fatalf("dig %d: %+v %v top %v, want %+v %s", i, res.Dig, err, h.Status().Top, tc.want, tc.top)
		}
	}
	if _, _, ok := h.Leaderboard().Rank("watcher"); ok {
		t.Fatal("a player who never claimed has a rank")
	}
}
