package framing

// This file holds the exported types of package framing that conn, gateway
// and bench are written against; the functions live in the file of their
// concern. A change here changes every caller too.

// OpCode is a WebSocket frame opcode (RFC 6455 section 5.2).
type OpCode byte

// Opcodes defined by RFC 6455 section 11.8.
const (
	OpContinuation OpCode = 0x0
	OpText         OpCode = 0x1
	OpBinary       OpCode = 0x2
	OpClose        OpCode = 0x8
	OpPing         OpCode = 0x9
	OpPong         OpCode = 0xA
)

// IsControl reports whether op is a control opcode (RFC 6455 section 5.5).
func (op OpCode) IsControl() bool { return op&0x8 != 0 }

// StatusCode is a close status code (RFC 6455 section 7.4).
type StatusCode uint16

// Close codes used by the gateway (RFC 6455 section 7.4.1).
const (
	StatusNormal          StatusCode = 1000
	StatusGoingAway       StatusCode = 1001
	StatusProtocolError   StatusCode = 1002
	StatusUnsupported     StatusCode = 1003
	StatusNoStatus        StatusCode = 1005 // never sent on the wire
	StatusAbnormal        StatusCode = 1006 // never sent on the wire
	StatusInvalidPayload  StatusCode = 1007
	StatusPolicyViolation StatusCode = 1008
	StatusMessageTooBig   StatusCode = 1009
	StatusMandatoryExt    StatusCode = 1010
	StatusInternalError   StatusCode = 1011
)

// Role says which side of a connection a Decoder or encoder serves.
// A server expects masked frames and sends unmasked ones; a client the opposite.
type Role uint8

// Roles.
const (
	RoleServer Role = iota
	RoleClient
)

// DefaultMaxMessage is the maximum inbound message size of the game protocol.
const DefaultMaxMessage = 4096

// Header is a parsed frame header.
type Header struct {
	Fin    bool
	Rsv    byte // RSV1 = 0b100, RSV2 = 0b010, RSV3 = 0b001
	Op     OpCode
	Masked bool
	Mask   [4]byte
	Length int64
}

// Frame is one decoded frame plus the message-level facts the caller needs.
// Payload is already unmasked in place and aliases the buffer passed to
// Decoder.Next: it stays valid only until that buffer is reused.
type Frame struct {
	Header     Header
	Payload    []byte
	MsgOp      OpCode // Text or Binary for data frames (also on continuations); Header.Op for control frames
	First      bool   // first frame of a data message
	Final      bool   // last frame of a data message (always true for control frames)
	Compressed bool   // the message carries RSV1 (permessage-deflate); UTF-8 is then checked by the caller after inflating
}

// DecoderConfig configures a Decoder. The zero value is a server decoder with
// DefaultMaxMessage and no extension.
type DecoderConfig struct {
	Role       Role
	MaxMessage int  // 0 means DefaultMaxMessage
	Deflate    bool // permessage-deflate negotiated: RSV1 allowed on the first frame of a data message
}

// ProtocolError is the error Decoder.Next returns for a peer that broke the
// protocol; Code is the close code to send.
type ProtocolError struct {
	Code   StatusCode
	Reason string
}

func (e *ProtocolError) Error() string { return "framing: " + e.Reason }
