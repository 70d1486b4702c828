package gateway

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/huntgate/huntgate/state"
)

// readRaw reads one text message and returns its bytes as sent.
func (c *client) readRaw() []byte {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	op, b, err := c.c.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if op != websocket.TextMessage {
		c.t.Fatalf("non-text message %d", op)
	}
	return b
}

// rawField returns the raw JSON of top-level field k of the object b, or nil.
func rawField(t testing.TB, b []byte, k string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("bad JSON %s: %v", b, err)
	}
	return m[k]
}

// A ref is echoed byte for byte, on replies and on errors; a ref that is not
// a string or number of at most 64 bytes is a bad_request and is not echoed.
func TestRefEchoedUnchanged(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.Rate = -1 })
	c := tg.player(t, "alice")
	refs := []string{`1e3`, `-0`, `12.50`, `-1.5E+7`, `0`, `"a\u00e9\"b\\/"`, `"é"`, `""`,
		`"` + strings.Repeat("r", 64) + `"`, "1" + strings.Repeat("0", 63)}
	for _, ref := range refs {
		for _, req := range []string{`{"op":"ping","ref":%s}`, `{"ref":%s,"op":"teleport"}`, `{"op":"dig","ref":%s}`} {
			c.sendRaw(fmt.Sprintf(req, ref))
			b := c.readRaw()
			if got := rawField(t, b, "ref"); string(got) != ref {
				t.Fatalf("request %s: got %s, want ref %s", fmt.Sprintf(req, ref), b, ref)
			}
		}
	}
	for _, ref := range []string{`true`, `false`, `[]`, `[1]`, `{}`, `{"a":1}`,
		`"` + strings.Repeat("r", 65) + `"`, "1" + strings.Repeat("0", 64)} {
		c.sendRaw(`{"op":"ping","ref":` + ref + `}`)
		if m := c.expectError("bad_request"); m["ref"] != nil {
			t.Fatalf("ref %s: echoed in %v", ref, m)
		}
	}
	c.sendRaw(`{"op":"ping","ref":null}`)
	if b := c.readRaw(); rawField(t, b, "ref") != nil || rawField(t, b, "op") == nil {
		t.Fatalf("null ref: %s", b)
	}
	// Two refs match no single request.
	c.sendRaw(`{"op":"ping","ref":1,"ref":2}`)
	if m := c.expectError("bad_request"); m["ref"] != nil {
		t.Fatalf("duplicate ref echoed: %v", m)
	}
}

// A field the protocol defines, given twice, is a bad_request whichever copy
// a parser would pick; unknown fields may repeat.
func TestDuplicateFields(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.Rate = -1 })
	tg.createHunt(t, fixedHunt("h", 4))
	c := tg.player(t, "alice")
	c.join("h")
	for _, in := range []string{
		`{"op":"ping","op":"ping","ref":"r"}`,
		`{"op":"ping","\u006fp":"ping","ref":"r"}`,
		`{"op":"dig","hunt":"h","x":1,"x":2,"y":0,"ref":"r"}`,
		`{"op":"dig","hunt":"h","x":"a","x":1,"y":0,"ref":"r"}`,
		`{"op":"dig","hunt":"nope","hunt":"h","x":1,"y":0,"ref":"r"}`,
		`{"op":"join","hunt":"h","since":0,"since":1,"epoch":1,"ref":"r"}`,
		`{"op":"ping","ts":1,"ts":2,"ref":"r"}`,
	} {
		c.sendRaw(in)
		if m := c.expectError("bad_request"); m.str("ref") != "r" {
			t.Fatalf("%s: %v", in, m)
		}
	}
	c.sendRaw(`{"op":"ping","z":1,"z":[2],"ref":"r"}`)
	c.expect("pong")
	// Nothing was dug by the refused digs.
	if st, _ := tg.engine.Status(t.Context(), "h"); st.TreasuresLeft != 5 {
		t.Fatalf("treasures left %d, want 5", st.TreasuresLeft)
	}
}

// Every way a request can be malformed is a bad_request that keeps the
// connection open, with the ref echoed when the request had a valid one.
func TestBadRequests(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.Rate = -1 })
	tg.createHunt(t, fixedHunt("h", 4))
	c := tg.player(t, "alice")
	c.join("h")
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, in := range []string{
		``, ` `, `not json`, `"ping"`, `12`, `null`, `true`, `[{"op":"ping"}]`,
		`{"op":"ping"} x`, `{"op":"ping"}{"op":"ping"}`, `{"op":"ping"},`, `{"op":"ping",}`,
		`{'op':'ping'}`, `{"op":"ping","ts":01}`, `{"op":"ping","ts":NaN}`, `{"op":"ping","ts":.5}`,
		`{"op":"ping","extra":` + deep(64) + `}`,
	} {
		c.sendRaw(in)
		if m := c.expectError("bad_request"); m["ref"] != nil {
			t.Fatalf("%q: %v", in, m)
		}
	}
	for _, in := range []string{
		`{"ref":"r"}`,
		`{"op":1,"ref":"r"}`,
		`{"op":null,"ref":"r"}`,
		`{"op":"join","ref":"r"}`,
		`{"op":"leave","ref":"r"}`,
		`{"op":"status","ref":"r"}`,
		`{"op":"dig","x":1,"y":1,"ref":"r"}`,
		`{"op":"join","hunt":"","ref":"r"}`,
		`{"op":"join","hunt":5,"ref":"r"}`,
		`{"op":"join","hunt":null,"ref":"r"}`,
		`{"op":"join","hunt":["h"],"ref":"r"}`,
		`{"op":"join","hunt":"h","since":-1,"epoch":1,"ref":"r"}`,
		`{"op":"join","hunt":"h","since":"1","epoch":1,"ref":"r"}`,
		`{"op":"join","hunt":"h","since":1,"epoch":1.5,"ref":"r"}`,
		`{"op":"dig","hunt":"h","y":0,"ref":"r"}`,
		`{"op":"dig","hunt":"h","x":0,"ref":"r"}`,
		`{"op":"dig","hunt":"h","x":1.5,"y":0,"ref":"r"}`,
		`{"op":"dig","hunt":"h","x":1.0,"y":0,"ref":"r"}`,
		`{"op":"dig","hunt":"h","x":1e0,"y":0,"ref":"r"}`,
		`{"op":"dig","hunt":"h","x":"1","y":0,"ref":"r"}`,
		`{"op":"dig","hunt":"h","x":null,"y":0,"ref":"r"}`,
		`{"op":"dig","hunt":"h","x":true,"y":0,"ref":"r"}`,
		`{"op":"dig","hunt":"h","x":0,"y":99999999999,"ref":"r"}`,
		`{"op":"dig","hunt":"h","x":0,"y":-99999999999,"ref":"r"}`,
		`{"op":"ping","ts":"1","ref":"r"}`,
		`{"op":"ping","ts":true,"ref":"r"}`,
		`{"op":"ping","ts":{},"ref":"r"}`,
		`{"op":"ping","extra":` + deep(63) + `,"ref":"x","ts":"bad","ref2":"r"}`,
	} {
		c.sendRaw(in)
		m := c.expectError("bad_request")
		if strings.Contains(in, `"ref":"r"`) && m.str("ref") != "r" {
			t.Fatalf("%s: ref not echoed: %v", in, m)
		}
		if m.str("message") == "" {
			t.Fatalf("%s: no message", in)
		}
	}
	// 64 levels of nesting are allowed.
	c.sendRaw(`{"op":"ping","ref":"deep","extra":` + deep(63) + `}`)
	if m := c.expect("pong"); m.str("ref") != "deep" {
		t.Fatalf("pong %v", m)
	}
	// The largest integers within the limits reach the grid check.
	c.sendRaw(`{"op":"dig","hunt":"h","x":2147483648,"y":-0,"ref":"g"}`)
	if m := c.expectError("out_of_grid"); m.str("ref") != "g" {
		t.Fatalf("%v", m)
	}
	c.sendRaw(`{"op":"dig","hunt":"h","x":-1,"y":0}`)
	c.expectError("out_of_grid")
	if st, _ := tg.engine.Status(t.Context(), "h"); st.TreasuresLeft != 5 {
		t.Fatalf("treasures left %d, want 5", st.TreasuresLeft)
	}
	// Optional fields may be null, meaning absent.
	c.sendRaw(`{"op":"join","hunt":"h","since":null,"epoch":null,"ref":null}`)
	if m := c.expect("joined"); m["reset"] != true || m["ref"] != nil {
		t.Fatalf("joined %v", m)
	}
}

// pong carries the ts of the ping exactly as sent, or none.
func TestPongTs(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.Rate = -1 })
	c := tg.player(t, "alice")
	for _, ts := range []string{`-0`, `12.50`, `1E+3`, `-1.5e-7`, `0`, `123456789012345678901234567890`, `1718000000123.5`} {
		c.sendRaw(`{"op":"ping","ts":` + ts + `}`)
		b := c.readRaw()
		if got := rawField(t, b, "ts"); string(got) != ts || string(rawField(t, b, "op")) != `"pong"` {
			t.Fatalf("ts %s: got %s", ts, b)
		}
	}
	for _, in := range []string{`{"op":"ping"}`, `{"op":"ping","ts":null}`} {
		c.sendRaw(in)
		if b := c.readRaw(); rawField(t, b, "ts") != nil || string(rawField(t, b, "op")) != `"pong"` {
			t.Fatalf("%s: got %s", in, b)
		}
	}
}

// A rate-limited request is answered without being executed; a refused
// binary frame's payload, which conn has not checked for UTF-8, is not read
// for a ref, so the reply stays valid UTF-8.
func TestRateLimitedNotExecuted(t *testing.T) {
	// One message per 1000 s: the bucket does not refill during the test.
	tg := startGateway(t, func(c *Config) { c.Rate = 0.001; c.RateBurst = 2 })
	tg.createHunt(t, fixedHunt("h", 4))
	c := tg.player(t, "alice")
	c.join("h")
	c.sendRaw(`{"op":"dig","hunt":"h","x":0,"y":0,"ref":"d1"}`)
	if m := c.expect("dug"); m["found"] != true {
		t.Fatalf("dug %v", m)
	}
	c.expect("update")
	c.expect("update")
	c.sendRaw(`{"op":"dig","hunt":"h","x":1,"y":0,"ref":"d2"}`)
	if m := c.expectError("rate_limited"); m.str("ref") != "d2" {
		t.Fatalf("%v", m)
	}
	if st, _ := tg.engine.Status(t.Context(), "h"); st.TreasuresLeft != 4 {
		t.Fatalf("treasures left %d, want 4: the refused dig was executed", st.TreasuresLeft)
	}
	if err := c.c.WriteMessage(websocket.BinaryMessage, []byte("{\"op\":\"ping\",\"ref\":\"\xff\xfe\"}")); err != nil {
		t.Fatal(err)
	}
	b := c.readRaw()
	if !utf8.Valid(b) {
		t.Fatalf("reply is not UTF-8: %q", b)
	}
	var m msg
	if err := json.Unmarshal(b, &m); err != nil || m.str("code") != "rate_limited" || m["ref"] != nil {
		t.Fatalf("reply %s", b)
	}
}

// craftToken builds a compact JWT with any header, signed with HMAC-SHA256.
func craftToken(header, payload string, secret []byte) string {
	enc := base64.RawURLEncoding
	s := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(s))
	return s + "." + enc.EncodeToString(mac.Sum(nil))
}

func TestTokenRules(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.DevMode = false })
	tg.createHunt(t, fixedHunt("a", 1))
	future := time.Now().Add(time.Hour)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	exp := future.Unix()
	hs := func(claims jwt.MapClaims) string {
		return signWith(t, jwt.SigningMethodHS256, []byte(testSecret), claims)
	}
	for _, tc := range []struct {
		name string
		path string
		hdr  http.Header
		want int
	}{
		{"RS256", "/ws?token=" + signWith(t, jwt.SigningMethodRS256, key, jwt.MapClaims{"sub": "alice", "exp": exp}), nil, 401},
		{"RS256 header, HMAC signature", "/ws?token=" + craftToken(`{"alg":"RS256","typ":"JWT"}`, fmt.Sprintf(`{"sub":"alice","exp":%d}`, exp), []byte(testSecret)), nil, 401},
		{"hand-made HS256", "/ws?token=" + craftToken(`{"alg":"HS256","typ":"JWT"}`, fmt.Sprintf(`{"sub":"alice","exp":%d}`, exp), []byte(testSecret)), nil, 101},
		{"sub 64 chars", "/ws?token=" + hs(jwt.MapClaims{"sub": strings.Repeat("a", 64), "exp": exp}), nil, 101},
		{"sub 65 chars", "/ws?token=" + hs(jwt.MapClaims{"sub": strings.Repeat("a", 65), "exp": exp}), nil, 401},
		{"sub all classes", "/ws?token=" + hs(jwt.MapClaims{"sub": "Az09_.-", "exp": exp}), nil, 101},
		{"sub empty", "/ws?token=" + hs(jwt.MapClaims{"sub": "", "exp": exp}), nil, 401},
		{"no sub", "/ws?token=" + hs(jwt.MapClaims{"exp": exp}), nil, 401},
		{"sub slash", "/ws?token=" + hs(jwt.MapClaims{"sub": "a/b", "exp": exp}), nil, 401},
		{"sub non-ASCII", "/ws?token=" + hs(jwt.MapClaims{"sub": "é", "exp": exp}), nil, 401},
		{"exp not a number", "/ws?token=" + hs(jwt.MapClaims{"sub": "alice", "exp": "soon"}), nil, 401},
		{"bearer any case", "/ws", http.Header{"Authorization": {"bearer " + hs(jwt.MapClaims{"sub": "alice", "exp": exp})}}, 101},
		{"bad bearer", "/ws", http.Header{"Authorization": {"Bearer x.y.z"}}, 401},
		{"query checked before bearer", "/ws?token=x.y.z", http.Header{"Authorization": {"Bearer " + hs(jwt.MapClaims{"sub": "alice", "exp": exp})}}, 401},
	} {
		if got := tg.dialStatus(t, tc.path, tc.hdr); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	// An empty hunts list allows no hunt; only an absent (or null) one allows any.
	for _, tok := range []string{
		token(t, testSecret, "alice", future, []string{}),
		hs(jwt.MapClaims{"sub": "alice", "exp": exp, "hunts": []string{}}),
	} {
		c := tg.dial(t, "/ws?token="+tok)
		c.sendRaw(`{"op":"join","hunt":"a","ref":"j"}`)
		if m := c.expectError("forbidden"); m.str("ref") != "j" {
			t.Fatalf("%v", m)
		}
		c.sendRaw(`{"op":"status","hunt":"a"}`)
		c.expectError("forbidden")
	}
	for _, tok := range []string{
		token(t, testSecret, "alice", future, nil),
		hs(jwt.MapClaims{"sub": "alice", "exp": exp, "hunts": nil}),
	} {
		c := tg.dial(t, "/ws?token="+tok)
		c.join("a")
	}
}

// /ws negotiates no extension, even when the client offers permessage-deflate.
func TestNoDeflateOnWS(t *testing.T) {
	tg := startGateway(t, nil)
	d := websocket.Dialer{EnableCompression: true}
	c, resp, err := d.Dial(tg.ws+"/ws?player=alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Fatalf("extensions %q negotiated on /ws", ext)
	}
}

// A text frame that is not UTF-8 closes with 1007.
func TestInvalidUTF8Closes1007(t *testing.T) {
	tg := startGateway(t, nil)
	c := tg.player(t, "alice")
	c.sendRaw("{\"op\":\"ping\",\"ref\":\"\xff\"}")
	if ce := c.expectClose(); ce.Code != websocket.CloseInvalidFramePayloadData {
		t.Fatalf("close %v, want 1007", ce)
	}
}

// An event body must be JSON in UTF-8: it is pushed as is in text frames.
func TestEventNotUTF8Refused(t *testing.T) {
	tg := startGateway(t, nil)
	tg.createHunt(t, fixedHunt("h", 1))
	c := tg.player(t, "alice")
	c.join("h")
	if code, body := tg.adminDo(t, "POST", "/v1/hunts/h/events", testAPIKey, "{\"s\":\"\xff\"}"); code != 400 {
		t.Fatalf("publish of invalid UTF-8: %d %s", code, body)
	}
	if code, body := tg.adminDo(t, "POST", "/v1/hunts/h/events", testAPIKey, `"ok"`); code != 200 {
		t.Fatalf("publish: %d %s", code, body)
	}
	b := c.readRaw()
	if !utf8.Valid(b) || string(rawField(t, b, "data")) != `"ok"` || string(rawField(t, b, "seq")) != "1" {
		t.Fatalf("push %q", b)
	}
}

// The replies and pushes of a game, field by field: dug, claimed and
// leaderboard with their seqs, ties on the leaderboard going to who reached
// the score first, status, a repeated join, leave, and the end.
func TestRepliesAndPushes(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.Rate = -1 })
	tg.createHunt(t, state.Spec{ID: "h", Width: 8, Height: 4, Treasures: []state.Treasure{
		{ID: "t0", X: 0, Y: 0, Points: 5}, {ID: "t1", X: 1, Y: 0, Points: 5},
		{ID: "t2", X: 2, Y: 0, Points: 3}, {ID: "t3", X: 3, Y: 0, Points: 3},
		{ID: "keep", X: 7, Y: 3, Points: 1},
	}})
	tg.createHunt(t, fixedHunt("other", 1))
	a, b := tg.player(t, "alice"), tg.player(t, "bob")
	ja := a.join("h")
	epoch := ja.num("epoch")
	if ja.str("hunt") != "h" || epoch == 0 || ja.num("seq") != 0 || ja["reset"] != true || ja["replayed"] != nil {
		t.Fatalf("joined %v", ja)
	}
	if st := ja["status"].(map[string]any); st["hunt"] != "h" || st["epoch"] != epoch || st["seq"] != 0.0 ||
		st["players"] != 1.0 || st["treasures_left"] != 5.0 || st["state"] != "open" || len(st["top"].([]any)) != 0 {
		t.Fatalf("joined status %v", st)
	}
	b.join("h")
	b.join("other")

	type entry struct {
		Player string
		Score  float64
	}
	topOf := func(v any) []entry {
		var out []entry
		for _, e := range v.([]any) {
			e := e.(map[string]any)
			out = append(out, entry{e["player"].(string), e["score"].(float64)})
		}
		return out
	}
	seq := 0.0
	dig := func(c, other *client, who string, x int, treasure string, points, score, rank float64, top []entry) {
		t.Helper()
		seq++
		c.send(`{"op":"dig","hunt":"h","x":%d,"y":0,"ref":%d}`, x, x)
		m := c.expect("dug")
		if m.num("ref") != float64(x) || m.str("hunt") != "h" || m.num("x") != float64(x) || m.num("y") != 0 ||
			m["found"] != true || m.str("treasure") != treasure || m.num("points") != points ||
			m.num("score") != score || m.num("rank") != rank || m.num("seq") != seq {
			t.Fatalf("dug %v", m)
		}
		for _, r := range []*client{c, other} {
			u := r.expect("update")
			if u.str("hunt") != "h" || u.num("epoch") != epoch || u.num("seq") != seq || u.str("kind") != "claimed" ||
				u.str("treasure") != treasure || u.str("player") != who || u.num("points") != points {
				t.Fatalf("claimed %v", u)
			}
			u = r.expect("update")
			if u.str("kind") != "leaderboard" || u.num("seq") != seq || fmt.Sprint(topOf(u["top"])) != fmt.Sprint(top) {
				t.Fatalf("leaderboard %v, want seq %v top %v", u, seq, top)
			}
		}
	}
	dig(a, b, "alice", 0, "t0", 5, 5, 1, []entry{{"alice", 5}})
	dig(b, a, "bob", 1, "t1", 5, 5, 2, []entry{{"alice", 5}, {"bob", 5}})
	dig(b, a, "bob", 2, "t2", 3, 8, 1, []entry{{"bob", 8}, {"alice", 5}})
	// alice ties bob's 8 after him: he stays first.
	dig(a, b, "alice", 3, "t3", 3, 8, 2, []entry{{"bob", 8}, {"alice", 8}})
	a.sendRaw(`{"op":"dig","hunt":"h","x":3,"y":0,"ref":"again"}`)
	if m := a.expect("dug"); m["found"] != false || m.str("ref") != "again" || m["treasure"] != nil || m["score"] != nil {
		t.Fatalf("dug of a claimed spot %v", m)
	}

	// A repeated join answers joined without counting the player twice.
	a.sendRaw(`{"op":"join","hunt":"h","ref":"j2"}`)
	if m := a.expect("joined"); m.str("ref") != "j2" || m.num("seq") != seq || m["reset"] != true ||
		m["status"].(map[string]any)["players"] != 2.0 {
		t.Fatalf("repeated join %v", m)
	}
	// status needs no join.
	carol := tg.player(t, "carol")
	carol.sendRaw(`{"op":"status","hunt":"h","ref":-0}`)
	m := carol.expect("status")
	st := m["status"].(map[string]any)
	if m.str("hunt") != "h" || st["hunt"] != "h" || st["epoch"] != epoch || st["seq"] != seq || st["players"] != 2.0 ||
		st["treasures_left"] != 1.0 || st["state"] != "open" || fmt.Sprint(topOf(st["top"])) != fmt.Sprint([]entry{{"bob", 8}, {"alice", 8}}) {
		t.Fatalf("status %v", m)
	}

	// After leave no push of that hunt arrives: the next push is of another
	// hunt published later.
	b.sendRaw(`{"op":"leave","hunt":"h","ref":7}`)
	if m := b.expect("left"); m.str("hunt") != "h" || m.num("ref") != 7 {
		t.Fatalf("left %v", m)
	}
	if _, err := tg.engine.Publish(t.Context(), "h", []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.engine.Publish(t.Context(), "other", []byte(`2`)); err != nil {
		t.Fatal(err)
	}
	if u := b.expect("update"); u.str("hunt") != "other" {
		t.Fatalf("after leave: %v", u)
	}
	seq++
	if u := a.expect("update"); u.str("kind") != "event" || u.num("seq") != seq {
		t.Fatalf("event %v", u)
	}

	// Ending: the ended push carries the final top, then digs get ended.
	if code, body := tg.adminDo(t, "DELETE", "/v1/hunts/h", testAPIKey, ""); code != 200 {
		t.Fatalf("end: %d %s", code, body)
	}
	seq++
	u := a.expect("update")
	if u.str("kind") != "ended" || u.num("seq") != seq || u.num("epoch") != epoch ||
		fmt.Sprint(topOf(u["top"])) != fmt.Sprint([]entry{{"bob", 8}, {"alice", 8}}) {
		t.Fatalf("ended %v", u)
	}
	a.sendRaw(`{"op":"dig","hunt":"h","x":7,"y":3,"ref":"late"}`)
	if m := a.expectError("ended"); m.str("ref") != "late" {
		t.Fatalf("%v", m)
	}
	a.sendRaw(`{"op":"status","hunt":"h"}`)
	if m := a.expect("status"); m["status"].(map[string]any)["state"] != "ended" {
		t.Fatalf("status after end %v", m)
	}
	if m := carol.join("h"); m["status"].(map[string]any)["state"] != "ended" || m.num("seq") != seq {
		t.Fatalf("join after end %v", m)
	}
}

// A hunt ends by itself when its last treasure is claimed.
func TestLastTreasureEndsHunt(t *testing.T) {
	tg := startGateway(t, nil)
	tg.createHunt(t, state.Spec{ID: "one", Width: 2, Height: 2, Treasures: []state.Treasure{{ID: "t", X: 1, Y: 1, Points: 9}}})
	c := tg.player(t, "alice")
	c.join("one")
	c.sendRaw(`{"op":"dig","hunt":"one","x":1,"y":1}`)
	if m := c.expect("dug"); m["found"] != true || m.num("seq") != 1 {
		t.Fatalf("dug %v", m)
	}
	for _, want := range []struct {
		kind string
		seq  float64
	}{{"claimed", 1}, {"leaderboard", 1}, {"ended", 2}} {
		if u := c.expect("update"); u.str("kind") != want.kind || u.num("seq") != want.seq {
			t.Fatalf("got %v, want %s seq %v", u, want.kind, want.seq)
		}
	}
	c.sendRaw(`{"op":"dig","hunt":"one","x":0,"y":0}`)
	c.expectError("ended")
}

// Resume edge cases: since without epoch, since ahead of the hunt, since at
// the head, and a repeated join with since while joined.
func TestResumeEdges(t *testing.T) {
	tg := startGateway(t, nil)
	tg.createHunt(t, fixedHunt("h", 1))
	a := tg.player(t, "alice")
	epoch := uint64(a.join("h").num("epoch"))
	for i := 1; i <= 3; i++ {
		if _, err := tg.engine.Publish(t.Context(), "h", []byte(`1`)); err != nil {
			t.Fatal(err)
		}
		if u := a.expect("update"); u.num("seq") != float64(i) {
			t.Fatalf("update %v", u)
		}
	}
	for k, tc := range []struct {
		in       string
		reset    bool
		replayed float64
	}{
		{`{"op":"join","hunt":"h","since":1}`, true, 0},
		{fmt.Sprintf(`{"op":"join","hunt":"h","epoch":%d}`, epoch), true, 0},
		{fmt.Sprintf(`{"op":"join","hunt":"h","since":4,"epoch":%d}`, epoch), true, 0},
		{fmt.Sprintf(`{"op":"join","hunt":"h","since":3,"epoch":%d}`, epoch), false, 0},
	} {
		c := tg.player(t, fmt.Sprintf("p%d", k))
		c.sendRaw(tc.in)
		j := c.expect("joined")
		if j["reset"] != tc.reset || j.num("seq") != 3 || (!tc.reset && j["replayed"] != tc.replayed) || (tc.reset && j["replayed"] != nil) {
			t.Fatalf("%s: %v", tc.in, j)
		}
	}
	// Joined already: the replay comes again, the live stream is not doubled.
	a.send(`{"op":"join","hunt":"h","since":1,"epoch":%d}`, epoch)
	if j := a.expect("joined"); j["reset"] != false || j.num("replayed") != 2 {
		t.Fatalf("repeated join with since: %v", j)
	}
	for _, want := range []float64{2, 3} {
		if u := a.expect("update"); u.num("seq") != want {
			t.Fatalf("replay %v, want seq %v", u, want)
		}
	}
	if _, err := tg.engine.Publish(t.Context(), "h", []byte(`1`)); err != nil {
		t.Fatal(err)
	}
	if u := a.expect("update"); u.num("seq") != 4 {
		t.Fatalf("live %v", u)
	}
	a.sendRaw(`{"op":"status","hunt":"h"}`)
	if m := a.expect("status"); m["status"].(map[string]any)["players"] != 5.0 {
		t.Fatalf("status %v, want alice and the four others", m)
	}
}
