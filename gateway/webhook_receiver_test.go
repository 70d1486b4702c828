package gateway

import (
	"bufio"
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
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestMain runs the tests, or with HG_RECEIVER_PROC=1 serves as the
// out-of-process webhook receiver of the benchmarks (serveReceiverProc).
func TestMain(m *testing.M) {
	if os.Getenv("HG_RECEIVER_PROC") == "1" {
		os.Exit(serveReceiverProc())
	}
	os.Exit(m.Run())
}

// hookTarget is a webhook receiver for the benchmarks: in this process
// (*receiver) or in its own (*procReceiver), so that its work and garbage
// are not the gateway's.
type hookTarget interface {
	url() string
	down()
	up()
	count() int
	latencies(sent map[uint64]time.Time) []time.Duration
}

// serveReceiverProc is the receiver process: it prints the address of its
// hook listener and of its control listener on stdout, checks every
// webhook's signature, records each seq's first 2xx arrival, and on the
// control listener answers /down (close the hook listener and its
// connections), /up (listen again on the same port), /count and /times
// (seq -> first arrival, unix ns, as JSON). It exits when stdin closes.
func serveReceiverProc() int {
	var mu sync.Mutex
	first := map[uint64]int64{}
	bad := 0
	hook := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		mac := hmac.New(sha256.New, []byte(testWebhookSecret))
		mac.Write(body)
		var u struct {
			Seq uint64 `json:"seq"`
		}
		err := json.Unmarshal(body, &u)
		now := time.Now().UnixNano()
		mu.Lock()
		if err != nil || req.Header.Get("X-Huntgate-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
			bad++
		} else if _, ok := first[u.Seq]; !ok {
			first[u.Seq] = now
		}
		mu.Unlock()
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 1
	}
	addr := ln.Addr().String()
	srv := &http.Server{Handler: hook}
	go func() { _ = srv.Serve(ln) }()
	ctl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 1
	}
	var smu sync.Mutex
	mux := http.NewServeMux()
	mux.HandleFunc("/down", func(w http.ResponseWriter, _ *http.Request) {
		smu.Lock()
		defer smu.Unlock()
		_ = srv.Close()
	})
	mux.HandleFunc("/up", func(w http.ResponseWriter, _ *http.Request) {
		smu.Lock()
		defer smu.Unlock()
		for {
			ln, err := net.Listen("tcp", addr)
			if err == nil {
				srv = &http.Server{Handler: hook}
				go func() { _ = srv.Serve(ln) }()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	mux.HandleFunc("/count", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "%d %d", len(first), bad)
	})
	mux.HandleFunc("/times", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		_ = json.NewEncoder(w).Encode(first)
	})
	go func() { _ = http.Serve(ctl, mux) }()
	fmt.Printf("%s %s\n", addr, ctl.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// procReceiver is a receiver process started by a benchmark.
type procReceiver struct {
	tb        testing.TB
	hook, ctl string
	stdin     io.WriteCloser
}

func newProcReceiver(tb testing.TB) *procReceiver {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "HG_RECEIVER_PROC=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &procReceiver{tb: tb, stdin: stdin}
	tb.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	if _, err := fmt.Fscan(bufio.NewReader(out), &p.hook, &p.ctl); err != nil {
		tb.Fatal(err)
	}
	return p
}

func (p *procReceiver) url() string { return "http://" + p.hook + "/hook" }

func (p *procReceiver) get(path string) []byte {
	resp, err := http.Get("http://" + p.ctl + path)
	if err != nil {
		p.tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}

func (p *procReceiver) down() { p.get("/down") }
func (p *procReceiver) up()   { p.get("/up") }

func (p *procReceiver) count() int {
	var n, bad int
	_, _ = fmt.Sscan(string(p.get("/count")), &n, &bad)
	if bad > 0 {
		p.tb.Errorf("receiver process: %d bad requests", bad)
	}
	return n
}

func (p *procReceiver) latencies(sent map[uint64]time.Time) []time.Duration {
	var first map[string]int64
	if err := json.Unmarshal(p.get("/times"), &first); err != nil {
		p.tb.Fatal(err)
	}
	out := make([]time.Duration, 0, len(first))
	for k, at := range first {
		seq, _ := strconv.ParseUint(k, 10, 64)
		if t0, ok := sent[seq]; ok {
			out = append(out, time.Unix(0, at).Sub(t0))
		}
	}
	return out
}
