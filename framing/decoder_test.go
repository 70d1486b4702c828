package framing

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func TestParseHeaderVectors(t *testing.T) {
	for _, v := range frameVectors {
		h, n, err := ParseHeader(v.wire)
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		if h != v.header {
			t.Errorf("%s: header %+v, want %+v", v.name, h, v.header)
		}
		if want := len(v.wire) - len(v.payload); n != want {
			t.Errorf("%s: header length %d, want %d", v.name, n, want)
		}
		if HeaderSize(h) != n {
			t.Errorf("%s: HeaderSize %d, want %d", v.name, HeaderSize(h), n)
		}
		// Every proper prefix of the header is "need more".
		for i := range n {
			if _, m, err := ParseHeader(v.wire[:i]); m != 0 || err != nil {
				t.Errorf("%s: prefix of %d bytes: n=%d err=%v, want need more", v.name, i, m, err)
			}
		}
	}
}

func TestEncodeVectors(t *testing.T) {
	for _, v := range frameVectors {
		got := AppendHeader(nil, v.header)
		if v.header.Masked {
			got = append(got, masked(v.payload, v.header.Mask)...)
		} else {
			got = append(got, v.payload...)
		}
		if !bytes.Equal(got, v.wire) {
			t.Errorf("%s: AppendHeader+payload\n got % x\nwant % x", v.name, head(got), head(v.wire))
		}
		if v.header.Rsv != 0 {
			continue
		}
		prefix := []byte("keep")
		if v.header.Masked {
			got = AppendMaskedFrame(prefix, v.header.Op, v.header.Fin, v.header.Mask, v.payload)
		} else {
			got = AppendFrame(prefix, v.header.Op, v.header.Fin, v.payload)
		}
		if !bytes.Equal(got[4:], v.wire) || string(got[:4]) != "keep" {
			t.Errorf("%s: Append*Frame\n got % x\nwant % x", v.name, head(got[4:]), head(v.wire))
		}
	}
}

// head shortens a slice for error messages.
func head(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

func TestDecodeVectors(t *testing.T) {
	for _, v := range frameVectors {
		if v.header.Op == OpContinuation {
			continue // needs a message start: covered by the stream vectors
		}
		d := NewDecoder(DecoderConfig{Role: v.role(), MaxMessage: 1 << 20, Deflate: true})
		buf := bytes.Clone(v.wire)
		n, f, err := d.Next(buf)
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		if n != len(v.wire) {
			t.Errorf("%s: advance %d, want %d", v.name, n, len(v.wire))
		}
		if f.Header != v.header || !bytes.Equal(f.Payload, v.payload) {
			t.Errorf("%s: frame %+v payload % x, want %+v % x", v.name, f.Header, head(f.Payload), v.header, head(v.payload))
		}
		if !v.header.Op.IsControl() && (!f.First || f.Final != v.header.Fin || f.MsgOp != v.header.Op) {
			t.Errorf("%s: First=%v Final=%v MsgOp=%v", v.name, f.First, f.Final, f.MsgOp)
		}
		if f.Compressed != (v.header.Rsv != 0) {
			t.Errorf("%s: Compressed=%v", v.name, f.Compressed)
		}
		// Every proper prefix of the frame is "need more", without any
		// change to the Decoder except for the validated prefix of a text
		// frame; the whole frame then decodes as before in the same bytes.
		for _, i := range []int{0, 1, len(v.wire) / 2, len(v.wire) - 1} {
			d2 := NewDecoder(DecoderConfig{Role: v.role(), MaxMessage: 1 << 20, Deflate: true})
			before := d2
			buf := bytes.Clone(v.wire)
			if m, _, err := d2.Next(buf[:i]); m != 0 || err != nil {
				t.Errorf("%s: prefix %d: advance %d err %v, want need more", v.name, i, m, err)
			}
			if d2 != before && (v.header.Op != OpText || v.header.Rsv != 0) {
				t.Errorf("%s: prefix %d: state changed: %+v, was %+v", v.name, i, d2, before)
			}
			if m, f, err := d2.Next(buf); m != len(v.wire) || err != nil || !bytes.Equal(f.Payload, v.payload) {
				t.Errorf("%s: after prefix %d: advance %d err %v payload % x", v.name, i, m, err, head(f.Payload))
			}
		}
	}
}

// gotFrame is a decoded frame with its payload copied.
type gotFrame struct {
	Op, MsgOp                OpCode
	Payload                  string
	First, Final, Compressed bool
}

func (g gotFrame) String() string {
	return fmt.Sprintf("{op=%d msg=%d %q first=%v final=%v z=%v}", g.Op, g.MsgOp, head([]byte(g.Payload)), g.First, g.Final, g.Compressed)
}

// streamResult is everything a Decoder said about a byte stream.
type streamResult struct {
	Frames  []gotFrame
	Code    StatusCode // close code of the error, 0 if none
	Pending int        // bytes left unconsumed at the end
	Chunk   int        // index of the chunk whose arrival brought the error
}

// decodeChunks feeds chunks to a fresh Decoder the way conn does: unconsumed
// bytes are kept and each chunk is appended to them before calling Next
// again, as often as it returns a frame.
func decodeChunks(cfg DecoderConfig, chunks [][]byte) streamResult {
	d := NewDecoder(cfg)
	var res streamResult
	var buf []byte
	for i, c := range chunks {
		buf = append(buf, c...)
		for {
			n, f, err := d.Next(buf)
			if err != nil {
				var pe *ProtocolError
				if !errors.As(err, &pe) {
					panic("error is not a *ProtocolError: " + err.Error())
				}
				res.Code = pe.Code
				res.Pending = len(buf)
				res.Chunk = i
				return res
			}
			if n == 0 {
				break
			}
			res.Frames = append(res.Frames, gotFrame{f.Header.Op, f.MsgOp, string(f.Payload), f.First, f.Final, f.Compressed})
			// Move the tail down, like conn's partial-frame buffer.
			buf = append(buf[:0], buf[n:]...)
		}
	}
	res.Pending = len(buf)
	return res
}

// splitAt cuts b at the given sorted offsets.
func splitAt(b []byte, cuts []int) [][]byte {
	var out [][]byte
	prev := 0
	for _, c := range cuts {
		out = append(out, b[prev:c])
		prev = c
	}
	return append(out, b[prev:])
}

// Frame builders for stream vectors; the encoders they use are checked
// against the hand-written bits of frameVectors.
func cframe(fin bool, op OpCode, payload string) []byte {
	return AppendMaskedFrame(nil, op, fin, testMask, []byte(payload))
}

func cframeRsv(rsv byte, fin bool, op OpCode, payload string) []byte {
	b := AppendHeader(nil, Header{Fin: fin, Rsv: rsv, Op: op, Masked: true, Mask: testMask, Length: int64(len(payload))})
	return append(b, masked([]byte(payload), testMask)...)
}

func sframe(fin bool, op OpCode, payload string) []byte {
	return AppendFrame(nil, op, fin, []byte(payload))
}

func closePayload(code StatusCode, reason string) string {
	return string([]byte{byte(code >> 8), byte(code)}) + reason
}

// data frames expected back: text, binary and their continuations.
func text(payload string, first, final bool) gotFrame {
	op := OpText
	if !first {
		op = OpContinuation
	}
	return gotFrame{op, OpText, payload, first, final, false}
}

func bin(payload string) gotFrame { return gotFrame{OpBinary, OpBinary, payload, true, true, false} }

func control(op OpCode, payload string) gotFrame {
	return gotFrame{op, op, payload, false, true, false}
}

type streamVector struct {
	name   string
	cfg    DecoderConfig
	input  []byte
	frames []gotFrame
	code   StatusCode // expected error, 0 for none
}

var big4096 = strings.Repeat("a", 4096)

var streamVectors = []streamVector{
	{name: "rfc fragmented text", input: cat(cframe(false, OpText, "Hel"), cframe(true, OpContinuation, "lo")),
		frames: []gotFrame{text("Hel", true, false), text("lo", false, true)}},
	{name: "ping and pong inside fragmented text",
		input: cat(cframe(false, OpText, "a"), cframe(true, OpPing, "p"), cframe(false, OpContinuation, "b"),
			cframe(true, OpPong, ""), cframe(true, OpContinuation, "c")),
		frames: []gotFrame{text("a", true, false), control(OpPing, "p"), text("b", false, false), control(OpPong, ""), text("c", false, true)}},
	{name: "close inside fragmented binary",
		input:  cat(cframe(false, OpBinary, "\xff"), cframe(true, OpClose, closePayload(1000, "bye"))),
		frames: []gotFrame{{OpBinary, OpBinary, "\xff", true, false, false}, control(OpClose, closePayload(1000, "bye"))}},
	{name: "two messages back to back", input: cat(cframe(true, OpText, "x"), cframe(true, OpBinary, "\x00\xff")),
		frames: []gotFrame{text("x", true, true), bin("\x00\xff")}},
	{name: "client role reads unmasked", cfg: DecoderConfig{Role: RoleClient}, input: cat(sframe(true, OpText, "hi"), sframe(true, OpPing, "")),
		frames: []gotFrame{text("hi", true, true), control(OpPing, "")}},
	{name: "empty close", input: cframe(true, OpClose, ""), frames: []gotFrame{control(OpClose, "")}},
	{name: "exactly max message", input: cframe(true, OpText, big4096), frames: []gotFrame{text(big4096, true, true)}},
	{name: "max message over fragments", input: cat(cframe(false, OpText, big4096[:4000]), cframe(true, OpContinuation, big4096[:96])),
		frames: []gotFrame{text(big4096[:4000], true, false), text(big4096[:96], false, true)}},
	{name: "binary need not be UTF-8", input: cframe(true, OpBinary, "\xc0\x80\xff"), frames: []gotFrame{bin("\xc0\x80\xff")}},
	{name: "compressed text is not checked here", cfg: DecoderConfig{Deflate: true},
		input:  cat(cframeRsv(0b100, false, OpText, "\xff"), cframe(true, OpContinuation, "\xc0")),
		frames: []gotFrame{{OpText, OpText, "\xff", true, false, true}, {OpContinuation, OpText, "\xc0", false, true, true}}},
	{name: "compression flag cleared by next message", cfg: DecoderConfig{Deflate: true},
		input:  cat(cframeRsv(0b100, true, OpBinary, "z"), cframe(true, OpText, "t")),
		frames: []gotFrame{{OpBinary, OpBinary, "z", true, true, true}, text("t", true, true)}},
	{name: "code point split over fragments", input: cat(cframe(false, OpText, "a\xe2"), cframe(false, OpContinuation, "\x82"), cframe(true, OpPing, ""), cframe(true, OpContinuation, "\xac!")),
		frames: []gotFrame{text("a\xe2", true, false), text("\x82", false, false), control(OpPing, ""), text("\xac!", false, true)}},
	{name: "4-byte code point split 1+3", input: cat(cframe(false, OpText, "\xf0"), cframe(true, OpContinuation, "\x9f\x98\x80")),
		frames: []gotFrame{text("\xf0", true, false), text("\x9f\x98\x80", false, true)}},
	{name: "4-byte code point split 3+1 with empty fragment", input: cat(cframe(false, OpText, "\xf0\x9f\x98"), cframe(false, OpContinuation, ""), cframe(true, OpContinuation, "\x80")),
		frames: []gotFrame{text("\xf0\x9f\x98", true, false), text("", false, false), text("\x80", false, true)}},
	{name: "IANA close codes 1012-1014 are valid", input: cat(cframe(true, OpClose, closePayload(1012, "")), cframe(true, OpClose, closePayload(1014, "x"))),
		frames: []gotFrame{control(OpClose, closePayload(1012, "")), control(OpClose, closePayload(1014, "x"))}},
	{name: "close codes 3000 and 4999 are valid", input: cat(cframe(true, OpClose, closePayload(3000, "")), cframe(true, OpClose, closePayload(4999, "é"))),
		frames: []gotFrame{control(OpClose, closePayload(3000, "")), control(OpClose, closePayload(4999, "é"))}},
	{name: "incomplete frame is left pending", input: cframe(true, OpText, "hello")[:8]},

	// Header errors: decided before the payload arrives, so the inputs
	// below carry the header only (or a short payload).
	{name: "unmasked client frame", input: sframe(true, OpText, "hi"), code: 1002},
	{name: "masked server frame", cfg: DecoderConfig{Role: RoleClient}, input: cframe(true, OpText, "hi"), code: 1002},
	{name: "RSV1 without deflate", input: cframeRsv(0b100, true, OpText, "a"), code: 1002},
	{name: "RSV2 with deflate", cfg: DecoderConfig{Deflate: true}, input: cframeRsv(0b010, true, OpText, "a"), code: 1002},
	{name: "RSV3", input: cframeRsv(0b001, true, OpBinary, "a"), code: 1002},
	{name: "RSV1 on continuation", cfg: DecoderConfig{Deflate: true}, input: cat(cframeRsv(0b100, false, OpText, "a"), cframeRsv(0b100, true, OpContinuation, "b")),
		frames: []gotFrame{{OpText, OpText, "a", true, false, true}}, code: 1002},
	{name: "RSV1 on ping", cfg: DecoderConfig{Deflate: true}, input: cframeRsv(0b100, true, OpPing, ""), code: 1002},
	{name: "reserved opcode 3", input: cat(bits("1 000 0011  1 0000000"), testMask[:]), code: 1002},
	{name: "reserved opcode 7", input: cat(bits("1 000 0111  1 0000000"), testMask[:]), code: 1002},
	{name: "reserved opcode B", input: cat(bits("1 000 1011  1 0000000"), testMask[:]), code: 1002},
	{name: "reserved opcode F", input: cat(bits("1 000 1111  1 0000000"), testMask[:]), code: 1002},
	{name: "fragmented ping", input: cframe(false, OpPing, ""), code: 1002},
	{name: "ping of 126 bytes", input: cat(bits("1 000 1001  1 1111110"), bits("00000000 01111110"), testMask[:]), code: 1002},
	{name: "continuation without start", input: cframe(true, OpContinuation, "x"), code: 1002},
	{name: "new message inside a message", input: cat(cframe(false, OpText, "a"), cframe(true, OpBinary, "b")),
		frames: []gotFrame{text("a", true, false)}, code: 1002},
	{name: "continuation after final", input: cat(cframe(true, OpText, "a"), cframe(true, OpContinuation, "b")),
		frames: []gotFrame{text("a", true, true)}, code: 1002},
	{name: "64-bit length with MSB", input: cat(bits("1 000 0010  1 1111111"), bits("10000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001"), testMask[:]), code: 1002},
	{name: "16-bit length below 126", input: cat(bits("1 000 0010  1 1111110"), bits("00000000 00000101"), testMask[:]), code: 1002},
	{name: "64-bit length below 65536", input: cat(bits("1 000 0010  1 1111111"), bits("00000000 00000000 00000000 00000000 00000000 00000000 11111111 11111111"), testMask[:]), code: 1002},
	{name: "too big from the header alone", input: cat(bits("1 000 0001  1 1111110"), bits("00010000 00000001"), testMask[:]), code: 1009},
	{name: "too big huge 64-bit length", input: cat(bits("1 000 0010  1 1111111"), bits("01111111 11111111 11111111 11111111 11111111 11111111 11111111 11111111"), testMask[:]), code: 1009},
	{name: "too big over fragments", input: cat(cframe(false, OpBinary, big4096[:3000]), cframe(true, OpContinuation, big4096[:1097])[:8]),
		frames: []gotFrame{{OpBinary, OpBinary, big4096[:3000], true, false, false}}, code: 1009},
	{name: "configured max", cfg: DecoderConfig{MaxMessage: 10}, input: cframe(true, OpText, "12345678901"), code: 1009},

	// UTF-8 errors (1007), found in the fragment where they become certain.
	{name: "invalid byte in single frame", input: cframe(true, OpText, "ok\xff"), code: 1007},
	{name: "invalid first fragment fails before the rest", input: cframe(false, OpText, "abc\x80"), code: 1007},
	{name: "impossible lead byte at fragment end", input: cframe(false, OpText, "abc\xf5"), code: 1007},
	{name: "overlong 2-byte", input: cframe(true, OpText, "\xc0\x80"), code: 1007},
	{name: "overlong 3-byte prefix at fragment end", input: cframe(false, OpText, "\xe0\x80"), code: 1007},
	{name: "surrogate", input: cframe(true, OpText, "\xed\xa0\x80"), code: 1007},
	{name: "above U+10FFFF", input: cframe(false, OpText, "\xf4\x90"), code: 1007},
	{name: "bad continuation across fragments", input: cat(cframe(false, OpText, "\xe0"), cframe(true, OpContinuation, "\x80\x80")),
		frames: []gotFrame{text("\xe0", true, false)}, code: 1007},
	{name: "bad third byte across fragments", input: cat(cframe(false, OpText, "\xe2\x82"), cframe(true, OpContinuation, "A")),
		frames: []gotFrame{text("\xe2\x82", true, false)}, code: 1007},
	{name: "truncated code point at message end", input: cat(cframe(false, OpText, "\xe2\x82"), cframe(true, OpContinuation, "")),
		frames: []gotFrame{text("\xe2\x82", true, false)}, code: 1007},
	{name: "truncated in single frame", input: cframe(true, OpText, "abc\xe2\x82"), code: 1007},
	{name: "invalid after long ASCII run", input: cframe(true, OpText, strings.Repeat("a", 37)+"\xff"+strings.Repeat("b", 20)), code: 1007},

	// Close payloads.
	{name: "close of 1 byte", input: cframe(true, OpClose, "\x03"), code: 1002},
	{name: "close 1005 on the wire", input: cframe(true, OpClose, closePayload(1005, "")), code: 1002},
	{name: "close 1006 on the wire", input: cframe(true, OpClose, closePayload(1006, "")), code: 1002},
	{name: "close 1004", input: cframe(true, OpClose, closePayload(1004, "")), code: 1002},
	{name: "close 1015", input: cframe(true, OpClose, closePayload(1015, "")), code: 1002},
	{name: "close 1016", input: cframe(true, OpClose, closePayload(1016, "")), code: 1002},
	{name: "close 999", input: cframe(true, OpClose, closePayload(999, "")), code: 1002},
	{name: "close 2999", input: cframe(true, OpClose, closePayload(2999, "")), code: 1002},
	{name: "close 5000", input: cframe(true, OpClose, closePayload(5000, "")), code: 1002},
	{name: "close reason not UTF-8", input: cframe(true, OpClose, closePayload(1000, "\xce")), code: 1007},
}

func (v streamVector) want() streamResult {
	res := streamResult{Frames: v.frames, Code: v.code}
	if v.code == 0 {
		n := 0
		for _, f := range v.frames {
			n += HeaderSize(Header{Masked: v.cfg.Role == RoleServer, Length: int64(len(f.Payload))}) + len(f.Payload)
		}
		res.Pending = len(v.input) - n
	}
	return res
}

func sameResult(a, b streamResult) bool {
	if a.Code != b.Code || len(a.Frames) != len(b.Frames) {
		return false
	}
	if a.Code == 0 && a.Pending != b.Pending {
		return false
	}
	for i := range a.Frames {
		if a.Frames[i] != b.Frames[i] {
			return false
		}
	}
	return true
}

func TestStreams(t *testing.T) {
	for _, v := range streamVectors {
		t.Run(v.name, func(t *testing.T) {
			got := decodeChunks(v.cfg, [][]byte{v.input})
			if want := v.want(); !sameResult(got, want) {
				t.Fatalf("one shot:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestStreamsShortReads feeds every vector one byte at a time and at random
// split points: the results must equal the one-shot decode.
func TestStreamsShortReads(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	all := append([]streamVector(nil), streamVectors...)
	// The single-frame vectors too, as a stream of their own.
	for _, fv := range frameVectors {
		if fv.header.Op == OpContinuation {
			continue
		}
		all = append(all, streamVector{name: fv.name, cfg: DecoderConfig{Role: fv.role(), MaxMessage: 1 << 20, Deflate: true}, input: fv.wire})
	}
	for _, v := range all {
		t.Run(v.name, func(t *testing.T) {
			want := decodeChunks(v.cfg, [][]byte{v.input})
			if len(v.input) <= 4096+64 {
				var cuts []int
				for i := 1; i < len(v.input); i++ {
					cuts = append(cuts, i)
				}
				if got := decodeChunks(v.cfg, splitAt(v.input, cuts)); !sameResult(got, want) {
					t.Fatalf("byte by byte:\n got %+v\nwant %+v", got, want)
				}
			}
			for range 50 {
				var cuts []int
				for i := 1; i < len(v.input); i++ {
					if rng.IntN(len(v.input)/8+2) == 0 {
						cuts = append(cuts, i)
					}
				}
				if got := decodeChunks(v.cfg, splitAt(v.input, cuts)); !sameResult(got, want) {
					t.Fatalf("split at %v:\n got %+v\nwant %+v", cuts, got, want)
				}
			}
		})
	}
}

// TestHeaderErrorsBeforePayload checks that header-decided errors need no
// payload byte, so a peer cannot make the caller buffer an oversized frame.
func TestHeaderErrorsBeforePayload(t *testing.T) {
	cases := []struct {
		name string
		cfg  DecoderConfig
		hdr  Header
		want error
	}{
		{"too big", DecoderConfig{}, Header{Fin: true, Op: OpText, Masked: true, Length: 4097}, ErrMessageTooBig},
		{"too big 1 GiB", DecoderConfig{MaxMessage: 1 << 20}, Header{Fin: true, Op: OpBinary, Masked: true, Length: 1 << 30}, ErrMessageTooBig},
		{"rsv", DecoderConfig{}, Header{Fin: true, Rsv: 0b100, Op: OpText, Masked: true, Length: 100}, ErrReservedBits},
		{"opcode", DecoderConfig{}, Header{Fin: true, Op: 0x5, Masked: true, Length: 100}, ErrReservedOpcode},
		{"unmasked", DecoderConfig{}, Header{Fin: true, Op: OpText, Length: 100}, ErrUnmasked},
		{"masked", DecoderConfig{Role: RoleClient}, Header{Fin: true, Op: OpText, Masked: true, Length: 100}, ErrMasked},
		{"long ping", DecoderConfig{}, Header{Fin: true, Op: OpPing, Masked: true, Length: 200}, ErrControlTooLong},
		{"fragmented close", DecoderConfig{}, Header{Op: OpClose, Masked: true, Length: 2}, ErrControlFragmented},
		{"continuation", DecoderConfig{}, Header{Fin: true, Op: OpContinuation, Masked: true, Length: 100}, ErrContinuation},
	}
	for _, c := range cases {
		d := NewDecoder(c.cfg)
		n, _, err := d.Next(AppendHeader(nil, c.hdr))
		if n != 0 || err != c.want {
			t.Errorf("%s: advance %d err %v, want %v", c.name, n, err, c.want)
		}
	}
}

func TestDecoderSize(t *testing.T) {
	if s := reflect.TypeFor[Decoder]().Size(); s > 32 {
		t.Fatalf("Decoder is %d bytes, want <= 32", s)
	}
	if hasPointers(reflect.TypeFor[Decoder]()) {
		t.Fatal("Decoder holds pointers")
	}
}

func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.String, reflect.Interface, reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return true
	case reflect.Array:
		return hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
	}
	return false
}

func TestInMessage(t *testing.T) {
	d := NewDecoder(DecoderConfig{})
	in := cat(cframe(false, OpText, "a"), cframe(true, OpPing, ""), cframe(true, OpContinuation, "b"))
	var states []bool
	for len(in) > 0 {
		n, _, err := d.Next(in)
		if err != nil || n == 0 {
			t.Fatalf("advance %d err %v", n, err)
		}
		states = append(states, d.InMessage())
		in = in[n:]
	}
	if want := []bool{true, true, false}; !reflect.DeepEqual(states, want) {
		t.Fatalf("InMessage after each frame %v, want %v", states, want)
	}
}
