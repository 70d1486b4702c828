package gateway

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/huntgate/huntgate/state"
)

// playRecords has four players claim treasures of fixedHunt("cup", 6)
// (treasure ti at (i, 0) is worth i+1) so that the board is alice 5, dave
// 4, bob 3, carol 3: carol reaches 3 after bob, so bob ranks above her.
// It returns the players' connections.
func playRecords(t *testing.T, tg *testGateway) map[string]*client {
	t.Helper()
	cs := map[string]*client{}
	for _, p := range []string{"alice", "bob", "carol", "dave", "frank"} {
		cs[p] = tg.player(t, p)
		cs[p].join("cup")
	}
	for _, d := range []struct {
		p string
		x int
	}{{"alice", 4}, {"bob", 2}, {"carol", 1}, {"carol", 0}, {"dave", 3}} {
		cs[d.p].send(`{"op":"dig","hunt":"cup","x":%d,"y":0}`, d.x)
		if m := cs[d.p].until("dug"); m["found"] != true {
			t.Fatalf("%s dig %d: %v", d.p, d.x, m)
		}
	}
	return cs
}

// checkRecords checks the leaderboard page, the players' ranks (admin API
// and the rank op), the claims record and the errors of every endpoint.
func checkRecords(t *testing.T, tg *testGateway, cs map[string]*client, at func(i int, s string) bool) {
	t.Helper()
	get := func(path string, wantStatus int, v any) []byte {
		t.Helper()
		st, b := tg.adminDo(t, "GET", path, "", "")
		if st != wantStatus {
			t.Fatalf("GET %s: %d %s, want %d", path, st, b, wantStatus)
		}
		if v != nil {
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatalf("GET %s: %s: %v", path, b, err)
			}
		}
		return b
	}
	type ranked struct {
		Rank   int    `json:"rank"`
		Player string `json:"player"`
		Score  int64  `json:"score"`
	}
	var page struct {
		Hunt    string   `json:"hunt"`
		Seq     uint64   `json:"seq"`
		Total   int      `json:"total"`
		Entries []ranked `json:"entries"`
	}
	get("/v1/hunts/cup/leaderboard?offset=1&limit=2", 200, &page)
	if fmt.Sprintf("%+v", page) != "{Hunt:cup Seq:5 Total:4 Entries:[{Rank:2 Player:dave Score:4} {Rank:3 Player:bob Score:3}]}" {
		t.Fatalf("page: %+v", page)
	}
	get("/v1/hunts/cup/leaderboard", 200, &page)
	if len(page.Entries) != 4 || page.Entries[3].Player != "carol" {
		t.Fatalf("default page: %+v", page)
	}
	var pr struct {
		Hunt   string   `json:"hunt"`
		Player string   `json:"player"`
		Score  int64    `json:"score"`
		Rank   int      `json:"rank"`
		Around []ranked `json:"around"`
	}
	get("/v1/hunts/cup/players/carol?around=1", 200, &pr)
	if fmt.Sprintf("%+v", pr) != "{Hunt:cup Player:carol Score:3 Rank:4 Around:[{Rank:3 Player:bob Score:3} {Rank:4 Player:carol Score:3}]}" {
		t.Fatalf("carol: %+v", pr)
	}
	for _, c := range []struct{ path, code string }{
		{"/v1/hunts/nope/leaderboard", "unknown_hunt"},
		{"/v1/hunts/nope/players/alice", "unknown_hunt"},
		{"/v1/hunts/nope/claims", "unknown_hunt"},
		{"/v1/hunts/cup/players/frank", "not_ranked"},
	} {
		var e struct{ Error struct{ Code string } }
		get(c.path, 404, &e)
		if e.Error.Code != c.code {
			t.Fatalf("GET %s: code %q, want %q", c.path, e.Error.Code, c.code)
		}
	}
	for _, p := range []string{"leaderboard?limit=1001", "leaderboard?limit=x", "leaderboard?offset=-1", "players/alice?around=101"} {
		var e struct{ Error struct{ Code string } }
		get("/v1/hunts/cup/"+p, 400, &e)
		if e.Error.Code != "bad_request" {
			t.Fatalf("GET %s: %+v", p, e)
		}
	}

	// The rank op answers the same for the connection's own player.
	cs["carol"].send(`{"op":"rank","hunt":"cup","around":1,"ref":7}`)
	m := cs["carol"].until("rank")
	b, _ := json.Marshal(m)
	if string(b) != `{"around":[{"player":"bob","rank":3,"score":3},{"player":"carol","rank":4,"score":3}],"hunt":"cup","op":"rank","player":"carol","rank":4,"ref":7,"score":3,"seq":5}` {
		t.Fatalf("rank reply: %s", b)
	}
	cs["alice"].send(`{"op":"rank","hunt":"cup"}`)
	if m := cs["alice"].until("rank"); m.num("rank") != 1 || len(m["around"].([]any)) != 4 {
		t.Fatalf("alice's rank, default around 5: %v", m)
	}
	cs["frank"].send(`{"op":"rank","hunt":"cup","ref":1}`)
	cs["frank"].until("error")
	for _, c := range []struct{ req, code string }{
		{`{"op":"rank","hunt":"cup","ref":1}`, "not_ranked"},
		{`{"op":"rank","hunt":"nope","ref":1}`, "unknown_hunt"},
		{`{"op":"rank","hunt":"cup","around":101,"ref":1}`, "bad_request"},
		{`{"op":"rank","hunt":"cup","around":-1,"ref":1}`, "bad_request"},
		{`{"op":"rank","ref":1}`, "bad_request"},
	} {
		cs["frank"].sendRaw(c.req)
		if m := cs["frank"].until("error"); m.str("code") != c.code || m.num("ref") != 1 {
			t.Fatalf("%s: %v, want %s", c.req, m, c.code)
		}
	}

	var rec struct {
		Hunt   string `json:"hunt"`
		Epoch  uint64 `json:"epoch"`
		Claims []struct {
			Seq      uint64 `json:"seq"`
			Treasure string `json:"treasure"`
			Player   string `json:"player"`
			Points   int64  `json:"points"`
			X, Y     int
			At       string `json:"at"`
		} `json:"claims"`
	}
	get("/v1/hunts/cup/claims", 200, &rec)
	if rec.Hunt != "cup" || rec.Epoch == 0 || len(rec.Claims) != 5 {
		t.Fatalf("claims: %+v", rec)
	}
	want := []string{"1 t4 alice 5 4 0", "2 t2 bob 3 2 0", "3 t1 carol 2 1 0", "4 t0 carol 1 0 0", "5 t3 dave 4 3 0"}
	for i, c := range rec.Claims {
		if got := fmt.Sprintf("%d %s %s %d %d %d", c.Seq, c.Treasure, c.Player, c.Points, c.X, c.Y); got != want[i] {
			t.Fatalf("claim %d: %s, want %s", i, got, want[i])
		}
		if !at(i, c.At) {
			t.Fatalf("claim %d at %q", i, c.At)
		}
	}
}

var atRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

func TestRecordsMemory(t *testing.T) {
	base := time.Date(2026, 12, 7, 17, 32, 50, 123456789, time.FixedZone("CET", 3600))
	var n int64
	var mu sync.Mutex
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		n++
		return base.Add(time.Duration(n) * time.Second)
	}
	tg := startGateway(t, nil, state.MemoryConfig{Now: now})
	tg.createHunt(t, fixedHunt("cup", 6))
	cs := playRecords(t, tg)
	checkRecords(t, tg, cs, func(i int, s string) bool {
		// Each claim read the clock once: 16:32:51.123Z for the first,
		// in UTC, the nanoseconds cut to milliseconds.
		return atRE.MatchString(s) && s == fmt.Sprintf("2026-12-07T16:32:%02d.123Z", 51+i)
	})
}

func TestRecordsCluster(t *testing.T) {
	url := startRedis(t)
	tg, e := startClusterNode(t, url)
	if _, err := e.Create(t.Context(), fixedHunt("cup", 6)); err != nil {
		t.Fatal(err)
	}
	cs := playRecords(t, tg)
	before := time.Now().Add(-time.Minute)
	checkRecords(t, tg, cs, func(i int, s string) bool {
		at, err := time.Parse(time.RFC3339Nano, s)
		return atRE.MatchString(s) && err == nil && at.After(before) && at.Before(time.Now().Add(time.Minute))
	})
}
