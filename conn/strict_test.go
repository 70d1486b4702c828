package conn

import (
	"strings"
	"testing"

	"github.com/huntgate/huntgate/framing"
)

// TestInvalidUTF8FailsMidFrame is Autobahn 6.4.3 and 6.4.4 over a real
// socket: one text frame sent in three chops, the second making it invalid
// UTF-8. The server must answer 1007 without waiting for the third chop
// (which is never sent), for a frame decoded from the loop's read buffer and
// for one large enough to be collected in the connection's tail buffer.
func TestInvalidUTF8FailsMidFrame(t *testing.T) {
	th := newTestHandler()
	th.onUpgrade = func(*Loop, Handle, *framing.Request) Accept { return Accept{MaxMessage: 1 << 20} }
	n := startNode(t, testConfig(), th)
	cases := []struct {
		name             string
		a, b, c          string
		waitForFirstHalf bool
	}{
		{"6.4.3", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", "\xf4\x90\x80\x80", "edited", false},
		{"6.4.4", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4", "\x90", "\x80\x80edited", false},
		{"6.4.4 after 200 KiB", strings.Repeat("κόσμε ", 200<<10/12) + "\xf4", "\x90", "\x80\x80edited", true},
	}
	for _, c := range cases {
		rc := dialRaw(t, n)
		rc.upgrade(t)
		th.waitOpen(t)
		whole := c.a + c.b + c.c
		wire := framing.AppendMaskedFrame(nil, framing.OpText, true, [4]byte{1, 2, 3, 4}, []byte(whole))
		cut := len(wire) - len(whole) + len(c.a)
		if _, err := rc.Write(wire[:cut]); err != nil {
			t.Fatal(err)
		}
		if _, err := rc.Write(wire[cut : cut+len(c.b)]); err != nil {
			t.Fatal(err)
		}
		op, p := rc.readFrame(t)
		if op != framing.OpClose || closeCodeOf(p) != framing.StatusInvalidPayload {
			t.Fatalf("%s: got op %d code %d, want close 1007 before the rest of the frame", c.name, op, closeCodeOf(p))
		}
		rc.Close()
		if ev := th.waitClose(t); ev.code != framing.StatusInvalidPayload {
			t.Fatalf("%s: OnClose code %d", c.name, ev.code)
		}
	}
}
