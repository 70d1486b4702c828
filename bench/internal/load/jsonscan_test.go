package load

import "testing"

func TestParseMsg(t *testing.T) {
	m, ok := parseMsg([]byte(`{"op":"update","hunt":"h1","epoch":"e-7","seq":42,"kind":"event",` +
		`"data":{"seq":999,"t":123,"s":"x\"}"},"extra":[1,{"a":"]"}]}`))
	if !ok {
		t.Fatal("not parsed")
	}
	if string(m.op) != "update" || string(m.kind) != "event" || string(m.hunt) != "h1" || m.seq != 42 {
		t.Fatalf("fields: %+v", m)
	}
	// A nested "seq" inside data must not leak into the top level, and a
	// data object without the id is not a stamp.
	if m.evID != -1 {
		t.Fatalf("stamp from unstamped data: %+v", m)
	}
	if tv, id, _ := parseStamp([]byte(`{"seq":999,"t":123,"s":"x\"}","i":4}`)); tv != 123 || id != 4 {
		t.Fatalf("data.t = %d, id %d", tv, id)
	}
	a, _ := parseMsg([]byte(`{"epoch":"e-7"}`))
	b, _ := parseMsg([]byte(`{"epoch":"e-8"}`))
	if a.epoch == b.epoch || a.epoch != m.epoch {
		t.Fatal("epoch hashes do not tell epochs apart")
	}
	r, _ := parseMsg([]byte(` { "op" : "joined" , "ref" : "-17", "reset" : true , "replayed": 3 } `))
	if r.ref != -17 || !r.reset || r.replayed != 3 || string(r.op) != "joined" {
		t.Fatalf("spaces/quoted ref: %+v", r)
	}
	for _, bad := range []string{``, `[]`, `{"a"}`, `{"a":"unterminated}`, `{"a":{"b":1}`, `{"a":}`} {
		if _, ok := parseMsg([]byte(bad)); ok {
			t.Errorf("accepted %q", bad)
		}
	}
}

func BenchmarkParseMsg(b *testing.B) {
	p := []byte(`{"op":"update","hunt":"load-0","epoch":"1a2b","seq":12345,"kind":"claimed","treasure":"t17","player":"p42","points":50}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if m, ok := parseMsg(p); !ok || m.seq != 12345 {
			b.Fatal("parse")
		}
	}
}

func TestParseMsgStopsEarly(t *testing.T) {
	// Once op, kind, epoch, seq and the event stamp are known the rest is
	// not read, so a broken tail does not matter (framing checked it).
	m, ok := parseMsg([]byte(`{"op":"update","hunt":"h","epoch":7,"seq":3,"kind":"event","data":{"t":11,"x":[1,2],"i":5,"s":2},"junk`))
	if !ok || m.evT != 11 || m.evID != 5 || m.evStep != 2 || m.seq != 3 || string(m.epochRaw) != "7" {
		t.Fatalf("event: ok %v %+v", ok, m)
	}
	m, ok = parseMsg([]byte(`{"op":"update","hunt":"h","epoch":7,"seq":4,"kind":"leaderboard","top":[{"player":"p1",`))
	if !ok || string(m.kind) != "leaderboard" || m.seq != 4 {
		t.Fatalf("leaderboard: ok %v %+v", ok, m)
	}
	// Other field orders still work.
	m, ok = parseMsg([]byte(`{"data":{"s":1,"i":9,"t":99},"kind":"event","seq":8,"epoch":"e","op":"update"}`))
	if !ok || m.evT != 99 || m.evID != 9 || m.evStep != 1 || m.seq != 8 {
		t.Fatalf("reordered: ok %v %+v", ok, m)
	}
	// An event whose data is not a stamp is not a delivery to account.
	m, _ = parseMsg([]byte(`{"op":"update","epoch":1,"seq":1,"kind":"event","data":[1,2]}`))
	if m.evID != -1 {
		t.Fatalf("unstamped data gave id %d", m.evID)
	}
	// A reply is read to its end.
	m, ok = parseMsg([]byte(`{"op":"dug","ref":"12:15","found":true,"points":5}`))
	if !ok || !m.found || m.ref != 12 || m.ref2 != 15 {
		t.Fatalf("dug: ok %v %+v", ok, m)
	}
}

func BenchmarkParseEvent(b *testing.B) {
	p := []byte(`{"op":"update","hunt":"load-0","epoch":1763800000,"seq":12345,"kind":"event","data":{"t":1763800000123456789,"i":1048577,"s":1}}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if m, ok := parseMsg(p); !ok || m.evID != 1048577 {
			b.Fatal("parse")
		}
	}
}
