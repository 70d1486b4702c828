package scripts

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// millionSummary is the part of million.sh's summary.json the smoke test
// checks.
type millionSummary struct {
	PlayersHeld  int64 `json:"players_held"`
	PlayersAtEnd int64 `json:"players_at_end"`
	Joins        struct {
		Admitted int64   `json:"admitted"`
		PerS     float64 `json:"admitted_per_s"`
		GaveUp   int64   `json:"gave_up"`
	} `json:"joins"`
	EventPhase struct {
		Event, Floor millionStep
	} `json:"event_phase"`
	Events   []millionStep `json:"events"`
	DigFloor struct {
		Count  int64   `json:"count"`
		Errors int64   `json:"errors"`
		P99    float64 `json:"p99_ms"`
	} `json:"dig_floor"`
	Dug struct {
		Count int64   `json:"count"`
		P99   float64 `json:"p99_ms"`
	} `json:"dug"`
	// DugSteady: the digs of the steady window, the first SteadyS seconds
	// of the dig phase, before its events and the kill.
	DugSteady *struct {
		Count int64   `json:"count"`
		P99   float64 `json:"p99_ms"`
	} `json:"dug_steady"`
	SteadyS       float64 `json:"steady_s"`
	ClaimedPushes int64   `json:"claimed_pushes"`
	Seq           struct {
		Updates int64 `json:"updates"`
		Gaps    int64 `json:"gaps"`
		Resets  int64 `json:"resets"`
	} `json:"seq"`
	KilledAtS  float64 `json:"killed_at_s"`
	Reconnects int64   `json:"reconnects"`
	Memory     struct {
		NodeRSSPerPlayer    float64 `json:"node_rss_per_player"`
		KernelSlabPerSocket float64 `json:"kernel_slab_per_socket"`
		LoadRSSPerPlayer    float64 `json:"load_rss_per_player"`
	} `json:"memory"`
}

// millionStep is one broadcast step of summary.json.
type millionStep struct {
	Name      string `json:"name"`
	Bytes     int    `json:"bytes"`
	Expected  int64  `json:"expected"`
	Delivered int64  `json:"delivered"`
	Lost      int64  `json:"lost"`
	TTE       struct {
		P99 float64 `json:"p99_ms"`
	} `json:"time_to_everyone"`
}

// TestMillionSmoke runs scripts/million.sh with 20,000 players on 3 nodes
// and one redis-server: every player held and joined; in the event phase
// the event and its floor (a plain broadcast of the same size from every
// node) each reach every player, with a time to everyone; the ping floor
// answered; every event of the dig phase delivered to every player, digs
// answered with claims fanned out, those of the steady window (before the
// dig phase's events and the kill) also on their own, one node killed
// with SIGKILL mid-run whose players reconnect and resume with no seq gap
// and no reset, memory figures reported, and nothing left running.
func TestMillionSmoke(t *testing.T) {
	for _, tool := range []string{"redis-server", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("needs %s: run scripts/test.sh or apt-get install -y %s", tool, tool)
		}
	}
	out := t.TempDir()
	port, admin, redis := freePorts(t, 1), freePorts(t, 3), freePorts(t, 1)
	cmd := exec.Command("./million.sh", "--players", "20000", "--nodes", "3", "--hunts", "2", "--ramp", "10s",
		"--rate", "2000", "--duration", "20s", "--events", "2", "--treasures", "500", "--ping-floor", "4s",
		"--port", strconv.Itoa(port), "--admin-port", strconv.Itoa(admin), "--redis-port", strconv.Itoa(redis),
		"--handshake-timeout", "30s", "--out", out, "--limit", "300")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	err := cmd.Run()
	defer func() {
		if t.Failed() {
			t.Logf("million.sh output:\n%s", log.String())
			if b, err := os.ReadFile(filepath.Join(out, "crowd.log")); err == nil {
				t.Logf("crowd.log:\n%s", b)
			}
		}
	}()
	// Whatever happened, nothing the run started may still run: every
	// process it started is one of the binaries built under out/bin.
	if left := processesUnder(t, out); len(left) > 0 {
		t.Errorf("processes left running: %v", left)
	}
	if err != nil {
		t.Fatalf("million.sh: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s millionSummary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("summary.json: %v\n%s", err, b)
	}
	if s.PlayersHeld != 20000 || s.Joins.Admitted < 20000 || s.Joins.GaveUp != 0 || s.Joins.PerS <= 0 {
		t.Fatalf("held %d, joins %+v", s.PlayersHeld, s.Joins)
	}
	for _, e := range []millionStep{s.EventPhase.Event, s.EventPhase.Floor} {
		if e.Expected != 20000 || e.Delivered != e.Expected || e.Lost != 0 || e.TTE.P99 <= 0 || e.Bytes <= 0 {
			t.Fatalf("event phase %+v: want one message to each of 20,000 players, with a time to everyone", e)
		}
	}
	if d := s.EventPhase.Event.Bytes - s.EventPhase.Floor.Bytes; d < -2 || d > 2 {
		t.Fatalf("event %d B, floor %d B: want the same size", s.EventPhase.Event.Bytes, s.EventPhase.Floor.Bytes)
	}
	if s.DigFloor.Count < 4000 || s.DigFloor.P99 <= 0 {
		t.Fatalf("dig floor %+v: want pings answered at 2,000/s for 4 s", s.DigFloor)
	}
	if len(s.Events) != 1 {
		t.Fatalf("events: %+v", s.Events)
	}
	for _, e := range s.Events {
		if e.Expected != 2*20000 || e.Delivered != e.Expected || e.Lost != 0 {
			t.Fatalf("event delivery %+v: want 2 events to each of 20,000 players", e)
		}
	}
	if s.Dug.Count < 30000 || s.ClaimedPushes == 0 {
		t.Fatalf("dug %+v claimed pushes %d (2,000/s for 20 s)", s.Dug, s.ClaimedPushes)
	}
	// The steady window is the first third of the 20 s dig phase: digs at
	// 2,000/s for 6 s, before the first event (6 s) and the kill (10 s).
	if s.SteadyS != 6 || s.DugSteady == nil || s.DugSteady.Count < 6000 || s.DugSteady.Count > 12500 || s.DugSteady.P99 <= 0 {
		t.Fatalf("steady window %.1f s, digs %+v: want the digs of its 6 s alone", s.SteadyS, s.DugSteady)
	}
	if s.KilledAtS < 9 || s.Reconnects == 0 {
		t.Fatalf("node kill at %.1f s, reconnects %d", s.KilledAtS, s.Reconnects)
	}
	if s.PlayersAtEnd != 20000 {
		t.Fatalf("%d players connected at the end, want all 20,000 back", s.PlayersAtEnd)
	}
	if s.Seq.Updates == 0 || s.Seq.Gaps != 0 || s.Seq.Resets != 0 {
		t.Fatalf("seq %+v: want updates, no gap, no reset", s.Seq)
	}
	if s.Memory.NodeRSSPerPlayer <= 0 || s.Memory.KernelSlabPerSocket <= 0 || s.Memory.LoadRSSPerPlayer <= 0 {
		t.Fatalf("memory %+v", s.Memory)
	}
}

// processesUnder lists the running processes whose executable path lies
// under dir.
func processesUnder(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || exited(pid) {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		argv0, _, _ := bytes.Cut(b, []byte{0})
		if bytes.HasPrefix(argv0, []byte(dir+"/")) {
			left = append(left, e.Name()+" "+string(argv0))
		}
	}
	return left
}
