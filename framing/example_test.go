package framing_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/huntgate/huntgate/framing"
)

// A server decodes whatever bytes have arrived, keeping any incomplete tail
// for the next read.
func ExampleDecoder() {
	// Two client frames: a masked "Hel" text fragment and its final "lo",
	// delivered in two reads that cut the second frame in half.
	mask := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	wire := framing.AppendMaskedFrame(nil, framing.OpText, false, mask, []byte("Hel"))
	wire = framing.AppendMaskedFrame(wire, framing.OpContinuation, true, mask, []byte("lo"))
	reads := [][]byte{wire[:12], wire[12:]}

	d := framing.NewDecoder(framing.DecoderConfig{Role: framing.RoleServer})
	var buf, msg []byte
	for _, r := range reads {
		buf = append(buf, r...)
		for {
			n, f, err := d.Next(buf)
			if err != nil {
				var pe *framing.ProtocolError
				errors.As(err, &pe)
				fmt.Println("close with", pe.Code)
				return
			}
			if n == 0 {
				break // need more bytes: keep buf
			}
			msg = append(msg, f.Payload...)
			if f.Final {
				fmt.Printf("message %q\n", msg)
				msg = msg[:0]
			}
			buf = buf[n:]
		}
	}
	// Output: message "Hello"
}

// An oversized message is refused from its header alone.
func ExampleDecoder_tooBig() {
	hdr := framing.AppendHeader(nil, framing.Header{Fin: true, Op: framing.OpBinary, Masked: true, Length: 1 << 20})
	d := framing.NewDecoder(framing.DecoderConfig{})
	_, _, err := d.Next(hdr)
	fmt.Println(err, err.(*framing.ProtocolError).Code)
	// Output: framing: message too big 1009
}

// A server handshake from a request buffer.
func ExampleUpgrader() {
	head := []byte("GET /ws?token=abc HTTP/1.1\r\n" +
		"Host: localhost\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Version: 13\r\n\r\n")
	n, _ := framing.RequestEnd(head, 4096)
	u := framing.Upgrader{Check: func(r *framing.Request) int {
		if string(r.Query) != "token=abc" {
			return 401
		}
		return 0
	}}
	resp, res, err := u.Upgrade(nil, head[:n])
	fmt.Println(res.Status, err)
	fmt.Print(strings.ReplaceAll(string(resp), "\r\n", "\n"))
	// Output:
	// 101 <nil>
	// HTTP/1.1 101 Switching Protocols
	// Upgrade: websocket
	// Connection: Upgrade
	// Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
}

// A broadcast is encoded once and sent as is to every connection.
func ExamplePrepare() {
	p := framing.Prepare(framing.OpText, []byte(`{"t":"found","id":7}`), false)
	fmt.Printf("% x\n", p.Bytes(false)[:2])
	// Output: 81 14
}
