// Package gateway wires the transport (package conn) to the hunt engine
// (package state): the player protocol v1 on /ws (docs/protocol.md), player
// authentication, per-connection limits, the fan-out of hunt updates with
// their delivery classes, resume, the test endpoints /echo and /fanout, and
// the admin/ops HTTP API.
//
// # Ownership
//
// Every loop of the conn node has a loopState: the sessions of its
// connections (indexed by Handle.Index, checked against the full Handle), the
// member list of each hunt (hunt id -> handles) and the /fanout list. Only
// that loop's goroutine touches them, from conn's Handler callbacks, from
// functions posted to the loop, or from its timers. Other goroutines reach a
// loop only through conn.Node.Post/PostAll. The node-wide tables (hunt names
// to ids, watch counts) are guarded by their own locks; the counters are
// atomics read by the admin listener.
//
// # Fan-out
//
// The engine's sink encodes an update once into a framing.Prepared and posts
// it once to every loop; each loop walks its member list of the hunt. Reliable
// updates (claimed, event, ended, started) are queued in order, and a connection whose
// backlog passes its bound is closed by conn with 1008 "slow"; a leaderboard
// replaces a leaderboard of the same hunt still queued for that connection.
// A session remembers the last seq it was given per hunt, so the live copy of
// an update it already got from history on resume is skipped. Pushes held
// for a session while a blocking engine call of it is in flight (so that its
// dug reply goes out before the claimed push the dig caused) wait for its
// connection like queued output: they have the same bounds and the same
// latest-value rule.
//
// # Engine calls
//
// With an inline engine (memory) the ops call the engine on the loop: a dig
// costs no allocation in the gateway and its dug reply is queued before the
// claimed push it causes, which the sink only posts to the inboxes. With a
// blocking engine (Redis) the same calls run on worker goroutines and the
// result is posted back to the loop, where the session is looked up again,
// and its membership of the hunt by generation: one left and joined again
// meanwhile is another membership, which the result must not touch. Each
// request's engine calls that take a context share one deadline
// (Config.EngineTimeout), so a stalled store costs a worker and the player
// that long at most (Watch takes none: it only counts); leaves
// never wait on the store and run on the loop (state.LocalJoiner).
//
// Lock order: huntTable.watchMu may be held while calling Engine.Watch and
// Unwatch; the engine may hold its locks while calling the sink, which takes
// huntTable.mu (read). watchMu and mu are never held together.
package gateway
