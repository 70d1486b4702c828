package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"
)

// The many-hosts test: three gateway nodes, each in a network namespace of
// its own, reach a Redis in a fourth namespace over veth pairs, as three
// hosts and a Redis host would. Addresses are 10.213.<node>.1 (Redis side)
// and 10.213.<node>.2 (node side), inside these namespaces only. The test
// process reaches each node's player and admin ports on the loopback of
// the node's namespace, by dialling from a thread that entered it.

const (
	nsPlayerPort = 8080
	nsAdminPort  = 9000
	nsRedisPort  = 6379
	nsAPIKey     = "netns-key"
)

// netLab is the namespaces of one run.
type netLab struct {
	t     *testing.T
	id    string   // unique per run: namespace and link names
	redis string   // namespace of Redis
	nodes []string // namespaces of the gateway nodes
}

func (lab *netLab) ip(args ...string) {
	lab.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		lab.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// link is the Redis-side end of node i's veth pair.
func (lab *netLab) link(i int) string { return fmt.Sprintf("h%sr%d", lab.id, i) }

// newNetLab makes the namespaces and links, or skips the test where it
// cannot (not root, no ip netns).
func newNetLab(t *testing.T, nodes int) *netLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the many-hosts test makes network namespaces: it needs root (CI runs it as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("the many-hosts test needs iproute2's ip (apt-get install -y iproute2)")
	}
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil {
		t.Skipf("ip netns is unavailable here: %v: %s", err, out)
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	lab := &netLab{t: t, id: hex.EncodeToString(b), redis: ""}
	lab.redis = "hg" + lab.id + "-redis"
	t.Cleanup(func() {
		for _, ns := range append([]string{lab.redis}, lab.nodes...) {
			_ = exec.Command("ip", "netns", "del", ns).Run() // its links go with it
		}
	})
	lab.ip("netns", "add", lab.redis)
	lab.ip("-n", lab.redis, "link", "set", "lo", "up")
	for i := range nodes {
		ns := fmt.Sprintf("hg%s-n%d", lab.id, i)
		lab.nodes = append(lab.nodes, ns)
		lab.ip("netns", "add", ns)
		lab.ip("-n", ns, "link", "set", "lo", "up")
		peer := fmt.Sprintf("h%sn%d", lab.id, i)
		lab.ip("-n", lab.redis, "link", "add", lab.link(i), "type", "veth", "peer", "name", peer, "netns", ns)
		lab.ip("-n", lab.redis, "addr", "add", fmt.Sprintf("10.213.%d.1/24", i), "dev", lab.link(i))
		lab.ip("-n", ns, "addr", "add", fmt.Sprintf("10.213.%d.2/24", i), "dev", peer)
		lab.ip("-n", lab.redis, "link", "set", lab.link(i), "up")
		lab.ip("-n", ns, "link", "set", peer, "up")
	}
	return lab
}

// start runs cmd inside namespace ns, its output in log, killed at cleanup.
func (lab *netLab) start(ns, log string, cmd ...string) {
	lab.t.Helper()
	f, err := os.Create(log)
	if err != nil {
		lab.t.Fatal(err)
	}
	c := exec.Command("ip", append([]string{"netns", "exec", ns}, cmd...)...)
	c.Stdout, c.Stderr = f, f
	if err := c.Start(); err != nil {
		lab.t.Fatal(err)
	}
	lab.t.Cleanup(func() {
		_ = c.Process.Kill() // ip netns exec execs the command: this is its PID
		_ = c.Wait()
		f.Close()
		if lab.t.Failed() {
			b, _ := os.ReadFile(log)
			lab.t.Logf("%s:\n%s", filepath.Base(log), tail(b, 3000))
		}
	})
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// dialIn connects to addr from inside namespace ns: the socket is made on
// a thread that entered ns, and stays in ns whichever thread uses it later.
// The thread is never unlocked, so the runtime drops it when the goroutine
// ends instead of reusing a thread in another namespace.
func dialIn(ctx context.Context, ns, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{nil, fmt.Errorf("setns %s: %w", ns, err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// httpIn is an HTTP client whose connections are made inside ns.
func httpIn(ns string) *http.Client {
	return &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dialIn(ctx, ns, addr)
		},
	}}
}

// readyz returns the status of node ns's /readyz (0 if unreachable).
func readyz(ns string) int {
	resp, err := httpIn(ns).Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", nsAdminPort))
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// admin makes an admin request on node ns.
func admin(t *testing.T, ns, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", nsAdminPort, path), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", nsAPIKey)
	resp, err := httpIn(ns).Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, ns, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// nsPlayer is a player connected to one node.
type nsPlayer struct {
	t          *testing.T
	id         string
	c          *websocket.Conn
	epoch, seq uint64 // last reliable update seen
	events     []string
}

func (lab *netLab) connect(t *testing.T, ns, id string) *nsPlayer {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 3 * time.Second, NetDialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
		return dialIn(ctx, ns, addr)
	}}
	c, _, err := d.Dial(fmt.Sprintf("ws://127.0.0.1:%d/ws?player=%s", nsPlayerPort, id), nil)
	if err != nil {
		t.Fatalf("player %s on %s: %v", id, ns, err)
	}
	t.Cleanup(func() { c.Close() })
	return &nsPlayer{t: t, id: id, c: c}
}

type nsMsg struct {
	Op       string          `json:"op"`
	Epoch    uint64          `json:"epoch"`
	Seq      uint64          `json:"seq"`
	Kind     string          `json:"kind"`
	Data     json.RawMessage `json:"data"`
	Reset    *bool           `json:"reset"`
	Replayed int             `json:"replayed"`
	Code     string          `json:"code"`
}

func (p *nsPlayer) read() nsMsg {
	p.t.Helper()
	_ = p.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := p.c.ReadMessage()
	if err != nil {
		p.t.Fatalf("player %s: %v", p.id, err)
	}
	var m nsMsg
	if err := json.Unmarshal(b, &m); err != nil {
		p.t.Fatalf("player %s: %s: %v", p.id, b, err)
	}
	return m
}

// take records a reliable update, checking it follows the last one.
func (p *nsPlayer) take(m nsMsg) {
	p.t.Helper()
	if m.Kind != "event" {
		return
	}
	if m.Epoch != p.epoch || m.Seq != p.seq+1 {
		p.t.Fatalf("player %s: update %d/%d after %d/%d: lost or reordered", p.id, m.Epoch, m.Seq, p.epoch, p.seq)
	}
	p.seq = m.Seq
	p.events = append(p.events, string(m.Data))
}

// join joins the hunt, resuming from what the player saw if it saw
// anything, and takes the replay.
func (p *nsPlayer) join(hunt string) nsMsg {
	p.t.Helper()
	if p.epoch == 0 {
		_ = p.c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"op":"join","hunt":%q}`, hunt)))
	} else {
		_ = p.c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"op":"join","hunt":%q,"since":%d,"epoch":%d}`, hunt, p.seq, p.epoch)))
	}
	var j nsMsg
	for j = p.read(); j.Op != "joined"; j = p.read() {
		if j.Op == "error" {
			p.t.Fatalf("player %s: join refused: %s", p.id, j.Code)
		}
	}
	if p.epoch == 0 {
		p.epoch, p.seq = j.Epoch, j.Seq
		return j
	}
	if j.Reset == nil || *j.Reset {
		p.t.Fatalf("player %s: resume at %d/%d was reset: %+v", p.id, p.epoch, p.seq, j)
	}
	for range j.Replayed {
		p.take(p.read())
	}
	return j
}

// expectEvent reads until the next event and takes it.
func (p *nsPlayer) expectEvent() {
	p.t.Helper()
	for {
		m := p.read()
		if m.Op == "update" && m.Kind == "event" {
			p.take(m)
			return
		}
	}
}

// TestManyHostsLinkCut: three nodes on three "hosts" share a hunt through
// Redis on a fourth. Node 2's link to Redis is cut: nodes 0 and 1 keep
// serving, node 2 turns unready, and node 2's players, reconnecting to the
// others, resume with nothing lost. The link heals and node 2 serves again.
func TestManyHostsLinkCut(t *testing.T) {
	lab := newNetLab(t, 3)
	dir := t.TempDir()
	bin := filepath.Join(dir, "huntgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	lab.start(lab.redis, filepath.Join(dir, "redis.log"), "redis-server", "--port", fmt.Sprint(nsRedisPort),
		"--bind", "10.213.0.1 10.213.1.1 10.213.2.1", "--protected-mode", "no",
		"--save", "", "--appendonly", "no", "--dir", dir)
	for i, ns := range lab.nodes {
		lab.start(ns, filepath.Join(dir, fmt.Sprintf("node%d.log", i)), bin,
			"--addr", fmt.Sprintf(":%d", nsPlayerPort), "--admin-addr", fmt.Sprintf("127.0.0.1:%d", nsAdminPort),
			"--redis", fmt.Sprintf("redis://10.213.%d.1:%d/0", i, nsRedisPort),
			"--dev", "--api-key", nsAPIKey, "--loops", "1", "--drain", "100ms")
	}
	for _, ns := range lab.nodes {
		waitUntil(t, ns+" ready", 30*time.Second, func() bool { return readyz(ns) == 200 })
	}
	spec := `{"id":"mesh","width":8,"height":8,"treasures":[{"id":"t","x":7,"y":7,"points":1}]}`
	if code, b := admin(t, lab.nodes[0], "POST", "/v1/hunts", spec); code != 201 && code != 200 {
		t.Fatalf("create: %d %s", code, b)
	}
	publish := func(via int, data string) {
		t.Helper()
		if code, b := admin(t, lab.nodes[via], "POST", "/v1/hunts/mesh/events", data); code != 200 && code != 201 && code != 202 {
			t.Fatalf("publish via node %d: %d %s", via, code, b)
		}
	}
	players := make([][]*nsPlayer, len(lab.nodes))
	for i, ns := range lab.nodes {
		for k := range 3 {
			p := lab.connect(t, ns, fmt.Sprintf("n%dp%d", i, k))
			p.join("mesh")
			players[i] = append(players[i], p)
		}
	}
	publish(0, `{"n":1}`)
	publish(1, `{"n":2}`)
	for _, ps := range players {
		for _, p := range ps {
			p.expectEvent()
			p.expectEvent()
		}
	}

	// Cut node 2 from Redis.
	lab.ip("-n", lab.redis, "link", "set", lab.link(2), "down")
	cut := time.Now()
	waitUntil(t, "node 2 unready", 10*time.Second, func() bool { return readyz(lab.nodes[2]) == 503 })
	t.Logf("node 2 unready %v after its link was cut", time.Since(cut).Round(time.Millisecond))
	for _, ns := range lab.nodes[:2] {
		if code := readyz(ns); code != 200 {
			t.Fatalf("%s readyz %d while another node is cut", ns, code)
		}
	}
	publish(0, `{"n":3}`)
	publish(1, `{"n":4}`)
	for _, ps := range players[:2] {
		for _, p := range ps {
			p.expectEvent()
			p.expectEvent()
		}
	}
	// Node 2's players go to the others and resume.
	for k, p := range players[2] {
		p.c.Close()
		to := lab.nodes[k%2]
		np := lab.connect(t, to, p.id)
		np.epoch, np.seq, np.events = p.epoch, p.seq, p.events
		np.join("mesh")
		players[2][k] = np
	}
	publish(1, `{"n":5}`)
	for i, ps := range players {
		for _, p := range ps {
			p.expectEvent()
			if got := strings.Join(p.events, ""); got != `{"n":1}{"n":2}{"n":3}{"n":4}{"n":5}` {
				t.Fatalf("node %d player %s got %s", i, p.id, got)
			}
		}
	}

	// Heal: node 2 serves again.
	lab.ip("-n", lab.redis, "link", "set", lab.link(2), "up")
	healed := time.Now()
	waitUntil(t, "node 2 ready again", 15*time.Second, func() bool { return readyz(lab.nodes[2]) == 200 })
	t.Logf("node 2 ready %v after its link was restored", time.Since(healed).Round(time.Millisecond))
	back := lab.connect(t, lab.nodes[2], "back")
	back.join("mesh")
	if back.seq != 5 {
		t.Fatalf("join on the healed node at seq %d, want 5", back.seq)
	}
	publish(2, `{"n":6}`)
	back.expectEvent()
	for _, ps := range players {
		for _, p := range ps {
			p.expectEvent()
		}
	}
	if len(back.events) != 1 || back.events[0] != `{"n":6}` {
		t.Fatalf("healed node's player got %v", back.events)
	}
}
