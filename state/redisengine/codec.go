package redisengine

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/huntgate/huntgate/state"
)

// The wire form of an update, on the channel and in the history list, is a
// line of '|'-separated fields, which ids ([A-Za-z0-9_.-]) never contain:
//
//	c|seq|epoch|at_ms|treasure|player|points   claimed
//	l|seq|epoch|at_ms|top                      leaderboard
//	e|seq|epoch|at_ms|data                     event (data: the rest, raw bytes)
//	x|seq|epoch|at_ms|top                      ended
//	y|seq|epoch|at_ms|                         started
//
// top is "player:score" pairs joined by ','; a player id must therefore
// not contain ',' (PROTOCOL.md's ids never do). The hunt is not in the line:
// the channel or key it was read from names it.

var errBadUpdate = errors.New("redisengine: malformed update")

// field cuts s at the next '|'.
func field(s string) (f, rest string, ok bool) {
	i := strings.IndexByte(s, '|')
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

// decodeUpdate parses one line of hunt's updates.
func decodeUpdate(hunt, s string) (state.Update, error) {
	u := state.Update{Hunt: hunt}
	if len(s) < 2 || s[1] != '|' {
		return u, errBadUpdate
	}
	switch s[0] {
	case 'c':
		u.Kind = state.KindClaimed
	case 'l':
		u.Kind = state.KindLeaderboard
	case 'e':
		u.Kind = state.KindEvent
	case 'x':
		u.Kind = state.KindEnded
	case 'y':
		u.Kind = state.KindStarted
	default:
		return u, errBadUpdate
	}
	rest := s[2:]
	var f1, f2, f3 string
	var ok1, ok2, ok3 bool
	f1, rest, ok1 = field(rest)
	f2, rest, ok2 = field(rest)
	f3, rest, ok3 = field(rest)
	if !ok1 || !ok2 || !ok3 {
		return u, errBadUpdate
	}
	var err error
	if u.Seq, err = strconv.ParseUint(f1, 10, 64); err != nil {
		return u, errBadUpdate
	}
	if u.Epoch, err = strconv.ParseUint(f2, 10, 64); err != nil {
		return u, errBadUpdate
	}
	ms, err := strconv.ParseInt(f3, 10, 64)
	if err != nil {
		return u, errBadUpdate
	}
	u.At = time.UnixMilli(ms)
	switch u.Kind {
	case state.KindClaimed:
		var ok bool
		if u.Treasure, rest, ok = field(rest); !ok {
			return u, errBadUpdate
		}
		// Points are cut from the end, so a player id holding '|' survives.
		i := strings.LastIndexByte(rest, '|')
		if i < 0 {
			return u, errBadUpdate
		}
		u.Player = rest[:i]
		if u.Points, err = strconv.ParseInt(rest[i+1:], 10, 64); err != nil {
			return u, errBadUpdate
		}
	case state.KindEvent:
		u.Data = []byte(rest)
	case state.KindStarted:
	default:
		if u.Top, err = decodeTop(rest); err != nil {
			return u, err
		}
	}
	return u, nil
}

// decodeTop parses "p:s,p:s"; an empty string is an empty, non-nil top, as
// the memory engine's.
func decodeTop(s string) ([]state.Entry, error) {
	top := make([]state.Entry, 0, strings.Count(s, ",")+1)
	for s != "" {
		var e string
		if i := strings.IndexByte(s, ','); i >= 0 {
			e, s = s[:i], s[i+1:]
		} else {
			e, s = s, ""
		}
		c := strings.LastIndexByte(e, ':')
		if c < 0 {
			return nil, errBadUpdate
		}
		sc, err := strconv.ParseInt(e[c+1:], 10, 64)
		if err != nil {
			return nil, errBadUpdate
		}
		top = append(top, state.Entry{Player: e[:c], Score: sc})
	}
	return top, nil
}
