package conn

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/huntgate/huntgate/framing"
)

// TestHotPathsAllocateNothing guards the 0 allocs/op of the benchmarks.
func TestHotPathsAllocateNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	eh := &echoBenchHandler{}
	l := manualLoop(t, Config{}, eh)
	fd, peer := socketpair(t)
	h := l.adopt(t, fd, false)
	wire := maskedFrames(8, 64)
	ping := framing.AppendMaskedFrame(nil, framing.OpPing, true, [4]byte{5, 6, 7, 8}, []byte("hb"))
	out := make([]byte, 64<<10)
	echo := func() {
		unix.Write(peer, wire)
		unix.Write(peer, ping)
		l.onReadable(h.Index())
		l.endPass()
		unix.Read(peer, out)
	}
	for i := 0; i < 100; i++ {
		echo()
	}
	if a := testing.AllocsPerRun(200, echo); a != 0 {
		t.Errorf("read+decode+echo+pong pass: %v allocs", a)
	}

	hs, peers := make([]Handle, 16), make([]int, 16)
	for i := range hs {
		fd, p := socketpair(t)
		hs[i], peers[i] = l.adopt(t, fd, false), p
	}
	f := framing.Prepare(framing.OpText, bytes.Repeat([]byte("u"), 64), false)
	send := func() {
		for _, h := range hs {
			l.Send(h, f)
			l.SendLatest(h, f, 3)
			l.Write(h, framing.OpBinary, wire[:32])
		}
		l.endPass()
		drainAll(peers, out)
	}
	for i := 0; i < 100; i++ {
		send()
	}
	if a := testing.AllocsPerRun(200, send); a != 0 {
		t.Errorf("send+flush pass: %v allocs", a)
	}
	var tb slots
	if a := testing.AllocsPerRun(1000, func() { tb.release(tb.alloc()) }); a != 0 {
		t.Errorf("slot alloc/free: %v allocs", a)
	}
}
