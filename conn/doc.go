// Package conn is huntgate's transport core: event loops on Linux epoll that
// accept, upgrade and serve WebSocket connections without a goroutine or a
// net.Conn per connection.
//
// # Shape
//
// A Node runs N Loops. Each Loop owns one SO_REUSEPORT listening socket on
// the node's address (so the kernel spreads connections over the loops and
// over other processes on the same port), one epoll instance (level
// triggered), one eventfd inbox, a timer wheel and a slot table holding its
// connections. A client-only Node (Config.Addr "") has loops but no
// listeners and makes connections with Dial.
//
// # Ownership and lock order
//
// Only a loop touches its slots, its side arenas (handshake buffers,
// incomplete-frame tails, fragment assembly, outbound queues), its read and
// pass buffers and its timer wheel. Handler methods, functions given to
// Node.Post/PostAll and Loop.After callbacks run on the loop goroutine, and
// every Loop method must be called only from there. Other goroutines reach a
// loop only through Node.Post, Node.PostAll and Node.Dial, which push onto
// the loop's inbox.
//
// There is one lock per loop: the inbox mutex, held only to append or swap
// the queue (and for the single eventfd write a batch of posts causes). No
// other lock is taken while it is held, and the loop never holds it while
// running posted functions, so there is no lock order to get wrong.
//
// Atomic, readable from any goroutine: Stats counters (per loop), the
// node's count of open connection fds (the fd budget), the drain flag of
// PauseAccept, the inbox's armed flag and each loop's stop flag.
//
// # Handles and memory
//
// A Handle is loop (8 bits) | generation (24 bits) | slot index (32 bits).
// Freeing a slot bumps its generation, so a handle kept after OnClose is
// rejected with ErrStale even when the slot already serves another
// connection. epoll event data carries the slot index and generation, so an
// event finds its connection without an fd map, and an event for a closed
// connection is ignored.
//
// Slots hold no pointers, so the garbage collector never scans the slot
// table; an idle connection owns no read, write or handshake buffer. Frames
// are decoded in place from the loop's read buffer; only an incomplete tail
// is copied out.
//
// # Writes
//
// Output produced during a loop pass (by Handler callbacks, posted functions
// and timers) is flushed at the end of the pass with one writev per
// connection. Until then a connection's frames wait in the loop's flat
// pending array, chained per connection by index: a broadcast to thousands
// of connections allocates nothing per connection. Shared frames
// (framing.Prepared) are referenced, never copied; frames built by Write
// live in a per-loop pass buffer. Reliable shared frames go through the
// loop's broadcast log, and a connection's consecutive log entries are one
// pending item (a run), so a loop that finds many broadcasts at once holds
// an item per connection, not one per connection per broadcast; frames that
// do not form runs are bounded per pass (pendLimit: a Send past it flushes
// first). Only what the socket did not take moves
// into a per-connection queue (copying what lies in the pass buffer), and
// the connection waits for EPOLLOUT. Runs stay runs in a queue, so a
// connection behind a broadcast stream holds one queue item however many
// frames it is owed; the log keeps only the entries runs still need, at most
// about logMax (a run that would pin more is spilled into its queue as an
// item per frame). Queues are bounded; a connection that
// overflows or stops draining for WriteTimeout is closed with 1008 "slow".
// Pongs go through the same bounds, so a peer that pings without reading
// cannot grow its queue; output a Handler holds back for a connection is
// checked against them with CheckHeld.
//
// The flush writes connections with a reply (Write) or a control frame
// first; connections that got only Send/SendLatest frames follow within
// Config.FlushBudget, and the rest stay pending for the next pass, which
// polls without sleeping. A long broadcast thus never holds back the
// replies to requests read meanwhile, and each connection's frames keep
// their order.
package conn
