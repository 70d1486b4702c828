package state

import (
	"fmt"
	"math/rand"
	"sort"
	"testing"
)

// checkInvariants verifies the tree: keys in rank order, every count, every
// separator, equal leaf depth, the leaf chain, and the player table.
func checkInvariants(t *testing.T, lb *Leaderboard) {
	t.Helper()
	if n := checkTree(t, lb); n != lb.Len() || len(lb.index) != lb.Len() {
		t.Fatalf("tree holds %d, Len %d, index %d", n, lb.Len(), len(lb.index))
	}
}

// checkTree verifies the tree alone and returns how many keys it holds.
func checkTree(t *testing.T, lb *Leaderboard) int {
	t.Helper()
	var leaves []*btNode
	var keys []btKey
	depth := -1
	var walk func(nd *btNode, d int) int32
	walk = func(nd *btNode, d int) int32 {
		if nd != lb.root && nd.n == 0 {
			t.Fatalf("empty node at depth %d", d)
		}
		if nd.kids == nil {
			if depth >= 0 && depth != d {
				t.Fatalf("leaves at depths %d and %d", depth, d)
			}
			depth = d
			leaves = append(leaves, nd)
			for i := 0; i < nd.n; i++ {
				keys = append(keys, nd.keys[i])
				if lb.players[nd.val[i]].key != nd.keys[i] {
					t.Fatalf("leaf key %v, player table %v", nd.keys[i], lb.players[nd.val[i]].key)
				}
			}
			return int32(nd.n)
		}
		var sum int32
		for i := 0; i < nd.n; i++ {
			from := len(keys)
			got := walk(nd.kids[i], d+1)
			if got != nd.val[i] {
				t.Fatalf("depth %d child %d counts %d, holds %d", d, i, nd.val[i], got)
			}
			if i > 0 {
				if nd.keys[i].above(keys[from]) == false && nd.keys[i] != keys[from] {
					t.Fatalf("separator %v below the first key %v of its child", nd.keys[i], keys[from])
				}
				if from > 0 && !keys[from-1].above(nd.keys[i]) {
					t.Fatalf("separator %v not below the previous child's last key %v", nd.keys[i], keys[from-1])
				}
			}
			sum += got
		}
		return sum
	}
	walk(lb.root, 0)
	for i := 1; i < len(keys); i++ {
		if !keys[i-1].above(keys[i]) {
			t.Fatalf("keys out of order at %d", i)
		}
	}
	if lb.first != leaves[0] {
		t.Fatal("first is not the leftmost leaf")
	}
	for i, l := range leaves {
		var prev, next *btNode
		if i > 0 {
			prev = leaves[i-1]
		}
		if i+1 < len(leaves) {
			next = leaves[i+1]
		}
		if l.prev != prev || l.next != next {
			t.Fatalf("leaf chain broken at leaf %d", i)
		}
	}
	return len(keys)
}

// TestLeaderboardTreeDrain takes every key out of a deep tree in random
// order: the tree must shrink back to one leaf through merges and root
// collapses, ranks staying right all the way.
func TestLeaderboardTreeDrain(t *testing.T) {
	lb := NewLeaderboard()
	const n = 20000
	for i := 0; i < n; i++ {
		lb.Add(fmt.Sprint(i), int64(i%97))
	}
	checkInvariants(t, lb)
	rng := rand.New(rand.NewSource(3))
	for left, i := n, 0; left > 0; left, i = left-1, i+1 {
		// A key's rank is its place among the keys still in the tree.
		p := lb.players[rng.Intn(n)]
		for lb.players[lb.index[p.name]].key.tick == 0 {
			p = lb.players[rng.Intn(n)]
		}
		want := lb.rankOf(p.key)
		if got := lb.unplace(p.key); got != want {
			t.Fatalf("unplace rank %d, rankOf said %d", got, want)
		}
		lb.players[lb.index[p.name]].key.tick = 0 // mark gone
		if i%1000 == 0 || left < 100 {
			if got := checkTree(t, lb); got != left-1 {
				t.Fatalf("tree holds %d, want %d", got, left-1)
			}
		}
	}
	if lb.root.kids != nil || lb.root.n != 0 || lb.first != lb.root {
		t.Fatalf("drained tree: root leaf %v, n %d", lb.root.kids == nil, lb.root.n)
	}
}

func TestLeaderboardTable(t *testing.T) {
	type add struct {
		player string
		delta  int64
		score  int64
		rank   int
	}
	tests := []struct {
		name string
		adds []add
		top  []Entry
	}{
		{
			name: "higher score first",
			adds: []add{{"a", 5, 5, 1}, {"b", 7, 7, 1}, {"c", 6, 6, 2}},
			top:  []Entry{{"b", 7}, {"c", 6}, {"a", 5}},
		},
		{
			name: "tie goes to who reached it first",
			adds: []add{{"a", 5, 5, 1}, {"b", 5, 5, 2}, {"c", 5, 5, 3}},
			top:  []Entry{{"a", 5}, {"b", 5}, {"c", 5}},
		},
		{
			name: "reaching a tied score later ranks lower",
			adds: []add{{"a", 3, 3, 1}, {"b", 5, 5, 1}, {"a", 2, 5, 2}},
			top:  []Entry{{"b", 5}, {"a", 5}},
		},
		{
			name: "overtaken, then catching up, stays below",
			adds: []add{{"a", 5, 5, 1}, {"b", 5, 5, 2}, {"b", 1, 6, 1}, {"a", 1, 6, 2}, {"c", 6, 6, 3}},
			top:  []Entry{{"b", 6}, {"a", 6}, {"c", 6}},
		},
		{
			name: "passing someone",
			adds: []add{{"a", 3, 3, 1}, {"b", 5, 5, 1}, {"a", 3, 6, 1}},
			top:  []Entry{{"a", 6}, {"b", 5}},
		},
		{
			name: "zero delta keeps the tie position",
			adds: []add{{"a", 5, 5, 1}, {"b", 5, 5, 2}, {"a", 0, 5, 1}},
			top:  []Entry{{"a", 5}, {"b", 5}},
		},
		{
			name: "negative delta moves down",
			adds: []add{{"a", 5, 5, 1}, {"b", 4, 4, 2}, {"a", -2, 3, 2}},
			top:  []Entry{{"b", 4}, {"a", 3}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lb := NewLeaderboard()
			for i, a := range tt.adds {
				s, r := lb.Add(a.player, a.delta)
				if s != a.score || r != a.rank {
					t.Fatalf("add %d (%s %+d): got score %d rank %d, want %d %d", i, a.player, a.delta, s, r, a.score, a.rank)
				}
			}
			got := lb.Top(nil, 10)
			if fmt.Sprint(got) != fmt.Sprint(tt.top) {
				t.Fatalf("top %v, want %v", got, tt.top)
			}
			for i, e := range tt.top {
				r, s, ok := lb.Rank(e.Player)
				if !ok || r != i+1 || s != e.Score {
					t.Fatalf("Rank(%s) = %d %d %v, want %d %d", e.Player, r, s, ok, i+1, e.Score)
				}
			}
			if _, _, ok := lb.Rank("nobody"); ok {
				t.Fatal("Rank of an unknown player is ok")
			}
			checkInvariants(t, lb)
		})
	}
}

// bruteRank is the reference ranking: sort by score desc, then by when the
// score was reached.
type bruteRank struct {
	score map[string]int64
	tick  map[string]int
	now   int
}

func (b *bruteRank) add(p string, d int64) {
	if _, ok := b.score[p]; ok && d == 0 {
		return
	}
	b.now++
	b.score[p] += d
	b.tick[p] = b.now
}

// rank counts who is above p: O(n), no sort.
func (b *bruteRank) rank(p string) int {
	r := 1
	for q, s := range b.score {
		if s > b.score[p] || (s == b.score[p] && b.tick[q] < b.tick[p]) {
			r++
		}
	}
	return r
}

func (b *bruteRank) order() []Entry {
	out := make([]Entry, 0, len(b.score))
	for p, s := range b.score {
		out = append(out, Entry{p, s})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		return b.tick[out[i].Player] < b.tick[out[j].Player]
	})
	return out
}

func TestLeaderboardMatchesBruteForce(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewSource(seed))
		lb := NewLeaderboard()
		ref := &bruteRank{score: map[string]int64{}, tick: map[string]int{}}
		players := 1 + rng.Intn(200)
		for step := 0; step < 2000; step++ {
			p := fmt.Sprintf("p%d", rng.Intn(players))
			d := int64(rng.Intn(7)) // small scores: many ties
			if seed%4 == 0 {
				d -= 2 // some boards take negative deltas too
			}
			ref.add(p, d)
			s, r := lb.Add(p, d)
			if want := ref.rank(p); r != want || s != ref.score[p] {
				t.Fatalf("seed %d step %d: Add(%s,%d) = %d rank %d, want %d rank %d", seed, step, p, d, s, r, ref.score[p], want)
			}
			if step%97 == 0 {
				order := ref.order()
				for i, e := range order {
					rk, sc, ok := lb.Rank(e.Player)
					if !ok || rk != i+1 || sc != e.Score {
						t.Fatalf("seed %d step %d: Rank(%s) = %d %d %v, want %d %d", seed, step, e.Player, rk, sc, ok, i+1, e.Score)
					}
				}
				k := rng.Intn(15)
				top := lb.Top(nil, k)
				want := order[:min(k, len(order))]
				if fmt.Sprint(top) != fmt.Sprint(want) {
					t.Fatalf("seed %d step %d: Top(%d) = %v, want %v", seed, step, k, top, want)
				}
				checkInvariants(t, lb)
			}
		}
		if lb.Len() != len(ref.score) {
			t.Fatalf("seed %d: Len %d, want %d", seed, lb.Len(), len(ref.score))
		}
		checkInvariants(t, lb)
	}
}

func TestLeaderboardMillionPlayers(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("builds a 10^6-player board; too slow for -short and -race")
	}
	const n = 1_000_000
	lb := NewLeaderboard()
	names := playerNames(n)
	for i, p := range names {
		lb.Add(p, int64(i%1000))
	}
	if lb.Len() != n {
		t.Fatalf("Len %d", lb.Len())
	}
	// Player 999 was the first to reach 999, player 1999 the second, ...
	top := lb.Top(nil, 3)
	want := []Entry{{names[999], 999}, {names[1999], 999}, {names[2999], 999}}
	if fmt.Sprint(top) != fmt.Sprint(want) {
		t.Fatalf("top %v, want %v", top, want)
	}
	// Player 0 is the first of the 1000 players on 0: rank n-999.
	if r, _, _ := lb.Rank(names[0]); r != n-999 {
		t.Fatalf("rank of %s = %d, want %d", names[0], r, n-999)
	}
	if s, r := lb.Add(names[0], 1000); s != 1000 || r != 1 {
		t.Fatalf("Add to the bottom player: %d %d, want 1000 1", s, r)
	}
}

func playerNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("player-%07d", i)
	}
	return out
}

// TestLeaderboardChurn moves whole regions of a deep tree: a block of
// players on 0 all climb, emptying leaves and inner nodes (removal, merge,
// root collapse paths), then random gains and losses; the tree and the
// ranks are checked against the reference along the way.
func TestLeaderboardChurn(t *testing.T) {
	n := 30000
	if raceEnabled {
		n = 5000
	}
	rng := rand.New(rand.NewSource(7))
	lb := NewLeaderboard()
	ref := &bruteRank{score: map[string]int64{}, tick: map[string]int{}}
	names := playerNames(n)
	verify := func(stage string) {
		t.Helper()
		checkInvariants(t, lb)
		for i, e := range ref.order() {
			if i%7 != 0 {
				continue
			}
			if r, s, ok := lb.Rank(e.Player); !ok || r != i+1 || s != e.Score {
				t.Fatalf("%s: Rank(%s) = %d %d %v, want %d %d", stage, e.Player, r, s, ok, i+1, e.Score)
			}
		}
	}
	add := func(p string, d int64) {
		ref.add(p, d)
		s, r := lb.Add(p, d)
		if s != ref.score[p] {
			t.Fatalf("Add(%s,%d) score %d, want %d", p, d, s, ref.score[p])
		}
		_ = r
	}
	for _, p := range names {
		add(p, 0)
	}
	verify("all on zero")
	for i, j := range rng.Perm(n) {
		add(names[j], 1+int64(rng.Intn(5)))
		if i%5000 == 0 {
			checkInvariants(t, lb)
		}
	}
	verify("all climbed")
	for i := 0; i < 4*n; i++ {
		add(names[rng.Intn(n)], int64(rng.Intn(11)-5))
		if i%20000 == 0 {
			checkInvariants(t, lb)
		}
	}
	verify("random churn")
	// Everyone drops below everyone else in turn: the tree drains from the
	// top to the bottom.
	for _, e := range ref.order() {
		add(e.Player, -1000)
	}
	verify("all dropped")
}

// TestLeaderboardMergeKeepsSeparators builds the case where an inner node's
// first bound has gone stale (its first leaf emptied, then a key that ranks
// above the new bound went into the new first leaf) and then merges that
// node into its left sibling. The bound it brings along must still lie at or
// above every key of that leaf, or lookups of those keys take the wrong path.
func TestLeaderboardMergeKeepsSeparators(t *testing.T) {
	lb := NewLeaderboard()
	ref := &bruteRank{score: map[string]int64{}, tick: map[string]int{}}
	add := func(p string, d int64) {
		ref.add(p, d)
		lb.Add(p, d)
	}
	const n = 5000
	for i, p := range playerNames(n) {
		add(p, int64(10*(n-i))) // every player lands last: half-full nodes
	}
	root := lb.root
	if root.kids == nil || root.n < 3 || root.kids[1].kids == nil || root.kids[1].kids[0].kids != nil {
		t.Fatal("want a root over at least three inner nodes over leaves")
	}
	y := root.kids[1]
	low := int64(-1)
	sink := func(p string) { // to the very bottom, under the last inner node
		add(p, low-ref.score[p])
		low--
	}
	// Fill y's second leaf so that its first one empties instead of merging.
	second := y.kids[1].keys[0].score
	for i := 0; y.kids[1].n <= btMax*3/4; i++ {
		add(fmt.Sprint("fill", i), second-1-int64(i%9))
	}
	for _, p := range leafPlayers(lb, y.kids[0]) {
		sink(p)
	}
	// Between the root's bound for y and y's own, now lower, first bound.
	k := (root.keys[1].score + y.keys[0].score) / 2
	if k >= root.keys[1].score || k <= y.keys[0].score {
		t.Fatalf("no room for a key between bounds %v and %v", root.keys[1], y.keys[0])
	}
	add("k", k)
	// Empty y from its last leaf until it merges into its left sibling.
	for root.kids[1] == y && y.n > 1 {
		sink(leafPlayers(lb, y.kids[y.n-1])[0])
	}
	if root.kids[1] == y {
		t.Fatal("y never merged")
	}
	add("k", 1)
	add("k2", k)
	checkInvariants(t, lb)
	for i, e := range ref.order() {
		if r, s, ok := lb.Rank(e.Player); !ok || r != i+1 || s != e.Score {
			t.Fatalf("Rank(%s) = %d %d %v, want %d %d", e.Player, r, s, ok, i+1, e.Score)
		}
	}
}

// leafPlayers lists the players under nd in rank order.
func leafPlayers(lb *Leaderboard, nd *btNode) []string {
	if nd.kids == nil {
		out := make([]string, nd.n)
		for i := range out {
			out[i] = lb.players[nd.val[i]].name
		}
		return out
	}
	var out []string
	for _, kid := range nd.kids[:nd.n] {
		out = append(out, leafPlayers(lb, kid)...)
	}
	return out
}
