package load

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/huntgate/huntgate/bench/internal/baseline"
	"github.com/rs/zerolog"
)

func startGorilla(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: baseline.NewGorilla(zerolog.Nop())}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// e2eAPIKey is the admin key the tests start huntgate with.
const e2eAPIKey = "e2e-key"

var huntgateBin struct {
	sync.Once
	path string
	err  error
	out  []byte
}

// buildHuntgate builds the gateway once per test binary run; a gateway that
// does not build fails the test (the end-to-end runs are what it is for).
func buildHuntgate(t *testing.T) string {
	t.Helper()
	huntgateBin.Do(func() {
		dir, err := os.MkdirTemp("", "huntload-e2e")
		if err != nil {
			huntgateBin.err = err
			return
		}
		huntgateBin.path = filepath.Join(dir, "huntgate")
		build := exec.Command("go", "build", "-o", huntgateBin.path, "./gateway/cmd/huntgate")
		build.Dir = "../../.."
		huntgateBin.out, huntgateBin.err = build.CombinedOutput()
	})
	if huntgateBin.err != nil {
		t.Fatalf("huntgate does not build: %v\n%s", huntgateBin.err, huntgateBin.out)
	}
	return huntgateBin.path
}

// TestMain removes the gateway binary built for the end-to-end tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if huntgateBin.path != "" {
		_ = os.RemoveAll(filepath.Dir(huntgateBin.path))
	}
	os.Exit(code)
}

// startHuntgate builds and starts the gateway with its test endpoints.
func startHuntgate(t *testing.T) string {
	addr, _ := startHuntgateAdmin(t)
	return addr
}

// startHuntgateAdmin is startHuntgate that also returns the admin address
// (API key e2eAPIKey, dev mode).
func startHuntgateAdmin(t *testing.T) (addr, admin string) {
	t.Helper()
	bin := buildHuntgate(t)
	addr, admin = freePort(t), freePort(t)
	cmd := exec.Command(bin, "--addr", addr, "--admin-addr", admin, "--loops", "2", "--dev", "--test-endpoints",
		"--api-key", e2eAPIKey, "--log-level", "warn")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// Both listeners: the admin server starts after the player port, and
	// scenarios that create hunts use it first.
	deadline := time.Now().Add(10 * time.Second)
	for _, a := range []string{addr, admin} {
		for {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("huntgate did not listen on %s: %v", a, err)
			}
			time.Sleep(20 * time.Millisecond) // nothing to await: the process gives no signal
		}
	}
	return addr, admin
}

func TestEndToEndEchoAndFanout(t *testing.T) {
	targets := map[string]string{"gorilla": startGorilla(t), "huntgate": startHuntgate(t)}
	for name, addr := range targets {
		t.Run(name, func(t *testing.T) {
			opt := Options{Logger: zerolog.Nop()}
			echo := Config{Scenario: Echo, URL: "ws://" + addr, Players: 20, Rate: 400, Duration: 2 * time.Second, Drain: time.Second, Loops: 2}
			rep, err := Run(echo, opt)
			if err != nil {
				t.Fatal(err)
			}
			rtt := rep.Ops["rtt"]
			if rep.Facts.Connections != 20 || rep.Facts.Failed != 0 || rtt.Count == 0 || rtt.Errors != 0 || rep.Facts.Lost != 0 {
				t.Fatalf("echo: connections %d failed %d rtt %+v lost %d", rep.Facts.Connections, rep.Facts.Failed, rtt, rep.Facts.Lost)
			}
			if rep.Facts.OwnCPUS <= 0 || len(rep.Timeline) == 0 {
				t.Fatalf("echo: own cpu %v timeline %d points", rep.Facts.OwnCPUS, len(rep.Timeline))
			}

			pipe := echo
			pipe.Rate, pipe.Pipeline = 0, 4
			rep, err = Run(pipe, opt)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Facts.ThroughputPerS <= 0 || rep.Ops["rtt"].Errors != 0 {
				t.Fatalf("pipelined echo: throughput %v rtt %+v", rep.Facts.ThroughputPerS, rep.Ops["rtt"])
			}

			fan := Config{Scenario: Fanout, URL: "ws://" + addr, Players: 30, Rate: 20, Duration: 2 * time.Second, Drain: time.Second, Loops: 2}
			rep, err = Run(fan, opt)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Steps) != 1 {
				t.Fatalf("fanout steps %+v", rep.Steps)
			}
			s := rep.Steps[0]
			if s.Sent == 0 || s.Delivered != s.Sent*30 || s.Lost != 0 || rep.Ops["oneway"].Count != s.Delivered {
				t.Fatalf("fanout: %+v oneway %+v", s, rep.Ops["oneway"])
			}
		})
	}
}

// TestWorkerProtocol drives the hidden worker subcommand's line protocol
// over pipes, as the parent does over a child's stdin/stdout.
func TestWorkerProtocol(t *testing.T) {
	addr := startGorilla(t)
	cfg := Config{Scenario: Hold, URL: "ws://" + addr, Players: 5, Duration: 500 * time.Millisecond, Drain: 100 * time.Millisecond, Loops: 1}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	wc := cfg.Split()[0]
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- ServeWorker(inR, outW, zerolog.Nop()); outW.Close() }()
	line, _ := json.Marshal(wc)
	go func() { _, _ = inW.Write(append(line, '\n')) }()
	sc := bufio.NewScanner(outR)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var types []string
	for sc.Scan() {
		var m Msg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		types = append(types, m.Type)
		switch m.Type {
		case "ready":
			if m.Connected != 5 {
				t.Fatalf("ready with %d connected", m.Connected)
			}
			go func() { _, _ = fmt.Fprintf(inW, "start %d\n", time.Now().UnixNano()) }()
		case "final":
			if m.Result == nil || m.Result.Ops["handshake"].Count != 5 || m.Result.Connected != 5 {
				t.Fatalf("final %+v", m.Result)
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := strings.Join(types, " ")
	if !strings.Contains(got, "ready") || !strings.HasSuffix(got, "final") {
		t.Fatalf("message sequence %q", got)
	}
}

// TestWarmUp: the warm-up before a hold's memory baseline makes real
// upgrades and leaves nothing connected.
func TestWarmUp(t *testing.T) {
	addr, admin := startHuntgateAdmin(t)
	warmUp("ws://"+addr, "/echo", 10, zerolog.Nop())
	var st struct {
		Connections struct {
			Total    int64   `json:"total"`
			Accepted []int64 `json:"accepted"`
		} `json:"connections"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + admin + "/v1/stats")
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		var acc int64
		for _, a := range st.Connections.Accepted {
			acc += a
		}
		if acc == 10 && st.Connections.Total == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the warm-up: %d upgraded, %d still open; want 10 and 0", acc, st.Connections.Total)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
