package load

// msg holds the fields of a server message that huntload looks at. Byte
// slices alias the scanned payload.
type msg struct {
	op, kind, code, hunt []byte
	ref, seq, replayed   int64
	// ref2 is the number after a ':' in a string ref ("intended:written",
	// see gameScenario.digMsg); 0 without one.
	ref2         int64
	epoch        uint64 // hash of the epoch's raw JSON, whatever its type
	epochRaw     []byte // the epoch's raw JSON, to send back on a rejoin
	reset, found bool
	// Stamp fields inside an event's data (see admin.publish): the intended
	// send time (Unix ns), the message id and the rate step; id is -1 when
	// data carried no stamp.
	evT, evID, evStep int64
}

// Keys a message can carry, as bits of a "seen" mask.
const (
	kOp = 1 << iota
	kKind
	kEpoch
	kSeq
	kData
)

// parseMsg reads the top level of a JSON object without building a tree or
// allocating: a receiving load generator sees every broadcast delivery, so
// this is its hottest path. It does not validate what it skips, and for an
// update it stops as soon as it has what is measured (op, kind, epoch, seq
// and for an event the stamp inside data): the gateway's framing already
// checked the bytes, and the load generator must not be the bottleneck of
// the gateway it measures. ok is false when what was read is not an object.
func parseMsg(b []byte) (m msg, ok bool) {
	if m, ok := parseUpdateFast(b); ok {
		return m, true
	}
	m.evID = -1
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return m, false
	}
	i++
	seen := 0
	for {
		i = skipWS(b, i)
		if i >= len(b) {
			return m, false
		}
		switch b[i] {
		case '}':
			return m, true
		case ',':
			i++
			continue
		case '"':
		default:
			return m, false
		}
		ke := skipString(b, i)
		if ke < 0 {
			return m, false
		}
		key := b[i+1 : ke-1]
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return m, false
		}
		i = skipWS(b, i+1)
		ve := skipValue(b, i)
		if ve < 0 {
			return m, false
		}
		val := b[i:ve]
		i = ve
		switch string(key) {
		case "op":
			m.op = unquote(val)
			seen |= kOp
		case "kind":
			m.kind = unquote(val)
			seen |= kKind
		case "epoch":
			m.epochRaw = val
			m.epoch = fnv64a(val)
			seen |= kEpoch
		case "seq":
			m.seq, _ = atoiAt(val, 0)
			seen |= kSeq
		case "data":
			m.evT, m.evID, m.evStep = parseStamp(val)
			seen |= kData
		case "code":
			m.code = unquote(val)
		case "hunt":
			m.hunt = unquote(val)
		case "ref":
			r := unquote(val)
			var j int
			m.ref, j = atoiAt(r, 0)
			if j < len(r) && r[j] == ':' {
				m.ref2, _ = atoiAt(r, j+1)
			}
		case "replayed":
			m.replayed, _ = atoiAt(val, 0)
		case "reset":
			m.reset = string(val) == "true"
		case "found":
			m.found = string(val) == "true"
		}
		if seen&(kOp|kKind|kEpoch|kSeq) == kOp|kKind|kEpoch|kSeq && string(m.op) == "update" &&
			(seen&kData != 0 || string(m.kind) != "event") {
			// Everything measured is known; the rest (a claim's fields, a
			// leaderboard's top 10) is not looked at.
			return m, true
		}
	}
}

// updatePrefix is how the gateway starts every push; parseUpdateFast reads
// a push in the gateway's own field order, positionally.
const updatePrefix = `{"op":"update","hunt":"`

// parseUpdateFast reads an update laid out exactly as the gateway encodes it
// ({"op":"update","hunt":"..","epoch":E,"seq":N,"kind":"..", then the
// kind's fields), reading only up to what is measured. ok is false for any
// other layout, which parseMsg then reads key by key.
func parseUpdateFast(b []byte) (m msg, ok bool) {
	if len(b) < len(updatePrefix) || string(b[:len(updatePrefix)]) != updatePrefix {
		return m, false
	}
	i := skipString(b, len(updatePrefix)-1)
	if i < 0 {
		return m, false
	}
	m.op = b[2+5 : 2+5+6] // "update" inside the prefix
	m.hunt = b[len(updatePrefix) : i-1]
	i, ok = expect(b, i, `,"epoch":`)
	if !ok {
		return m, false
	}
	e := skipValue(b, i)
	if e < 0 {
		return m, false
	}
	m.epochRaw = b[i:e]
	m.epoch = fnv64a(m.epochRaw)
	if i, ok = expect(b, e, `,"seq":`); !ok {
		return m, false
	}
	m.seq, i = atoiAt(b, i)
	if i, ok = expect(b, i, `,"kind":"`); !ok {
		return m, false
	}
	k := i
	for i < len(b) && b[i] != '"' {
		i++
	}
	if i >= len(b) {
		return m, false
	}
	m.kind = b[k:i]
	m.evID = -1
	if string(m.kind) != "event" {
		return m, true
	}
	if i, ok = expect(b, i+1, `,"data":`); !ok {
		return m, false
	}
	m.evT, m.evID, m.evStep = parseStamp(b[i:])
	return m, true
}

// expect returns the index after lit if b holds lit at i.
func expect(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// atoiAt parses the decimal integer at b[i:] and returns it and the index
// after it.
func atoiAt(b []byte, i int) (int64, int) {
	var n int64
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		n = n*10 + int64(b[i]-'0')
		i++
	}
	if neg {
		n = -n
	}
	return n, i
}

// parseStamp reads t, i and s from an event's data object, stopping once it
// has all three; id is -1 if data is not a stamped object.
func parseStamp(b []byte) (t, id, step int64) {
	id = -1
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return 0, -1, 0
	}
	i++
	seen := 0
	for seen != 7 {
		i = skipWS(b, i)
		if i >= len(b) || b[i] == '}' {
			break
		}
		if b[i] == ',' {
			i++
			continue
		}
		if b[i] != '"' {
			return 0, -1, 0
		}
		ke := skipString(b, i)
		if ke < 0 {
			return 0, -1, 0
		}
		key := b[i+1 : ke-1]
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return 0, -1, 0
		}
		i = skipWS(b, i+1)
		if len(key) == 1 && (key[0] == 't' || key[0] == 'i' || key[0] == 's') && i < len(b) && (b[i] == '-' || b[i] >= '0' && b[i] <= '9') {
			var v int64
			v, i = atoiAt(b, i)
			switch key[0] {
			case 't':
				t, seen = v, seen|1
			case 'i':
				id, seen = v, seen|2
			default:
				step, seen = v, seen|4
			}
			continue
		}
		if i = skipValue(b, i); i < 0 {
			return 0, -1, 0
		}
	}
	if seen&3 != 3 {
		return 0, -1, 0
	}
	return t, id, step
}

// fnv64a is FNV-1a over b, inline so that hashing an epoch allocates nothing.
func fnv64a(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// skipValue returns the index after the JSON value starting at b[i], or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				e := skipString(b, j)
				if e < 0 {
					return -1
				}
				j = e - 1
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
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
}

func unquote(v []byte) []byte {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}
