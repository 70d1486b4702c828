package conn

import (
	"testing"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/huntgate/huntgate/framing"
)

// manualLoop returns a loop that is not running: the test drives it by
// calling its methods directly, on the test goroutine.
func manualLoop(tb testing.TB, cfg Config, h Handler) *Loop {
	tb.Helper()
	cfg.Addr = ""
	cfg.Loops = 1
	cfg.Logger = zerolog.Nop()
	n, err := NewNode(cfg, h)
	if err != nil {
		tb.Fatal(err)
	}
	l := n.loops[0]
	l.now = l.clock()
	l.wheel.init(l.now)
	tb.Cleanup(func() {
		for i := 0; i < l.slots.len(); i++ {
			if l.slots.at(uint32(i)).state != stFree {
				l.closeSlot(uint32(i), framing.StatusGoingAway, ErrNodeClosed)
			}
		}
		l.release()
	})
	return l
}

// socketpair returns a connected non-blocking pair: one end for the loop,
// one for the test to play the peer.
func socketpair(tb testing.TB) (int, int) {
	tb.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unix.Close(fds[1]) })
	return fds[0], fds[1]
}

// adopt registers fd as an upgraded connection of l.
func (l *Loop) adopt(tb testing.TB, fd int, client bool) Handle {
	tb.Helper()
	idx := l.slots.alloc()
	s := l.slots.at(idx)
	s.fd = int32(fd)
	s.state = stOpen
	s.flags = fNotify
	role := framing.RoleServer
	if client {
		s.flags |= fClient
		role = framing.RoleClient
	}
	s.maxMsg = uint32(l.cfg.MaxMessage)
	s.dec = framing.NewDecoder(framing.DecoderConfig{Role: role, MaxMessage: l.cfg.MaxMessage})
	s.lastRead = l.now
	if err := l.poll.add(fd, unix.EPOLLIN|unix.EPOLLRDHUP, idx, s.gen); err != nil {
		tb.Fatal(err)
	}
	l.n.open.Add(1)
	l.stats.conns.Add(1)
	return makeHandle(l.id, s.gen, idx)
}

// nopHandler counts messages.
type nopHandler struct{ msgs, closes int }

func (*nopHandler) OnUpgrade(*Loop, Handle, *framing.Request) Accept   { return Accept{} }
func (*nopHandler) OnOpen(*Loop, Handle)                               {}
func (h *nopHandler) OnMessage(*Loop, Handle, framing.OpCode, []byte)  { h.msgs++ }
func (h *nopHandler) OnClose(*Loop, Handle, framing.StatusCode, error) { h.closes++ }
