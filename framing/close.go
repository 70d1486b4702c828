package framing

import "encoding/binary"

// Errors for close frame payloads (RFC 6455 section 5.5.1 and 7.4).
var (
	// ErrCloseLength is a close payload of exactly one byte: "If there is a
	// body, the first two bytes of the body MUST be a 2-byte unsigned integer".
	ErrCloseLength = &ProtocolError{Code: StatusProtocolError, Reason: "close payload of 1 byte"}
	// ErrCloseCode is a close code that may not be sent on the wire.
	ErrCloseCode = &ProtocolError{Code: StatusProtocolError, Reason: "invalid close code"}
	// ErrCloseReason is a close reason that is not valid UTF-8.
	ErrCloseReason = &ProtocolError{Code: StatusInvalidPayload, Reason: "close reason is not valid UTF-8"}
)

// ValidCloseCode reports whether code may appear in a close frame: 1000-1003
// and 1007-1011 from RFC 6455 section 7.4.1, 1012-1014 (service restart, try
// again later, bad gateway) registered since in the IANA "WebSocket Close
// Code Number Registry" that section 11.7 creates, and the registered and
// private ranges 3000-4999 (section 7.4.2). 1004-1006 and 1015 are reserved
// and "MUST NOT be set as a status code in a Close control frame"; 1016-2999
// are unassigned.
func ValidCloseCode(code StatusCode) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// ClosePayload validates a received close payload and splits it. An empty
// payload yields StatusNoStatus: RFC 6455 section 7.1.5 says the close code
// is then "considered to be 1005". reason aliases p. err is a *ProtocolError.
func ClosePayload(p []byte) (code StatusCode, reason []byte, err error) {
	switch len(p) {
	case 0:
		return StatusNoStatus, nil, nil
	case 1:
		return 0, nil, ErrCloseLength
	}
	code = StatusCode(binary.BigEndian.Uint16(p))
	if !ValidCloseCode(code) {
		return code, nil, ErrCloseCode
	}
	reason = p[2:]
	if !ValidUTF8(reason) {
		return code, nil, ErrCloseReason
	}
	return code, reason, nil
}
