package gateway

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/huntgate/huntgate/state"
)

func TestDecodeRequest(t *testing.T) {
	tests := []struct {
		name string
		in   string
		err  *protoError
		want request
	}{
		{"dig", `{"op":"dig","hunt":"h1","x":3,"y":-4,"ref":7}`, nil,
			request{op: opDig, hunt: []byte("h1"), x: 3, y: -4, hasX: true, hasY: true, ref: []byte("7")}},
		{"ping ts", `{"op":"ping","ts":1.5e3,"ref":"a\"b"}`, nil,
			request{op: opPing, ts: []byte("1.5e3"), ref: []byte(`"a\"b"`)}},
		{"join since", ` { "op" : "join" , "hunt" : "x" , "since" : 12 , "epoch" : 18446744073709551615 } `, nil,
			request{op: opJoin, hunt: []byte("x"), since: 12, epoch: 1<<64 - 1, hasSince: true, hasEpoch: true}},
		{"escaped key and value", `{"\u006fp":"le\u0061ve","hunt":"h\u00e9"}`, nil,
			request{op: opLeave, hunt: []byte("hé")}},
		{"unknown fields ignored", `{"op":"status","hunt":"h","extra":{"a":[1,2,{"b":"}"}]},"z":null}`, nil,
			request{op: opStatus, hunt: []byte("h")}},
		{"null ref", `{"op":"ping","ref":null}`, nil, request{op: opPing}},
		{"not json", `{"op":"ping"`, errNotJSON, request{}},
		{"trailing garbage", `{"op":"ping"} x`, errNotJSON, request{}},
		{"array", `["op","ping"]`, errNotObject, request{}},
		{"empty object", `{}`, errNoOp, request{}},
		{"no op", `{"ref":1}`, errNoOp, request{ref: []byte("1")}},
		{"op type", `{"op":1,"ref":"r"}`, errOpType, request{op: opUnknown, ref: []byte(`"r"`)}},
		{"unknown op keeps ref", `{"op":"fly","ref":"r1"}`, errUnknownOp, request{op: opUnknown, ref: []byte(`"r1"`)}},
		{"float coordinate", `{"op":"dig","hunt":"h","x":1.5,"y":2}`, errCoord,
			request{op: opDig, hunt: []byte("h"), y: 2, hasY: true}},
		{"missing y", `{"op":"dig","hunt":"h","x":1}`, errNoCoord, request{op: opDig, hunt: []byte("h"), x: 1, hasX: true}},
		{"missing hunt", `{"op":"join"}`, errNoHunt, request{op: opJoin}},
		{"empty hunt", `{"op":"join","hunt":""}`, errHuntType, request{op: opJoin}},
		{"hunt type", `{"op":"join","hunt":5}`, errHuntType, request{op: opJoin}},
		{"hunt too long", `{"op":"join","hunt":"` + strings.Repeat("h", maxHuntID*6+1) + `"}`, errHuntLong, request{op: opJoin}},
		{"negative since", `{"op":"join","hunt":"h","since":-1}`, errSinceType, request{op: opJoin, hunt: []byte("h")}},
		{"ref too long", `{"op":"ping","ref":"` + strings.Repeat("a", 65) + `"}`, errRefType, request{op: opPing}},
		{"ref object", `{"op":"ping","ref":{}}`, errRefType, request{op: opPing}},
		{"ts string", `{"op":"ping","ts":"1"}`, errTsType, request{op: opPing}},
		{"too deep", `{"op":"ping","extra":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`, errNotJSON, request{}},
		{"bad escape", `{"op":"ping","ref":"\x"}`, errNotJSON, request{}},
		{"escapes everywhere", `{"\u0068unt":"\u0068\u0031","o\u0070":"\u0064ig","x":1,"y":2}`, nil,
			request{op: opDig, hunt: []byte("h1"), x: 1, y: 2, hasX: true, hasY: true}},
		{"duplicate field", `{"op":"dig","hunt":"h","x":1,"y":2,"\u0078":3,"ref":"r"}`, errDupField,
			request{op: opDig, hunt: []byte("h"), ref: []byte(`"r"`)}},
		{"duplicate ref", `{"op":"ping","ref":"a","ref":"a"}`, errDupField, request{op: opPing}},
		{"duplicate unknown field", `{"op":"ping","z":1,"z":2}`, nil, request{op: opPing}},
		{"null since and epoch", `{"op":"join","hunt":"h","since":null,"epoch":null}`, nil,
			request{op: opJoin, hunt: []byte("h")}},
		{"huge x", `{"op":"dig","hunt":"h","x":99999999999,"y":0}`, errCoord, request{op: opDig, hunt: []byte("h"), hasY: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r request
			_, err := decodeRequest([]byte(tt.in), &r, nil)
			if err != tt.err {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if tt.err != nil && tt.err != errNotJSON && tt.err != errNotObject && string(r.ref) != string(tt.want.ref) {
				t.Fatalf("ref = %q, want %q", r.ref, tt.want.ref)
			}
			if tt.err != nil {
				return
			}
			if r.op != tt.want.op || string(r.hunt) != string(tt.want.hunt) || string(r.ref) != string(tt.want.ref) ||
				string(r.ts) != string(tt.want.ts) || r.x != tt.want.x || r.y != tt.want.y ||
				r.hasX != tt.want.hasX || r.hasY != tt.want.hasY || r.since != tt.want.since ||
				r.epoch != tt.want.epoch || r.hasSince != tt.want.hasSince || r.hasEpoch != tt.want.hasEpoch {
				t.Fatalf("got %+v\nwant %+v", r, tt.want)
			}
		})
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back`, "ctl\x00\x1f\n\r\t", "héllo 世界", "bad\xffutf8\xc3", "ls\u2028ps\u2029", "<&>"} {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q -> %s: %v", s, b, err)
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		// ToValidUTF8 merges a run of bad bytes into one replacement; the
		// encoder replaces each bad byte, like encoding/json.
		if s == "bad\xffutf8\xc3" {
			want = "bad\ufffdutf8\ufffd"
		}
		if got != want {
			t.Fatalf("%q -> %s -> %q, want %q", s, b, got, want)
		}
	}
}

// checkJSON fails unless b is one JSON object; it returns it decoded.
func checkJSON(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	return m
}

func TestEncoders(t *testing.T) {
	st := state.Status{Hunt: "h", Epoch: 9, Seq: 3, Players: 2, TreasuresLeft: 5, State: "open",
		Top: []state.Entry{{Player: "a", Score: 10}, {Player: "b", Score: 5}}}
	m := checkJSON(t, appendJoined(nil, []byte(`"r"`), &st, -1))
	if m["op"] != "joined" || m["ref"] != "r" || m["reset"] != true || m["seq"] != 3.0 {
		t.Fatalf("joined: %v", m)
	}
	if top := m["status"].(map[string]any)["top"].([]any); len(top) != 2 || top[0].(map[string]any)["player"] != "a" {
		t.Fatalf("joined top: %v", m)
	}
	m = checkJSON(t, appendJoined(nil, nil, &st, 4))
	if m["reset"] != false || m["replayed"] != 4.0 || m["ref"] != nil {
		t.Fatalf("joined replay: %v", m)
	}
	m = checkJSON(t, appendDug(nil, []byte("12"), "h", 1, 2, &state.DigResult{Found: true, Treasure: "t1", Points: 5, Score: 15, Rank: 1, Seq: 4}))
	if m["op"] != "dug" || m["ref"] != 12.0 || m["found"] != true || m["treasure"] != "t1" || m["score"] != 15.0 || m["rank"] != 1.0 {
		t.Fatalf("dug: %v", m)
	}
	m = checkJSON(t, appendDug(nil, nil, "h", 1, 2, &state.DigResult{}))
	if m["found"] != false || m["treasure"] != nil {
		t.Fatalf("dug miss: %v", m)
	}
	m = checkJSON(t, appendPong(nil, nil, []byte("123.5")))
	if m["op"] != "pong" || m["ts"] != 123.5 {
		t.Fatalf("pong: %v", m)
	}
	m = checkJSON(t, appendError(nil, []byte(`"x"`), errUnknownHunt))
	if m["op"] != "error" || m["code"] != "unknown_hunt" || m["ref"] != "x" || m["message"] == "" {
		t.Fatalf("error: %v", m)
	}
	checkJSON(t, appendLeft(nil, nil, "h"))
	checkJSON(t, appendStatusReply(nil, nil, &st))
	checkJSON(t, appendReconnect(nil, 1500))
	for _, u := range []state.Update{
		{Hunt: "h", Epoch: 1, Seq: 2, Kind: state.KindClaimed, Treasure: "t", Player: "p", Points: 3},
		{Hunt: "h", Epoch: 1, Seq: 2, Kind: state.KindLeaderboard, Top: st.Top},
		{Hunt: "h", Epoch: 1, Seq: 3, Kind: state.KindEvent, Data: []byte(`{"k":[1,"v"]}`)},
		{Hunt: "h", Epoch: 1, Seq: 4, Kind: state.KindEnded},
	} {
		m = checkJSON(t, appendUpdate(nil, &u))
		if m["op"] != "update" || m["kind"] != u.Kind.String() || m["seq"] != float64(u.Seq) {
			t.Fatalf("update: %v", m)
		}
		if u.Kind == state.KindEvent && m["data"].(map[string]any)["k"].([]any)[1] != "v" {
			t.Fatalf("event data: %v", m)
		}
	}
}

func TestAllocsHotPath(t *testing.T) {
	msg := []byte(`{"op":"dig","hunt":"d\u00e9mo","x":12,"y":34,"ref":"r-1"}`)
	var r request
	scratch := make([]byte, 0, 64)
	buf := make([]byte, 0, 512)
	res := state.DigResult{Found: true, Treasure: "t17", Points: 40, Score: 120, Rank: 3, Seq: 99}
	u := state.Update{Hunt: "demo", Epoch: 1, Seq: 5, Kind: state.KindClaimed, Treasure: "t", Player: "p", Points: 1}
	n := testing.AllocsPerRun(200, func() {
		scratch, _ = decodeRequest(msg, &r, scratch[:0])
		buf = appendDug(buf[:0], r.ref, "demo", r.x, r.y, &res)
		buf = appendUpdate(buf[:0], &u)
	})
	if n != 0 {
		t.Fatalf("allocs per decode+encode = %v, want 0", n)
	}
}

func TestTokenBucket(t *testing.T) {
	var s tokenBucket
	now := int64(1e9)
	for i := 0; i < 10; i++ {
		if ok, _ := s.allow(now, 5, 10); !ok {
			t.Fatalf("message %d within the burst refused", i)
		}
	}
	ok, abuse := s.allow(now, 5, 10)
	if ok || abuse {
		t.Fatalf("11th message: ok=%v abuse=%v, want refused without abuse", ok, abuse)
	}
	// 0.2 s later one token is back.
	if ok, _ := s.allow(now+2e8, 5, 10); !ok {
		t.Fatal("refilled token refused")
	}
	// Sustained excess: more than 3 x burst refusals within the window.
	var closed bool
	for i := 0; i < 31 && !closed; i++ {
		_, closed = s.allow(now+2e8, 5, 10)
	}
	if !closed {
		t.Fatal("sustained excess not reported as abuse")
	}
	var free tokenBucket
	for i := 0; i < 1000; i++ {
		if ok, _ := free.allow(now, -1, 0); !ok {
			t.Fatal("negative rate must disable the limit")
		}
	}
}
