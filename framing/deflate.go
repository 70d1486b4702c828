package framing

import (
	"compress/flate"
	"errors"
	"io"
)

// permessage-deflate (RFC 7692) with no context takeover: every message is
// compressed and decompressed on its own, so Inflater and Deflater carry no
// history between messages and one of each can serve every connection of an
// event loop in turn.

// Errors returned by Inflater.Inflate.
var (
	// ErrInflateTooBig is a compressed message that inflates past the limit.
	ErrInflateTooBig = &ProtocolError{Code: StatusMessageTooBig, Reason: "inflated message too big"}
	// ErrInflateCorrupt is a compressed message that is not a valid DEFLATE
	// stream. RFC 7692 section 8.2.3 only says to fail the connection; 1007
	// says the payload is inconsistent with the message type.
	ErrInflateCorrupt = &ProtocolError{Code: StatusInvalidPayload, Reason: "invalid compressed payload"}
)

// inflateTail is appended to every compressed message before inflating:
// RFC 7692 section 7.2.2 "Append 4 octets of 0x00 0x00 0xff 0xff to the tail
// end of the payload of the message", followed by an empty final stored
// block so that the reader reaches a clean io.EOF.
const inflateTail = "\x00\x00\xff\xff\x01\x00\x00\xff\xff"

// Inflater decompresses permessage-deflate messages. The zero value is ready.
// It is not safe for concurrent use.
type Inflater struct {
	fr  io.ReadCloser // flate reader, created on first use and then Reset
	src tailReader
}

// tailReader reads a compressed payload and then inflateTail without copying
// the payload. It implements io.ByteReader so that flate does not wrap it in
// a bufio.Reader of its own.
type tailReader struct {
	p    []byte
	tail int // bytes of inflateTail consumed
}

func (r *tailReader) Read(b []byte) (int, error) {
	if len(r.p) > 0 {
		n := copy(b, r.p)
		r.p = r.p[n:]
		return n, nil
	}
	if r.tail == len(inflateTail) {
		return 0, io.EOF
	}
	n := copy(b, inflateTail[r.tail:])
	r.tail += n
	return n, nil
}

func (r *tailReader) ReadByte() (byte, error) {
	if len(r.p) > 0 {
		c := r.p[0]
		r.p = r.p[1:]
		return c, nil
	}
	if r.tail == len(inflateTail) {
		return 0, io.EOF
	}
	c := inflateTail[r.tail]
	r.tail++
	return c, nil
}

// Inflate appends the decompressed form of the message payload src to dst
// and returns the extended slice. It stops as soon as the output would pass
// max bytes and returns ErrInflateTooBig (1009), so a small deflate bomb
// never becomes a large allocation: at most max+1 bytes are inflated, and dst
// grows to about the limit, never to the inflated size.
// A corrupt stream returns ErrInflateCorrupt (1007).
func (i *Inflater) Inflate(dst, src []byte, max int) ([]byte, error) {
	i.src = tailReader{p: src}
	if i.fr == nil {
		i.fr = flate.NewReader(&i.src)
	} else if err := i.fr.(flate.Resetter).Reset(&i.src, nil); err != nil {
		return dst, ErrInflateCorrupt
	}
	start := len(dst)
	for {
		if len(dst) == cap(dst) {
			if len(dst)-start > max {
				return dst[:start], ErrInflateTooBig
			}
			dst = append(dst, 0)[:len(dst)]
		}
		// Never ask for more than max+1 bytes in total.
		room := cap(dst)
		if lim := start + max + 1; room > lim {
			room = lim
		}
		n, err := i.fr.Read(dst[len(dst):room])
		dst = dst[:len(dst)+n]
		if len(dst)-start > max {
			return dst[:start], ErrInflateTooBig
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst[:start], ErrInflateCorrupt
		}
	}
}

// Deflater compresses messages for permessage-deflate. The zero value is
// ready. It is not safe for concurrent use.
type Deflater struct {
	fw  *flate.Writer
	out appendWriter
}

type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

var errFlush = errors.New("framing: deflate flush failed")

// Deflate appends the compressed form of src to dst as a permessage-deflate
// payload (RFC 7692 section 7.2.1: compressed, flushed with an empty stored
// block whose trailing 0x00 0x00 0xff 0xff is removed) and returns the
// extended slice. Each call starts a fresh stream (no context takeover).
func (d *Deflater) Deflate(dst, src []byte) []byte {
	d.out.b = dst
	if d.fw == nil {
		// BestSpeed: the gateway compresses broadcast frames on the hot path.
		d.fw, _ = flate.NewWriter(&d.out, flate.BestSpeed)
	} else {
		d.fw.Reset(&d.out)
	}
	_, _ = d.fw.Write(src)
	_ = d.fw.Flush()
	out := d.out.b
	d.out.b = nil
	if n := len(out); n-len(dst) >= 4 && string(out[n-4:]) == "\x00\x00\xff\xff" {
		out = out[:n-4]
	}
	return out
}
