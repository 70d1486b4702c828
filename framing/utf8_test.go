package framing

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// utf8Samples mixes ASCII runs of every length around the 8- and 16-byte
// steps with every kind of valid and invalid sequence.
var utf8Samples = []string{
	"", "a", "héllo", "€", "😀", "\U0010FFFF", "\uFFFD", "\u07FF", "\u0800", "\uD7FF", "\uE000",
	strings.Repeat("x", 7) + "é", strings.Repeat("x", 8) + "é", strings.Repeat("x", 15) + "€", strings.Repeat("x", 16) + "😀",
	strings.Repeat("x", 31) + "\xff", strings.Repeat("y", 24) + "\x80" + strings.Repeat("y", 9),
	"\xc0\x80", "\xc1\xbf", "\xe0\x9f\xbf", "\xed\xa0\x80", "\xed\xbf\xbf", "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80",
	"\xf5\x80\x80\x80", "\xff", "\xfe", "\x80", "\xbf", "\xc2", "\xe2\x82", "\xf0\x9f\x98", "\xc2A", "\xe2A\xac", "\xf0\x9fA\x80",
	"κόσμε", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
}

func TestValidUTF8(t *testing.T) {
	for _, s := range utf8Samples {
		if got, want := ValidUTF8([]byte(s)), utf8.ValidString(s); got != want {
			t.Errorf("ValidUTF8(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestUTF8Incremental splits text at every point (and random ones) and
// checks the fragment-by-fragment result against utf8.Valid on the whole.
func TestUTF8Incremental(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	inputs := append([]string(nil), utf8Samples...)
	for range 2000 {
		// Random concatenations of samples, so that errors and cuts land
		// anywhere relative to the fast path's words.
		var sb strings.Builder
		for range rng.IntN(6) + 1 {
			s := utf8Samples[rng.IntN(len(utf8Samples))]
			if utf8.ValidString(s) || rng.IntN(4) == 0 {
				sb.WriteString(s)
			}
		}
		inputs = append(inputs, sb.String())
	}
	for _, s := range inputs {
		want := utf8.ValidString(s)
		for cut := 0; cut <= len(s); cut++ {
			if got := feedAll(s[:cut], s[cut:]); got != want {
				t.Fatalf("%q cut at %d: %v, want %v", s, cut, got, want)
			}
		}
		// Three-way cuts.
		for range 5 {
			a := rng.IntN(len(s) + 1)
			b := a + rng.IntN(len(s)-a+1)
			if got := feedAll(s[:a], s[a:b], s[b:]); got != want {
				t.Fatalf("%q cut at %d,%d: %v, want %v", s, a, b, got, want)
			}
		}
	}
}

func feedAll(parts ...string) bool {
	var st utf8State
	for i, p := range parts {
		if !st.feed([]byte(p), i == len(parts)-1) {
			return false
		}
	}
	return true
}

// TestUTF8FailsEarly checks that a fragment that no continuation can repair
// fails at once, not at the end of the message.
func TestUTF8FailsEarly(t *testing.T) {
	for _, s := range []string{"\xff", "ok\x80", "\xc0", "\xe0\x80", "\xed\xa0", "\xf4\x90", "\xf5", "\xe2\x82A"} {
		var st utf8State
		if st.feed([]byte(s), false) {
			t.Errorf("%q accepted as a non-final fragment", s)
		}
	}
	for _, s := range []string{"\xc2", "\xe2\x82", "\xf0\x9f\x98", "a\xf4\x8f"} {
		var st utf8State
		if !st.feed([]byte(s), false) {
			t.Errorf("%q (valid prefix) refused as a non-final fragment", s)
		}
	}
}

func TestValidUTF8Allocs(t *testing.T) {
	b := []byte(strings.Repeat("héllo wörld ", 100))
	if n := testing.AllocsPerRun(100, func() {
		if !ValidUTF8(b) {
			t.Fatal("invalid")
		}
	}); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}
