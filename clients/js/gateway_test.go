package huntgatejs_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests here run the gateway as a real process (the binary built once
// by TestMain), since the resume test kills and restarts it.

var gatewayBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "huntgate-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gatewayBin = filepath.Join(dir, "huntgate")
	out, err := exec.Command("go", "build", "-o", gatewayBin, "github.com/huntgate/huntgate/gateway/cmd/huntgate").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build huntgate: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	if browser.cancel != nil {
		browser.cancel()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// gatewayProc is a running huntgate process.
type gatewayProc struct {
	cmd   *exec.Cmd
	addr  string // player address
	admin string // admin address
	done  chan struct{}
	mu    sync.Mutex
	logs  bytes.Buffer
}

const testAPIKey = "k"

// startGateway runs huntgate with args on ephemeral loopback ports (unless
// args name --addr) and waits until it logs that it is serving. The process
// is killed when the test ends.
func startGateway(t *testing.T, args ...string) *gatewayProc {
	t.Helper()
	full := []string{"--admin-addr", "127.0.0.1:0", "--api-key", testAPIKey, "--loops", "2"}
	if !contains(args, "--addr") {
		full = append(full, "--addr", "127.0.0.1:0")
	}
	full = append(full, args...)
	g := &gatewayProc{cmd: exec.Command(gatewayBin, full...), done: make(chan struct{})}
	stderr, err := g.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	serving := make(chan map[string]any, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Bytes()
			g.mu.Lock()
			g.logs.Write(line)
			g.logs.WriteByte('\n')
			g.mu.Unlock()
			var m map[string]any
			if json.Unmarshal(line, &m) == nil && m["message"] == "huntgate: serving" {
				serving <- m
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = g.cmd.Wait()
		close(g.done)
	}()
	t.Cleanup(func() {
		if g.cmd.Process != nil {
			_ = g.cmd.Process.Kill()
		}
		<-g.done
		if t.Failed() {
			t.Logf("huntgate %v log:\n%s", args, g.log())
		}
	})
	select {
	case m := <-serving:
		g.addr, _ = m["addr"].(string)
		g.admin, _ = m["admin_addr"].(string)
	case <-g.done:
		t.Fatalf("huntgate exited at start:\n%s", g.log())
	case <-time.After(15 * time.Second):
		t.Fatalf("huntgate did not start:\n%s", g.log())
	}
	return g
}

func (g *gatewayProc) log() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.logs.String()
}

// kill stops the process with SIGKILL (no drain) and waits for it.
func (g *gatewayProc) kill(t *testing.T) {
	t.Helper()
	if err := g.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-g.done
}

// post sends an authenticated admin POST.
func (g *gatewayProc) post(path, body string) (int, string) {
	req, err := http.NewRequest("POST", "http://"+g.admin+path, strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("X-API-Key", testAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// createHunt creates a hunt from a JSON spec.
func (g *gatewayProc) createHunt(t *testing.T, spec string) {
	t.Helper()
	if code, body := g.post("/v1/hunts", spec); code != http.StatusCreated {
		t.Fatalf("create hunt: %d %s", code, body)
	}
}

// freePort returns a loopback port that was free a moment ago, for a
// gateway that must come back on the same port.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// interruptSignal asks a gateway to drain.
var interruptSignal = syscall.SIGTERM
