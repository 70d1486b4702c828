package framing

import (
	"bytes"
	"strings"
	"testing"
)

func TestPrecompiledFrames(t *testing.T) {
	cases := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"ping", PingFrame, bits("1 000 1001  0 0000000")},
		{"pong", PongFrame, bits("1 000 1010  0 0000000")},
		{"close 1000", CloseFrame(StatusNormal), bits("1 000 1000  0 0000010  00000011 11101000")},
		{"close 1001", CloseFrame(StatusGoingAway), bits("1 000 1000  0 0000010  00000011 11101001")},
		{"close 1009", CloseFrame(StatusMessageTooBig), bits("1 000 1000  0 0000010  00000011 11110001")},
		{"close 1011", CloseFrame(StatusInternalError), bits("1 000 1000  0 0000010  00000011 11110011")},
		{"close 1014", CloseFrame(1014), bits("1 000 1000  0 0000010  00000011 11110110")},
		{"close 4000", CloseFrame(4000), bits("1 000 1000  0 0000010  00001111 10100000")},
		{"close 1005 has no code", CloseFrame(StatusNoStatus), bits("1 000 1000  0 0000000")},
	}
	for _, c := range cases {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s: % x, want % x", c.name, c.got, c.want)
		}
	}
}

func TestAppendCloseFrame(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	cases := []struct {
		name   string
		role   Role
		code   StatusCode
		reason string
		want   string // payload after unmasking
	}{
		{"server with reason", RoleServer, 1008, "slow", closePayload(1008, "slow")},
		{"client with reason", RoleClient, 1000, "bye", closePayload(1000, "bye")},
		{"no status", RoleServer, StatusNoStatus, "ignored", ""},
		{"reason cut at a code point", RoleServer, 1001, long, closePayload(1001, long[:122])},
		{"reason of 123 bytes kept", RoleClient, 1001, strings.Repeat("r", 123), closePayload(1001, strings.Repeat("r", 123))},
	}
	for _, c := range cases {
		b := AppendCloseFrame([]byte("x"), c.role, testMask, c.code, c.reason)
		if b[0] != 'x' {
			t.Fatalf("%s: dst prefix lost", c.name)
		}
		recv := RoleClient
		if c.role == RoleClient {
			recv = RoleServer
		}
		d := NewDecoder(DecoderConfig{Role: recv})
		n, f, err := d.Next(b[1:])
		if err != nil || n != len(b)-1 || f.Header.Op != OpClose {
			t.Fatalf("%s: decode: n=%d err=%v", c.name, n, err)
		}
		if string(f.Payload) != c.want {
			t.Fatalf("%s: payload %q, want %q", c.name, f.Payload, c.want)
		}
		if len(f.Payload) > 125 {
			t.Fatalf("%s: payload of %d bytes", c.name, len(f.Payload))
		}
	}
}

func TestClosePayload(t *testing.T) {
	cases := []struct {
		p      string
		code   StatusCode
		reason string
		err    error
	}{
		{"", StatusNoStatus, "", nil},
		{"\x03", 0, "", ErrCloseLength},
		{closePayload(1000, ""), 1000, "", nil},
		{closePayload(1001, "going"), 1001, "going", nil},
		{closePayload(1003, ""), 1003, "", nil},
		{closePayload(1007, ""), 1007, "", nil},
		{closePayload(1011, "é"), 1011, "é", nil},
		{closePayload(3000, ""), 3000, "", nil},
		{closePayload(4999, ""), 4999, "", nil},
		{closePayload(0, ""), 0, "", ErrCloseCode},
		{closePayload(999, ""), 999, "", ErrCloseCode},
		{closePayload(1004, ""), 1004, "", ErrCloseCode},
		{closePayload(1005, ""), 1005, "", ErrCloseCode},
		{closePayload(1006, ""), 1006, "", ErrCloseCode},
		{closePayload(1012, "restart"), 1012, "restart", nil},
		{closePayload(1013, ""), 1013, "", nil},
		{closePayload(1014, ""), 1014, "", nil},
		{closePayload(1015, ""), 1015, "", ErrCloseCode},
		{closePayload(1016, ""), 1016, "", ErrCloseCode},
		{closePayload(2999, ""), 2999, "", ErrCloseCode},
		{closePayload(5000, ""), 5000, "", ErrCloseCode},
		{closePayload(65535, ""), 65535, "", ErrCloseCode},
		{closePayload(1000, "\xff"), 1000, "", ErrCloseReason},
	}
	for _, c := range cases {
		code, reason, err := ClosePayload([]byte(c.p))
		if code != c.code || string(reason) != c.reason || err != c.err {
			t.Errorf("ClosePayload(% x) = %d %q %v, want %d %q %v", c.p, code, reason, err, c.code, c.reason, c.err)
		}
	}
}

// TestHotPathAllocs pins 0 allocs for everything conn calls per frame.
func TestHotPathAllocs(t *testing.T) {
	payload := benchText(1024)
	wire := AppendMaskedFrame(nil, OpText, true, testMask, payload)
	buf := make([]byte, len(wire))
	d := NewDecoder(DecoderConfig{})
	dst := make([]byte, 0, 2048)
	closeWire := AppendCloseFrame(nil, RoleClient, testMask, 1000, "bye")
	closeBuf := make([]byte, len(closeWire))
	frag := cat(cframe(false, OpText, "ab\xe2"), cframe(true, OpPing, "x"), cframe(true, OpContinuation, "\x82\xac"))
	fragBuf := make([]byte, len(frag))
	p := Prepare(OpText, payload, true)
	cases := []struct {
		name string
		fn   func()
	}{
		{"decode masked text", func() {
			copy(buf, wire)
			if n, _, err := d.Next(buf); n != len(wire) || err != nil {
				t.Fatal(n, err)
			}
		}},
		{"decode fragments and ping", func() {
			copy(fragBuf, frag)
			b := fragBuf
			for len(b) > 0 {
				n, _, err := d.Next(b)
				if n == 0 || err != nil {
					t.Fatal(n, err)
				}
				b = b[n:]
			}
		}},
		{"decode close", func() {
			copy(closeBuf, closeWire)
			if _, _, err := d.Next(closeBuf); err != nil {
				t.Fatal(err)
			}
		}},
		{"need more", func() {
			// A fresh decoder and a fresh copy each time, so the text
			// prefix is unmasked and validated every time.
			copy(buf, wire)
			d2 := NewDecoder(DecoderConfig{})
			if n, _, err := d2.Next(buf[:100]); n != 0 || err != nil {
				t.Fatal(n, err)
			}
			if n, _, err := d2.Next(buf); n != len(wire) || err != nil {
				t.Fatal(n, err)
			}
		}},
		{"protocol error", func() {
			if _, _, err := d.Next(PingFrame); err != ErrUnmasked {
				t.Fatal(err)
			}
		}},
		{"encode", func() { dst = AppendFrame(dst[:0], OpText, true, payload) }},
		{"encode masked", func() { dst = AppendMaskedFrame(dst[:0], OpText, true, testMask, payload) }},
		{"encode close", func() { dst = AppendCloseFrame(dst[:0], RoleServer, testMask, 1008, "slow") }},
		{"close frame", func() { _ = CloseFrame(StatusGoingAway) }},
		{"close payload", func() { _, _, _ = ClosePayload([]byte(closePayload(1000, "bye"))) }},
		{"prepared bytes", func() { _ = p.Bytes(true) }},
		{"parse header", func() { _, _, _ = ParseHeader(wire) }},
	}
	for _, c := range cases {
		if n := testing.AllocsPerRun(100, c.fn); n != 0 {
			t.Errorf("%s: %v allocs", c.name, n)
		}
	}
}
