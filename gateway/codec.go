package gateway

import (
	"strconv"
	"unicode/utf8"

	"github.com/huntgate/huntgate/state"
)

// opCode is a decoded request op. Unknown ops keep the decoding going so that
// the error reply can still echo the request's ref.
type opCode uint8

const (
	opNone opCode = iota
	opUnknown
	opJoin
	opLeave
	opDig
	opStatus
	opPing
	opRank
)

// maxRef is the longest ref (raw JSON token, quotes excluded) echoed back.
const maxRef = 64

// maxHuntID bounds a hunt id in a request; longer ids cannot name a hunt.
const maxHuntID = 128

// request is one decoded client request. Byte slices alias the message or the
// decoder's scratch buffer: they stay valid until the next decode on the same
// loop.
type request struct {
	op     opCode
	ref    []byte // raw JSON of ref (with quotes for a string); nil if absent
	hunt   []byte // decoded hunt id; nil if absent
	ts     []byte // raw JSON number of ts; nil if absent
	x, y   int64
	since  uint64
	epoch  uint64
	around uint64

	hasX, hasY, hasSince, hasEpoch, hasAround bool
}

// protoError is a request error with its stable wire code. Values are
// package-level so that answering a bad request does not allocate.
type protoError struct {
	code    string
	message string
}

func (e *protoError) Error() string { return "gateway: " + e.code + ": " + e.message }

// Request errors, by wire code.
var (
	errNotJSON      = &protoError{"bad_request", "message is not valid JSON"}
	errNotObject    = &protoError{"bad_request", "message must be a JSON object"}
	errNoOp         = &protoError{"bad_request", "missing op"}
	errOpType       = &protoError{"bad_request", "op must be a string"}
	errRefType      = &protoError{"bad_request", "ref must be a string or a number of at most 64 bytes"}
	errHuntType     = &protoError{"bad_request", "hunt must be a non-empty string"}
	errHuntLong     = &protoError{"bad_request", "hunt id too long"}
	errNoHunt       = &protoError{"bad_request", "missing hunt"}
	errCoord        = &protoError{"bad_request", "x and y must be integers"}
	errNoCoord      = &protoError{"bad_request", "missing x or y"}
	errSinceType    = &protoError{"bad_request", "since and epoch must be non-negative integers"}
	errTsType       = &protoError{"bad_request", "ts must be a number"}
	errAroundType   = &protoError{"bad_request", "around must be an integer from 0 to 100"}
	errNotRanked    = &protoError{"not_ranked", "the player has no points in this hunt"}
	errDupField     = &protoError{"bad_request", "a field is given more than once"}
	errUnknownOp    = &protoError{"unknown_op", "unknown op"}
	errUnknownHunt  = &protoError{"unknown_hunt", "no such hunt"}
	errForbidden    = &protoError{"forbidden", "the token does not allow this hunt"}
	errRateLimited  = &protoError{"rate_limited", "too many messages, slow down"}
	errNotJoined    = &protoError{"not_joined", "join the hunt first"}
	errLeftJoining  = &protoError{"not_joined", "left before the join completed"}
	errTooManyHunts = &protoError{"too_many_hunts", "too many hunts joined on this connection"}
	errEnded        = &protoError{"ended", "the hunt has ended"}
	errNotStarted   = &protoError{"not_started", "the hunt has not started yet"}
	errOutOfGrid    = &protoError{"out_of_grid", "x or y is outside the hunt's grid"}
	errInternal     = &protoError{"internal", "internal error"}
	errOverloaded   = &protoError{"overloaded", "server busy, retry"}
	errBinary       = &protoError{"bad_request", "requests are JSON text messages"}
)

// decodeRequest decodes msg into r. scratch is used for strings that carry
// escapes and is returned (possibly grown) for reuse. The whole message is
// validated first, so a malformed message never yields partial fields. On a
// field error the rest of the message is still read so that r.ref can be
// echoed; the first error found is returned.
func decodeRequest(msg []byte, r *request, scratch []byte) ([]byte, *protoError) {
	*r = request{}
	if !validJSON(msg) {
		return scratch, errNotJSON
	}
	i := skipWS(msg, 0)
	if i >= len(msg) || msg[i] != '{' {
		return scratch, errNotObject
	}
	i = skipWS(msg, i+1)
	var perr *protoError
	var seen field
	fail := func(e *protoError) {
		if perr == nil {
			perr = e
		}
	}
	if i < len(msg) && msg[i] == '}' {
		return scratch, errNoOp
	}
	for i < len(msg) {
		if msg[i] != '"' {
			return scratch, errNotJSON
		}
		kEnd, kEsc := scanString(msg, i)
		if kEnd < 0 {
			return scratch, errNotJSON
		}
		// Keys with escapes are rare; decode them so "\u006fp" still means op.
		key, ok := unescapeInto(&scratch, msg[i+1:kEnd-1], kEsc)
		if !ok {
			return scratch, errNotJSON
		}
		i = skipWS(msg, kEnd)
		if i >= len(msg) || msg[i] != ':' {
			return scratch, errNotJSON
		}
		i = skipWS(msg, i+1)
		vStart := i
		vEnd := skipValue(msg, i)
		if vEnd < 0 {
			return scratch, errNotJSON
		}
		val := msg[vStart:vEnd]
		f := fieldOf(key)
		if seen&f != 0 {
			// Parsers disagree on which copy wins (first, last, or an
			// error), so a field given twice has no meaning a client can
			// rely on. A ref given twice matches no single request.
			fail(errDupField)
			if f == fRef {
				r.ref = nil
			}
			f = 0
		}
		seen |= f
		switch f {
		case fOp:
			if val[0] != '"' {
				fail(errOpType)
				r.op = opUnknown
				break
			}
			s, ok := unescapeInto(&scratch, val[1:len(val)-1], hasEscape(val))
			if !ok {
				return scratch, errNotJSON
			}
			r.op = lookupOp(s)
		case fRef:
			switch {
			case val[0] == 'n': // null: no ref
			case val[0] == '"' && len(val)-2 <= maxRef:
				r.ref = val
			case (val[0] == '-' || (val[0] >= '0' && val[0] <= '9')) && len(val) <= maxRef:
				r.ref = val
			default:
				fail(errRefType)
			}
		case fHunt:
			if val[0] != '"' || len(val) <= 2 {
				fail(errHuntType)
				break
			}
			if len(val) > maxHuntID*6+2 {
				fail(errHuntLong)
				break
			}
			s, ok := unescapeInto(&scratch, val[1:len(val)-1], hasEscape(val))
			if !ok {
				return scratch, errNotJSON
			}
			r.hunt = s
		case fX:
			if r.x, r.hasX = parseInt(val); !r.hasX {
				fail(errCoord)
			}
		case fY:
			if r.y, r.hasY = parseInt(val); !r.hasY {
				fail(errCoord)
			}
		case fSince:
			if val[0] == 'n' { // null: absent, as for every optional field
				break
			}
			if r.since, r.hasSince = parseUint(val); !r.hasSince {
				fail(errSinceType)
			}
		case fEpoch:
			if val[0] == 'n' {
				break
			}
			if r.epoch, r.hasEpoch = parseUint(val); !r.hasEpoch {
				fail(errSinceType)
			}
		case fAround:
			if val[0] == 'n' {
				break
			}
			if r.around, r.hasAround = parseUint(val); !r.hasAround || r.around > state.MaxAround {
				fail(errAroundType)
			}
		case fTs:
			if val[0] == '-' || (val[0] >= '0' && val[0] <= '9') {
				r.ts = val
			} else if val[0] != 'n' {
				fail(errTsType)
			}
		}
		i = skipWS(msg, vEnd)
		if i >= len(msg) {
			return scratch, errNotJSON
		}
		if msg[i] == '}' {
			break
		}
		if msg[i] != ',' {
			return scratch, errNotJSON
		}
		i = skipWS(msg, i+1)
	}
	if perr != nil {
		return scratch, perr
	}
	switch r.op {
	case opNone:
		return scratch, errNoOp
	case opUnknown:
		return scratch, errUnknownOp
	case opJoin, opLeave, opStatus, opRank:
		if r.hunt == nil {
			return scratch, errNoHunt
		}
	case opDig:
		if r.hunt == nil {
			return scratch, errNoHunt
		}
		if !r.hasX || !r.hasY {
			return scratch, errNoCoord
		}
	}
	return scratch, nil
}

// unescapeInto returns the JSON string body s (quotes excluded) decoded: s
// itself when it has no escapes, else its decoded form appended to *scratch.
// ok is false for a malformed escape.
func unescapeInto(scratch *[]byte, s []byte, esc bool) (out []byte, ok bool) {
	if !esc {
		return s, true
	}
	start := len(*scratch)
	*scratch, ok = appendUnescaped(*scratch, s)
	return (*scratch)[start:], ok
}

// field is a request field the protocol defines, as a bit of a set; 0 is any
// other field, which is ignored.
type field uint16

const (
	fOp field = 1 << iota
	fRef
	fHunt
	fX
	fY
	fSince
	fEpoch
	fTs
	fAround
)

func fieldOf(key []byte) field {
	switch string(key) {
	case "op":
		return fOp
	case "ref":
		return fRef
	case "hunt":
		return fHunt
	case "x":
		return fX
	case "y":
		return fY
	case "since":
		return fSince
	case "epoch":
		return fEpoch
	case "ts":
		return fTs
	case "around":
		return fAround
	}
	return 0
}

func lookupOp(s []byte) opCode {
	switch string(s) {
	case "dig":
		return opDig
	case "ping":
		return opPing
	case "join":
		return opJoin
	case "leave":
		return opLeave
	case "status":
		return opStatus
	case "rank":
		return opRank
	}
	return opUnknown
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanString returns the index just past the closing quote of the string that
// starts at b[i] (a '"'), and whether it contains a backslash; -1 if unterminated.
func scanString(b []byte, i int) (int, bool) {
	esc := false
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			esc = true
			j++
		case '"':
			return j + 1, esc
		}
	}
	return -1, esc
}

func hasEscape(quoted []byte) bool {
	for _, c := range quoted {
		if c == '\\' {
			return true
		}
	}
	return false
}

// skipValue returns the index just past the JSON value starting at b[i], or -1.
// It relies on the message having passed validJSON and only tracks nesting.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		end, _ := scanString(b, i)
		return end
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, _ := scanString(b, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		j := i
		for j < len(b) {
			switch b[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return j
			}
			j++
		}
		return j
	}
}

// parseInt parses a JSON integer (no fraction, no exponent) that fits in 32 bits,
// which is far more than any grid needs.
func parseInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg = true
		b = b[1:]
	}
	v, ok := parseUint(b)
	if !ok || v > 1<<31 {
		return 0, false
	}
	if neg {
		return -int64(v), true
	}
	return int64(v), true
}

// parseUint parses a non-negative JSON integer that fits in a uint64.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// appendUnescaped appends the decoded form of the JSON string body s (quotes
// excluded). Unpaired surrogates become U+FFFD, like encoding/json.
func appendUnescaped(dst, s []byte) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		if i >= len(s) {
			return dst, false
		}
		switch s[i] {
		case '"', '\\', '/':
			dst = append(dst, s[i])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(s, i+1)
			if !ok {
				return dst, false
			}
			i += 4
			if r >= 0xD800 && r < 0xDC00 && i+2 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
				if r2, ok := hex4(s, i+3); ok && r2 >= 0xDC00 && r2 < 0xE000 {
					r = (r-0xD800)<<10 | (r2 - 0xDC00) + 0x10000
					i += 6
				}
			}
			if r >= 0xD800 && r < 0xE000 {
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
		default:
			return dst, false
		}
	}
	return dst, true
}

func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range s[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a quoted JSON string. Invalid UTF-8 becomes
// U+FFFD and U+2028/U+2029 are escaped so the output is also valid JavaScript.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func appendInt(dst []byte, v int64) []byte   { return strconv.AppendInt(dst, v, 10) }
func appendUint(dst []byte, v uint64) []byte { return strconv.AppendUint(dst, v, 10) }
