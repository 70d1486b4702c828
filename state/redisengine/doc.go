// Package redisengine is a state.Engine whose hunts live in Redis, so that
// several gateway nodes share them: a treasure is claimed once cluster-wide,
// every node sees the same seq for the same update, and a client resumes on
// any node from the shared history.
//
// # Key layout
//
// P is Config.Prefix ("hg:"); {h} is the hunt id as a Redis Cluster hash
// tag, so a hunt's keys share one slot.
//
//	P{h}:m    hash  state (scheduled|open|ended), w, h, epoch, seq, left, count, tick,
//	                starts, ends (ms of Redis's clock, 0: none)
//	P{h}:t    hash  "x,y" -> "treasure|points", unclaimed treasures only
//	P{h}:lb   zset  member "%012x tick" + player, score -points
//	P{h}:pm   hash  player -> current leaderboard member
//	P{h}:h    list  the last HistoryMax reliable updates, encoded
//	P{h}:c    list  every claim, "seq|at_ms|x|y|treasure|player|points", never trimmed
//	P{h}:n    hash  node id -> players connected through that node
//	P{h}:nl   zset  node id scored by when its count in P{h}:n expires
//	P{h}:u    shard channel of the hunt's updates (SPUBLISH)
//	P{h}:w    stream  webhook backlog: reliable updates not yet acknowledged by
//	                the webhook deliverer (Config.WebhookBacklog; webhook.go)
//	P{h}:wk   hash    the backlog's counters: dropped, reported
//	P{h}:wl   string  the webhook delivery lease: holder's node id, expiring
//	Phunts    set   hunt ids (written before the hunt; see Hunts)
//	Pschedule zset  hunt ids scored by their next scheduled transition (ms, Redis's clock)
//	Pnodes    sorted set: node id scored by its heartbeat's expiry (Redis clock)
//
// Engine.Nodes reads Pnodes (the entries not yet expired), for the nodes
// field of /v1/stats: one small key, however large the keyspace.
//
// # Redis Cluster
//
// With Config.Cluster the engine runs on a Redis Cluster: a hunt lives on
// the shard that owns its slot, so hunts spread over the primaries and each
// hunt's calls go to one of them. No script touches two slots: every
// script's keys are one hunt's, and the keys outside a hunt (Phunts,
// Pnodes) are each written by a command of their own. A node's player
// count of a hunt lives in the hunt's slot with its expiry (P{h}:n,
// P{h}:nl): the count script renews the expiry, the flusher writes each
// count again every HeartbeatTTL/3, and the status script sums the counts
// not expired without reading another slot. Create adds the hunt to Phunts
// before creating it; Hunts keeps the ids whose meta exists, so a create
// that died in between leaves one stale id, never a hunt missing from the
// list.
//
// Updates go out with SPUBLISH on the hunt's shard channel, which a cluster
// carries only within the shard owning the slot (plain PUBLISH is
// broadcast to every node of a cluster). The engine holds one pub/sub
// connection per hash slot with watched hunts (pubsub.go says why not one
// per shard); after a failover go-redis dials the slot's new primary and
// subscribes again, and the reader fills the gap from the history as after
// any reconnect. A shard channel that Redis drops itself (its slot moved)
// makes the engine subscribe again on a new connection. The slot map is
// read again every second and after a pub/sub error, as a primary killed
// without notice gives no MOVED reply to prompt it. The readiness probe
// pings every primary.
//
// The standalone mode uses shard channels too (a standalone Redis 7 treats
// them as plain channels), so both modes share one delivery path.
//
// Updates are encoded as one '|'-separated line (codec.go); event data is
// the tail of the line, raw, so it passes through byte for byte.
//
// # Scripts
//
// Every mutation is one Lua script (scripts.go), which Redis runs atomically:
//
//   - create: fails with ErrExists if the meta exists, else renames the
//     treasures (written beforehand to a staged key that expires, in chunks)
//     into place and writes the meta with a random epoch below 2^53, seq 0.
//   - dig: checks open and grid, takes the cell's treasure out of P{h}:t
//     (so it is claimed once), bumps seq, moves the player in the
//     leaderboard, computes score and rank, appends claimed to the history
//     and to the claims record,
//     publishes claimed and leaderboard (same seq) and, for the last
//     treasure, ends the hunt and records and publishes ended (seq+1), as the
//     memory engine does.
//   - publish, end: check not ended, bump seq, record and publish.
//   - schedule (schedule.go): every node's ticker lists the hunts of
//     Pschedule due by Redis's clock and runs an idempotent script per
//     hunt: scheduled -> open with a started update, open -> ended at
//     ends; the first node to run it makes the transition, the others find
//     nothing due.
//   - count: sets the node's player count of the hunt (absolute, so a
//     repeated or lost write does not skew it) and returns the status;
//     status: sums the counts whose expiry (P{h}:nl) has not passed.
//   - board, player rank: seq, ZCARD and a ZRANGE of the page (or the
//     player's member from P{h}:pm, its ZRANK and the ZRANGE around it):
//     one round trip, one consistent read. claims: epoch and P{h}:c.
//   - history: seq, epoch, Redis's time and the entries after since (or
//     those of a recent window, for the replay of a new watch).
//   - webhook claim (webhook.go): takes or renews a hunt's delivery lease,
//     trims what the holder acknowledged from the hunt's backlog, and reads
//     the next entries: one round trip per delivered update at most. With
//     Config.WebhookBacklog, every script that records a reliable update
//     also appends it to the backlog (record in scripts.go).
//
// The dig, publish, end and schedule scripts of concurrent callers are sent
// together (batch.go): the calls waiting when one of a few pipeline slots
// frees go as one pipeline (up to 128 scripts, split per shard by go-redis
// on a cluster), each caller getting its own reply or error; a lone call
// goes at once. Each script stays atomic on its own; a pipeline is not a
// transaction. With Config.WaitReplicas each call keeps its own pipeline
// with its WAIT.
//
// Updates are stamped with Redis's TIME, and History ages them against the
// same clock, so node clocks do not matter.
//
// # Leaderboard order
//
// The state package orders players by score, then by who reached the score
// first. Here the zset score is the negated points and the member begins
// with a fixed-width hex tick (bumped on every score change of a hunt), so
// ZRANGE order is exactly that order with no float precision traded away:
// the score alone is a float64, exact for totals up to 2^53, and totals are
// at most state.MaxTreasures * state.MaxPoints < 2^50. The tick field holds
// 2^48 changes, far above a hunt's 2^20 treasures. (Packing the tick into
// the score instead would cap a hunt's total points near 2^53 / 2^21 ~ 4e9,
// which the state package allows to be exceeded.) Scripts format every number
// with %d because Lua's default %.14g would lose digits above 10^14.
//
// # Ordering and delivery
//
// A script's SPUBLISH calls happen inside the atomic step that took the seq,
// so a channel carries a hunt's updates in seq order, and one pub/sub
// connection per engine delivers them in that order. One goroutine reads it
// and is the only caller of the sink.
//
// Watch and Unwatch only count; a goroutine of the engine sends SUBSCRIBE on
// a hunt's first Watch and UNSUBSCRIBE after its last Unwatch, so the
// callers never wait on Redis. Updates published between Watch and the
// subscription taking effect are replayed from the history when the
// subscription is confirmed: those stamped, by Redis's clock, since the
// time elapsed from Watch (on this node's monotonic clock) plus
// Config.WatchReplay as a margin, so the stream after a Join made after
// Watch has no hole however slow the subscription was; the gateway drops
// copies a session already has, by seq. With WatchReplay negative nothing
// is replayed and the stream starts with the first update received.
//
// The reader tracks the last reliable seq it delivered per hunt. When
// go-redis replaces a broken pub/sub connection it resubscribes; on that
// confirmation, and on any update whose seq skips ahead, the reader fills
// the gap from the history before delivering further. Copies at or below
// the tracked seq are dropped. A replay or fill that holds claims ends with
// the leaderboard as of its last seq, since the history keeps no
// leaderboard updates. A history read that fails (Redis loading after a
// restart, a timeout) is tried again on the next update of the hunt, as
// the updates may still be held.
//
// # Join and leave storms
//
// A crowd joining one hunt must not cost Redis a round trip per player. A
// node keeps, for each hunt it watches, a copy of the hunt (local.go):
// epoch, seq, state, treasures left, top and the last HistoryMax reliable
// updates. The reader sets its baseline from the history read that the
// watch replay makes anyway (one read per hunt per node, however many
// players join it; the first joins wait for it together, AwaitLocal) and
// brings it up to each update it hands the sink. An update that does not
// follow the copy's seq (a gap that could not be filled, a new epoch) drops
// the copy and the reader reads a new baseline. JoinLocal answers a join,
// and a resume whose since the copy holds, from the copy; the status may
// trail Redis by the updates still on their way, which the sink delivers
// after the call, so the stream after it has no hole. A hunt Redis no
// longer has (the count refresh, at least every second, answers unknown
// hunt) drops its copy, and joins go to Redis, which refuses them, until
// an update of a hunt created again under the id brings a new baseline.
//
// Player counts are this node's alone to write: Join (and JoinLocal)
// and Leave change a local count, and the flusher writes the counts that
// changed, one script per hunt at most every 100 ms, reading back the
// cluster-wide sum; watched hunts are read again every second. Status of
// a hunt with players here writes first, so it is exact for this node.
// Leave therefore never waits on Redis for a hunt joined here. A JoinLocal
// is refused while the last probe of Redis failed, so a node cut from
// Redis does not admit players from a stale copy.
//
// # Misses answered on the node
//
// A hunt's treasures are all written by Create and afterwards only taken,
// so the cells holding one at any moment of an epoch are a superset of
// those that will later. The first dig of a watched hunt on a node starts
// a read of its treasure cells with its epoch and grid (one script on the
// hunt's shard; hunts of more than 65,536 treasures are not read), and
// from then on DigLocal answers a dig on any other cell of the copy's grid,
// while the copy is in step, open and at that epoch, as a miss without
// Redis (digcells.go): the gateway asks it on its loop, so such a dig costs
// what a ping does. Digs on those cells, and every dig while the copy is
// not in step, not open, at another epoch, or Redis unreachable, run the
// dig script. At 15,000 digs/s over 100,000 players (1000x1000 grids, 8
// treasures each) the steady window's dug p99 went from 15x to 3.3x the
// ping floor (README). A dig racing the end of the hunt may get a miss
// instead of ended: its player cannot tell it from a dig made just before
// the end, as the news of the end comes through this node.
//
// # Epoch integrity
//
// A Redis with older data has a hunt at the same epoch and a lower seq; the
// seqs above it were served, and would be handed out again with other
// content. Nothing in Redis can tell, so the nodes do: each remembers the
// highest seq it has seen of every hunt it watches, in that hunt's epoch
// (localHunt.seenEpoch/seenSeq, kept across copies). Every script that
// takes a seq (dig, publish, end) gets them and first runs luaGuard: if
// the hunt has that epoch and a lower seq, it takes a fresh random epoch
// and drops the history, atomically, before taking a seq. A node also
// compares what it reads anyway (the baseline of its copy, and the status
// each flush and refresh returns, at least every second) and, finding Redis
// behind, runs bumpLua: the same guard, then the leaderboard published
// under the new epoch, so every watching node and its players learn it at
// once. A read that raced with newer updates (answered just before a write
// whose update the reader applied first) looks behind too; bumpLua's own
// check against Redis tells them apart, and only a hunt truly behind is
// counted (Regressions) and logged. Clients see the new epoch and reset; History under the old epoch
// is never ok again. A write through a node that never watched the hunt
// may reuse seqs before that; the watching nodes drop those updates (at or
// below the seq they track) and the next check bumps the epoch, so what
// they carried reaches no one under the old epoch. Undetectable: Redis
// behind while no live node watching the hunt saw the lost seqs; then the
// clients resuming with a since above Redis's seq are reset, as always.
//
// # Readiness
//
// A goroutine pings Redis every 250 ms, on a connection of its own, with a
// 750 ms timeout, and, while the node is unready, then through the main
// client, whose pool, after calls failed to dial while Redis was away,
// refuses every call until its own redial succeeds (up to a second after
// Redis is back). Ready reports the last failure, which the gateway's
// /readyz follows, so a node that turns ready again serves.
//
// # Failure modes
//
//   - Redis unreachable: calls fail with a wrapped go-redis error; the
//     gateway answers with an error. The reader retries and resubscribes.
//   - Missed updates no longer in the history (longer outage than
//     HistoryMax/HistoryAge): the gap stays, Gaps counts it once and a
//     warning is logged; the updates received after it are delivered, and
//     the first of them shows the gap to clients, who resume or reset as
//     PROTOCOL.md says.
//   - A node crashes: its player counts stop counting when their expiry
//     passes (Config.HeartbeatTTL) and are deleted by the next count write
//     of another node to the hunt; Close deletes them at once.
//   - Redis loses its data: the hunts are gone (ErrUnknownHunt); a hunt
//     created again gets a new epoch, so clients reset rather than replay.
//   - Redis comes back with older data (restarted from an older RDB or AOF,
//     a failover to a replica that missed the last writes): see Epoch
//     integrity.
//   - A Create that dies half-way leaves only its staged key, which
//     expires, and possibly its id in Phunts, which Hunts skips.
//   - A primary fails (Redis Cluster, or a standalone primary with
//     replicas and a failover manager): replication is asynchronous, so the
//     writes the primary acknowledged but had not yet sent to the replica
//     that takes over are lost: claims, events, seqs. Calls fail until the
//     replica is promoted (cluster-node-timeout plus an election: about 3 s
//     with a 1 s timeout in TestClusterFailover) and then succeed on it
//     without a restart. Config.WaitReplicas (huntgate --redis-wait 1)
//     narrows the loss: a write is answered only once a replica holds it
//     (WAIT on the same connection), so a claim a player was told about
//     survives the failover. Its updates were published by the script
//     before the WAIT, so a watcher may still have seen an update that a
//     failover in that instant loses: Epoch integrity then gives the hunt a
//     new epoch, and clients reset. While a promoted primary has no replica, each write
//     waits the whole WaitTimeout and is counted in WaitShort. README.md
//     gives the measured cost of the wait in dig latency.
//
// # Limits
//
// Redis 7.0 or later (shard channels: SPUBLISH, SSUBSCRIBE; Debian 12
// ships 7.0), standalone or Redis Cluster. On a cluster a node holds one
// pub/sub connection per hash slot with hunts it watches, so a node
// watching thousands of hunts holds thousands of connections on the
// shards (Redis's maxclients is 10,000 by default). The hunt index Phunts
// and the registry Pnodes are single keys, each on one shard: both are
// small and written rarely (a create; a heartbeat per node). Resharding
// (moving slots while hunts are in use) is handled only as far as go-redis
// follows MOVED replies and the engine resubscribes; it is not tested.
// Events are bounded by what Redis accepts as an argument (512 MB; the
// gateway bounds them far lower).
package redisengine
