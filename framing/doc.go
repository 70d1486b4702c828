// Package framing is the WebSocket (RFC 6455) codec of huntgate, over byte
// slices and without I/O: it never reads from or writes to a connection, never
// blocks, and does not allocate on the per-frame path.
//
// # Decoding
//
// A Decoder is a push decoder shaped like bufio.SplitFunc. The event loop
// hands Decoder.Next whatever bytes have arrived; the answer is "need more"
// (advance == 0, err == nil), one complete frame, or a *ProtocolError whose
// Code is the close code to send. The caller keeps unconsumed bytes and calls
// again with new ones appended. Next returns a frame only when its header and
// whole payload are present; the payload is unmasked in place and aliases the
// caller's buffer, so it is valid until that buffer is reused.
//
// A Decoder is 20 bytes with no pointers, so it can sit in a connection slot
// that the garbage collector never scans. It carries message-level state
// between frames: the opcode, cumulative length and compression bit of the
// current fragmented message, and up to 3 bytes of a UTF-8 code point cut by
// a fragment boundary; and, for an incomplete text frame, how much of its
// payload was already unmasked and validated in the caller's buffer.
//
// Where RFC 6455 decides, the Decoder follows it:
//
//   - Section 5.2, payload length: "the minimal number of bytes MUST be used
//     to encode the length" and a 64-bit length's "most significant bit MUST
//     be 0". This package enforces both: a 16-bit length below 126 or a
//     64-bit length below 65536 is refused with 1002, like a 64-bit length
//     with the top bit set.
//   - Section 5.2, RSV1-3: "MUST be 0 unless an extension is negotiated that
//     defines meanings for non-zero values". Only RSV1 is ever allowed, with
//     permessage-deflate negotiated (DecoderConfig.Deflate), and only on the
//     first frame of a data message (RFC 7692 section 6). Otherwise 1002.
//   - Section 5.2, opcodes 0x3-0x7 and 0xB-0xF "are reserved": 1002.
//   - Section 5.1: "The server MUST close the connection upon receiving a
//     frame that is not masked" and "A client MUST close a connection if it
//     detects a masked frame": 1002, by DecoderConfig.Role.
//   - Section 5.5: "All control frames MUST have a payload length of 125
//     bytes or less and MUST NOT be fragmented": 1002. Section 5.4: "Control
//     frames MAY be injected in the middle of a fragmented message", so
//     pings, pongs and closes are accepted between fragments.
//   - Section 5.4: a continuation frame with no message in progress, or a new
//     text or binary frame before the current message's final fragment: 1002.
//   - Section 5.5.1 and 7.4: a close payload is empty or holds a 2-byte code
//     and a UTF-8 reason. A 1-byte payload or a code outside 1000-1003,
//     1007-1014 (1012-1014 are IANA-registered) and 3000-4999 is 1002
//     (1004-1006 and 1015 "MUST NOT be set as a status code in a Close
//     control frame"); an invalid reason is 1007.
//   - Section 8.1: text must be valid UTF-8 or the endpoint "MUST _Fail the
//     WebSocket Connection_" (1007). Validation is incremental: each
//     fragment is checked as it arrives, and so is the received part of a
//     text frame that is still incomplete, so the error is reported as soon
//     as the byte that makes it certain has been read, not at the end of the
//     frame or message (Autobahn's strict 6.4.x). Each byte is unmasked and
//     validated once, and a frame that arrives whole does no extra work.
//     Compressed text is checked by the caller after inflating.
//   - Section 10.4 allows limits on frame and message size; exceeding
//     DecoderConfig.MaxMessage (default DefaultMaxMessage) is 1009. The
//     length is counted across fragments and the decision is made from the
//     frame header, before the payload is buffered.
//
// # Encoding
//
// AppendFrame and AppendMaskedFrame write server (unmasked) and client
// (masked, section 5.3) frames into caller-owned buffers. PingFrame,
// PongFrame and CloseFrame are precompiled. Prepare encodes a message once,
// and compresses it once if asked, into an immutable Prepared that any
// number of connections can send.
//
// # Handshake
//
// RequestEnd finds the end of a request head in a bounded buffer; an
// Upgrader runs gobwas/ws's Upgrader over it and appends the response (101,
// or an HTTP error with a short body) to a caller-owned buffer. The path,
// query, Host, Origin and Authorization reach Upgrader.Check without a
// per-header allocation. AppendClientRequest and CheckClientResponse are
// the client side (section 4.1), including the Sec-WebSocket-Accept check.
//
// # permessage-deflate
//
// RFC 7692 is supported without context takeover in both directions, which
// is the only form negotiated. Inflater bounds its output by a maximum (a
// deflate bomb is a 1009, never a large allocation); Deflater compresses one
// message at a time.
package framing
