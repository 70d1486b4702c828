package load

import "testing"

func TestParseMsg(t *testing.T) {
	m, ok := parseMsg([]byte(`{"op":"update","hunt":"h1","epoch":"e-7","seq":42,"kind":"event",` +
		`"data":{"seq":999,"t":123,"s":"x\"}"},"extra":[1,{"a":"]"}],"found":true}`))
	if !ok {
		t.Fatal("not parsed")
	}
	if string(m.op) != "update" || string(m.kind) != "event" || string(m.hunt) != "h1" || m.seq != 42 || !m.found {
		t.Fatalf("fields: %+v", m)
	}
	// A nested "seq" inside data must not leak into the top level.
	if string(m.data) != `{"seq":999,"t":123,"s":"x\"}"}` {
		t.Fatalf("data %s", m.data)
	}
	var tv int64
	if !scanObject(m.data, func(k, v []byte) {
		if string(k) == "t" {
			tv = atoi(v)
		}
	}) || tv != 123 {
		t.Fatalf("data.t = %d", tv)
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
