package gateway

import (
	"context"
	"sync"
	"sync/atomic"
)

// huntInfo is the node-wide record of a hunt that players on this node have
// joined at some point. Ids are small integers, never reused, so loops can
// index their member lists with them and use them as latest-value keys.
type huntInfo struct {
	id      uint32
	name    string
	players atomic.Int64 // connections of this node joined to the hunt
	watched int          // guarded by huntTable.watchMu
}

// huntTable maps hunt names to huntInfo. Lookups from the engine's sink and
// from loops take a read lock; registration (first join) the write lock.
//
// Lock order: watchMu is held while calling Engine.Watch/Unwatch, which may
// take engine locks; the engine's sink takes mu while the engine holds its
// locks. So mu and watchMu are never held together.
type huntTable struct {
	watchMu sync.Mutex
	mu      sync.RWMutex
	byName  map[string]*huntInfo
	byID    []*huntInfo
	pending map[string]*lookup // guarded by mu
}

// lookup is the engine's check of a hunt not registered yet, shared by the
// first joins of it that wait together.
type lookup struct {
	done chan struct{} // closed once err is set
	err  error
}

func newHuntTable() *huntTable {
	return &huntTable{byName: make(map[string]*huntInfo), pending: make(map[string]*lookup)}
}

// lookup returns the hunt named name, registering it once check (the
// engine's Status) found it. The first joins of a hunt new to the node share
// one check: with many workers they would otherwise each ask the engine.
func (t *huntTable) lookup(ctx context.Context, name string, check func() error) (*huntInfo, error) {
	if h := t.getString(name); h != nil {
		return h, nil
	}
	t.mu.Lock()
	if h := t.byName[name]; h != nil {
		t.mu.Unlock()
		return h, nil
	}
	if l := t.pending[name]; l != nil {
		t.mu.Unlock()
		select {
		case <-l.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if l.err != nil {
			return nil, l.err
		}
		return t.register(name), nil
	}
	l := &lookup{done: make(chan struct{})}
	t.pending[name] = l
	t.mu.Unlock()
	l.err = check()
	var h *huntInfo
	if l.err == nil {
		h = t.register(name)
	}
	t.mu.Lock()
	delete(t.pending, name)
	t.mu.Unlock()
	close(l.done)
	return h, l.err
}

// get returns the hunt named name, or nil. It does not allocate.
func (t *huntTable) get(name []byte) *huntInfo {
	t.mu.RLock()
	h := t.byName[string(name)]
	t.mu.RUnlock()
	return h
}

// getString is get for a string.
func (t *huntTable) getString(name string) *huntInfo {
	t.mu.RLock()
	h := t.byName[name]
	t.mu.RUnlock()
	return h
}

// register returns the hunt named name, adding it if needed.
func (t *huntTable) register(name string) *huntInfo {
	if h := t.getString(name); h != nil {
		return h
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if h := t.byName[name]; h != nil {
		return h
	}
	h := &huntInfo{id: uint32(len(t.byID)), name: name}
	t.byName[name] = h
	t.byID = append(t.byID, h)
	return h
}

// all returns a snapshot of the registered hunts.
func (t *huntTable) all() []*huntInfo {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return append([]*huntInfo(nil), t.byID...)
}

// watch counts one more local player of h and, for the first, calls
// engineWatch (Engine.Watch). The call is made under watchMu so that a
// concurrent last leave on another loop cannot interleave an Unwatch after
// this Watch.
func (t *huntTable) watch(h *huntInfo, engineWatch func(string)) {
	t.watchMu.Lock()
	h.watched++
	if h.watched == 1 {
		engineWatch(h.name)
	}
	t.watchMu.Unlock()
	h.players.Add(1)
}

// unwatch is the reverse of watch: it calls engineUnwatch for the last
// local player.
func (t *huntTable) unwatch(h *huntInfo, engineUnwatch func(string)) {
	h.players.Add(-1)
	t.watchMu.Lock()
	h.watched--
	if h.watched == 0 {
		engineUnwatch(h.name)
	}
	t.watchMu.Unlock()
}
