package redisengine

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/huntgate/huntgate/state"
)

// Digs that cannot claim anything are answered by the node (DigLocal).
// A hunt's treasures are all written by Create, and afterwards a cell only
// ever loses its treasure, never gains one: the cells that hold a treasure
// at any moment of an epoch are a superset of those that will hold one
// later in it. So once a node has read them, a dig on any other cell of an
// open hunt is a miss, with nothing to write, whatever happens elsewhere in
// the cluster; only digs on those cells need Redis. In the common shape of
// a hunt, a large grid with few treasures, almost every dig is such a miss,
// and it costs the node what a ping does instead of a script call.
//
// Why a miss answered from the copy is right even at the edges:
//   - The copy's state must be open. A hunt that ended in Redis but whose
//     ended update has not reached this node yet answers a miss rather than
//     ended; to the player that is the same order as a dig made just before
//     the end, since its only news of the end is the push this node has not
//     sent yet.
//   - The cells are kept with the epoch they were read in, and used only
//     while the copy has that epoch: a hunt created again under the same id,
//     or one that took a new epoch after Redis lost writes, reads them again.
//   - A Redis that lost writes and has not been caught yet (same epoch, seq
//     below what was seen) may hold treasures claimed before the loss again:
//     until the next script run catches it and the epoch changes, those
//     cells answer a miss here. Nothing acknowledged is lost by that; the
//     treasure is found after the epoch changes.

const (
	// maxLocalCells bounds the treasure cells a node keeps per hunt: a hunt
	// with more treasures sends every dig to Redis, as a hunt that dense
	// finds treasures often anyway, and reading them would cost Redis a
	// long HKEYS.
	maxLocalCells = 1 << 16
	// cellsRetry is how long after a failed read of the cells the next dig
	// may try again.
	cellsRetry = time.Second
)

// digCells are the cells of one epoch of a hunt that held a treasure when
// read, as y<<32|x, sorted; all says only Redis can answer (too many).
type digCells struct {
	epoch uint64
	w, h  int
	all   bool
	cells []uint64
}

// miss says whether a dig at x, y is a miss for sure.
func (c *digCells) miss(x, y int) bool {
	if c.all || x < 0 || y < 0 || x >= c.w || y >= c.h {
		return false // out of the grid: Redis's error answers it
	}
	_, found := slices.BinarySearch(c.cells, uint64(y)<<32|uint64(x))
	return !found
}

// DigLocal implements state.LocalDigger: a dig that cannot claim anything,
// answered from this node's copy of a hunt it watches, without blocking.
// The first dig of a hunt on a node starts reading the hunt's treasure
// cells in the background and goes to Redis, as do all digs until they
// are in.
func (e *Engine) DigLocal(hunt, player string, x, y int) (state.DigResult, bool) {
	if e.Ready() != nil {
		return state.DigResult{}, false
	}
	l := e.localOf(hunt)
	if l == nil {
		return state.DigResult{}, false
	}
	l.mu.Lock()
	open := l.ready && !l.stale && l.gen != 0 && l.st.State == state.StateOpen
	c, epoch := l.cells, l.st.Epoch
	load := open && (c == nil || c.epoch != epoch) && !l.cellsLoading && time.Since(l.cellsTried) >= cellsRetry
	if load {
		l.cellsLoading, l.cellsTried = true, time.Now()
	}
	l.mu.Unlock()
	if load {
		// Not counted in e.wg: this runs on the gateway's loops, which may
		// call it while Close waits. The read ends with e.ctx.
		go e.loadCells(hunt, l)
	}
	if !open || c == nil || c.epoch != epoch || !c.miss(x, y) {
		return state.DigResult{}, false
	}
	e.digsLocal.Add(1)
	return state.DigResult{}, true
}

// DigsLocal returns how many digs DigLocal answered.
func (e *Engine) DigsLocal() uint64 { return e.digsLocal.Load() }

// loadCells reads hunt's treasure cells with its epoch and grid
// (readCells) and keeps them in l.
func (e *Engine) loadCells(hunt string, l *localHunt) {
	c, err := e.readCells(hunt)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cellsLoading = false
	if err != nil {
		e.log.Debug().Err(err).Str("hunt", hunt).Msg("redisengine: reading the treasure cells")
		return
	}
	if c != nil {
		l.cells = c
	}
}

// cellsLua: KEYS meta, treasures; ARGV the most cells to return. Reply:
// nil if the hunt is gone, else {epoch, w, h} followed by the treasure
// cells' fields, or by a lone 0 when there are more than ARGV[1] of them.
// One script: the epoch and the cells are read at one moment, in one round
// trip.
var cellsLua = redis.NewScript(`
local m = redis.call('HMGET', KEYS[1], 'epoch', 'w', 'h')
if not m[1] then return false end
if redis.call('HLEN', KEYS[2]) > tonumber(ARGV[1]) then return {m[1], m[2], m[3], 0} end
local r = {m[1], m[2], m[3]}
for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do r[#r + 1] = f end
return r
`)

// readCells reads the treasure cells of hunt with its epoch and grid
// (cellsLua); nil, nil if the hunt has gone.
func (e *Engine) readCells(hunt string) (*digCells, error) {
	ctx, cancel := context.WithTimeout(e.ctx, readTimeout)
	defer cancel()
	k := e.keysOf(hunt)
	v, err := cellsLua.Run(ctx, e.rdb, []string{k.meta, k.treasures}, maxLocalCells).Slice()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c, ok := cellsHead(v[:min(3, len(v))])
	if !ok {
		return nil, errors.New("redisengine: bad cells reply")
	}
	if len(v) == 4 {
		// A lone integer: too many cells to keep, every dig goes to Redis.
		// (A hunt with one treasure left has its one field, a string, here.)
		if n, isInt := v[3].(int64); isInt && n == 0 {
			c.all = true
			return c, nil
		}
	}
	c.cells = make([]uint64, 0, len(v)-3)
	for _, f := range v[3:] {
		s, _ := f.(string)
		xs, ys, ok := strings.Cut(s, ",")
		x, err1 := strconv.ParseUint(xs, 10, 32)
		y, err2 := strconv.ParseUint(ys, 10, 32)
		if !ok || err1 != nil || err2 != nil {
			c.all, c.cells = true, nil // not a cell as Create writes them: leave it to Redis
			return c, nil
		}
		c.cells = append(c.cells, y<<32|x)
	}
	slices.Sort(c.cells)
	return c, nil
}

// cellsHead parses HMGET epoch w h; ok is false if the hunt is gone.
func cellsHead(v []any) (*digCells, bool) {
	if len(v) != 3 {
		return nil, false
	}
	var n [3]uint64
	for i, x := range v {
		s, ok := x.(string)
		if !ok {
			return nil, false
		}
		u, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, false
		}
		n[i] = u
	}
	return &digCells{epoch: n[0], w: int(n[1]), h: int(n[2])}, true
}
