package conn

import (
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/huntgate/huntgate/framing"
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

// OnUpgrade gets the client's address and port as the socket has them
// (IPv4 and IPv6), read with getpeername at upgrade.
func TestUpgradeRemoteAddr(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		th := newTestHandler()
		got := make(chan netip.AddrPort, 1)
		th.onUpgrade = func(l *Loop, h Handle, r *framing.Request) Accept {
			got <- r.RemoteAddr
			return Accept{}
		}
		cfg := testConfig()
		cfg.Addr = addr
		n, err := NewNode(cfg, th)
		if err != nil {
			if addr[0] == '[' {
				t.Logf("no IPv6 listener here: %v", err)
				continue
			}
			t.Fatal(err)
		}
		if err := n.Start(); err != nil {
			if addr[0] == '[' {
				t.Logf("no IPv6 listener here: %v", err)
				continue
			}
			t.Fatal(err)
		}
		c := dialRaw(t, n)
		c.upgrade(t)
		want := c.LocalAddr().(*net.TCPAddr).AddrPort()
		if r := <-got; r.Addr().Unmap() != want.Addr().Unmap() || r.Port() != want.Port() {
			t.Fatalf("%s: RemoteAddr %v, want %v", addr, r, want)
		}
		n.Close()
	}
}
