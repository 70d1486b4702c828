package gateway

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/huntgate/huntgate/state"
)

// FuzzDecodeRequest checks that decoding never panics, that whatever it
// accepts is a JSON object whose fields encoding/json reads the same way, and
// that every reply built from a decoded request is valid JSON.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"op":"dig","hunt":"demo","x":1,"y":2,"ref":"a"}`,
		`{"op":"join","hunt":"demo","since":10,"epoch":77,"ref":3}`,
		`{"op":"ping","ts":-1.25e-3}`,
		`{"op":"leave","hunt":"d\u00e9mo"}`,
		`{"\u006fp":"status","hunt":"x","extra":[{"a":"}"},null,true]}`,
		`{"op":"dig","hunt":"h","x":1.0,"y":2}`,
		`{"op":"dig","op":"ping"}`,
		`[1,2]`, `"op"`, `{`, `{"op":}`, ``, `{"ref":{"a":1},"op":"ping"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		var r request
		_, perr := decodeRequest(msg, &r, nil)
		buf := appendError(nil, r.ref, errBadRequestForFuzz(perr))
		if !json.Valid(buf) {
			t.Fatalf("error reply not JSON: %s", buf)
		}
		buf = appendPong(nil, r.ref, r.ts)
		if !json.Valid(buf) {
			t.Fatalf("pong reply not JSON: %s", buf)
		}
		if perr != nil {
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(msg, &m); err != nil {
			t.Fatalf("accepted %q, encoding/json refuses it: %v", msg, err)
		}
		var op string
		if err := json.Unmarshal(m["op"], &op); err != nil || lookupOp([]byte(op)) != r.op {
			t.Fatalf("op %q decoded as %v", m["op"], r.op)
		}
		if raw, ok := m["hunt"]; ok {
			var hunt string
			if err := json.Unmarshal(raw, &hunt); err != nil {
				t.Fatalf("hunt %s: %v", raw, err)
			}
			// encoding/json replaces invalid UTF-8 with U+FFFD; compare the
			// valid cases only (conn rejects invalid UTF-8 text with 1007).
			if string(r.hunt) != hunt && utf8.Valid(msg) {
				t.Fatalf("hunt %q, encoding/json says %q", r.hunt, hunt)
			}
		}
		for _, c := range []struct {
			key string
			has bool
			v   int64
		}{{"x", r.hasX, r.x}, {"y", r.hasY, r.y}} {
			raw, ok := m[c.key]
			if ok != c.has && r.op == opDig {
				t.Fatalf("%s presence: %v vs %v", c.key, ok, c.has)
			}
			if ok && c.has {
				v, err := strconv.ParseInt(string(raw), 10, 64)
				if err != nil || v != c.v {
					t.Fatalf("%s = %d, raw %s", c.key, c.v, raw)
				}
			}
		}
		if r.ref != nil && !bytes.Equal(bytes.TrimSpace(m["ref"]), r.ref) {
			t.Fatalf("ref %q, raw %q", r.ref, m["ref"])
		}
	})
}

func errBadRequestForFuzz(e *protoError) *protoError {
	if e == nil {
		return errInternal
	}
	return e
}

// FuzzValidJSON checks the hand-written validator against encoding/json.
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{`{}`, `[1,2.5e-3,"a\u00e9",true,false,null,{"k":[]}]`, `-0`, `01`, `1.`, `"\x"`, ` {"a":1} `, `{"a":1,}`, `[`, "\"\x01\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		mine, std := validJSON(b), json.Valid(b)
		if mine && !std {
			t.Fatalf("validJSON accepts %q, encoding/json does not", b)
		}
		// Shorter inputs cannot nest past maxDepth, so both must agree.
		if std && !mine && len(b) < 2*maxDepth {
			t.Fatalf("validJSON refuses %q, encoding/json accepts it", b)
		}
	})
}

// FuzzAppendJSONString checks the hand-written escaper against encoding/json.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a", `"\`, "\x00\x1f", "é", "\xff", "\u2028", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q -> %s: %v", s, b, err)
		}
		ref, _ := json.Marshal(s)
		var want string
		_ = json.Unmarshal(ref, &want)
		if got != want {
			t.Fatalf("%q -> %q, encoding/json gives %q", s, got, want)
		}
	})
}

// FuzzAppendUpdate checks that any event data accepted by the admin API
// (valid JSON) and any ids give a valid update push.
func FuzzAppendUpdate(f *testing.F) {
	f.Add("h", "p", []byte(`{"a":1}`))
	f.Add("\xff", "\"", []byte(` [1, "x"] `))
	f.Fuzz(func(t *testing.T, hunt, player string, data []byte) {
		if !json.Valid(data) {
			return
		}
		for _, u := range []state.Update{
			{Hunt: hunt, Kind: state.KindEvent, Data: data},
			{Hunt: hunt, Kind: state.KindClaimed, Player: player, Treasure: player},
			{Hunt: hunt, Kind: state.KindLeaderboard, Top: []state.Entry{{Player: player, Score: -1}}},
		} {
			if b := appendUpdate(nil, &u); !json.Valid(b) {
				t.Fatalf("invalid update %s", b)
			}
		}
	})
}
