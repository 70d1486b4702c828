package conn

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestAcceptedConnsHaveNoDelay: accepted connections get TCP_NODELAY from
// the listener (Linux copies it on accept), without a setsockopt of their
// own: writes are batched per loop pass, so Nagle would only add delay.
func TestAcceptedConnsHaveNoDelay(t *testing.T) {
	th := newTestHandler()
	n := startNode(t, testConfig(), th)
	rc := dialRaw(t, n)
	rc.upgrade(t)
	h := th.waitOpen(t)
	var v int
	var err error
	onLoop(n, h.Loop(), func(l *Loop) {
		v, err = unix.GetsockoptInt(int(l.live(h).fd), unix.IPPROTO_TCP, unix.TCP_NODELAY)
	})
	if err != nil || v == 0 {
		t.Fatalf("TCP_NODELAY on an accepted connection: %d, %v", v, err)
	}
}
