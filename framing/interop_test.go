package framing

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gorilla/websocket"
)

// echoServer is a minimal WebSocket echo server built only from this
// package over a real TCP socket, the way conn drives it: bytes in, frames
// out. It returns the address and a channel that receives the close code the
// server sent (or 0 if the connection ended without one).
func echoServer(t *testing.T, u Upgrader, maxMessage int) (string, <-chan StatusCode) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan StatusCode, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- 0
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		done <- serveEcho(c, u, maxMessage)
	}()
	return ln.Addr().String(), done
}

func serveEcho(c net.Conn, u Upgrader, maxMessage int) StatusCode {
	buf := make([]byte, 0, 64<<10)
	rd := make([]byte, 32<<10)
	fill := func() bool {
		n, err := c.Read(rd)
		buf = append(buf, rd[:n]...)
		return err == nil || n > 0
	}
	// Handshake.
	var head int
	for {
		n, err := RequestEnd(buf, 4096)
		if err != nil {
			return 0
		}
		if n > 0 {
			head = n
			break
		}
		if !fill() {
			return 0
		}
	}
	resp, res, err := u.Upgrade(nil, buf[:head])
	if _, werr := c.Write(resp); werr != nil || err != nil {
		return 0
	}
	buf = append(buf[:0], buf[head:]...)

	d := NewDecoder(DecoderConfig{MaxMessage: maxMessage, Deflate: res.Deflate})
	var in Inflater
	var msg []byte
	fail := func(code StatusCode) StatusCode {
		_, _ = c.Write(CloseFrame(code))
		return code
	}
	for {
		n, f, err := d.Next(buf)
		if err != nil {
			var pe *ProtocolError
			errors.As(err, &pe)
			return fail(pe.Code)
		}
		if n == 0 {
			if !fill() {
				return 0
			}
			continue
		}
		switch f.MsgOp {
		case OpPing:
			_, _ = c.Write(AppendFrame(nil, OpPong, true, f.Payload))
		case OpPong:
		case OpClose:
			code, _, _ := ClosePayload(f.Payload)
			if code == StatusNoStatus {
				_, _ = c.Write(AppendCloseFrame(nil, RoleServer, [4]byte{}, 0, ""))
			} else {
				_, _ = c.Write(CloseFrame(code))
			}
			return code
		default:
			msg = append(msg, f.Payload...)
			if f.Final {
				if f.Compressed {
					out, err := in.Inflate(nil, msg, maxMessage)
					if err != nil {
						var pe *ProtocolError
						errors.As(err, &pe)
						return fail(pe.Code)
					}
					msg = out
					if f.MsgOp == OpText && !ValidUTF8(msg) {
						return fail(StatusInvalidPayload)
					}
				}
				_, _ = c.Write(Prepare(f.MsgOp, msg, res.Deflate).Bytes(res.Deflate))
				msg = msg[:0]
			}
		}
		buf = append(buf[:0], buf[n:]...)
	}
}

var interopMessages = []struct {
	text bool
	data string
}{
	{true, "hello"},
	{true, "Trésor trouvé 🏝"},
	{false, "\x00\x01\xff\xfe"},
	{true, strings.Repeat(`{"t":"move","x":1,"y":2}`, 150)}, // 3600 bytes: 16-bit length
	{true, ""},
}

func TestInteropGorilla(t *testing.T) {
	for _, deflate := range []bool{false, true} {
		name := "plain"
		if deflate {
			name = "deflate"
		}
		t.Run(name, func(t *testing.T) {
			addr, done := echoServer(t, Upgrader{Deflate: true}, 4096)
			dialer := websocket.Dialer{EnableCompression: deflate, HandshakeTimeout: 5 * time.Second, WriteBufferSize: 512}
			c, resp, err := dialer.Dial("ws://"+addr+"/ws?token=x", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if ext := resp.Header.Get("Sec-WebSocket-Extensions"); deflate != strings.Contains(ext, "permessage-deflate") {
				t.Fatalf("extensions %q, want deflate %v", ext, deflate)
			}
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			for _, m := range interopMessages {
				typ := websocket.BinaryMessage
				if m.text {
					typ = websocket.TextMessage
				}
				if err := c.WriteMessage(typ, []byte(m.data)); err != nil {
					t.Fatal(err)
				}
				gt, got, err := c.ReadMessage()
				if err != nil || gt != typ || string(got) != m.data {
					t.Fatalf("echo of %d bytes: type %d, %d bytes, %v", len(m.data), gt, len(got), err)
				}
			}
			// A message in many fragments (the writer flushes every 512
			// bytes) with a ping between them.
			w, err := c.NextWriter(websocket.TextMessage)
			if err != nil {
				t.Fatal(err)
			}
			long := strings.Repeat("fragmé ", 500)[:3000]
			for i := 0; i < len(long); i += 700 {
				_, _ = io.WriteString(w, long[i:min(i+700, len(long))])
				if i == 1400 {
					_ = c.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(time.Second))
				}
			}
			_ = w.Close()
			pong := make(chan string, 1)
			c.SetPongHandler(func(s string) error { pong <- s; return nil })
			if _, got, err := c.ReadMessage(); err != nil || string(got) != long {
				t.Fatalf("fragmented echo: %d bytes, %v", len(got), err)
			}
			select {
			case s := <-pong:
				if s != "p" {
					t.Fatalf("pong %q", s)
				}
			default:
				t.Fatal("no pong before the echo")
			}
			_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "done"))
			if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, 4001) {
				t.Fatalf("close answer: %v", err)
			}
			if code := <-done; code != 4001 {
				t.Fatalf("server saw close %d", code)
			}
		})
	}
}

// TestInteropGorillaErrors checks the close codes a real client receives.
func TestInteropGorillaErrors(t *testing.T) {
	cases := []struct {
		name    string
		deflate bool
		send    func(c *websocket.Conn) error
		code    int
	}{
		{"invalid UTF-8", false, func(c *websocket.Conn) error {
			return c.WriteMessage(websocket.TextMessage, []byte("bad \xff text"))
		}, 1007},
		{"invalid UTF-8 in first fragment", false, func(c *websocket.Conn) error {
			w, err := c.NextWriter(websocket.TextMessage)
			if err != nil {
				return err
			}
			_, err = w.Write([]byte(strings.Repeat("\xc0", 600))) // first 512-byte frame goes out, never finished
			return err
		}, 1007},
		{"too big", false, func(c *websocket.Conn) error {
			return c.WriteMessage(websocket.BinaryMessage, make([]byte, 4097))
		}, 1009},
		{"deflate bomb", true, func(c *websocket.Conn) error {
			return c.WriteMessage(websocket.BinaryMessage, make([]byte, 1<<20))
		}, 1009},
		{"invalid UTF-8 compressed", true, func(c *websocket.Conn) error {
			return c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("ok\xff", 100)))
		}, 1007},
		{"invalid close code", false, func(c *websocket.Conn) error {
			return c.WriteMessage(websocket.CloseMessage, []byte{0x03, 0xed}) // 1005 may not be sent
		}, 1002},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr, done := echoServer(t, Upgrader{Deflate: tc.deflate}, 4096)
			dialer := websocket.Dialer{EnableCompression: tc.deflate, HandshakeTimeout: 5 * time.Second, WriteBufferSize: 512}
			c, resp, err := dialer.Dial("ws://"+addr+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// Without deflate the compressed cases would end with the same
			// codes for other reasons (4097+ bytes, plain invalid text).
			if ext := resp.Header.Get("Sec-WebSocket-Extensions"); tc.deflate != strings.Contains(ext, "permessage-deflate") {
				t.Fatalf("extensions %q, want deflate %v", ext, tc.deflate)
			}
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if err := tc.send(c); err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, tc.code) {
				t.Fatalf("got %v, want close %d", err, tc.code)
			}
			if code := <-done; int(code) != tc.code {
				t.Fatalf("server sent %d", code)
			}
		})
	}
}

func TestInteropCoder(t *testing.T) {
	for _, mode := range []coder.CompressionMode{coder.CompressionDisabled, coder.CompressionNoContextTakeover} {
		t.Run(map[coder.CompressionMode]string{coder.CompressionDisabled: "plain", coder.CompressionNoContextTakeover: "deflate"}[mode], func(t *testing.T) {
			addr, done := echoServer(t, Upgrader{Deflate: true}, 4096)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, resp, err := coder.Dial(ctx, "ws://"+addr+"/ws", &coder.DialOptions{CompressionMode: mode, CompressionThreshold: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			ext := resp.Header.Get("Sec-WebSocket-Extensions")
			if (mode == coder.CompressionNoContextTakeover) != strings.Contains(ext, "permessage-deflate") {
				t.Fatalf("extensions %q for mode %v", ext, mode)
			}
			for _, m := range interopMessages {
				typ := coder.MessageBinary
				if m.text {
					typ = coder.MessageText
				}
				if err := c.Write(ctx, typ, []byte(m.data)); err != nil {
					t.Fatal(err)
				}
				gt, got, err := c.Read(ctx)
				if err != nil || gt != typ || !bytes.Equal(got, []byte(m.data)) {
					t.Fatalf("echo of %d bytes: type %v, %d bytes, %v", len(m.data), gt, len(got), err)
				}
			}
			if err := c.Close(coder.StatusNormalClosure, "bye"); err != nil {
				t.Fatal(err)
			}
			if code := <-done; code != StatusNormal {
				t.Fatalf("server saw close %d", code)
			}
		})
	}
}
