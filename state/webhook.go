package state

import (
	"context"
	"time"
)

// WebhookEntry is one update in a shared webhook backlog, with its id there
// (what WebhookQueue.WebhookClaim acknowledges).
type WebhookEntry struct {
	ID     string
	Update Update
}

// WebhookBatch is the answer of WebhookQueue.WebhookClaim.
type WebhookBatch struct {
	// Held is true if this node holds the hunt's delivery lease; if false
	// another node delivers the hunt and the rest is empty.
	Held bool
	// Gap is how many updates of the hunt left the backlog undelivered
	// (its count or age bound) and were not yet reported with a delivery.
	Gap uint64
	// Entries are the next undelivered updates of the hunt, in seq order.
	Entries []WebhookEntry
}

// WebhookQueue is an optional interface of a shared-store engine that keeps
// each hunt's undelivered webhook updates itself, written in the same atomic
// step as the update, so that one node at a time delivers a hunt (under a
// lease) and another continues from the last acknowledged update when it
// dies.
type WebhookQueue interface {
	// WebhookBacklog is the bound of each hunt's backlog; 0 means the
	// engine keeps none (webhooks were not configured on it).
	WebhookBacklog() int
	// WebhookClaim takes or renews this node's lease on hunt's delivery for
	// lease, drops the entries up to ack (an id of an earlier batch; ""
	// none) and gapAck of the reported gap, drops the entries older than
	// maxAge (counted in the gap), and returns up to max entries after ack.
	// A node that does not hold the lease changes nothing.
	WebhookClaim(ctx context.Context, hunt, ack string, gapAck uint64, max int, lease, maxAge time.Duration) (WebhookBatch, error)
	// WebhookRelease gives the lease up if this node holds it.
	WebhookRelease(ctx context.Context, hunt string) error
	// WebhookPending lists the hunts with undelivered updates whose lease
	// nobody holds, or this node does.
	WebhookPending(ctx context.Context) ([]string, error)
}
