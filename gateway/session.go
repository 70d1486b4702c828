package gateway

import (
	"github.com/huntgate/huntgate/conn"
)

// endpoint is what a connection was upgraded on; it is also the conn tag.
type endpoint uint8

const (
	epNone endpoint = iota
	epWS
	epEcho
	epFanout
)

// pendingHunt is the id of a membership whose hunt has no node id yet (a
// first join on the node, checked at a blocking engine): no push carries it.
const pendingHunt = ^uint32(0)

// joinedHunt is one hunt a session has joined.
type joinedHunt struct {
	id    uint32 // gateway hunt id: index of the loop's member lists, latest-value key; or pendingHunt
	pos   int32  // index of the session's handle in the loop's member list of the hunt
	name  string // hunt id as the engine knows it
	epoch uint64 // epoch of last
	last  uint64 // seq of the last reliable update delivered; later copies at or below it are skipped

	// holds counts engine calls in flight on a blocking engine (digs, the
	// join itself); while > 0, pushes of the hunt are held, so that a digger
	// gets dug before the claimed push and a joiner gets joined (and its
	// replay) before the live stream, with nothing lost in between.
	holds int32
	// joining marks a membership whose engine join is still in flight (a
	// blocking engine): a leave meanwhile is answered at once, and the join
	// is answered not_joined when it comes back and finds the membership
	// gone: by finishJoin, which makes the one engine leave, or, for a first
	// join of the hunt on the node still at its Status check, by joinHeld,
	// before any engine join (nothing to leave).
	joining bool
	held    []*push
	// heldN and heldB are the frames and bytes of held; heldN is -1 once
	// held passed the connection's queue bounds and the connection was
	// closed "slow": nothing more is held for it. board is the index+1 in
	// held of the leaderboard held, which a newer one replaces.
	heldN, board int32
	heldB        int
	// gen tells this membership from a later one of the same hunt: an engine
	// call made for it may come back after a leave and a new join, and must
	// then neither end the new one's holds nor take its join for its own.
	gen uint64
}

// session is the per-connection state of the gateway, kept in a per-loop
// table indexed by Handle.Index() and touched only on that loop. h is the full
// handle: a session whose h differs from the caller's is someone else's.
//
// Every open connection has one, so it is kept small: an idle /ws session
// holds its handle, its player id (the only per-session heap object) and its
// rate bucket; the hunts a token restricts it to and the joined hunts are
// allocated only when present.
type session struct {
	h      conn.Handle
	player string
	allow  *[]string // hunts the token allows; nil = any
	joined []joinedHunt
	bucket tokenBucket // inbound message rate
	pos    int32       // index in the loop's /fanout list
	ep     endpoint
	open   bool
	closed bool // OnClose seen while a walk was in progress; cleanup pending
}

// allows reports whether the session's token lets it join hunt.
func (s *session) allows(hunt []byte) bool {
	if s.allow == nil {
		return true
	}
	id := Identity{Player: s.player, Hunts: *s.allow}
	return id.Allows(hunt)
}

// sessionChunk is the growth step of a loop's session table: the table
// follows the connection count without copying itself (no garbage twice its
// size while connections arrive).
const sessionChunk = 1024

// sessionTable is a loop's sessions indexed by Handle.Index().
type sessionTable struct {
	chunks []*[sessionChunk]session
}

// at returns the session record of index i, or nil beyond the table.
func (t *sessionTable) at(i uint32) *session {
	c := int(i / sessionChunk)
	if c >= len(t.chunks) {
		return nil
	}
	return &t.chunks[c][i%sessionChunk]
}

// grow returns the session record of index i, growing the table.
func (t *sessionTable) grow(i uint32) *session {
	for int(i/sessionChunk) >= len(t.chunks) {
		t.chunks = append(t.chunks, new([sessionChunk]session))
	}
	return t.at(i)
}

// each calls fn for every session record.
func (t *sessionTable) each(fn func(s *session)) {
	for _, c := range t.chunks {
		for i := range c {
			fn(&c[i])
		}
	}
}

// find returns the session's entry for hunt id, or nil.
func (s *session) find(id uint32) *joinedHunt {
	for i := range s.joined {
		if s.joined[i].id == id {
			return &s.joined[i]
		}
	}
	return nil
}

// findName returns the index of the session's entry for the hunt named name, or -1.
func (s *session) findName(name []byte) int {
	for i := range s.joined {
		if s.joined[i].name == string(name) {
			return i
		}
	}
	return -1
}

// findString is findName for a string.
func (s *session) findString(name string) int {
	for i := range s.joined {
		if s.joined[i].name == name {
			return i
		}
	}
	return -1
}

// findGen returns the index of the session's membership gen, or -1.
func (s *session) findGen(gen uint64) int {
	for i := range s.joined {
		if s.joined[i].gen == gen {
			return i
		}
	}
	return -1
}
