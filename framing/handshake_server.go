package framing

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"sync"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
)

// Errors returned by RequestEnd and Upgrader.Upgrade.
var (
	// ErrRequestTooLarge is a request head with no end within the limit.
	ErrRequestTooLarge = errors.New("framing: handshake request too large")
	// ErrRefused is returned by Upgrade when Check refused the request; the
	// response holds the refusal status.
	ErrRefused = errors.New("framing: upgrade refused")
)

var headEnd = []byte("\r\n\r\n")

// RequestEnd returns the length of the HTTP request head at the start of b,
// through the blank line "\r\n\r\n", or 0 if b does not hold all of it yet.
// A head longer than max bytes is ErrRequestTooLarge, so a peer cannot make
// the caller buffer more than max bytes before the upgrade.
func RequestEnd(b []byte, max int) (int, error) {
	lim := b
	if len(lim) > max {
		lim = lim[:max]
	}
	if i := bytes.Index(lim, headEnd); i >= 0 {
		return i + 4, nil
	}
	if len(b) >= max {
		return 0, ErrRequestTooLarge
	}
	return 0, nil
}

// Request is what Upgrader.Check sees of an upgrade request. All slices are
// valid only during the Check call: copy what must outlive it. A missing
// header or an empty query is an empty slice.
type Request struct {
	Path, Query, Host, Origin, Authorization []byte
	// RemoteAddr is the client's address when the caller knows it: package
	// conn sets it before Check (the PROXY header's source, else the
	// socket's peer). The Upgrader itself leaves it zero.
	RemoteAddr netip.AddrPort
	// Deflate is true when the client offered permessage-deflate in a form
	// this side accepts (Upgrader.Deflate set, no context takeover). Check may
	// set it to false to decline the extension for this connection.
	Deflate bool
}

// Upgrader turns an HTTP upgrade request head into the response bytes,
// following RFC 6455 section 4.2.2 through gobwas/ws. It keeps no state
// between calls, so one Upgrader may serve many goroutines at once.
type Upgrader struct {
	// Deflate allows permessage-deflate (RFC 7692) when a client offers it;
	// false declines every offer. Accepted offers are answered with
	// server_no_context_takeover and client_no_context_takeover.
	Deflate bool
	// Check decides on a well-formed request: 0 accepts, any other value is
	// the HTTP status of the refusal (e.g. 401, 403; values outside 400-599
	// are sent as 403). nil accepts all.
	Check func(r *Request) int
}

// UpgradeResult is the outcome of a handshake.
type UpgradeResult struct {
	Deflate bool // permessage-deflate was negotiated
	Status  int  // HTTP status of the response: 101 on success
}

// Request fields kept by upgradeState, as indexes into field.
const (
	fieldPath = iota
	fieldQuery
	fieldHost
	fieldOrigin
	fieldAuthorization
	numFields
)

// upgradeState is the per-call working set of Upgrade. It is pooled, so a
// steady stream of upgrades reuses the parser buffers, callbacks and scratch
// space instead of allocating them per request.
type upgradeState struct {
	wsu     ws.Upgrader
	in      bytes.Reader
	out     appendWriter
	ext     wsflate.Extension
	req     Request
	check   func(r *Request) int
	deflate bool   // Upgrader.Deflate of the current call
	window  bool   // the accepted offer named server_max_window_bits (=15)
	refused int    // status returned by check, 0 if none
	scratch []byte // copies of the request fields, kept across calls
	head    []byte // a head rewritten by rewriteHead, kept across calls
	field   [numFields][2]int32
}

var upgradeStates = sync.Pool{New: func() any { return newUpgradeState() }}

func newUpgradeState() *upgradeState {
	s := &upgradeState{scratch: make([]byte, 0, 512)}
	// ServerMaxWindowBits 15 lets wsflate accept offers that name it;
	// negotiate declines those that ask for less.
	s.ext.Parameters = wsflate.Parameters{ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerMaxWindowBits: maxWindowBits}
	s.wsu = ws.Upgrader{
		OnRequest:       s.onRequest,
		OnHost:          s.onHost,
		OnHeader:        s.onHeader,
		Negotiate:       s.negotiate,
		OnBeforeUpgrade: s.onBeforeUpgrade,
	}
	return s
}

// keep copies b into scratch, as ws's line buffer is reused for the next
// header. Fields are recorded as offsets because scratch may still move as
// it grows; the Request slices are made just before Check.
func (s *upgradeState) keep(f int, b []byte) {
	start := len(s.scratch)
	s.scratch = append(s.scratch, b...)
	s.field[f] = [2]int32{int32(start), int32(len(s.scratch))}
}

func (s *upgradeState) get(f int) []byte {
	r := s.field[f]
	return s.scratch[r[0]:r[1]:r[1]]
}

func (s *upgradeState) onRequest(uri []byte) error {
	path, query := uri, []byte(nil)
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		path, query = uri[:i], uri[i+1:]
	}
	s.keep(fieldPath, path)
	s.keep(fieldQuery, query)
	return nil
}

func (s *upgradeState) onHost(host []byte) error {
	s.keep(fieldHost, host)
	return nil
}

func (s *upgradeState) onHeader(key, value []byte) error {
	// ws hands keys in canonical form ("Origin", "Authorization").
	switch string(key) {
	case "Origin":
		s.keep(fieldOrigin, value)
	case "Authorization":
		s.keep(fieldAuthorization, value)
	}
	return nil
}

// maxWindowBits is the LZ77 window of Go's compress/flate, which always
// compresses with 32 KiB: 2^15.
const maxWindowBits = 15

// negotiate evaluates permessage-deflate offers with wsflate but never lets
// ws write the answer: the extension header is written by WriteTo after
// Check, which may still decline it. A malformed offer is declined, not
// failed (RFC 7692 section 5: the server "MUST decline" such an offer). An
// offer with server_max_window_bits below 15 is declined, since our
// compressor cannot use a smaller window (RFC 7692 section 7.1.2.1: decline,
// or accept with a value no larger than offered); one with 15 is accepted
// and answered with server_max_window_bits=15. The next offer of the list,
// if any, is then considered.
func (s *upgradeState) negotiate(opt httphead.Option) (httphead.Option, error) {
	if !s.deflate {
		return httphead.Option{}, nil
	}
	if _, accepted := s.ext.Accepted(); !accepted && bytes.Equal(opt.Name, wsflate.ExtensionNameBytes) {
		var p wsflate.Parameters
		if p.Parse(opt) == nil && p.ServerMaxWindowBits != 0 && p.ServerMaxWindowBits != maxWindowBits {
			return httphead.Option{}, nil
		}
	}
	if _, err := s.ext.Negotiate(opt); err != nil {
		s.ext.Reset()
	}
	return httphead.Option{}, nil
}

func (s *upgradeState) onBeforeUpgrade() (ws.HandshakeHeader, error) {
	var p wsflate.Parameters
	p, s.req.Deflate = s.ext.Accepted()
	s.window = p.ServerMaxWindowBits == maxWindowBits
	s.req.Path = s.get(fieldPath)
	s.req.Query = s.get(fieldQuery)
	s.req.Host = s.get(fieldHost)
	s.req.Origin = s.get(fieldOrigin)
	s.req.Authorization = s.get(fieldAuthorization)
	if s.check != nil {
		if st := s.check(&s.req); st != 0 {
			s.refused = st
			return nil, rejection(st)
		}
	}
	return s, nil
}

// WriteTo writes the extension header of an accepted upgrade.
func (s *upgradeState) WriteTo(w io.Writer) (int64, error) {
	if !s.req.Deflate {
		return 0, nil
	}
	h := deflateHeader
	if s.window {
		h = deflateHeaderWindow
	}
	n, err := io.WriteString(w, h)
	return int64(n), err
}

func (s *upgradeState) Write(p []byte) (int, error) { return s.out.Write(p) }
func (s *upgradeState) Read(p []byte) (int, error)  { return s.in.Read(p) }

// Upgrade parses the request head (as delimited by RequestEnd) and appends
// the HTTP response to dst: "101 Switching Protocols" with
// Sec-WebSocket-Accept if the request is a valid RFC 6455 opening handshake
// and Check accepts it, else an error status with a short text body (400 for
// a malformed request, 405 for a method other than GET, 505 for a protocol
// other than HTTP/1.1, 426 for an unsupported Sec-WebSocket-Version, or
// Check's status). Beyond RFC 6455 section 4.2.1 it refuses with 400 what
// RFC 7230 section 3.2.4 forbids (whitespace before a colon, obsolete line
// folding, control bytes) and duplicate Host or Sec-WebSocket-Key fields,
// and it takes Upgrade and Connection as lists that may be split over
// several fields. err is nil only for a 101; the response is to be sent in
// every case. Besides growing dst when it lacks capacity, it allocates once
// per response inside gobwas/ws (the Sec-WebSocket-Accept value, or the
// formatted status code of a refusal).
func (u *Upgrader) Upgrade(dst, head []byte) (resp []byte, res UpgradeResult, err error) {
	verdict := checkHead(head)
	if verdict == headBad {
		resp = append(dst, badRequest...)
		return resp, UpgradeResult{Status: http.StatusBadRequest}, ws.ErrMalformedRequest
	}
	s := upgradeStates.Get().(*upgradeState)
	if verdict == headRewrite {
		s.head = rewriteHead(s.head[:0], head)
		head = s.head
	}
	s.in.Reset(head)
	s.out.b = dst
	s.check = u.Check
	s.deflate = u.Deflate
	_, err = s.wsu.Upgrade(s)
	resp = s.out.b
	if len(resp) == len(dst) {
		// ws stops without answering when it cannot read a request line or
		// a header line at all.
		resp = append(resp, badRequest...)
	}
	res.Status = responseStatus(resp[len(dst):])
	if err == nil {
		if res.Status == http.StatusSwitchingProtocols {
			res.Deflate = s.req.Deflate
		} else {
			err = ErrRefused
		}
	} else if s.refused != 0 {
		err = ErrRefused
	}
	*s = upgradeState{wsu: s.wsu, ext: s.ext, scratch: s.scratch[:0], head: s.head[:0]}
	s.ext.Reset()
	if cap(s.scratch) <= 64<<10 && cap(s.head) <= 64<<10 {
		upgradeStates.Put(s)
	}
	return resp, res, err
}

const badRequest = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 11\r\n\r\nbad request"

// responseStatus reads the status code of an HTTP/1.1 response head.
func responseStatus(b []byte) int {
	if len(b) < 12 || string(b[:9]) != "HTTP/1.1 " {
		return 0
	}
	st := 0
	for _, c := range b[9:12] {
		if c < '0' || c > '9' {
			return 0
		}
		st = st*10 + int(c-'0')
	}
	return st
}

// rejections caches the ws rejection errors for common statuses, so that a
// refusal costs no allocation of its own beyond the one inside ws.
var rejections = func() map[int]error {
	m := make(map[int]error)
	for _, st := range []int{400, 401, 403, 404, 405, 408, 409, 410, 426, 429, 500, 501, 503} {
		m[st] = newRejection(st)
	}
	return m
}()

func newRejection(st int) error {
	reason := http.StatusText(st)
	if reason == "" {
		reason = "status " + strconv.Itoa(st)
	}
	return ws.RejectConnectionError(ws.RejectionStatus(st), ws.RejectionReason(reason))
}

func rejection(st int) error {
	if st < 400 || st > 599 {
		// Anything else would not be a refusal the client understands.
		st = http.StatusForbidden
	}
	if err, ok := rejections[st]; ok {
		return err
	}
	return newRejection(st)
}
