package state

import (
	"context"
	"errors"
)

// Errors the engines return; callers branch on them with errors.Is.
var (
	ErrExists      = errors.New("state: hunt exists")
	ErrUnknownHunt = errors.New("state: unknown hunt")
	ErrEnded       = errors.New("state: hunt ended")
	ErrOutOfGrid   = errors.New("state: cell out of grid")
	ErrClosed      = errors.New("state: engine closed")
	// ErrNotStarted is a dig in a scheduled hunt before its start.
	ErrNotStarted = errors.New("state: hunt not started")
)

// Engine is what the gateway talks to: the hunts of a node (memory) or of a
// cluster (Redis). Implementations are safe for concurrent use.
//
// The interface is shaped so that a shared-store engine fits it unchanged:
// every mutating call is one atomic step on one hunt (a Lua script on Redis:
// claim the cell, bump the hunt's seq, update the sorted-set leaderboard,
// append to the history stream, publish), results come back by value, and
// updates reach the node only through the sink, so an update caused on
// another node arrives the same way as one caused here. The seq and epoch
// of a hunt belong to the engine, never to the gateway.
type Engine interface {
	// Create makes a hunt from s (validated; ErrBadSpec, ErrExists).
	Create(ctx context.Context, s Spec) (Status, error)
	// Join counts one more connected player in the hunt and returns its
	// status. Idempotence per player is the caller's job: call it once per
	// connection that joins, and Leave once when that connection leaves.
	Join(ctx context.Context, hunt, player string) (Status, error)
	// Leave counts one player less (never below zero). An engine whose
	// calls block (Redis) may answer nil for a hunt it counts nobody in,
	// unknown hunts included, rather than ask its store.
	Leave(ctx context.Context, hunt, player string) error
	// Dig digs (x, y) for player. A treasure is claimed exactly once: of two
	// concurrent digs on its cell one is Found. A claim emits a claimed
	// update (next seq) and then a leaderboard update (same seq).
	// ErrUnknownHunt, ErrEnded (checked first), ErrOutOfGrid.
	Dig(ctx context.Context, hunt, player string, x, y int) (DigResult, error)
	// Status returns a snapshot of the hunt.
	Status(ctx context.Context, hunt string) (Status, error)
	// Publish emits an event update whose Data is data unchanged (the
	// engine keeps its own copy) and returns its seq. ErrEnded after End.
	Publish(ctx context.Context, hunt string, data []byte) (seq uint64, err error)
	// End ends the hunt and emits an ended update with the final top;
	// ErrEnded if it had ended already.
	End(ctx context.Context, hunt string) (Status, error)
	// History returns the reliable updates with seq > since, in order, if
	// epoch matches and all of them are still held; ok=false means the
	// caller must reset. since equal to the current seq is ok with nothing
	// to replay; since beyond it is not ok. The returned slice is the
	// caller's.
	History(ctx context.Context, hunt string, epoch, since uint64) (ups []Update, ok bool, err error)
	// Hunts lists the ids of the hunts, sorted.
	Hunts(ctx context.Context) ([]string, error)
	// Subscribe registers the sink that receives every update of the hunts
	// this node watches, in seq order per hunt (a later call replaces the
	// sink). The sink must not block and must not call back into the engine
	// (the memory engine calls it with the hunt locked). Updates are values;
	// the slices in them are shared and read-only.
	Subscribe(sink func(Update))
	// Watch and Unwatch say which hunts this node has players in, so that a
	// cluster engine subscribes to those hunts' channels only. Calls nest:
	// a hunt is watched while Watch calls outnumber Unwatch calls.
	Watch(hunt string)
	Unwatch(hunt string)
	// Inline reports whether calls are cheap and never block (memory engine)
	// so the gateway may make them on an event loop; false (Redis) means the
	// gateway makes them off-loop and posts the results back.
	Inline() bool
	// Close releases the engine; later calls return ErrClosed.
	Close() error
}

// LocalJoiner is an optional interface of a blocking engine (Inline false)
// that keeps, on its node, a copy of each hunt the node watches (status and
// recent reliable updates, kept current by the update stream), so that the
// common join costs no round trip to the shared store. The gateway finds it
// by type assertion. Such an engine also makes Leave of a hunt joined on
// this node without waiting on the store (the counts are sent in batches),
// so the gateway calls Leave on its event loops.
type LocalJoiner interface {
	// JoinLocal is Join (and, with resume, History(epoch, since)) answered
	// from the node's copy, without blocking, for a hunt the caller has
	// already Watched. The status is the copy's, which may trail the store
	// by the updates still on their way to this node's sink: every update
	// with a seq above st.Seq reaches the sink after the call. replay says
	// that ups are all the reliable updates after since (resume only). ok is
	// false, and nothing is counted, when only the store can answer: no copy
	// in step, the store unreachable, or a since the copy cannot vouch for.
	JoinLocal(hunt, player string, resume bool, epoch, since uint64) (st Status, ups []Update, replay, ok bool)
	// AwaitLocal waits (bounded) until the copy of a watched hunt is in
	// step and reports whether it is, so that the first joins of a hunt on
	// a node share one store read instead of each making their own.
	AwaitLocal(ctx context.Context, hunt string) bool
}

// LocalDigger is an optional interface of an engine that keeps a copy of a
// hunt on the node (see LocalJoiner) and can tell from it that a dig
// cannot claim anything: a cell of an open hunt where no treasure lies. The
// gateway finds it by type assertion and asks it on its event loops first.
type LocalDigger interface {
	// DigLocal answers Dig for such a dig (a miss, DigResult{}), without
	// blocking and without the store, for a hunt the caller has already
	// Watched; ok is false, and the caller must call Dig, whenever only the
	// store can answer.
	DigLocal(hunt, player string, x, y int) (res DigResult, ok bool)
}

// Readier is an optional interface of an engine that depends on something
// that can become unreachable (Redis): Ready returns nil when the engine
// can serve, else why not. The gateway's /readyz follows it.
type Readier interface {
	Ready() error
}

// NodeInfo describes one live node of a cluster engine. An Engine that
// spans nodes may list them with an optional method
// Nodes(ctx) ([]NodeInfo, error), which callers find by type assertion; the
// memory engine, one node on its own, has none.
type NodeInfo struct {
	ID   string // the node's id
	Self bool   // the node is the one asking
	// Conns is the node's open connections as of its last heartbeat, when
	// Reported (the node's gateway gave its engine a load function).
	Conns    int64
	Reported bool
}

var errUnknownOp = errors.New("state: unknown command")
