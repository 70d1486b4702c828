package gateway

import (
	"sync/atomic"

	"github.com/huntgate/huntgate/conn"
	"github.com/huntgate/huntgate/framing"
)

// loopState is the gateway's state for one conn loop. Everything in it except
// the atomic counters is touched only on that loop's goroutine (handler
// callbacks, posted functions, timers), so it needs no locks.
type loopState struct {
	g  *Gateway
	id int

	sessions sessionTable    // indexed by Handle.Index()
	members  [][]conn.Handle // hunt id -> handles of this loop joined to it
	fanout   []conn.Handle   // connections on /fanout

	gens    uint64        // last joinedHunt.gen given out
	walking int           // > 0 while a member list is being walked
	pending []conn.Handle // closes seen during a walk, cleaned up after it

	req     request
	scratch []byte // decoder scratch for escaped strings
	buf     []byte // reply encoding buffer

	conns    atomic.Int64 // open connections of this loop
	accepted atomic.Int64 // connections upgraded since start
}

func newLoopState(g *Gateway, id int) *loopState {
	return &loopState{
		g:       g,
		id:      id,
		scratch: make([]byte, 0, 256),
		buf:     make([]byte, 0, 4096),
	}
}

// get returns the session of h, or nil if h is not (or no longer) one of ours.
func (ls *loopState) get(h conn.Handle) *session {
	s := ls.sessions.at(h.Index())
	if s == nil || s.h != h || s.closed {
		return nil
	}
	return s
}

// slot returns the session record for h's index, growing the table.
func (ls *loopState) slot(h conn.Handle) *session {
	return ls.sessions.grow(h.Index())
}

// reply writes ls.buf (just encoded) to h as one text message.
func (ls *loopState) reply(l *conn.Loop, h conn.Handle) {
	_ = l.Write(h, framing.OpText, ls.buf)
}

// fail answers a request with an error.
func (ls *loopState) fail(l *conn.Loop, h conn.Handle, ref []byte, e *protoError) {
	ls.g.m.countError(e)
	ls.buf = appendError(ls.buf[:0], ref, e)
	ls.reply(l, h)
}

// addMember puts s in the member list of hunt info and returns its entry.
func (ls *loopState) addMember(s *session, info *huntInfo) *joinedHunt {
	ls.gens++
	s.joined = append(s.joined, joinedHunt{gen: ls.gens})
	j := &s.joined[len(s.joined)-1]
	ls.bind(s, j, info)
	return j
}

// addPending adds a membership of s to the hunt named name, which has no node
// id yet: it is in no member list and gets no pushes until bind. Its join is
// in flight, with a hold.
func (ls *loopState) addPending(s *session, name string) *joinedHunt {
	ls.gens++
	s.joined = append(s.joined, joinedHunt{id: pendingHunt, pos: -1, name: name, gen: ls.gens, holds: 1, joining: true})
	return &s.joined[len(s.joined)-1]
}

// bind gives s's membership j the id of hunt info and puts s in its member list.
func (ls *loopState) bind(s *session, j *joinedHunt, info *huntInfo) {
	id := int(info.id)
	for id >= len(ls.members) {
		ls.members = append(ls.members, nil)
	}
	ls.members[id] = append(ls.members[id], s.h)
	j.id, j.name, j.pos = info.id, info.name, int32(len(ls.members[id])-1)
}

// removeMember drops s's i-th joined hunt: a swap-remove in the member list
// (fixing the moved session's position) and in s.joined.
func (ls *loopState) removeMember(s *session, i int) {
	j := s.joined[i]
	if j.id != pendingHunt {
		list := ls.members[j.id]
		last := len(list) - 1
		if int(j.pos) != last {
			moved := list[last]
			list[j.pos] = moved
			if ms := ls.sessions.at(moved.Index()); ms.h == moved {
				if mj := ms.find(j.id); mj != nil {
					mj.pos = j.pos
				}
			}
		}
		list[last] = 0
		ls.members[j.id] = list[:last]
	}
	n := len(s.joined) - 1
	clear(s.joined[i].held)
	s.joined[i] = s.joined[n]
	s.joined[n] = joinedHunt{}
	s.joined = s.joined[:n]
}

// cleanup releases everything a closed session holds on this loop and in the engine.
func (ls *loopState) cleanup(s *session) {
	g := ls.g
	for len(s.joined) > 0 {
		j := s.joined[len(s.joined)-1]
		ls.removeMember(s, len(s.joined)-1)
		if !j.joining { // else finishJoin leaves, finding the session gone
			g.leaveEngine(j.name, s.player)
		}
	}
	if s.ep == epFanout && s.open {
		ls.removeFanout(s)
	}
	if s.open {
		ls.conns.Add(-1)
		g.m.conns.Add(-1)
	}
	// The joined list is not kept for the slot's next connection: most
	// connections never join, and an idle one should hold no slice.
	*s = session{}
}

func (ls *loopState) removeFanout(s *session) {
	last := len(ls.fanout) - 1
	if int(s.pos) != last {
		moved := ls.fanout[last]
		ls.fanout[s.pos] = moved
		ls.sessions.at(moved.Index()).pos = s.pos
	}
	ls.fanout[last] = 0
	ls.fanout = ls.fanout[:last]
}

// beginWalk and endWalk bracket a walk over a member list: a connection
// closed while sending (for instance a slow one) is cleaned up after the
// walk, so the list is not changed under the walker.
func (ls *loopState) beginWalk() { ls.walking++ }

func (ls *loopState) endWalk() {
	ls.walking--
	if ls.walking > 0 || len(ls.pending) == 0 {
		return
	}
	for k, h := range ls.pending {
		ls.pending[k] = 0
		if s := ls.sessions.at(h.Index()); s.h == h && s.closed {
			ls.cleanup(s)
		}
	}
	ls.pending = ls.pending[:0]
}
