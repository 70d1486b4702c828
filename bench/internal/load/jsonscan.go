package load

import "hash/fnv"

// msg holds the fields of a server message that huntload looks at. Byte
// slices alias the scanned payload.
type msg struct {
	op, kind, code, hunt []byte
	ref, seq, replayed   int64
	epoch                uint64 // hash of the epoch's raw JSON, whatever its type
	reset, found         bool
	data                 []byte // raw JSON of "data"
}

// parseMsg scans the top level of a JSON object without building a tree or
// allocating: a receiving load generator sees every broadcast delivery, so
// this is its hottest path. ok is false for anything that is not an object.
func parseMsg(b []byte) (m msg, ok bool) {
	ok = scanObject(b, func(key, val []byte) {
		switch string(key) {
		case "op":
			m.op = unquote(val)
		case "kind":
			m.kind = unquote(val)
		case "code":
			m.code = unquote(val)
		case "hunt":
			m.hunt = unquote(val)
		case "ref":
			m.ref = atoi(unquote(val))
		case "seq":
			m.seq = atoi(val)
		case "replayed":
			m.replayed = atoi(val)
		case "epoch":
			h := fnv.New64a()
			_, _ = h.Write(val)
			m.epoch = h.Sum64()
		case "reset":
			m.reset = string(val) == "true"
		case "found":
			m.found = string(val) == "true"
		case "data":
			m.data = val
		}
	})
	return m, ok
}

// scanObject calls fn for every top-level key of the JSON object in b with
// the key (unquoted, escapes left as they are) and the raw value.
func scanObject(b []byte, fn func(key, val []byte)) bool {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i++
	for {
		i = skipWS(b, i)
		if i >= len(b) {
			return false
		}
		if b[i] == '}' {
			return true
		}
		if b[i] == ',' {
			i++
			continue
		}
		if b[i] != '"' {
			return false
		}
		ke := skipString(b, i)
		if ke < 0 {
			return false
		}
		key := b[i+1 : ke-1]
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipWS(b, i+1)
		ve := skipValue(b, i)
		if ve < 0 {
			return false
		}
		fn(key, b[i:ve])
		i = ve
	}
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

// atoi parses a decimal integer, ignoring anything after it (a fraction).
func atoi(v []byte) int64 {
	var n int64
	neg := false
	for i, c := range v {
		if i == 0 && c == '-' {
			neg = true
			continue
		}
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		return -n
	}
	return n
}
