package state

import (
	"fmt"
	"testing"
)

// FuzzLeaderboard reads the input as (player, delta) byte pairs and checks
// every Add, and the final board, against the brute-force ranking.
func FuzzLeaderboard(f *testing.F) {
	f.Add([]byte{0, 5, 1, 5, 2, 5, 0, 0})
	f.Add([]byte{1, 200, 1, 56, 3, 1, 3, 255})
	f.Fuzz(func(t *testing.T, ops []byte) {
		lb := NewLeaderboard()
		ref := &bruteRank{score: map[string]int64{}, tick: map[string]int{}}
		for i := 0; i+1 < len(ops); i += 2 {
			p := fmt.Sprint("p", ops[i]%64)
			d := int64(int8(ops[i+1])) // negative deltas too
			ref.add(p, d)
			s, r := lb.Add(p, d)
			if want := ref.rank(p); s != ref.score[p] || r != want {
				t.Fatalf("op %d: Add(%s,%d) = %d rank %d, want %d rank %d", i/2, p, d, s, r, ref.score[p], want)
			}
		}
		order := ref.order()
		if got := lb.Top(nil, len(order)); fmt.Sprint(got) != fmt.Sprint(order) {
			t.Fatalf("board %v, want %v", got, order)
		}
		checkInvariants(t, lb)
	})
}

// FuzzSpec checks that Validate never panics and that whatever it accepts
// lays out and digs without panicking either.
func FuzzSpec(f *testing.F) {
	f.Add("h", 4, 4, 3, int64(1), int64(9), "a", 1, 2, int64(5))
	f.Add("", -1, 0, -5, int64(0), int64(0), "", -1, 99, int64(-1))
	f.Fuzz(func(t *testing.T, id string, w, h, count int, seed, maxPts int64, tid string, x, y int, pts int64) {
		w, h = w%3000, h%3000 // keep layouts small
		specs := []Spec{
			{ID: id, Width: w, Height: h, Random: &RandomSpec{Count: count % 5000, Seed: seed, MaxPoints: maxPts}},
			{ID: id, Width: w, Height: h, Treasures: []Treasure{{ID: tid, X: x, Y: y, Points: pts}}},
		}
		for _, s := range specs {
			hunt, err := NewHunt(s, 1)
			if err != nil {
				continue
			}
			for _, tr := range hunt.Treasures() {
				_, res, err := hunt.Apply(Command{Op: OpDig, Player: "p", X: tr.X, Y: tr.Y}, nil)
				if err != nil || !res.Dig.Found || res.Dig.Treasure != tr.ID {
					t.Fatalf("dig on treasure %+v: %+v %v", tr, res.Dig, err)
				}
			}
			if len(hunt.Treasures()) > 0 && !hunt.Ended() {
				t.Fatal("open after every treasure was claimed")
			}
			if _, _, err := hunt.Apply(Command{Op: OpDig, Player: "p", X: x, Y: y}, nil); err == nil && hunt.Ended() {
				t.Fatal("dig on an ended hunt succeeded")
			}
		}
	})
}
