package conn

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/huntgate/huntgate/framing"
)

func BenchmarkSlotAllocFree(b *testing.B) {
	var t slots
	for i := 0; i < 1024; i++ {
		t.alloc()
	}
	for i := uint32(0); i < 1024; i++ {
		t.release(i)
	}
	b.ReportAllocs()
	for b.Loop() {
		i := t.alloc()
		t.at(i).state = stOpen
		t.release(i)
	}
}

// maskedFrames returns count masked client frames of size bytes each.
func maskedFrames(count, size int) []byte {
	var wire []byte
	p := bytes.Repeat([]byte("a"), size)
	for i := 0; i < count; i++ {
		wire = framing.AppendMaskedFrame(wire, framing.OpText, true, [4]byte{1, 2, 3, byte(i)}, p)
	}
	return wire
}

// BenchmarkDecodeDispatch decodes 64 masked 64-byte text frames from the
// loop's read buffer and hands each to the Handler.
func BenchmarkDecodeDispatch(b *testing.B) {
	nh := &nopHandler{}
	l := manualLoop(b, Config{}, nh)
	fd, _ := socketpair(b)
	h := l.adopt(b, fd, false)
	wire := maskedFrames(64, 64)
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		n := copy(l.rbuf, wire) // decoding unmasks in place
		if used, alive := l.frames(h.Index(), l.rbuf[:n]); used != n || !alive {
			b.Fatalf("used %d of %d", used, n)
		}
	}
	if nh.msgs != 64*b.N {
		b.Fatalf("dispatched %d, want %d", nh.msgs, 64*b.N)
	}
}

// echoBenchHandler echoes with Write.
type echoBenchHandler struct{ nopHandler }

func (e *echoBenchHandler) OnMessage(l *Loop, h Handle, op framing.OpCode, p []byte) {
	e.msgs++
	l.Write(h, op, p)
}

// BenchmarkEchoPassSocketpair is one loop pass of the echo path over a
// socketpair: the peer writes 8 pipelined frames, the loop reads them into
// its buffer, decodes, dispatches, echoes into the pass buffer and flushes
// with one writev; the peer reads the answers.
func BenchmarkEchoPassSocketpair(b *testing.B) {
	eh := &echoBenchHandler{}
	l := manualLoop(b, Config{}, eh)
	fd, peer := socketpair(b)
	h := l.adopt(b, fd, false)
	wire := maskedFrames(8, 64)
	out := make([]byte, 64<<10)
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := unix.Write(peer, wire); err != nil {
			b.Fatal(err)
		}
		l.onReadable(h.Index())
		l.endPass()
		if _, err := unix.Read(peer, out); err != nil {
			b.Fatal(err)
		}
	}
	if eh.msgs != 8*b.N {
		b.Fatalf("echoed %d, want %d", eh.msgs, 8*b.N)
	}
}

// benchConns adopts n socketpair connections.
func benchConns(b *testing.B, l *Loop, n int) ([]Handle, []int) {
	hs := make([]Handle, n)
	peers := make([]int, n)
	for i := range hs {
		fd, peer := socketpair(b)
		hs[i] = l.adopt(b, fd, false)
		peers[i] = peer
	}
	return hs, peers
}

// drainAll reads everything the peers have, so that sockets never fill.
func drainAll(peers []int, buf []byte) {
	for _, p := range peers {
		for {
			n, err := unix.Read(p, buf)
			if n <= 0 || err != nil {
				break
			}
		}
	}
}

// BenchmarkSendFlushPrepared sends one shared Prepared frame to 256
// connections and flushes the pass (one writev each): the broadcast path.
func BenchmarkSendFlushPrepared(b *testing.B) {
	f := framing.Prepare(framing.OpText, bytes.Repeat([]byte("u"), 64), false)
	benchFlush(b, func(l *Loop, h Handle) error { return l.Send(h, f) })
}

// BenchmarkWriteFlush frames a small per-connection message into the pass
// buffer for 256 connections and flushes.
func BenchmarkWriteFlush(b *testing.B) {
	p := bytes.Repeat([]byte("w"), 64)
	benchFlush(b, func(l *Loop, h Handle) error { return l.Write(h, framing.OpText, p) })
}

// benchFlush times send to each of 256 connections followed by the end of
// the pass; the peers are drained outside the timer.
func benchFlush(b *testing.B, send func(l *Loop, h Handle) error) {
	const conns = 256
	l := manualLoop(b, Config{}, &nopHandler{})
	hs, peers := benchConns(b, l, conns)
	buf := make([]byte, 256<<10)
	for range 8 { // warm the queue arena up: steady state is what counts
		for _, h := range hs {
			send(l, h)
		}
		l.endPass()
	}
	drainAll(peers, buf)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		for _, h := range hs {
			if err := send(l, h); err != nil {
				b.Fatal(err)
			}
		}
		l.endPass()
		if i++; i%64 == 0 {
			b.StopTimer()
			drainAll(peers, buf)
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*conns), "ns/delivery")
}

// BenchmarkSendLatestBlocked replaces a latest-value frame in the queue of a
// connection that waits for the socket.
func BenchmarkSendLatestBlocked(b *testing.B) {
	l := manualLoop(b, Config{MaxQueueBytes: 64 << 20, MaxQueueFrames: 1 << 20}, &nopHandler{})
	fd, _ := socketpair(b)
	h := l.adopt(b, fd, false)
	fill := framing.Prepare(framing.OpBinary, make([]byte, 64<<10), false)
	for l.slots.at(h.Index()).flags&fArmedOut == 0 {
		l.Send(h, fill)
		l.endPass()
	}
	v1 := framing.Prepare(framing.OpText, []byte("v1"), false)
	v2 := framing.Prepare(framing.OpText, []byte("v2"), false)
	b.ReportAllocs()
	for b.Loop() {
		l.SendLatest(h, v1, 1)
		l.SendLatest(h, v2, 1)
		l.endPass()
	}
}

// TestRSSChild is the server process of BenchmarkIdleRSS; it runs only
// when started by it.
func TestRSSChild(t *testing.T) {
	if os.Getenv("HUNTGATE_CONN_RSS_CHILD") != "1" {
		t.Skip("server half of BenchmarkIdleRSS")
	}
	n, err := NewNode(Config{Addr: "127.0.0.1:0", Loops: 2, Logger: zerolog.Nop()}, &nopHandler{})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	fmt.Printf("ADDR %s\n", n.Addr())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		var conns int64
		for _, c := range n.Stats().Conns {
			conns += c
		}
		fmt.Printf("MEM %d %d %d\n", statmRSS(), ms.HeapInuse+ms.StackInuse, conns)
	}
}

// statmRSS returns this process's resident set from /proc/self/statm.
func statmRSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// BenchmarkIdleRSS measures the server-side memory of idle upgraded
// connections: a child process runs a 2-loop server, this process dials
// HUNTGATE_RSS_CONNS (default 10,000) WebSocket connections to it with a
// client-role node, and the child's RSS (and Go heap) before and after,
// each after GC and FreeOSMemory, gives bytes per connection.
// Run: go test -run '^$' -bench IdleRSS -benchtime 1x ./conn
func BenchmarkIdleRSS(b *testing.B) {
	conns := 10000
	if s := os.Getenv("HUNTGATE_RSS_CONNS"); s != "" {
		conns, _ = strconv.Atoi(s)
	}
	child := startChild(b, "TestRSSChild", "HUNTGATE_CONN_RSS_CHILD", os.Stderr)
	addr := child.line("ADDR")[0]
	measure := func() (rss, heap, n int64) {
		f := child.ask("m", "MEM")
		rss, _ = strconv.ParseInt(f[0], 10, 64)
		heap, _ = strconv.ParseInt(f[1], 10, 64)
		n, _ = strconv.ParseInt(f[2], 10, 64)
		return
	}
	rss0, heap0, _ := measure()
	cli, ch := clientNode(b, 2)
	ch.msgs = nil
	for done := 0; done < conns; {
		batch := min(1000, conns-done)
		for i := 0; i < batch; i++ {
			la := fmt.Sprintf("127.0.0.%d", 1+(done+i)%8)
			if err := cli.Dial(DialOptions{Addr: addr, LocalAddr: la, Path: "/idle", Loop: -1}); err != nil {
				b.Fatal(err)
			}
		}
		for i := 0; i < batch; i++ {
			select {
			case <-ch.opens:
			case ev := <-ch.closes:
				b.Fatalf("dial failed: %v", ev.err)
			case <-time.After(20 * time.Second):
				b.Fatal("dial timed out")
			}
		}
		done += batch
	}
	var rss1, heap1, n1 int64
	for deadline := time.Now().Add(20 * time.Second); ; {
		if rss1, heap1, n1 = measure(); n1 == int64(conns) || time.Now().After(deadline) {
			break
		}
	}
	if n1 != int64(conns) {
		b.Fatalf("server holds %d of %d", n1, conns)
	}
	b.ReportMetric(float64(rss1-rss0)/float64(conns), "B-rss/conn")
	b.ReportMetric(float64(heap1-heap0)/float64(conns), "B-heap/conn")
	b.Logf("server RSS %d -> %d, Go heap+stacks %d -> %d, %d idle upgraded conns", rss0, rss1, heap0, heap1, conns)
}

// BenchmarkRawWriteBaseline is the floor under BenchmarkSendFlushPrepared:
// one plain write(2) of the same 66-byte frame per socketpair, no conn code.
func BenchmarkRawWriteBaseline(b *testing.B) {
	const conns = 256
	fds, peers := make([]int, conns), make([]int, conns)
	for i := range fds {
		fds[i], peers[i] = socketpair(b)
		b.Cleanup(func() { unix.Close(fds[i]) })
	}
	frame := framing.Prepare(framing.OpText, bytes.Repeat([]byte("u"), 64), false).Bytes(false)
	buf := make([]byte, 256<<10)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		for _, fd := range fds {
			unix.Write(fd, frame)
		}
		if i++; i%64 == 0 {
			b.StopTimer()
			drainAll(peers, buf)
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*conns), "ns/delivery")
}

// BenchmarkBroadcastPasses is the broadcast path as the gateway drives it: a
// function posted to the loop (PostAll) Sends one shared frame to every
// connection, and the pass is flushed, over and over. It must allocate
// nothing in steady state, also with more connections than the loop keeps
// spare queues for.
func BenchmarkBroadcastPasses(b *testing.B) {
	const conns = 2000
	l := manualLoop(b, Config{FlushBudget: -1}, &nopHandler{})
	hs, peers := benchConns(b, l, conns)
	f := framing.Prepare(framing.OpText, bytes.Repeat([]byte("u"), 64), false)
	buf := make([]byte, 256<<10)
	var failed error
	bcast := func(l *Loop) {
		for _, h := range hs {
			if err := l.Send(h, f); err != nil {
				failed = err
			}
		}
	}
	pass := func() {
		l.n.PostAll(bcast)
		l.poll.drainWake()
		l.runInbox()
		l.endPass()
	}
	for range 8 {
		pass()
	}
	drainAll(peers, buf)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		pass()
		if i++; i%32 == 0 {
			b.StopTimer()
			drainAll(peers, buf)
			b.StartTimer()
		}
	}
	if failed != nil {
		b.Fatal(failed)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*conns), "ns/delivery")
}
