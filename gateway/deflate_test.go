package gateway

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

// sniffConn keeps a copy of every byte read from the server.
type sniffConn struct {
	net.Conn
	mu  sync.Mutex
	got bytes.Buffer
}

func (c *sniffConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.got.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

// frames parses the server's side of the stream after the HTTP response:
// per data frame, whether RSV1 (compressed) was set.
func (c *sniffConn) frames(t *testing.T) (rsv1 []bool) {
	t.Helper()
	c.mu.Lock()
	b := append([]byte(nil), c.got.Bytes()...)
	c.mu.Unlock()
	i := bytes.Index(b, []byte("\r\n\r\n"))
	if i < 0 {
		t.Fatal("no HTTP response in the stream")
	}
	b = b[i+4:]
	for len(b) >= 2 {
		op, n, h := b[0]&0x0f, int(b[1]&0x7f), 2
		switch n {
		case 126:
			n, h = int(binary.BigEndian.Uint16(b[2:])), 4
		case 127:
			n, h = int(binary.BigEndian.Uint64(b[2:])), 10
		}
		if len(b) < h+n {
			break
		}
		if op == 1 || op == 2 {
			rsv1 = append(rsv1, b[0]&0x40 != 0)
		}
		b = b[h+n:]
	}
	return rsv1
}

// dialSniffed dials /ws as player with gorilla/websocket, compression
// offered or not, keeping the bytes it reads.
func (tg *testGateway) dialSniffed(t *testing.T, player string, compress bool) (*client, *sniffConn, string) {
	t.Helper()
	var sc *sniffConn
	d := websocket.Dialer{EnableCompression: compress, NetDial: func(network, addr string) (net.Conn, error) {
		c, err := net.Dial(network, addr)
		if err != nil {
			return nil, err
		}
		sc = &sniffConn{Conn: c}
		return sc, nil
	}}
	c, resp, err := d.Dial(tg.ws+"/ws?player="+player, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c}, sc, resp.Header.Get("Sec-WebSocket-Extensions")
}

// With --deflate, a client that offers permessage-deflate (gorilla's
// EnableCompression) gets it on /ws: hunt updates arrive compressed (RSV1
// on the wire) and decode to the same JSON a plain client of the same
// broadcast gets uncompressed; its own compressed requests are inflated and
// answered; one inflating past the message limit is closed with 1009.
func TestDeflateOnWS(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.Deflate = true })
	tg.createHunt(t, fixedHunt("h", 2))
	zc, zs, ext := tg.dialSniffed(t, "zed", true)
	if !strings.HasPrefix(ext, "permessage-deflate") {
		t.Fatalf("extension not negotiated: %q", ext)
	}
	pc, ps, pext := tg.dialSniffed(t, "pat", false)
	if pext != "" {
		t.Fatalf("extension answered to a client that offered none: %q", pext)
	}
	zc.c.EnableWriteCompression(true)
	zc.join("h")
	pc.join("h")
	event := `{"boss":"` + strings.Repeat("spawned ", 20) + `"}`
	if code, body := tg.adminDo(t, "POST", "/v1/hunts/h/events", testAPIKey, event); code != 200 {
		t.Fatalf("event: %d %s", code, body)
	}
	zu, pu := zc.expect("update"), pc.expect("update")
	zj, _ := json.Marshal(zu)
	pj, _ := json.Marshal(pu)
	if string(zj) != string(pj) || zu.str("kind") != "event" {
		t.Fatalf("compressed %s, plain %s", zj, pj)
	}
	// A compressed dig is inflated and answered; its claim reaches both.
	zc.send(`{"op":"dig","hunt":"h","x":0,"y":0,"ref":"d1"}`)
	if m := zc.until("dug"); m["found"] != true {
		t.Fatalf("dug %v", m)
	}
	if m := pc.until("update"); m.str("kind") != "claimed" {
		t.Fatalf("plain client got %v", m)
	}
	zr, pr := zs.frames(t), ps.frames(t)
	// joined, event, dug, and the claimed and leaderboard pushes (the order of
	// dug and its pushes may vary): the event is the second frame.
	if len(zr) < 3 || !zr[1] {
		t.Fatalf("compressed client's frames (RSV1 per frame): %v", zr)
	}
	for i, c := range pr {
		if c {
			t.Fatalf("plain client got compressed frame %d: %v", i, pr)
		}
	}
	// Inflating past the 4 KiB message limit closes with 1009.
	if err := zc.c.WriteMessage(websocket.TextMessage, []byte(`{"op":"ping","pad":"`+strings.Repeat("a", 8000)+`"}`)); err != nil {
		t.Fatal(err)
	}
	if ce := zc.expectClose(); ce.Code != 1009 {
		t.Fatalf("close %d, want 1009", ce.Code)
	}
	pc.send(`{"op":"ping","ref":1}`)
	pc.until("pong")
}

// Without --deflate, /ws declines every offer (the test endpoints still
// negotiate it).
func TestDeflateOffByDefault(t *testing.T) {
	tg := startGateway(t, nil)
	if _, _, ext := tg.dialSniffed(t, "zed", true); ext != "" {
		t.Fatalf("/ws negotiated %q without --deflate", ext)
	}
	d := websocket.Dialer{EnableCompression: true}
	c, resp, err := d.Dial(tg.ws+"/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if !strings.HasPrefix(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate") {
		t.Fatal("/echo no longer negotiates deflate")
	}
}
