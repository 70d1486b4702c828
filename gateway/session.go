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

// joinedHunt is one hunt a session has joined.
type joinedHunt struct {
	id    uint32 // gateway hunt id: index of the loop's member lists, latest-value key
	pos   int32  // index of the session's handle in the loop's member list of the hunt
	name  string // hunt id as the engine knows it
	epoch uint64 // epoch of last
	last  uint64 // seq of the last reliable update delivered; later copies at or below it are skipped

	// holds counts engine calls in flight on a blocking engine (digs, the
	// join itself); while > 0, pushes of the hunt are held, so that a digger
	// gets dug before the claimed push and a joiner gets joined (and its
	// replay) before the live stream, with nothing lost in between.
	holds int32
	held  []*push
}

// session is the per-connection state of the gateway, kept in a per-loop
// table indexed by Handle.Index() and touched only on that loop. h is the full
// handle: a session whose h differs from the caller's is someone else's.
type session struct {
	h      conn.Handle
	ep     endpoint
	open   bool
	closed bool // OnClose seen while a walk was in progress; cleanup pending
	id     Identity
	joined []joinedHunt
	pos    int32 // index in the loop's /fanout list

	bucket tokenBucket // inbound message rate
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
