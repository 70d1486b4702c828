package framing

import (
	"bytes"
	"math/rand/v2"
	"sync"
	"testing"
	"unicode/utf8"
)

// Strict UTF-8 (RFC 6455 section 8.1, Autobahn TestSuite cases 6.4.x): a text
// message must fail as soon as the byte that makes it invalid is read, also
// when that byte arrives in the middle of a frame.

// autobahn64 are the payloads of Autobahn cases 6.4.1-6.4.4, in the pieces the
// suite sends them: 6.4.1 and 6.4.2 as three frames, 6.4.3 and 6.4.4 as three
// chops of one frame. The second piece makes the message invalid.
var autobahn64 = []struct {
	name   string
	pieces []string
}{
	{"6.4.1/6.4.3", []string{"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", "\xf4\x90\x80\x80", "\x65\x64\x69\x74\x65\x64"}},
	{"6.4.2/6.4.4", []string{"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4", "\x90", "\x80\x80\x65\x64\x69\x74\x65\x64"}},
}

// TestStrictUTF8Chops sends each 6.4.x payload as one masked frame in three
// chops (6.4.3, 6.4.4) and as three frames (6.4.1, 6.4.2): the Decoder must
// fail with 1007 on the second piece, before the third arrives.
func TestStrictUTF8Chops(t *testing.T) {
	for _, v := range autobahn64 {
		whole := v.pieces[0] + v.pieces[1] + v.pieces[2]
		wire := AppendMaskedFrame(nil, OpText, true, testMask, []byte(whole))
		hdr := len(wire) - len(whole)
		cut1 := hdr + len(v.pieces[0])
		cut2 := cut1 + len(v.pieces[1])
		chops := [][]byte{wire[:cut1], wire[cut1:cut2], wire[cut2:]}
		if got := feedUntilError(t, chops); got != 1 {
			t.Errorf("%s in chops of one frame: failed on piece %d, want 1", v.name, got)
		}
		var frames [][]byte
		for i, p := range v.pieces {
			op := OpText
			if i > 0 {
				op = OpContinuation
			}
			frames = append(frames, AppendMaskedFrame(nil, op, i == 2, testMask, []byte(p)))
		}
		if got := feedUntilError(t, frames); got != 1 {
			t.Errorf("%s in frames: failed on piece %d, want 1", v.name, got)
		}
	}
}

// feedUntilError feeds chunks the way conn does and returns the index of the
// chunk on which the Decoder reported 1007, or -1.
func feedUntilError(t *testing.T, chunks [][]byte) int {
	t.Helper()
	res := decodeChunks(DecoderConfig{MaxMessage: 1 << 20}, chunks)
	switch res.Code {
	case 0:
		return -1
	case StatusInvalidPayload:
		return res.Chunk
	}
	t.Fatalf("close code %d, want 1007", res.Code)
	return -1
}

var (
	prefixOnce sync.Once
	prefixes   map[string]bool // proper prefixes of valid multi-byte encodings
)

// extendable reports whether s is valid UTF-8 or becomes valid with more
// bytes: an oracle built from unicode/utf8 alone, independent of utf8Scan.
func extendable(s []byte) bool {
	prefixOnce.Do(func() {
		prefixes = map[string]bool{}
		var b [4]byte
		for r := rune(0x80); r <= utf8.MaxRune; r++ {
			if !utf8.ValidRune(r) {
				continue
			}
			n := utf8.EncodeRune(b[:], r)
			for k := 1; k < n; k++ {
				prefixes[string(b[:k])] = true
			}
		}
	})
	for t := 0; t <= 3 && t <= len(s); t++ {
		if utf8.Valid(s[:len(s)-t]) && (t == 0 || prefixes[string(s[len(s)-t:])]) {
			return true
		}
	}
	return false
}

// TestStrictUTF8Model feeds random text messages, cut into random frames,
// byte by byte and in random chunks: the Decoder must fail exactly on the
// chunk holding the first byte after which the message can no longer be
// valid UTF-8 (or on the message's last byte if it only ends cut), and
// otherwise deliver every payload intact.
func TestStrictUTF8Model(t *testing.T) {
	rng := rand.New(rand.NewPCG(64, 4))
	msgs := []string{}
	for _, v := range autobahn64 {
		msgs = append(msgs, v.pieces[0]+v.pieces[1]+v.pieces[2])
	}
	for range 400 {
		var b []byte
		for range rng.IntN(8) + 1 {
			s := utf8Samples[rng.IntN(len(utf8Samples))]
			if utf8.ValidString(s) || rng.IntN(5) == 0 {
				b = append(b, s...)
			}
		}
		msgs = append(msgs, string(b))
	}
	for _, m := range msgs {
		payload := []byte(m)
		// Cut the message into 1-3 frames, masked, and remember where each
		// payload byte lies on the wire.
		var wire []byte
		var pos []int
		cuts := []int{0}
		for range rng.IntN(3) {
			cuts = append(cuts, rng.IntN(len(payload)+1))
		}
		cuts = append(cuts, len(payload))
		for i := 1; i < len(cuts); i++ {
			if cuts[i] < cuts[i-1] {
				cuts[i] = cuts[i-1]
			}
		}
		for i := 1; i < len(cuts); i++ {
			op := OpText
			if i > 1 {
				op = OpContinuation
			}
			part := payload[cuts[i-1]:cuts[i]]
			f := AppendMaskedFrame(nil, op, i == len(cuts)-1, [4]byte{byte(i), 0x5a, 0xc3, 0x11}, part)
			base := len(wire) + len(f) - len(part)
			for k := range part {
				pos = append(pos, base+k)
			}
			wire = append(wire, f...)
		}
		// The wire byte whose arrival must fail the message, or -1.
		bad := -1
		for k := 1; k <= len(payload); k++ {
			if !extendable(payload[:k]) {
				bad = pos[k-1]
				break
			}
		}
		if bad < 0 && !utf8.Valid(payload) {
			bad = len(wire) - 1 // only cut at the end: known when the frame ends
		}
		for _, chunk := range []int{1, 2, 3, 7, 64, rng.IntN(40) + 1} {
			var chunks [][]byte
			for o := 0; o < len(wire); o += chunk {
				chunks = append(chunks, wire[o:min(o+chunk, len(wire))])
			}
			want := -1
			if bad >= 0 {
				want = bad / chunk
			}
			res := decodeChunks(DecoderConfig{MaxMessage: 1 << 20}, chunks)
			failed := -1
			if res.Code != 0 {
				failed = res.Chunk
			}
			if res.Code != 0 && res.Code != StatusInvalidPayload {
				t.Fatalf("%q: close code %d", m, res.Code)
			}
			var got []byte
			for _, f := range res.Frames {
				got = append(got, f.Payload...)
			}
			if failed != want {
				t.Fatalf("%q in chunks of %d (frames cut at %v): failed on chunk %d, want %d", m, chunk, cuts, failed, want)
			}
			if failed < 0 && !bytes.Equal(got, payload) {
				t.Fatalf("%q in chunks of %d: payload %q", m, chunk, got)
			}
		}
	}
}

// TestStrictUTF8SkipsCompressed: the prefix of a compressed text frame is
// deflate data, checked only after inflating, so a partial one is not
// validated (its bytes are not UTF-8) and stays masked.
func TestStrictUTF8SkipsCompressed(t *testing.T) {
	var df Deflater
	z := df.Deflate(nil, []byte("hello hello hello hello, compressed text"))
	wire := AppendMaskedFrame(nil, OpText, true, testMask, z)
	wire[0] |= 0x40 // RSV1
	d := NewDecoder(DecoderConfig{MaxMessage: 1 << 20, Deflate: true})
	buf := bytes.Clone(wire)
	for i := 1; i < len(buf); i++ {
		if n, _, err := d.Next(buf[:i]); n != 0 || err != nil {
			t.Fatalf("prefix %d: %d %v", i, n, err)
		}
	}
	if !bytes.Equal(buf, wire) {
		t.Fatal("a partial compressed frame was unmasked")
	}
	n, f, err := d.Next(buf)
	if err != nil || n != len(wire) || !f.Compressed || !bytes.Equal(f.Payload, z) {
		t.Fatalf("%d %v %+v", n, err, f.Header)
	}
}
