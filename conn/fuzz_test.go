package conn

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/huntgate/huntgate/framing"
)

// FuzzReadPath feeds arbitrary bytes, split at an arbitrary point, to a
// server connection's read path. Whatever arrives, the loop must not panic,
// must keep its slot consistent and must not hold more than one frame of
// tail.
func FuzzReadPath(f *testing.F) {
	m := [4]byte{1, 2, 3, 4}
	var seed []byte
	seed = framing.AppendMaskedFrame(seed, framing.OpText, false, m, []byte("he"))
	seed = framing.AppendMaskedFrame(seed, framing.OpPing, true, m, []byte("p"))
	seed = framing.AppendMaskedFrame(seed, framing.OpContinuation, true, m, []byte("llo"))
	seed = framing.AppendMaskedFrame(seed, framing.OpClose, true, m, []byte{3, 232})
	f.Add(seed, 5)
	f.Add(framing.AppendFrame(nil, framing.OpText, true, []byte("unmasked")), 1)
	f.Add(framing.AppendMaskedFrame(nil, framing.OpBinary, true, m, make([]byte, 300)), 200)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		l := manualLoop(t, Config{MaxMessage: 1024}, &echoBenchHandler{})
		fd, peer := socketpair(t)
		h := l.adopt(t, fd, false)
		if cut < 0 || cut > len(data) {
			cut = len(data) / 2
		}
		out := make([]byte, 64<<10)
		for _, part := range [][]byte{data[:cut], data[cut:]} {
			if len(part) == 0 {
				continue
			}
			unix.Write(peer, part)
			for i := 0; i < 4 && l.live(h) != nil; i++ {
				l.onReadable(h.Index())
				l.endPass()
			}
			unix.Read(peer, out)
		}
		s := l.live(h)
		if s == nil {
			return // closed: fine, as long as nothing panicked
		}
		if s.tail != 0 && len(*l.bufs.at(s.tail)) > 1024+14 {
			t.Fatalf("tail of %d bytes over one frame", len(*l.bufs.at(s.tail)))
		}
		if s.state != stOpen && s.state != stClosing {
			t.Fatalf("slot in state %d", s.state)
		}
	})
}
