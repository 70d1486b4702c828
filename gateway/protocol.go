package gateway

import (
	"github.com/huntgate/huntgate/state"
)

// The encoders below write protocol v1 messages (docs/protocol.md) by hand
// into a caller's buffer: no reflection, no allocation once dst has capacity.
// A nil ref means the request carried none; otherwise it is the raw JSON token
// from the request, echoed unchanged.

func appendHead(dst []byte, op string, ref []byte) []byte {
	dst = append(dst, `{"op":"`...)
	dst = append(dst, op...)
	dst = append(dst, '"')
	if ref != nil {
		dst = append(dst, `,"ref":`...)
		dst = append(dst, ref...)
	}
	return dst
}

// appendError encodes {"op":"error","ref":..,"code":..,"message":..}.
func appendError(dst, ref []byte, e *protoError) []byte {
	dst = appendHead(dst, "error", ref)
	dst = append(dst, `,"code":`...)
	dst = appendJSONString(dst, e.code)
	dst = append(dst, `,"message":`...)
	dst = appendJSONString(dst, e.message)
	return append(dst, '}')
}

// appendPong encodes {"op":"pong","ref":..,"ts":..}; ts is echoed verbatim.
func appendPong(dst, ref, ts []byte) []byte {
	dst = appendHead(dst, "pong", ref)
	if ts != nil {
		dst = append(dst, `,"ts":`...)
		dst = append(dst, ts...)
	}
	return append(dst, '}')
}

// appendDug encodes the reply to dig.
func appendDug(dst, ref []byte, hunt string, x, y int64, r *state.DigResult) []byte {
	dst = appendHead(dst, "dug", ref)
	dst = append(dst, `,"hunt":`...)
	dst = appendJSONString(dst, hunt)
	dst = append(dst, `,"x":`...)
	dst = appendInt(dst, x)
	dst = append(dst, `,"y":`...)
	dst = appendInt(dst, y)
	if !r.Found {
		return append(dst, `,"found":false}`...)
	}
	dst = append(dst, `,"found":true,"treasure":`...)
	dst = appendJSONString(dst, r.Treasure)
	dst = append(dst, `,"points":`...)
	dst = appendInt(dst, r.Points)
	dst = append(dst, `,"score":`...)
	dst = appendInt(dst, r.Score)
	dst = append(dst, `,"rank":`...)
	dst = appendInt(dst, int64(r.Rank))
	dst = append(dst, `,"seq":`...)
	dst = appendUint(dst, r.Seq)
	return append(dst, '}')
}

// appendLeft encodes the reply to leave.
func appendLeft(dst, ref []byte, hunt string) []byte {
	dst = appendHead(dst, "left", ref)
	dst = append(dst, `,"hunt":`...)
	dst = appendJSONString(dst, hunt)
	return append(dst, '}')
}

// appendStatusReply encodes the reply to status.
func appendStatusReply(dst, ref []byte, st *state.Status) []byte {
	dst = appendHead(dst, "status", ref)
	dst = append(dst, `,"hunt":`...)
	dst = appendJSONString(dst, st.Hunt)
	dst = append(dst, `,"status":`...)
	dst = appendStatus(dst, st)
	return append(dst, '}')
}

// appendJoined encodes the reply to join. replayed < 0 means reset.
func appendJoined(dst, ref []byte, st *state.Status, replayed int) []byte {
	dst = appendHead(dst, "joined", ref)
	dst = append(dst, `,"hunt":`...)
	dst = appendJSONString(dst, st.Hunt)
	dst = append(dst, `,"epoch":`...)
	dst = appendUint(dst, st.Epoch)
	dst = append(dst, `,"seq":`...)
	dst = appendUint(dst, st.Seq)
	if replayed < 0 {
		dst = append(dst, `,"reset":true`...)
	} else {
		dst = append(dst, `,"reset":false,"replayed":`...)
		dst = appendInt(dst, int64(replayed))
	}
	dst = append(dst, `,"status":`...)
	dst = appendStatus(dst, st)
	return append(dst, '}')
}

// appendReconnect encodes the drain notice.
func appendReconnect(dst []byte, afterMS int64) []byte {
	dst = append(dst, `{"op":"reconnect","after_ms":`...)
	dst = appendInt(dst, afterMS)
	return append(dst, '}')
}

// appendStatus encodes a status object (also served by the admin API).
func appendStatus(dst []byte, st *state.Status) []byte {
	dst = append(dst, `{"hunt":`...)
	dst = appendJSONString(dst, st.Hunt)
	dst = append(dst, `,"epoch":`...)
	dst = appendUint(dst, st.Epoch)
	dst = append(dst, `,"seq":`...)
	dst = appendUint(dst, st.Seq)
	dst = append(dst, `,"players":`...)
	dst = appendInt(dst, int64(st.Players))
	dst = append(dst, `,"treasures_left":`...)
	dst = appendInt(dst, int64(st.TreasuresLeft))
	dst = append(dst, `,"state":`...)
	dst = appendJSONString(dst, st.State)
	if !st.StartsAt.IsZero() {
		dst = append(dst, `,"starts_at":"`...)
		dst = st.StartsAt.UTC().AppendFormat(dst, atLayout)
		dst = append(dst, '"')
	}
	if !st.EndsAt.IsZero() {
		dst = append(dst, `,"ends_at":"`...)
		dst = st.EndsAt.UTC().AppendFormat(dst, atLayout)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"top":`...)
	dst = appendTop(dst, st.Top)
	return append(dst, '}')
}

func appendTop(dst []byte, top []state.Entry) []byte {
	dst = append(dst, '[')
	for i := range top {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"player":`...)
		dst = appendJSONString(dst, top[i].Player)
		dst = append(dst, `,"score":`...)
		dst = appendInt(dst, top[i].Score)
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

// appendUpdate encodes an update push. It is encoded once per update and the
// bytes are shared by every recipient.
func appendUpdate(dst []byte, u *state.Update) []byte {
	dst = append(dst, `{"op":"update","hunt":`...)
	dst = appendJSONString(dst, u.Hunt)
	dst = append(dst, `,"epoch":`...)
	dst = appendUint(dst, u.Epoch)
	dst = append(dst, `,"seq":`...)
	dst = appendUint(dst, u.Seq)
	dst = append(dst, `,"kind":"`...)
	dst = append(dst, u.Kind.String()...)
	dst = append(dst, '"')
	switch u.Kind {
	case state.KindClaimed:
		dst = append(dst, `,"treasure":`...)
		dst = appendJSONString(dst, u.Treasure)
		dst = append(dst, `,"player":`...)
		dst = appendJSONString(dst, u.Player)
		dst = append(dst, `,"points":`...)
		dst = appendInt(dst, u.Points)
	case state.KindLeaderboard, state.KindEnded:
		dst = append(dst, `,"top":`...)
		dst = appendTop(dst, u.Top)
	case state.KindEvent:
		dst = append(dst, `,"data":`...)
		if len(u.Data) == 0 {
			dst = append(dst, "null"...)
		} else {
			dst = append(dst, u.Data...)
		}
	}
	return append(dst, '}')
}
