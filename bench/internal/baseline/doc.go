// Package baseline holds the comparison servers huntload is measured against:
// a goroutine-per-connection server on gorilla/websocket and a poller-based
// server on cloudwego/netpoll with gobwas/ws. Both serve the same two test
// endpoints as huntgate: /echo returns every text and binary message
// unchanged, /fanout sends every message it receives to every connection
// currently on /fanout, the sender included.
//
// They are written the way a competent team would write them with those
// libraries (encode a broadcast once, bounded per-connection queues), so that
// a ratio against them says something about the design, not about a straw man.
package baseline
