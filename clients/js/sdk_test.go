package huntgatejs_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// nodeWithWebSocket returns the arguments that run node with a global
// WebSocket (Node 22 has it, Node 20 and 21 behind a flag), skipping the
// test when there is no such node (Debian 12 ships Node 18).
func nodeWithWebSocket(t *testing.T) []string {
	t.Helper()
	path, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found")
	}
	const probe = `process.exit(typeof WebSocket === "function" ? 0 : 1)`
	for _, args := range [][]string{{path}, {path, "--experimental-websocket"}} {
		if exec.Command(args[0], append(args[1:], "-e", probe)...).Run() == nil {
			return args
		}
	}
	t.Skip("this node has no WebSocket (Node 20+ needed)")
	return nil
}

// TestSDKNode runs the SDK under Node against a real gateway process
// (testdata/sdk_node.mjs): requests queued before connect, join, errors as
// Error with the wire code, updates once each in order, close() rejecting
// what is in flight or queued with code closed, and after the gateway is
// restarted (a memory engine: the history is gone, a new epoch) a reconnect,
// a rejoin answered with a reset carrying the new status, and the stream
// going on.
func TestSDKNode(t *testing.T) {
	node := nodeWithWebSocket(t)
	port := freePort(t)
	args := []string{"--dev", "--addr", "127.0.0.1:" + port, "--drain", "200ms"}
	g := startGateway(t, args...)
	cmd := exec.Command(node[0], append(node[1:], "testdata/sdk_node.mjs")...)
	cmd.Env = append(cmd.Environ(), "HUNTGATE_WS=ws://"+g.addr)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		done <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	publish := func(body string) {
		t.Helper()
		if code, resp := g.post("/v1/hunts/demo/events", body); code != http.StatusOK {
			t.Fatalf("publish: %d %s", code, resp)
		}
	}
	steps := 0
	timeout := time.After(60 * time.Second)
	for {
		var line string
		var ok bool
		select {
		case line, ok = <-lines:
		case <-timeout:
			t.Fatalf("node script stuck after %d steps; stderr:\n%s", steps, stderr.String())
		}
		if !ok {
			break
		}
		t.Log(line)
		switch {
		case strings.HasPrefix(line, "STEP "):
			steps++
		case line == "WAIT publish 3 events":
			for i := range 3 {
				publish(fmt.Sprintf(`{"n":%d}`, i))
			}
		case line == "WAIT restart the gateway":
			// A drain, as in a deploy: the player gets a reconnect notice
			// and a 1001 close; the new process has a new epoch.
			if err := g.cmd.Process.Signal(interruptSignal); err != nil {
				t.Fatal(err)
			}
			<-g.done
			g = startGateway(t, args...)
		case line == "WAIT publish after the restart":
			publish(`{"after":"restart"}`)
		default:
			continue
		}
		if strings.HasPrefix(line, "WAIT ") {
			if _, err := io.WriteString(stdin, "go\n"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	if steps != 7 {
		t.Fatalf("%d steps ran, want 7", steps)
	}
}
