package conn

import (
	"errors"

	"github.com/huntgate/huntgate/framing"
)

// Errors returned by Loop methods that take a Handle.
var (
	// ErrStale is a handle whose connection is gone: its slot was freed and
	// may already serve another connection.
	ErrStale = errors.New("conn: stale handle")
	// ErrClosed is a connection that is closing: a close frame was sent or
	// received, so no more data may be sent on it.
	ErrClosed = errors.New("conn: connection closing")
	// ErrQueueFull is a send that overflowed the connection's outbound queue;
	// the connection is being closed with 1008 "slow".
	ErrQueueFull = errors.New("conn: outbound queue full")
	// ErrWrongLoop is a handle of another loop passed to this loop.
	ErrWrongLoop = errors.New("conn: handle belongs to another loop")
)

// Handle identifies a connection: loop id (8 bits) | generation (24 bits) |
// slot index (32 bits). A handle whose slot was freed (and maybe reused) is
// stale: every call with it returns ErrStale. The zero Handle is never valid.
type Handle uint64

const genMask = 1<<24 - 1

func makeHandle(loop int, gen, idx uint32) Handle {
	return Handle(uint64(loop)<<56 | uint64(gen&genMask)<<32 | uint64(idx))
}

// Loop returns the id of the loop that owns the connection.
func (h Handle) Loop() int { return int(h >> 56) }

// Index returns the slot index inside its loop. Indexes are dense and reused
// after a connection closes, so callers may key per-loop tables with them as
// long as they also drop the entry in OnClose.
func (h Handle) Index() uint32 { return uint32(h) }

func (h Handle) gen() uint32 { return uint32(h>>32) & genMask }

// Slot states.
const (
	stFree      uint8 = iota
	stHandshake       // server: collecting the request head
	stDialing         // client: non-blocking connect in progress
	stClientHS        // client: request sent, collecting the response head
	stOpen            // upgraded: frames flow
	stClosing         // we sent a close frame and wait for the peer's, or EOF
	stDead            // OnClose running or pending; the slot is about to be freed
)

// Slot flags.
const (
	fClient     uint16 = 1 << iota // client role: we mask, the peer does not
	fDeflate                       // permessage-deflate negotiated
	fNotify                        // OnOpen was called (or a dial began): OnClose is owed
	fArmedOut                      // EPOLLOUT is armed: the queue waits for the socket
	fDirty                         // in the loop's flush list for this pass
	fPingSent                      // idle ping sent, no traffic since
	fDrain                         // failed: discard input until EOF or timeout
	fCloseAfter                    // close the socket once the queue is flushed
	fSlow                          // closing because the peer does not read
	fUrgent                        // a reply or control frame is pending: flushed ahead of bulk output
	fDeferred                      // in the loop's list of bulk output left for the next pass
	fOffered                       // client: our request offered permessage-deflate
	fProxied                       // server: the PROXY header has been read
)

// slot is the per-connection state. It holds no pointers, so the slot table
// is never scanned by the garbage collector; rare, large things are indexes
// into the loop's side arenas (0 = none).
type slot struct {
	dec      framing.Decoder // 20 bytes
	fd       int32           // next to dec: together they fill 24 bytes
	lastRead int64           // loop clock (ns) of the last byte read
	stamp    int64           // accept/dial time, close-sent time
	blocked  int64           // loop clock when the queue last stopped draining; 0 = not blocked
	timerAt  int64           // due time of the live wheel entry; 0 = none
	gen      uint32
	tag      uint32 // application tag; the free list link while the slot is free
	maxMsg   uint32
	hs       uint32 // handshake arena
	tail     uint32 // incomplete frame bytes (buffer arena)
	frag     uint32 // fragmented message assembly (buffer arena)
	outq     uint32 // outbound queue arena
	phead    uint32 // first frame of this pass in the loop's pending array (index+1); 0 = none
	ptail    uint32 // last one
	pb       uint32 // pending bytes
	flags    uint16
	pn       uint16             // pending frames (kept below pendFramesMax)
	code     framing.StatusCode // close code we sent (stClosing)
	state    uint8
}

// arena is a free-listed table of rarely used per-connection things. Index 0
// is reserved so that a zero index in a slot means "none". Items live in
// fixed chunks, as slots do: growing never copies the table, so a burst in
// which every connection needs one (10,000 queues when a broadcast
// overloads every socket) leaves no garbage of doubled arrays and no unused
// half of one.
type arena[T any] struct {
	chunks []*[arenaChunk]T
	n      uint32 // items ever handed out, index 0 included
	free   []uint32
	reset  func(*T) // clears an item on release, keeping its capacity
	keep   int      // free items that keep their capacity; beyond, released items are zeroed
}

const (
	arenaBits  = 8
	arenaChunk = 1 << arenaBits
)

func (a *arena[T]) alloc() uint32 {
	if n := len(a.free); n > 0 {
		i := a.free[n-1]
		a.free = a.free[:n-1]
		return i
	}
	if a.n == 0 {
		a.n = 1 // index 0 is never handed out
	}
	if int(a.n) >= len(a.chunks)*arenaChunk {
		a.chunks = append(a.chunks, new([arenaChunk]T))
	}
	a.n++
	return a.n - 1
}

func (a *arena[T]) at(i uint32) *T { return &a.chunks[i>>arenaBits][i&(arenaChunk-1)] }

// len is the number of items that exist (index 0 and free ones included).
func (a *arena[T]) len() int { return int(a.n) }

func (a *arena[T]) release(i uint32) {
	if a.keep > 0 && len(a.free) >= a.keep {
		// After a burst (many handshakes at once), hold on to a few
		// buffers only: idle connections are meant to own none.
		var zero T
		*a.at(i) = zero
	} else if a.reset != nil {
		a.reset(a.at(i))
	}
	a.free = append(a.free, i)
}

// inUse counts allocated items.
func (a *arena[T]) inUse() int {
	if a.n == 0 {
		return 0
	}
	return int(a.n) - 1 - len(a.free)
}

// Slot table geometry: slots live in fixed chunks, so growing the table
// never copies it (no pause at 100k connections, no garbage twice its size)
// and its memory follows the connection count in 104 KiB steps (1,024 slots of 104 bytes).
const (
	chunkBits = 10
	chunkSize = 1 << chunkBits
)

// slots is a loop's slot table. The chunks hold no pointers: the garbage
// collector never scans them.
type slots struct {
	chunks []*[chunkSize]slot
	n      uint32 // slots ever handed out (the table's high-water mark)
	free   uint32 // head of the free list, index+1; 0 = empty
	used   int
}

// at returns slot i, which must be below len.
func (t *slots) at(i uint32) *slot { return &t.chunks[i>>chunkBits][i&(chunkSize-1)] }

// len is the number of slots that exist (free or not).
func (t *slots) len() int { return int(t.n) }

// alloc returns a fresh slot index; its generation is already bumped.
func (t *slots) alloc() uint32 {
	var i uint32
	if t.free != 0 {
		i = t.free - 1
		t.free = t.at(i).tag
	} else {
		if int(t.n) == len(t.chunks)*chunkSize {
			t.chunks = append(t.chunks, new([chunkSize]slot))
		}
		i = t.n
		t.n++
	}
	s := t.at(i)
	gen := s.gen + 1
	if gen&genMask == 0 {
		gen = 1
	}
	*s = slot{gen: gen & genMask, fd: -1}
	t.used++
	return i
}

// release frees slot i; handles to it become stale.
func (t *slots) release(i uint32) {
	s := t.at(i)
	gen := s.gen
	*s = slot{gen: gen, fd: -1, tag: t.free}
	t.free = i + 1
	t.used--
}

// lookup returns the live slot of h, or nil.
func (t *slots) lookup(h Handle) *slot {
	i := h.Index()
	if int(i) >= t.len() {
		return nil
	}
	s := t.at(i)
	if s.state == stFree || s.gen != h.gen() {
		return nil
	}
	return s
}
