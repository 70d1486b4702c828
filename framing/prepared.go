package framing

import "sync"

// Prepared is an immutable server frame encoded once and shared by many
// connections, so a broadcast costs one encoding (and at most one
// compression) however many connections receive it. Its bytes must never be
// modified; they stay valid for as long as the Prepared is referenced.
type Prepared struct {
	op       OpCode
	size     int    // payload length before compression
	plain    []byte // unmasked frame, no RSV bits
	deflated []byte // unmasked frame with RSV1 and a compressed payload; nil if not worth it
}

var deflaters = sync.Pool{New: func() any { return new(Deflater) }}

// Prepare encodes payload as one unfragmented server frame with opcode op.
// If compress is true it also prepares a permessage-deflate form, kept only
// if it is smaller than the plain one: RFC 7692 lets a sender leave any
// message uncompressed. payload is copied and may be reused on return.
func Prepare(op OpCode, payload []byte, compress bool) *Prepared {
	p := &Prepared{op: op, size: len(payload)}
	p.plain = AppendFrame(make([]byte, 0, HeaderSize(Header{Length: int64(len(payload))})+len(payload)), op, true, payload)
	if compress && !op.IsControl() {
		d := deflaters.Get().(*Deflater)
		buf := make([]byte, MaxHeaderSize, MaxHeaderSize+len(payload)/2+16)
		buf = d.Deflate(buf, payload)
		deflaters.Put(d)
		z := buf[MaxHeaderSize:]
		if len(z) < len(payload) {
			h := AppendHeader(make([]byte, 0, MaxHeaderSize), Header{Fin: true, Rsv: rsv1, Op: op, Length: int64(len(z))})
			start := MaxHeaderSize - len(h)
			copy(buf[start:], h)
			p.deflated = buf[start:]
		}
	}
	return p
}

// Bytes returns the frame's wire bytes: the compressed form if deflate is
// true (the connection negotiated permessage-deflate) and one was prepared,
// else the plain form. The result is shared: never modify it.
func (p *Prepared) Bytes(deflate bool) []byte {
	if deflate && p.deflated != nil {
		return p.deflated
	}
	return p.plain
}

// Op returns the frame's opcode.
func (p *Prepared) Op() OpCode { return p.op }

// Len returns the payload length before compression.
func (p *Prepared) Len() int { return p.size }

// Compressed reports whether a compressed form was prepared.
func (p *Prepared) Compressed() bool { return p.deflated != nil }
