package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestAdminAPI(t *testing.T) {
	tg := startGateway(t, nil)
	spec := `{"id":"g1","width":10,"height":10,"treasures":[{"id":"a","x":1,"y":1,"points":5},{"id":"b","x":2,"y":2,"points":7}]}`

	// Mutations need the key, in either header.
	for _, key := range []string{"", "wrong"} {
		if code, body := tg.adminDo(t, "POST", "/v1/hunts", key, spec); code != 401 || !strings.Contains(string(body), `"code":"unauthorized"`) {
			t.Fatalf("create with key %q: %d %s", key, code, body)
		}
	}
	code, body := tg.adminDo(t, "POST", "/v1/hunts", testAPIKey, spec)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	var st map[string]any
	if err := json.Unmarshal(body, &st); err != nil || st["hunt"] != "g1" || st["treasures_left"] != 2.0 || st["state"] != "open" {
		t.Fatalf("create answer %s", body)
	}
	if code, body := tg.adminDo(t, "POST", "/v1/hunts", testAPIKey, spec); code != 409 || !strings.Contains(string(body), `"error":{"code":"exists"`) {
		t.Fatalf("duplicate: %d %s", code, body)
	}
	for _, bad := range []string{
		`{"id":"g2","width":0,"height":1}`, `{"id":"g3"`, `{"id":"g4","width":5,"height":5,"bogus":1}`,
		``, `null`, `[1]`, `"g5"`,
		`{"id":"g5","width":"5","height":5}`, `{"id":5,"width":5,"height":5}`, `{"id":"g5","width":5.5,"height":5}`,
		`{"id":"g5","width":5,"height":5,"treasures":{}}`, `{"id":"g5","width":5,"height":5,"random":{"count":"1"}}`,
		`{"id":"bad id","width":5,"height":5}`, `{"id":"` + strings.Repeat("a", 65) + `","width":5,"height":5}`,
		`{"id":"g5","width":5,"height":5,"random":{"count":1000000000,"seed":1,"max_points":5}}`,
		`{"id":"g5","width":5,"height":5} {"id":"g6","width":5,"height":5}`, `{"id":"g5","width":5,"height":5}x`,
	} {
		if code, body := tg.adminDo(t, "POST", "/v1/hunts", testAPIKey, bad); code != 400 || !strings.Contains(string(body), `"code":"bad_request"`) {
			t.Fatalf("bad spec %s: %d %s", bad, code, body)
		}
	}
	if code, body := tg.adminDo(t, "GET", "/v1/hunts/g5", "", ""); code != 404 {
		t.Fatalf("a refused spec created a hunt: %d %s", code, body)
	}
	defer func(n int64) { maxSpecBytes = n }(maxSpecBytes)
	maxSpecBytes = 1 << 10
	big := `{"id":"big","width":5,"height":5,"treasures":[` + strings.Repeat(`{"id":"t","x":1,"y":1,"points":1},`, 100) + `{"id":"u","x":2,"y":2,"points":1}]}`
	if code, body := tg.adminDo(t, "POST", "/v1/hunts", testAPIKey, big); code != 413 || !strings.Contains(string(body), `"code":"too_large"`) {
		t.Fatalf("spec over the limit: %d %s", code, body)
	}
	req, _ := http.NewRequest("POST", tg.admin+"/v1/hunts", strings.NewReader(`{"id":"r1","width":50,"height":50,"random":{"count":20,"seed":7,"max_points":9}}`))
	req.Header.Set("Authorization", "Bearer "+testAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("create with bearer: %v %v", resp, err)
	}
	resp.Body.Close()

	// A player in the hunt sees events and the end.
	c := tg.player(t, "alice")
	c.join("g1")
	if code, body := tg.adminDo(t, "GET", "/v1/hunts/g1", "", ""); code != 200 || !strings.Contains(string(body), `"players":1`) {
		t.Fatalf("get: %d %s", code, body)
	}
	if code, _ := tg.adminDo(t, "GET", "/v1/hunts/zzz", "", ""); code != 404 {
		t.Fatalf("get unknown: %d", code)
	}
	if code, body := tg.adminDo(t, "POST", "/v1/hunts/g1/events", "", `{"x":1}`); code != 401 {
		t.Fatalf("event without key: %d %s", code, body)
	}
	for _, bad := range []string{`{"x":`, ``, " \n", `{"x":1} {"x":2}`, `{"x":1}x`, `{'x':1}`} {
		if code, body := tg.adminDo(t, "POST", "/v1/hunts/g1/events", testAPIKey, bad); code != 400 || !strings.Contains(string(body), `"code":"bad_request"`) {
			t.Fatalf("bad event %q: %d %s", bad, code, body)
		}
	}
	for _, path := range []string{"/v1/hunts/" + strings.Repeat("a", 200), "/v1/hunts/a%20b", "/v1/hunts/%00"} {
		if code, body := tg.adminDo(t, "DELETE", path, testAPIKey, ""); code != 404 || !strings.Contains(string(body), `"code":"unknown_hunt"`) {
			t.Fatalf("end %s: %d %s", path, code, body)
		}
		if code, body := tg.adminDo(t, "POST", path+"/events", testAPIKey, `1`); code != 404 {
			t.Fatalf("event to %s: %d %s", path, code, body)
		}
	}
	if code, body := tg.adminDo(t, "POST", "/v1/hunts/g1/events", testAPIKey, `"`+strings.Repeat("x", 70000)+`"`); code != 413 || !strings.Contains(string(body), "too_large") {
		t.Fatalf("big event: %d %s", code, body)
	}
	if code, body := tg.adminDo(t, "POST", "/v1/hunts/nope/events", testAPIKey, `1`); code != 404 {
		t.Fatalf("event to unknown hunt: %d %s", code, body)
	}
	if code, body := tg.adminDo(t, "POST", "/v1/hunts/g1/events", testAPIKey, `[true,null]`); code != 200 || string(body) != "{\"seq\":1}\n" {
		t.Fatalf("event: %d %s", code, body)
	}
	if m := c.expect("update"); m.str("kind") != "event" || m["data"].([]any)[0] != true {
		t.Fatalf("event push %v", m)
	}
	if code, _ := tg.adminDo(t, "DELETE", "/v1/hunts/g1", "", ""); code != 401 {
		t.Fatalf("end without key: %d", code)
	}
	if code, body := tg.adminDo(t, "DELETE", "/v1/hunts/g1", testAPIKey, ""); code != 200 || !strings.Contains(string(body), `"state":"ended"`) {
		t.Fatalf("end: %d %s", code, body)
	}
	if m := c.expect("update"); m.str("kind") != "ended" || m.num("seq") != 2 || m["top"] == nil {
		t.Fatalf("ended push %v", m)
	}
	if code, _ := tg.adminDo(t, "DELETE", "/v1/hunts/g1", testAPIKey, ""); code != 409 {
		t.Fatalf("end twice: %d", code)
	}

	// Stats: the documented shape.
	c.sendRaw(`{"op":"ping"}`)
	c.expect("pong")
	code, body = tg.adminDo(t, "GET", "/v1/stats", "", "")
	if code != 200 {
		t.Fatalf("stats: %d", code)
	}
	var s struct {
		Connections struct {
			Total int64   `json:"total"`
			Loops []int64 `json:"loops"`
		} `json:"connections"`
		Hunts map[string]struct {
			Players int `json:"players"`
		} `json:"hunts"`
		Messages struct {
			In  int64 `json:"in"`
			Out int64 `json:"out"`
		} `json:"messages"`
		SlowCloses *int64 `json:"slow_closes"`
		Loops      []struct {
			Passes  int64    `json:"passes"`
			BusySec float64  `json:"busy_s"`
			PassMax *float64 `json:"pass_max_s"`
		} `json:"loops"`
	}
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	if s.Connections.Total != 1 || len(s.Connections.Loops) != 2 || s.Hunts["g1"].Players != 1 ||
		s.Messages.In < 2 || s.Messages.Out < 4 || s.SlowCloses == nil {
		t.Fatalf("stats %s", body)
	}
	if len(s.Loops) != 2 || s.Loops[0].Passes+s.Loops[1].Passes == 0 || s.Loops[0].BusySec+s.Loops[1].BusySec <= 0 || s.Loops[0].PassMax == nil {
		t.Fatalf("stats without loop pass metrics: %s", body)
	}
	if _, ok := s.Hunts["r1"]; !ok {
		t.Fatalf("stats without hunt r1: %s", body)
	}

	code, body = tg.adminDo(t, "GET", "/metrics", "", "")
	for _, want := range []string{
		"# TYPE huntgate_connections gauge\nhuntgate_connections 1\n",
		`huntgate_loop_connections{loop="1"}`,
		`huntgate_requests_total{op="join"} 1`,
		`huntgate_hunt_players{hunt="g1"} 1`,
		"huntgate_messages_in_total ",
		"huntgate_slow_closes_total 0",
		"# TYPE huntgate_loop_busy_seconds_total counter\nhuntgate_loop_busy_seconds_total{loop=\"0\"} ",
		"# TYPE huntgate_loop_pass_max_seconds gauge\nhuntgate_loop_pass_max_seconds{loop=\"0\"} ",
		`huntgate_loop_passes_total{loop="1"} `,
	} {
		if code != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("metrics (%d) lack %q:\n%s", code, want, body)
		}
	}
	if code, _ := tg.adminDo(t, "GET", "/healthz", "", ""); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, _ := tg.adminDo(t, "GET", "/readyz", "", ""); code != 200 {
		t.Fatalf("readyz %d", code)
	}
	tg.draining.Store(true)
	if code, _ := tg.adminDo(t, "GET", "/readyz", "", ""); code != 503 {
		t.Fatalf("readyz while draining %d", code)
	}
	if got := tg.dialStatus(t, "/ws?player=late", nil); got != 503 {
		t.Fatalf("upgrade while draining: %d", got)
	}
	tg.draining.Store(false)
	if code, _ := tg.adminDo(t, "GET", "/nope", "", ""); code != 404 {
		t.Fatalf("unknown admin path %d", code)
	}
}

func TestNoAPIKeyRefusesMutations(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.APIKey = "" })
	if code, _ := tg.adminDo(t, "POST", "/v1/hunts", "", `{"id":"x","width":1,"height":1}`); code != 401 {
		t.Fatalf("create without configured key: %d", code)
	}
}
