package framing

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzConfig derives a DecoderConfig from one fuzz byte.
func fuzzConfig(c byte) DecoderConfig {
	cfg := DecoderConfig{Role: Role(c & 1), Deflate: c&2 != 0}
	switch (c >> 2) & 3 {
	case 1:
		cfg.MaxMessage = 16
	case 2:
		cfg.MaxMessage = 300
	case 3:
		cfg.MaxMessage = 1 << 20
	}
	return cfg
}

// chunkSizes turns fuzz bytes into chunk lengths of 1-256 (0 means 256),
// cycled until data is used up.
func chunkSizes(data, sizes []byte) [][]byte {
	if len(sizes) == 0 {
		return [][]byte{data}
	}
	var out [][]byte
	for i := 0; len(data) > 0; i++ {
		n := int(sizes[i%len(sizes)])
		if n == 0 {
			n = 256
		}
		n = min(n, len(data))
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

func addStreamSeeds(f *testing.F) {
	for i, v := range streamVectors {
		c := byte(v.cfg.Role)
		if v.cfg.Deflate {
			c |= 2
		}
		f.Add(c, v.input, []byte{byte(i%7 + 1), 3})
	}
	for _, v := range frameVectors {
		if len(v.wire) < 1024 {
			f.Add(byte(v.role())|2|12, v.wire, []byte{1})
		}
	}
}

// FuzzDecodeSplit checks that decoding a stream cut at arbitrary points
// gives exactly the one-shot result: same frames, same error code.
func FuzzDecodeSplit(f *testing.F) {
	addStreamSeeds(f)
	f.Fuzz(func(t *testing.T, c byte, data, sizes []byte) {
		cfg := fuzzConfig(c)
		whole := decodeChunks(cfg, [][]byte{data})
		split := decodeChunks(cfg, chunkSizes(data, sizes))
		if !sameResult(whole, split) {
			t.Fatalf("cfg %+v\n one shot %+v\n split    %+v", cfg, whole, split)
		}
		// Facts every accepted stream must satisfy, checked on whole
		// messages so that fragmented ones count too.
		limit := cfg.MaxMessage
		if limit == 0 {
			limit = DefaultMaxMessage
		}
		var msg []byte
		for _, fr := range whole.Frames {
			if fr.Op.IsControl() && len(fr.Payload) > 125 {
				t.Fatalf("control frame of %d bytes accepted", len(fr.Payload))
			}
			if !fr.Op.IsControl() {
				if fr.First {
					msg = msg[:0]
				}
				msg = append(msg, fr.Payload...)
				if len(msg) > limit {
					t.Fatalf("message of %d bytes accepted, max %d", len(msg), limit)
				}
				if fr.MsgOp == OpText && !fr.Compressed && fr.Final && !utf8.Valid(msg) {
					t.Fatalf("invalid UTF-8 text accepted: %q", msg)
				}
			}
			if fr.MsgOp == OpClose {
				if _, _, err := ClosePayload([]byte(fr.Payload)); err != nil {
					t.Fatalf("bad close payload accepted: %v", err)
				}
			}
		}
	})
}

var (
	fuzzDeflater Deflater
	fuzzInflater Inflater
)

// FuzzRoundTrip encodes a frame with the package's encoders and decodes it
// back on the other role.
func FuzzRoundTrip(f *testing.F) {
	for _, v := range frameVectors {
		if len(v.payload) < 1024 {
			f.Add(byte(v.header.Op), v.header.Fin, v.header.Masked, uint32(0x37fa213d), v.payload)
		}
	}
	f.Add(byte(OpText), true, true, uint32(1), []byte("héllo \xff"))
	f.Add(byte(OpClose), true, false, uint32(0), []byte("\x03\xe8bye"))
	f.Fuzz(func(t *testing.T, opb byte, fin, mask bool, key uint32, payload []byte) {
		ops := []OpCode{OpText, OpBinary, OpClose, OpPing, OpPong}
		op := ops[int(opb)%len(ops)]
		if op.IsControl() {
			fin = true
			payload = payload[:min(len(payload), 125)]
		}
		m := [4]byte{byte(key >> 24), byte(key >> 16), byte(key >> 8), byte(key)}
		orig := bytes.Clone(payload)
		var wire []byte
		role := RoleClient // receiver of unmasked server frames
		if mask {
			wire = AppendMaskedFrame(nil, op, fin, m, payload)
			role = RoleServer
		} else {
			wire = AppendFrame(nil, op, fin, payload)
		}
		if !bytes.Equal(payload, orig) {
			t.Fatal("encoder modified the payload")
		}
		h, n, err := ParseHeader(wire)
		if err != nil || n != HeaderSize(h) || h.Length != int64(len(payload)) || h.Op != op || h.Fin != fin || h.Masked != mask || (mask && h.Mask != m) {
			t.Fatalf("header %+v n=%d err=%v", h, n, err)
		}
		d := NewDecoder(DecoderConfig{Role: role, MaxMessage: 1 << 20})
		adv, fr, err := d.Next(wire)
		var want error
		switch {
		case op == OpText && fin && !utf8.Valid(payload):
			want = ErrInvalidUTF8
		case op == OpText && !fin:
			if _, ok := utf8Scan(payload); !ok {
				want = ErrInvalidUTF8
			}
		case op == OpClose:
			_, _, want = ClosePayload(payload)
		}
		if err != want {
			t.Fatalf("err %v, want %v", err, want)
		}
		if err == nil && (adv != len(wire) || !bytes.Equal(fr.Payload, payload) || fr.Header != h) {
			t.Fatalf("decoded %+v % x", fr.Header, fr.Payload)
		}
		// Deflate round trip of the same payload, with coders reused as in
		// a loop (fuzz calls within one process are sequential).
		out, err := fuzzInflater.Inflate(nil, fuzzDeflater.Deflate(nil, payload), len(payload))
		if err != nil || !bytes.Equal(out, payload) {
			t.Fatalf("deflate round trip: %v", err)
		}
	})
}

// FuzzUpgradeRequest feeds arbitrary request heads to RequestEnd and the
// Upgrader: no panic, and always one well-formed response.
func FuzzUpgradeRequest(f *testing.F) {
	f.Add(browserRequest)
	f.Add(request("GET / HTTP/1.1", "Host: h", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: "+rfcKey, "Sec-WebSocket-Version: 13", "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x"))
	f.Add(AppendClientRequest(nil, "h:1", "/ws?token=a", NewClientKey(), true, [][2]string{{"Origin", "o"}}))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte("\r\n\r\n"))
	f.Add(request("GET / HTTP/1.1", "Host: h", "Upgrade: h2c, websocket", "Connection: close", "Connection: upgrade", "Sec-WebSocket-Key: "+rfcKey, "Sec-WebSocket-Version: 13"))
	f.Add([]byte("POST / HTTP/1.1\r\nHost"))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := RequestEnd(data, 4096)
		if err == nil && n == 0 && BadRequestStart(data) {
			// What conn answers before the head is complete.
			resp, res, err := (&Upgrader{}).Upgrade(nil, data)
			checkResponseShape(t, string(resp))
			if err == nil || res.Status < 400 {
				t.Fatalf("bad start %q answered %d, %v", data, res.Status, err)
			}
			return
		}
		if err != nil || n == 0 {
			return
		}
		head := data[:n]
		var path string
		u := Upgrader{Deflate: len(head)%2 == 0, Check: func(r *Request) int {
			path = string(r.Path) // r's slices die with the call
			if bytes.Contains(r.Query, []byte("deny")) {
				return 403
			}
			return 0
		}}
		resp, res, err := u.Upgrade(nil, head)
		checkResponseShape(t, string(resp))
		if (err == nil) != (res.Status == 101) {
			t.Fatalf("status %d with err %v", res.Status, err)
		}
		if res.Status == 101 {
			if !strings.Contains(string(resp), "\r\nSec-WebSocket-Accept: ") {
				t.Fatalf("101 without accept: %q", resp)
			}
			if res.Deflate != strings.Contains(string(resp), "permessage-deflate") || (res.Deflate && !u.Deflate) {
				t.Fatalf("deflate %v in %q", res.Deflate, resp)
			}
			if !bytes.HasPrefix(head[4:], []byte(path)) {
				t.Fatalf("path %q not from the request line", path)
			}
		}
	})
}
