// Package scripts holds the tests of the operating scripts in this
// directory: they run the scripts as a user would, against real processes.
package scripts

import (
	"bufio"
	"bytes"
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
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// huntgateBin builds the gateway once per test binary run.
func huntgateBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "scripts-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "huntgate")
		out, err := exec.Command("go", "build", "-o", builtBin, "../gateway/cmd/huntgate").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// freePorts returns the first of n consecutive loopback ports that are free
// now (each checked by listening on it).
func freePorts(t *testing.T, n int) int { return freePortsPlus(t, n, 0) }

// given holds every port freePortsPlus handed out in this process (with the
// + plus ports): a port is free only until its user binds it, so without it
// two calls of one test could get overlapping ranges (an admin port that
// was also a Redis Cluster node's, in one CI run).
var given = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// handedOut reports whether any port of the range was handed out before,
// and if none was, records them all.
func handedOut(base, n, plus int) bool {
	given.Lock()
	defer given.Unlock()
	var ps []int
	for i := 0; i < n; i++ {
		ps = append(ps, base+i)
		if plus > 0 {
			ps = append(ps, base+i+plus)
		}
	}
	for _, p := range ps {
		if given.ports[p] {
			return true
		}
	}
	for _, p := range ps {
		given.ports[p] = true
	}
	return false
}

// freePortsPlus is freePorts that also needs each port + plus free (a Redis
// Cluster node's bus port is its port + 10,000); plus 0 checks nothing more.
// A range with a port handed out before in this process is not taken.
func freePortsPlus(t *testing.T, n, plus int) int {
	t.Helper()
	for try := 0; try < 200; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := l.Addr().(*net.TCPAddr).Port
		ls := []net.Listener{l}
		ok := base+n+plus <= 65535 && !handedOut(base, n, plus)
		for i := 0; ok && i < n; i++ {
			ports := []int{base + i}
			if i == 0 {
				ports = nil
			}
			if plus > 0 {
				ports = append(ports, base+i+plus)
			}
			for _, p := range ports {
				li, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
				if err != nil {
					ok = false
					break
				}
				ls = append(ls, li)
			}
		}
		for _, li := range ls {
			li.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

func runScript(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("./cluster.sh", args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("cluster.sh %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// recordedPIDs reads the PIDs that cluster.sh up wrote under dir/pids.
func recordedPIDs(t *testing.T, dir string) map[string]int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "pids"))
	if err != nil {
		t.Fatal(err)
	}
	pids := map[string]int{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, "pids", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(b))
		pid, err := strconv.Atoi(f[0])
		if err != nil {
			t.Fatalf("pid file %s: %q", e.Name(), b)
		}
		pids[e.Name()] = pid
	}
	return pids
}

func httpDo(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", "k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// connections reads huntgate_connections from a node's /metrics.
func connections(t *testing.T, admin string) int {
	t.Helper()
	_, body := httpDo(t, "GET", admin+"/metrics", "")
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "huntgate_connections" {
			n, _ := strconv.ParseFloat(f[1], 64)
			return int(n)
		}
	}
	t.Fatalf("no huntgate_connections in %s/metrics", admin)
	return 0
}

// exited reports whether pid is gone or a zombie waiting for its new parent
// (the script that started it has exited) to reap it.
func exited(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z'
}

// TestClusterUpServeDown brings up two nodes on one Redis with
// scripts/cluster.sh, checks that both are ready, share hunts through Redis
// and take players from the one shared port, that status reports them, and
// that down leaves none of the processes it started.
func TestClusterUpServeDown(t *testing.T) {
	t.Run("redis", func(t *testing.T) { testClusterUpServeDown(t, false) })
	t.Run("redis-cluster", func(t *testing.T) { testClusterUpServeDown(t, true) })
}

func testClusterUpServeDown(t *testing.T, redisCluster bool) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("needs redis-server: run scripts/test.sh or apt-get install -y redis-server")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("needs curl: run scripts/test.sh or apt-get install -y curl")
	}
	bin := huntgateBin(t)
	dir := t.TempDir()
	port := freePorts(t, 1)
	adminPort := freePorts(t, 2)
	redisPort, redisProcs := freePorts(t, 1), 1
	common := []string{"--dir", dir}
	up := append([]string{"up", "--nodes", "2", "--port", strconv.Itoa(port),
		"--admin-port", strconv.Itoa(adminPort), "--bin", bin, "--timeout", "60"}, common...)
	if redisCluster {
		// 3 primaries + 3 replicas on 6 ports and their bus ports.
		redisPort, redisProcs = freePortsPlus(t, 6, 10000), 6
		up = append(up, "--redis-cluster")
	}
	up = append(up, "--redis-port", strconv.Itoa(redisPort))
	up = append(up, "--", "--dev", "--api-key", "k", "--loops", "1", "--log-level", "warn", "--drain", "1s")
	runScript(t, up...)
	pids := recordedPIDs(t, dir)
	downDone := false
	t.Cleanup(func() {
		if !downDone {
			_ = exec.Command("./cluster.sh", append([]string{"down"}, common...)...).Run()
		}
	})
	if len(pids) != 2+redisProcs || pids["node-0"] == 0 || pids["node-1"] == 0 || pids["redis-"+strconv.Itoa(redisPort)] == 0 {
		t.Fatalf("recorded PIDs %v, want node-0, node-1 and %d redis-server", pids, redisProcs)
	}

	admins := []string{
		"http://127.0.0.1:" + strconv.Itoa(adminPort),
		"http://127.0.0.1:" + strconv.Itoa(adminPort+1),
	}
	for _, a := range admins {
		if code, body := httpDo(t, "GET", a+"/readyz", ""); code != 200 {
			t.Fatalf("%s/readyz: %d %s", a, code, body)
		}
	}
	// A hunt created on node 0 is served by node 1: one Redis behind both.
	if code, body := httpDo(t, "POST", admins[0]+"/v1/hunts",
		`{"id":"c1","width":8,"height":8,"treasures":[{"id":"t1","x":1,"y":1,"points":5}]}`); code != 201 {
		t.Fatalf("create on node 0: %d %s", code, body)
	}
	if code, body := httpDo(t, "GET", admins[1]+"/v1/hunts/c1", ""); code != 200 || !strings.Contains(body, `"hunt":"c1"`) {
		t.Fatalf("hunt on node 1: %d %s", code, body)
	}

	// Players on the shared port: the kernel spreads them over both nodes'
	// listeners; every one of them joins the hunt.
	url := "ws://127.0.0.1:" + strconv.Itoa(port) + "/ws?player="
	var players []*websocket.Conn
	defer func() {
		for _, c := range players {
			c.Close()
		}
	}()
	counts := [2]int{}
	for i := 0; i < 200 && (counts[0] == 0 || counts[1] == 0 || len(players) < 8); i++ {
		c, _, err := websocket.DefaultDialer.Dial(url+"p"+strconv.Itoa(i), nil)
		if err != nil {
			t.Fatalf("player %d: %v", i, err)
		}
		players = append(players, c)
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"op":"join","hunt":"c1","ref":1}`)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, msg, err := c.ReadMessage()
		if err != nil || !bytes.Contains(msg, []byte(`"op":"joined"`)) {
			t.Fatalf("player %d join: %s %v", i, msg, err)
		}
		counts[0], counts[1] = connections(t, admins[0]), connections(t, admins[1])
	}
	if counts[0] == 0 || counts[1] == 0 || counts[0]+counts[1] != len(players) {
		t.Fatalf("connections per node %v for %d players: want both nodes serving", counts, len(players))
	}

	st := runScript(t, append([]string{"status"}, common...)...)
	for i, n := range counts {
		want := fmt.Sprintf("%d      %-8d running  200    %d", i, pids["node-"+strconv.Itoa(i)], n)
		if !strings.Contains(st, want) {
			t.Fatalf("status lacks %q:\n%s", want, st)
		}
	}
	if !strings.Contains(st, "total connections: "+strconv.Itoa(len(players))) {
		t.Fatalf("status total, want %d:\n%s", len(players), st)
	}

	runScript(t, append([]string{"down", "--timeout", "20"}, common...)...)
	downDone = true
	for name, pid := range pids {
		if !exited(pid) {
			t.Errorf("%s (pid %d) still runs after down", name, pid)
		}
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "pids")); len(left) != 0 {
		t.Errorf("pid files left after down: %v", left)
	}
}
