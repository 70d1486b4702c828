package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/huntgate/huntgate/internal/redistest"
)

// TestMain lets a test start this binary as a huntgate process: with
// HUNTGATE_TEST_MAIN=1 it runs main's run with its arguments instead of
// the tests, so a test can kill -9 a real gateway process.
func TestMain(m *testing.M) {
	if os.Getenv("HUNTGATE_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// hookReceiver is a webhook receiver on a loopback port that checks the
// signature and delivery id of every request and can hold requests back.
type hookReceiver struct {
	url    string
	secret string

	mu       sync.Mutex
	seqs     []uint64 // hunt "k", 2xx answers, in arrival order
	requests int
	block    chan struct{}
	bad      []string
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	r := &hookReceiver{secret: secret}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.url = "http://" + ln.Addr().String() + "/hook"
	srv := &http.Server{Handler: http.HandlerFunc(r.handle)}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r
}

func (r *hookReceiver) handle(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.requests++
	block := r.block
	r.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-req.Context().Done():
			return
		}
	}
	mac := hmac.New(sha256.New, []byte(r.secret))
	mac.Write(body)
	var u struct {
		Hunt  string `json:"hunt"`
		Epoch uint64 `json:"epoch"`
		Seq   uint64 `json:"seq"`
	}
	err := json.Unmarshal(body, &u)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case req.Header.Get("X-Huntgate-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)):
		r.bad = append(r.bad, "bad signature: "+string(body))
	case err != nil || req.Header.Get("X-Huntgate-Delivery") != fmt.Sprintf("%s:%d:%d", u.Hunt, u.Epoch, u.Seq):
		r.bad = append(r.bad, "bad delivery "+req.Header.Get("X-Huntgate-Delivery")+": "+string(body))
	}
	r.seqs = append(r.seqs, u.Seq)
}

// node is a huntgate process started by the test.
type node struct {
	cmd   *exec.Cmd
	admin string
	id    string
	out   *bytes.Buffer
}

func startNode(t *testing.T, args ...string) *node {
	t.Helper()
	for try := 0; ; try++ {
		admin := freeAddr(t)
		cmd := exec.Command(os.Args[0], append([]string{"--addr", "127.0.0.1:0", "--admin-addr", admin, "--loops", "1", "--api-key", "k", "--log-level", "warn"}, args...)...)
		cmd.Env = append(os.Environ(), "HUNTGATE_TEST_MAIN=1")
		n := &node{cmd: cmd, admin: "http://" + admin, out: &bytes.Buffer{}}
		cmd.Stdout, cmd.Stderr = n.out, n.out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-exited
			if t.Failed() {
				t.Logf("node %s output:\n%s", n.admin, n.out)
			}
		})
		deadline := time.Now().Add(15 * time.Second)
		for {
			var st struct {
				Nodes []struct {
					ID   string `json:"id"`
					Self bool   `json:"self"`
				} `json:"nodes"`
			}
			if resp, err := http.Get(n.admin + "/v1/stats"); err == nil {
				_ = json.NewDecoder(resp.Body).Decode(&st)
				resp.Body.Close()
				for _, x := range st.Nodes {
					if x.Self {
						n.id = x.ID
					}
				}
				if n.id != "" {
					return n
				}
			}
			select {
			case <-exited:
				if try < 3 && strings.Contains(n.out.String(), "address already in use") {
					break // the admin port was taken meanwhile: again on another
				}
				t.Fatalf("node exited at start:\n%s", n.out)
			case <-time.After(50 * time.Millisecond):
				if time.Now().After(deadline) {
					t.Fatalf("node %s not serving:\n%s", n.admin, n.out)
				}
				continue
			}
			break
		}
	}
}

func (n *node) post(t *testing.T, method, path, body string) {
	t.Helper()
	req, _ := http.NewRequest(method, n.admin+path, strings.NewReader(body))
	req.Header.Set("X-API-Key", "k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
}

// TestWebhookNodeKilled: two huntgate processes on one redis-server deliver
// a hunt's webhooks; the one delivering is killed with SIGKILL while its
// request is at the receiver, and the other goes on from the last
// acknowledged update: every seq arrives, new ones in order (copies of the
// unacknowledged ones allowed), all signed.
func TestWebhookNodeKilled(t *testing.T) {
	srv := redistest.Standalone(t, redistest.Options{})
	webhookNodeKilled(t, []string{"--redis", srv.URL()}, srv.Client())
}

// TestWebhookNodeKilledCluster is TestWebhookNodeKilled on a Redis Cluster
// of 3 primaries and 3 replicas (--redis-cluster).
func TestWebhookNodeKilledCluster(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterOptions{})
	webhookNodeKilled(t, []string{"--redis-cluster", strings.Join(c.Addrs(), ",")}, c.Client())
}

func webhookNodeKilled(t *testing.T, redisFlags []string, rc redis.UniversalClient) {
	r := newHookReceiver(t, "s3cret")
	flags := append(redisFlags, "--webhook-url", r.url, "--webhook-secret", "s3cret", "--webhook-timeout", "300ms")
	a, b := startNode(t, flags...), startNode(t, flags...)
	a.post(t, "POST", "/v1/hunts", `{"id":"k","width":4,"height":4}`)
	publish := func(n *node, k int) {
		for i := 0; i < k; i++ {
			n.post(t, "POST", "/v1/hunts/k/events", fmt.Sprintf(`{"i":%d}`, i))
		}
	}
	waitSeq := func(want uint64) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			r.mu.Lock()
			var top uint64
			for _, s := range r.seqs {
				top = max(top, s)
			}
			r.mu.Unlock()
			if top >= want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("receiver has up to seq %d, want %d", top, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	publish(a, 10)
	publish(b, 10)
	waitSeq(20)

	block := make(chan struct{})
	r.mu.Lock()
	r.block = block
	reqs := r.requests
	r.mu.Unlock()
	publish(b, 5) // 21-25
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		n := r.requests
		r.mu.Unlock()
		if n > reqs {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no delivery under way")
		}
		time.Sleep(10 * time.Millisecond)
	}
	holder, err := rc.Get(context.Background(), "hg:{k}:wl").Result()
	if err != nil {
		t.Fatal(err)
	}
	dead, survivor := a, b
	if holder == b.id {
		dead, survivor = b, a
	} else if holder != a.id {
		t.Fatalf("lease held by %q; nodes %q and %q", holder, a.id, b.id)
	}
	if err := dead.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.block = nil
	r.mu.Unlock()
	close(block)
	publish(survivor, 5) // 26-30
	survivor.post(t, "DELETE", "/v1/hunts/k", "")
	waitSeq(31)

	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.bad {
		t.Error(s)
	}
	var top uint64
	for _, s := range r.seqs {
		if s > top+1 {
			t.Fatalf("seqs arrived as %v: %d after %d, a hole or out of order", r.seqs, s, top)
		}
		top = max(top, s)
	}
	if n, _ := rc.Get(context.Background(), "hg:{k}:wl").Result(); n == dead.id {
		t.Fatalf("the dead node still holds the lease")
	}
}
