package state

// btMax is the fan-out of the leaderboard's tree: a node holds up to 64 keys
// (about 1.3 KiB), so a million players sit in four levels, of which the
// upper three stay in cache.
const btMax = 64

// btKey orders players: higher score first, then who reached it first.
type btKey struct {
	score int64
	tick  uint64 // when the score was reached
}

// above reports whether a ranks above b.
func (a btKey) above(b btKey) bool {
	return a.score > b.score || (a.score == b.score && a.tick < b.tick)
}

// btNode is a node of the leaderboard's order-statistic B+tree. A leaf holds
// players in rank order; an inner node holds, for each child, a lower bound
// of its keys (keys[i]) and how many players are under it (val[i]), which is
// what makes rank O(log n): the players left of the path are counted, not
// visited.
type btNode struct {
	kids       []*btNode // inner nodes: len btMax; nil for a leaf
	prev, next *btNode   // leaves: neighbours in rank order
	n          int
	keys       [btMax]btKey
	val        [btMax]int32 // leaf: index into Leaderboard.players; inner: players under kids[i]
}

type btPlayer struct {
	name string
	key  btKey
}

// Leaderboard ranks players by score, best first; of two players with the
// same score the one who reached it first ranks higher. It is an
// order-statistic B+tree (each inner node counts the players under each
// child) plus a map from player to key: Add and Rank are O(log n) with a
// handful of cache misses even for millions of players, Top(k) walks the
// first leaves, and none of them allocates once a player is known (a node
// split allocates, once per ~32 new players). Players are never removed.
//
// A Leaderboard is not safe for concurrent use; a hunt's lock guards it.
type Leaderboard struct {
	root    *btNode
	first   *btNode // leftmost leaf
	players []btPlayer
	index   map[string]int32
	tick    uint64 // bumps on every score change: the tie-break clock
}

// NewLeaderboard returns an empty leaderboard.
func NewLeaderboard() *Leaderboard {
	leaf := &btNode{}
	return &Leaderboard{root: leaf, first: leaf, index: make(map[string]int32)}
}

// Len returns the number of players on the leaderboard.
func (lb *Leaderboard) Len() int { return len(lb.players) }

// lowerBound returns how many keys of leaf nd rank above k.
func (nd *btNode) lowerBound(k btKey) int {
	lo, hi := 0, nd.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if nd.keys[m].above(k) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// child returns the child of inner node nd whose range holds k: the last
// one whose lower bound is at or above k.
func (nd *btNode) child(k btKey) int {
	lo, hi := 1, nd.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if k.above(nd.keys[m]) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo - 1
}

// sumTo counts the players under the first c children of inner node nd.
func (nd *btNode) sumTo(c int) int {
	s := int32(0)
	for _, v := range nd.val[:c] {
		s += v
	}
	return int(s)
}

// total counts the players under nd.
func (nd *btNode) total() int32 {
	if nd.kids == nil {
		return int32(nd.n)
	}
	return int32(nd.sumTo(nd.n))
}

// split moves the upper half of a full node to a new right sibling.
func (nd *btNode) split() *btNode {
	m := nd.n / 2
	r := &btNode{n: nd.n - m}
	copy(r.keys[:], nd.keys[m:nd.n])
	copy(r.val[:], nd.val[m:nd.n])
	if nd.kids != nil {
		r.kids = make([]*btNode, btMax)
		copy(r.kids, nd.kids[m:nd.n])
		clear(nd.kids[m:nd.n])
	} else {
		r.prev, r.next = nd, nd.next
		if nd.next != nil {
			nd.next.prev = r
		}
		nd.next = r
	}
	nd.n = m
	return r
}

// put inserts key k with value v (and child kid for an inner node) at i.
func (nd *btNode) put(i int, k btKey, v int32, kid *btNode) {
	copy(nd.keys[i+1:nd.n+1], nd.keys[i:nd.n])
	copy(nd.val[i+1:nd.n+1], nd.val[i:nd.n])
	nd.keys[i], nd.val[i] = k, v
	if nd.kids != nil {
		copy(nd.kids[i+1:nd.n+1], nd.kids[i:nd.n])
		nd.kids[i] = kid
	}
	nd.n++
}

// cut removes entry i.
func (nd *btNode) cut(i int) {
	copy(nd.keys[i:], nd.keys[i+1:nd.n])
	copy(nd.val[i:], nd.val[i+1:nd.n])
	if nd.kids != nil {
		copy(nd.kids[i:], nd.kids[i+1:nd.n])
		nd.kids[nd.n-1] = nil
	}
	nd.n--
}

// insert adds player p with key k under nd. It returns the 0-based place of
// k among the players under nd and, if nd had to split, its new right
// sibling.
func (lb *Leaderboard) insert(nd *btNode, k btKey, p int32) (int, *btNode) {
	if nd.kids == nil {
		i := nd.lowerBound(k)
		var r *btNode
		if nd.n == btMax {
			r = nd.split()
			if i > nd.n {
				r.put(i-nd.n, k, p, nil)
				return i, r
			}
		}
		nd.put(i, k, p, nil)
		return i, r
	}
	c := nd.child(k)
	before := nd.sumTo(c)
	kid := nd.kids[c]
	pos, kr := lb.insert(kid, k, p)
	nd.val[c]++
	if kr == nil {
		return before + pos, nil
	}
	nd.val[c] = kid.total()
	var r *btNode
	at, into := c+1, nd
	if nd.n == btMax {
		r = nd.split()
		if at > nd.n {
			at, into = at-nd.n, r
		}
	}
	into.put(at, kr.keys[0], kr.total(), kr)
	return before + pos, r
}

// remove takes key k out from under nd and returns the 0-based place it
// had there. A child left empty is dropped; a small one is merged into a
// neighbour when both fit in 3/4 of a node, which keeps nodes at least
// about a third full on average.
func (lb *Leaderboard) remove(nd *btNode, k btKey) int {
	if nd.kids == nil {
		i := nd.lowerBound(k)
		nd.cut(i)
		return i
	}
	c := nd.child(k)
	before := nd.sumTo(c)
	kid := nd.kids[c]
	pos := lb.remove(kid, k)
	nd.val[c]--
	switch {
	case kid.n == 0:
		lb.unchain(kid)
		nd.cut(c)
	case kid.n < btMax/4:
		if c > 0 && nd.kids[c-1].n+kid.n <= btMax*3/4 {
			lb.merge(nd, c-1)
		} else if c+1 < nd.n && nd.kids[c+1].n+kid.n <= btMax*3/4 {
			lb.merge(nd, c)
		}
	}
	return before + pos
}

// merge moves child c+1 of nd into child c.
func (lb *Leaderboard) merge(nd *btNode, c int) {
	l, r := nd.kids[c], nd.kids[c+1]
	copy(l.keys[l.n:], r.keys[:r.n])
	copy(l.val[l.n:], r.val[:r.n])
	if l.kids != nil {
		copy(l.kids[l.n:], r.kids[:r.n])
		// child never reads keys[0], so r.keys[0] can rank below keys in
		// r's first child: once r's old first child was cut, keys between
		// nd's bound for r and r's next bound land in the new first one.
		// As a bound inside l it would send lookups of those keys to the
		// child before; nd's bound for r holds for every key under r.
		l.keys[l.n] = nd.keys[c+1]
	} else {
		lb.unchain(r)
	}
	l.n += r.n
	nd.val[c] += nd.val[c+1]
	nd.cut(c + 1)
}

// unchain takes leaf x out of the leaf list.
func (lb *Leaderboard) unchain(x *btNode) {
	if x.kids != nil {
		return
	}
	if x.prev != nil {
		x.prev.next = x.next
	} else {
		lb.first = x.next
	}
	if x.next != nil {
		x.next.prev = x.prev
	}
}

// place links key k of player p into the tree and returns its 1-based rank.
func (lb *Leaderboard) place(k btKey, p int32) int {
	pos, r := lb.insert(lb.root, k, p)
	if r != nil {
		old := lb.root
		root := &btNode{kids: make([]*btNode, btMax), n: 2}
		root.keys[0], root.val[0], root.kids[0] = old.keys[0], old.total(), old
		root.keys[1], root.val[1], root.kids[1] = r.keys[0], r.total(), r
		lb.root = root
	}
	return pos + 1
}

// unplace takes key k out of the tree and returns the rank it had.
func (lb *Leaderboard) unplace(k btKey) int {
	pos := lb.remove(lb.root, k)
	for lb.root.kids != nil && lb.root.n == 1 {
		lb.root = lb.root.kids[0]
	}
	if lb.root.kids == nil {
		lb.first = lb.root
		lb.root.prev, lb.root.next = nil, nil
	}
	return pos + 1
}

// Add adds delta to player's score (a new player starts at 0) and returns
// the new score and rank. A change of score counts as reaching the new score
// now, after everyone already on it; delta 0 changes nothing.
//
// The leaderboard keeps player: pass a string that is never modified (not
// one aliasing a reused buffer).
func (lb *Leaderboard) Add(player string, delta int64) (score int64, rank int) {
	score, rank, _ = lb.add(player, delta)
	return score, rank
}

// add is Add that also returns the rank before the change (0 for a new
// player), which taking the old key out of the tree yields anyway.
func (lb *Leaderboard) add(player string, delta int64) (score int64, rank, oldRank int) {
	p, ok := lb.index[player]
	if !ok {
		lb.tick++
		p = int32(len(lb.players))
		k := btKey{score: delta, tick: lb.tick}
		lb.players = append(lb.players, btPlayer{name: player, key: k})
		lb.index[player] = p
		return delta, lb.place(k, p), 0
	}
	x := &lb.players[p]
	if delta == 0 {
		r := lb.rankOf(x.key)
		return x.key.score, r, r
	}
	oldRank = lb.unplace(x.key)
	lb.tick++
	x.key = btKey{score: x.key.score + delta, tick: lb.tick}
	return x.key.score, lb.place(x.key, p), oldRank
}

// rankOf returns the 1-based rank of a key in the tree.
func (lb *Leaderboard) rankOf(k btKey) int {
	r := 0
	nd := lb.root
	for nd.kids != nil {
		c := nd.child(k)
		r += nd.sumTo(c)
		nd = nd.kids[c]
	}
	return r + nd.lowerBound(k) + 1
}

// Rank returns player's 1-based rank and score; ok is false for a player
// Add was never called for. A player added with 0 points (a hunt's claim of
// a 0-point treasure) is on the board and has a rank.
func (lb *Leaderboard) Rank(player string) (rank int, score int64, ok bool) {
	p, ok := lb.index[player]
	if !ok {
		return 0, 0, false
	}
	k := lb.players[p].key
	return lb.rankOf(k), k.score, true
}

// Top appends the best k players, best first, to dst and returns it. It
// walks the first leaves, no sort; with a dst of capacity k it does not
// allocate.
func (lb *Leaderboard) Top(dst []Entry, k int) []Entry {
	for nd := lb.first; nd != nil && k > 0; nd = nd.next {
		for i := 0; i < nd.n && k > 0; i, k = i+1, k-1 {
			p := &lb.players[nd.val[i]]
			dst = append(dst, Entry{Player: p.name, Score: p.key.score})
		}
	}
	return dst
}

// Page appends to dst the players ranked offset+1 to offset+limit, best
// first, and returns it. It descends the tree by the counts of the inner
// nodes to the leaf holding rank offset+1 (O(log n)) and walks the leaves
// from there, so a page deep in a board of millions costs what the first
// page costs; with a dst of capacity limit it does not allocate.
func (lb *Leaderboard) Page(dst []Entry, offset, limit int) []Entry {
	if offset < 0 || limit <= 0 || offset >= len(lb.players) {
		return dst
	}
	nd, i := lb.root, offset
	for nd.kids != nil {
		c := 0
		for c < nd.n-1 && i >= int(nd.val[c]) {
			i -= int(nd.val[c])
			c++
		}
		nd = nd.kids[c]
	}
	for ; nd != nil && limit > 0; nd, i = nd.next, 0 {
		for ; i < nd.n && limit > 0; i, limit = i+1, limit-1 {
			p := &lb.players[nd.val[i]]
			dst = append(dst, Entry{Player: p.name, Score: p.key.score})
		}
	}
	return dst
}
