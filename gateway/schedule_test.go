package gateway

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// checkSchedule creates a hunt through the admin API that starts and ends
// soon on the real clock, and follows it as a player: scheduled at join,
// not_started for a dig, then started, a claim, and ended.
func checkSchedule(t *testing.T, tg *testGateway) {
	t.Helper()
	start := time.Now().Add(2 * time.Second).UTC() // margin for a loaded machine: the create must land before it
	end := start.Add(500 * time.Millisecond)
	spec := fmt.Sprintf(`{"id":"sched","width":4,"height":4,"treasures":[{"id":"a","x":1,"y":1,"points":5},{"id":"b","x":3,"y":3,"points":1}],"starts_at":%q,"ends_at":%q}`,
		start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano))
	if st, b := tg.adminDo(t, "POST", "/v1/hunts", testAPIKey, spec); st != 201 || !contains(b, `"state":"scheduled"`) {
		t.Fatalf("create: %d %s", st, b)
	}
	// The status carries the schedule (RFC 3339, ms, UTC); a hunt without
	// one has neither field.
	sched := fmt.Sprintf(`"starts_at":%q,"ends_at":%q`, start.Format(atLayout), end.Format(atLayout))
	if st, b := tg.adminDo(t, "GET", "/v1/hunts/sched", "", ""); st != 200 || !contains(b, sched) {
		t.Fatalf("status: %d %s, want %s", st, b, sched)
	}
	if st, b := tg.adminDo(t, "POST", "/v1/hunts", testAPIKey, `{"id":"plain","width":2,"height":2}`); st != 201 || contains(b, "starts_at") || contains(b, "ends_at") {
		t.Fatalf("create plain: %d %s", st, b)
	}
	if st, b := tg.adminDo(t, "POST", "/v1/hunts", testAPIKey, `{"id":"bad","width":4,"height":4,"starts_at":"2026-12-07T10:00:00Z","ends_at":"2026-12-07T09:00:00Z"}`); st != 400 {
		t.Fatalf("ends before start: %d %s", st, b)
	}
	p := tg.player(t, "alice")
	if j := p.join("sched"); j["status"].(map[string]any)["state"] != "scheduled" || j["status"].(map[string]any)["ends_at"] != end.Format(atLayout) {
		t.Fatalf("joined: %v", j)
	}
	p.send(`{"op":"dig","hunt":"sched","x":1,"y":1,"ref":1}`)
	if e := p.expectError("not_started"); e.num("ref") != 1 {
		t.Fatalf("dig before start: %v", e)
	}
	p.send(`{"op":"status","hunt":"sched"}`)
	if m := p.expect("status"); m["status"].(map[string]any)["state"] != "scheduled" {
		t.Fatalf("status: %v", m)
	}
	// The started push, then a claim, then ended at ends_at.
	_ = p.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	m := p.until("update")
	if m.str("kind") != "started" || m.num("seq") != 1 {
		t.Fatalf("first update %v", m)
	}
	p.send(`{"op":"dig","hunt":"sched","x":1,"y":1}`)
	if m := p.until("dug"); m["found"] != true {
		t.Fatalf("dig after start: %v", m)
	}
	for {
		m := p.until("update")
		if m.str("kind") == "ended" {
			if m.num("seq") != 3 {
				t.Fatalf("ended %v", m)
			}
			break
		}
	}
	if time.Now().Before(end) {
		t.Fatalf("ended before ends_at")
	}
	st, b := tg.adminDo(t, "GET", "/v1/hunts/sched/updates?since=0", "", "")
	if st != 200 || !contains(b, `"seq":1,"kind":"started"}`) {
		t.Fatalf("feed: %d %s", st, b)
	}
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }

func TestScheduleMemory(t *testing.T) {
	checkSchedule(t, startGateway(t, nil))
}

func TestScheduleCluster(t *testing.T) {
	url := startRedis(t)
	tg, _ := startClusterNode(t, url)
	checkSchedule(t, tg)
}
