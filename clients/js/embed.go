// Package huntgatejs embeds the JavaScript SDK, huntgate.js, so that the
// gateway serves at /sdk/huntgate.js the very bytes of the npm package's
// module (go:embed cannot reach a file outside the embedding package's
// directory, hence this package next to the file).
package huntgatejs

import _ "embed"

//go:embed huntgate.js
var source []byte

// Source returns the bytes of huntgate.js. Callers must not modify them.
func Source() []byte { return source }
