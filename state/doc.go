// Package state holds the hunts: grids with treasures, leaderboards, the
// per-hunt sequence of updates and the history kept for resume. It has no
// network code; the gateway talks to it through Engine.
//
// # Layers
//
//   - Hunt (rules.go) is the pure game: Apply(command) updates the hunt and
//     returns the updates it causes, with no I/O, no clock and no locks.
//   - Leaderboard (leaderboard.go) is an order-statistic B+tree: O(log n)
//     Add and Rank, top-k from the first leaves, ties to whoever reached the
//     score first. A skip list with span counts was measured too: at 10^6
//     players a search made some 26 dependent hops through memory against
//     four node visits for the tree, and Add and Rank were 2-3 times slower.
//   - History (history.go) is a ring of the last reliable updates of a hunt,
//     bounded by count and age.
//   - Memory (memory.go) is the embedded Engine: a hunt table, a mutex per
//     hunt, and a sink that receives every update in seq order per hunt.
//
// # Seq and epoch
//
// Every reliable update (claimed, event, ended, started) takes the hunt's next seq,
// starting at 1; a leaderboard update carries the seq of the claim it
// follows. The epoch names the history a seq belongs to: the memory engine
// draws a random one at start, so a client resuming after a restart gets a
// reset instead of a replay from a history that no longer exists.
//
// # Last treasure
//
// The claim of a hunt's last treasure ends the hunt: claimed (seq n),
// leaderboard (seq n), ended (seq n+1) with the final top. Digs after that
// get ErrEnded.
//
// # Locks and ownership
//
// Memory.mu guards the hunt table only and is released before a hunt's mutex
// is taken. A hunt's mutex guards its Hunt, History and scratch slice, and is
// held while the sink runs: the sink must return quickly and must not call the
// engine. Slices inside updates and statuses (Top, Data) are immutable once
// emitted and shared by every holder.
package state
