package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/huntgate/huntgate/conn"
	"github.com/huntgate/huntgate/framing"
	"github.com/huntgate/huntgate/state"
)

func BenchmarkDecodeDig(b *testing.B) {
	msg := []byte(`{"op":"dig","hunt":"demo","x":12,"y":34,"ref":"r-1"}`)
	var r request
	scratch := make([]byte, 0, 64)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		scratch, _ = decodeRequest(msg, &r, scratch[:0])
	}
	if r.op != opDig || r.x != 12 {
		b.Fatal("decode")
	}
}

func BenchmarkDecodePing(b *testing.B) {
	msg := []byte(`{"op":"ping","ts":1700000000123,"ref":77}`)
	var r request
	b.ReportAllocs()
	for b.Loop() {
		_, _ = decodeRequest(msg, &r, nil)
	}
}

func BenchmarkEncodeDug(b *testing.B) {
	res := state.DigResult{Found: true, Treasure: "t17", Points: 40, Score: 120, Rank: 3, Seq: 99}
	buf := make([]byte, 0, 512)
	ref := []byte(`"r-1"`)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendDug(buf[:0], ref, "demo", 12, 34, &res)
	}
}

func BenchmarkEncodeUpdate(b *testing.B) {
	top := make([]state.Entry, 10)
	for i := range top {
		top[i] = state.Entry{Player: fmt.Sprintf("player-%d", i), Score: int64(1000 - i)}
	}
	for _, u := range []state.Update{
		{Hunt: "demo", Epoch: 1 << 40, Seq: 12345, Kind: state.KindClaimed, Treasure: "t17", Player: "alice", Points: 40},
		{Hunt: "demo", Epoch: 1 << 40, Seq: 12345, Kind: state.KindLeaderboard, Top: top},
		{Hunt: "demo", Epoch: 1 << 40, Seq: 12345, Kind: state.KindEvent, Data: []byte(`{"type":"storm","at":[10,20]}`)},
	} {
		b.Run(u.Kind.String(), func(b *testing.B) {
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			for b.Loop() {
				buf = appendUpdate(buf[:0], &u)
			}
		})
	}
}

// BenchmarkFanoutWalk walks one update over the sessions of one loop joined
// to a hunt: the per-loop part of a broadcast (session lookup, seq check,
// queueing the shared frame). The sessions are real WebSocket connections
// held by a child process (this process would otherwise need two fds per
// session); HUNTGATE_BENCH_SESSIONS sets their number (default 10,000).
// Leaderboard (latest-value) updates are used so that b.N walks inside one
// loop pass replace each other in the queues instead of growing them.
func BenchmarkFanoutWalk(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("HUNTGATE_BENCH_SESSIONS")); err == nil && v > 0 {
		n = v
	}
	tg := startGateway(b, func(c *Config) {
		c.Loops = 1
		c.Rate = -1
		c.IdleTimeout = 10 * time.Minute
	})
	tg.createHunt(b, fixedHunt("bench", 1))
	child := exec.Command(os.Args[0], "-test.run=^TestHelperHoldClients$", "-test.count=1")
	child.Env = append(os.Environ(), "HUNTGATE_HOLD_ADDR="+tg.Addr().String(), "HUNTGATE_HOLD_N="+strconv.Itoa(n))
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); _ = child.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.Contains(line, "ready") {
		b.Fatalf("client holder: %q %v", line, err)
	}
	waitFor(b, "sessions joined", func() bool {
		h := tg.hunts.getString("bench")
		return h != nil && h.players.Load() == int64(n)
	})
	st, _ := tg.engine.Status(context.Background(), "bench")
	u := state.Update{Hunt: "bench", Epoch: st.Epoch, Seq: st.Seq, Kind: state.KindLeaderboard,
		Top: []state.Entry{{Player: "alice", Score: 10}}}
	m := &push{g: tg.Gateway, p: framing.Prepare(framing.OpText, appendUpdate(nil, &u), false),
		hunt: tg.hunts.getString("bench").id, epoch: u.Epoch, seq: u.Seq}
	// The walks run inside one posted function, after one warm-up walk in
	// the same loop pass: conn gives a connection its output queue when the
	// first frame of a pass arrives (and takes it back after the flush), so
	// what is timed is the gateway's walk plus conn's in-queue replacement.
	before := tg.m.deliveries.Load()
	warm, start, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	tg.node.Post(0, func(l *conn.Loop) {
		tg.loops[0].deliver(l, m)
		warm <- struct{}{}
		<-start
		for i := 0; i < b.N; i++ {
			tg.loops[0].deliver(l, m)
		}
		close(done)
	})
	<-warm
	b.ReportAllocs()
	b.ResetTimer()
	start <- struct{}{}
	<-done
	b.StopTimer()
	if got := tg.m.deliveries.Load() - before; got != int64(b.N+1)*int64(n) {
		b.Fatalf("deliveries %d, want %d", got, b.N*n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/recipient")
	b.ReportMetric(float64(n), "sessions")
}

// TestHelperHoldClients is the child process of BenchmarkFanoutWalk: it opens
// HUNTGATE_HOLD_N player connections, joins them to hunt "bench", prints
// "ready" and holds them until stdin closes.
func TestHelperHoldClients(t *testing.T) {
	addr := os.Getenv("HUNTGATE_HOLD_ADDR")
	if addr == "" {
		t.Skip("child process of BenchmarkFanoutWalk")
	}
	n, _ := strconv.Atoi(os.Getenv("HUNTGATE_HOLD_N"))
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	work := make(chan int)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				c, err := holdOne(addr, i)
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					continue
				}
				conns[i] = c
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
}

func holdOne(addr string, i int) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	key := framing.NewClientKey()
	req := framing.AppendClientRequest(nil, addr, "/ws?player=b"+strconv.Itoa(i), key, false, nil)
	if _, err := c.Write(req); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	var head []byte
	for !strings.HasSuffix(string(head), "\r\n\r\n") {
		line, err := br.ReadSlice('\n')
		if err != nil {
			c.Close()
			return nil, err
		}
		head = append(head, line...)
	}
	if _, err := framing.CheckClientResponse(head, key); err != nil {
		c.Close()
		return nil, err
	}
	join := framing.AppendMaskedFrame(nil, framing.OpText, true, [4]byte{1, 2, 3, 4}, []byte(`{"op":"join","hunt":"bench"}`))
	if _, err := c.Write(join); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
