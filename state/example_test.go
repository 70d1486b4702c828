package state_test

import (
	"context"
	"fmt"

	"github.com/huntgate/huntgate/state"
)

// A hunt on the memory engine: a player digs the only treasure, every
// update goes to the sink in seq order, and the claim of the last treasure
// ends the hunt.
func Example() {
	ctx := context.Background()
	eng := state.NewMemory(state.MemoryConfig{Epoch: 7})
	defer eng.Close()
	eng.Subscribe(func(u state.Update) {
		fmt.Printf("update seq=%d kind=%s treasure=%s player=%s top=%v\n", u.Seq, u.Kind, u.Treasure, u.Player, u.Top)
	})

	_, err := eng.Create(ctx, state.Spec{ID: "cave", Width: 8, Height: 8, Treasures: []state.Treasure{{ID: "ruby", X: 3, Y: 4, Points: 50}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	st, _ := eng.Join(ctx, "cave", "ann")
	fmt.Printf("joined epoch=%d seq=%d players=%d\n", st.Epoch, st.Seq, st.Players)

	r, _ := eng.Dig(ctx, "cave", "ann", 0, 0)
	fmt.Printf("dug found=%v\n", r.Found)
	r, _ = eng.Dig(ctx, "cave", "ann", 3, 4)
	fmt.Printf("dug found=%v treasure=%s score=%d rank=%d seq=%d\n", r.Found, r.Treasure, r.Score, r.Rank, r.Seq)

	// A client that saw seq 1 resumes with the one update it missed.
	ups, ok, _ := eng.History(ctx, "cave", 7, 1)
	fmt.Printf("resume ok=%v replay=%d kind=%s\n", ok, len(ups), ups[0].Kind)
	// Output:
	// joined epoch=7 seq=0 players=1
	// dug found=false
	// update seq=1 kind=claimed treasure=ruby player=ann top=[]
	// update seq=1 kind=leaderboard treasure= player= top=[{ann 50}]
	// update seq=2 kind=ended treasure= player= top=[{ann 50}]
	// dug found=true treasure=ruby score=50 rank=1 seq=1
	// resume ok=true replay=1 kind=ended
}

// The rules without an engine: Apply turns a command into updates.
func ExampleHunt_Apply() {
	h, _ := state.NewHunt(state.Spec{ID: "h", Width: 2, Height: 1, Treasures: []state.Treasure{{ID: "a", X: 1, Y: 0, Points: 3}, {ID: "b", X: 0, Y: 0, Points: 4}}}, 1)
	ups, res, _ := h.Apply(state.Command{Op: state.OpDig, Player: "bob", X: 1, Y: 0}, nil)
	for _, u := range ups {
		fmt.Println(u.Seq, u.Kind)
	}
	fmt.Println(res.Dig.Treasure, res.Dig.Score, h.Status().TreasuresLeft)
	// Output:
	// 1 claimed
	// 1 leaderboard
	// a 3 1
}

// Ties go to whoever reached the score first.
func ExampleLeaderboard() {
	lb := state.NewLeaderboard()
	lb.Add("ann", 10)
	lb.Add("bob", 20)
	lb.Add("cid", 5)
	lb.Add("cid", 5) // cid reaches 10 after ann did
	fmt.Println(lb.Top(nil, 3))
	rank, score, _ := lb.Rank("cid")
	fmt.Println(rank, score)
	// Output:
	// [{bob 20} {ann 10} {cid 10}]
	// 3 10
}
