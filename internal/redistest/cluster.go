package redistest

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultNodeTimeout is the cluster-node-timeout of a test cluster: how
// long a primary must be unreachable before its replica takes over. Small,
// so that a failover test takes seconds, and not so small that a node
// stalled by a busy machine is taken for dead.
const DefaultNodeTimeout = 1500 * time.Millisecond

// slots is how many hash slots a Redis Cluster has.
const slots = 16384

// ClusterOptions configure a local Redis Cluster.
type ClusterOptions struct {
	// Primaries is the number of primaries; 0 means 3.
	Primaries int
	// Replicas is the number of replicas of each primary; 0 means 1,
	// negative means none.
	Replicas int
	// NodeTimeout is cluster-node-timeout; 0 means DefaultNodeTimeout.
	NodeTimeout time.Duration
	// Args are extra redis-server arguments for every node.
	Args []string
}

// Cluster is a local Redis Cluster started by this package.
type Cluster struct {
	// Nodes are the cluster's servers, primaries first as created
	// (a failover changes which are primaries: see Owner, Primaries).
	Nodes []*Server
}

// StartCluster starts a local Redis Cluster for the test and stops it when
// the test ends.
func StartCluster(t testing.TB, opt ClusterOptions) *Cluster {
	t.Helper()
	c, err := NewCluster(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// NewCluster starts opt.Primaries*(1+opt.Replicas) cluster-enabled
// redis-servers, joins them with redis-cli --cluster create, and waits
// until every node sees every slot served and every replica is in sync
// with its primary. The caller stops it with Stop.
func NewCluster(opt ClusterOptions) (*Cluster, error) {
	if opt.Primaries <= 0 {
		opt.Primaries = 3
	}
	switch {
	case opt.Replicas == 0:
		opt.Replicas = 1
	case opt.Replicas < 0:
		opt.Replicas = 0
	}
	if opt.NodeTimeout <= 0 {
		opt.NodeTimeout = DefaultNodeTimeout
	}
	if _, err := exec.LookPath("redis-cli"); err != nil {
		return nil, errors.New("redistest: redis-cli not found: run scripts/test.sh or apt-get install -y redis-tools")
	}
	args := append([]string{
		"--cluster-node-timeout", strconv.FormatInt(opt.NodeTimeout.Milliseconds(), 10),
		// A replica takes over however long its link was down: a test
		// that kills a primary wants the failover, not availability
		// traded for freshness.
		"--cluster-replica-validity-factor", "0",
		"--cluster-allow-replica-migration", "no",
		// Replicas sync at once instead of waiting 5 s for more replicas.
		"--repl-diskless-sync-delay", "0",
	}, opt.Args...)
	c := &Cluster{}
	n := opt.Primaries * (1 + opt.Replicas)
	for range n {
		s, err := newServer(Options{Args: args}, true)
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.Nodes = append(c.Nodes, s)
	}
	create := []string{"--cluster", "create"}
	create = append(create, c.Addrs()...)
	create = append(create, "--cluster-replicas", strconv.Itoa(opt.Replicas), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "redis-cli", create...).CombinedOutput(); err != nil {
		c.Stop()
		return nil, fmt.Errorf("redistest: redis-cli --cluster create: %w: %s", err, out)
	}
	if err := c.WaitHealthy(ctx, opt.Primaries, opt.Replicas); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// Addrs are host:port of every node, the seeds for a cluster client.
func (c *Cluster) Addrs() []string {
	a := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		a[i] = s.Addr()
	}
	return a
}

// Client returns a new go-redis cluster client; the caller closes it. It
// reloads the slot map every 500 ms (go-redis's default is a minute, and
// a dead primary gives no MOVED to trigger a reload).
func (c *Cluster) Client() *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), DisableIdentity: true,
		ClusterStateReloadInterval: 500 * time.Millisecond})
}

// Stop kills every node and removes their directories.
func (c *Cluster) Stop() {
	for _, s := range c.Nodes {
		s.Stop()
	}
}

// byPort returns the node listening on port, nil if none.
func (c *Cluster) byPort(port int) *Server {
	for _, s := range c.Nodes {
		if s.Port == port {
			return s
		}
	}
	return nil
}

// live returns the nodes whose process runs.
func (c *Cluster) live() []*Server {
	var l []*Server
	for _, s := range c.Nodes {
		if s.PID() != 0 {
			l = append(l, s)
		}
	}
	return l
}

// nodeLine is one line of CLUSTER NODES.
type nodeLine struct {
	id, master string
	port       int
	flags      []string
	ranges     [][2]int
}

func (n nodeLine) is(flag string) bool { return slices.Contains(n.flags, flag) }

// clusterNodes reads and parses CLUSTER NODES from s.
func clusterNodes(ctx context.Context, s *Server) ([]nodeLine, error) {
	rc := s.probe()
	defer rc.Close()
	out, err := rc.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, err
	}
	var ls []nodeLine
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		addr := f[1]
		if i := strings.IndexAny(addr, "@,"); i >= 0 {
			addr = addr[:i]
		}
		port, _ := strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
		n := nodeLine{id: f[0], port: port, flags: strings.Split(f[2], ","), master: f[3]}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue // a slot being migrated or imported
			}
			lo, hi, ok := strings.Cut(r, "-")
			a, _ := strconv.Atoi(lo)
			b := a
			if ok {
				b, _ = strconv.Atoi(hi)
			}
			n.ranges = append(n.ranges, [2]int{a, b})
		}
		ls = append(ls, n)
	}
	return ls, nil
}

// check reports why the cluster is not healthy as seen by the live nodes,
// or nil: each says cluster_state:ok, every slot is served by a live
// primary not flagged failing, all agree on who serves what, and each
// primary has at least replicas live replicas in sync.
func (c *Cluster) check(ctx context.Context, primaries, replicas int) error {
	var first string
	var served []nodeLine // the primaries serving slots, as the last node sees them
	for _, s := range c.live() {
		rc := s.probe()
		info, err := rc.ClusterInfo(ctx).Result()
		rc.Close()
		if err != nil {
			return fmt.Errorf("node %d: %w", s.Port, err)
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("node %d: cluster_state not ok", s.Port)
		}
		ls, err := clusterNodes(ctx, s)
		if err != nil {
			return fmt.Errorf("node %d: %w", s.Port, err)
		}
		covered := 0
		var owners []string
		ids := map[string]nodeLine{}
		for _, n := range ls {
			ids[n.id] = n
			if len(n.ranges) == 0 {
				continue
			}
			if !n.is("master") || n.is("fail") || n.is("fail?") {
				return fmt.Errorf("node %d: slots served by %d (%v)", s.Port, n.port, n.flags)
			}
			if o := c.byPort(n.port); o == nil || o.PID() == 0 {
				return fmt.Errorf("node %d: slots served by dead node %d", s.Port, n.port)
			}
			for _, r := range n.ranges {
				covered += r[1] - r[0] + 1
				owners = append(owners, fmt.Sprintf("%05d-%05d:%d", r[0], r[1], n.port))
			}
		}
		served = served[:0]
		for _, n := range ls {
			if len(n.ranges) > 0 {
				served = append(served, n)
			}
		}
		if covered != slots {
			return fmt.Errorf("node %d: %d slots covered", s.Port, covered)
		}
		slices.Sort(owners)
		o := strings.Join(owners, " ")
		if first == "" {
			first = o
		} else if o != first {
			return fmt.Errorf("nodes disagree on slot owners: %s / %s", first, o)
		}
		if primaries > 0 {
			n := 0
			for _, l := range ls {
				if len(l.ranges) > 0 {
					n++
				}
			}
			if n != primaries {
				return fmt.Errorf("node %d: %d primaries serve slots, want %d", s.Port, n, primaries)
			}
		}
		if replicas > 0 {
			per := map[string]int{}
			for _, l := range ls {
				if l.is("slave") && !l.is("fail") && !l.is("fail?") {
					per[l.master]++
				}
			}
			for _, l := range ls {
				if len(l.ranges) > 0 && per[l.id] < replicas {
					return fmt.Errorf("node %d: primary %d has %d replicas", s.Port, l.port, per[l.id])
				}
			}
		}
	}
	if first == "" {
		return errors.New("no live node")
	}
	if replicas > 0 {
		for _, s := range c.live() {
			rc := s.probe()
			info, err := rc.Info(ctx, "replication").Result()
			rc.Close()
			if err != nil {
				return fmt.Errorf("node %d: %w", s.Port, err)
			}
			if strings.Contains(info, "role:slave") &&
				(!strings.Contains(info, "master_link_status:up") || strings.Contains(info, "master_sync_in_progress:1")) {
				return fmt.Errorf("replica %d not in sync", s.Port)
			}
		}
		for _, l := range served {
			if err := c.writeThrough(ctx, l, replicas); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeThrough writes to primary l and waits for replicas of its replicas
// to acknowledge the write. A replica reports its link up as soon as the
// full sync ends, but Redis 7 streams it nothing more until the replica's
// first REPLCONF ACK, up to a second later: a test that writes and kills
// the primary inside that window finds the promoted replica without the
// write. The key is one of l's own slots and is deleted again, so no test
// sees it.
func (c *Cluster) writeThrough(ctx context.Context, l nodeLine, replicas int) error {
	s := c.byPort(l.port)
	if s == nil || len(l.ranges) == 0 {
		return fmt.Errorf("primary %d unknown", l.port)
	}
	rc := s.probe()
	defer rc.Close()
	var key string
	for i := 0; i < 4096 && key == ""; i++ {
		k := fmt.Sprintf("redistest:sync:%d", i)
		slot, err := rc.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			return fmt.Errorf("primary %d: %w", l.port, err)
		}
		for _, r := range l.ranges {
			if int(slot) >= r[0] && int(slot) <= r[1] {
				key = k
				break
			}
		}
	}
	if key == "" {
		return fmt.Errorf("primary %d: no key for its slots", l.port)
	}
	if err := rc.Set(ctx, key, "1", 0).Err(); err != nil {
		return fmt.Errorf("primary %d: %w", l.port, err)
	}
	if err := rc.Del(ctx, key).Err(); err != nil {
		return fmt.Errorf("primary %d: %w", l.port, err)
	}
	n, err := rc.Wait(ctx, replicas, 500*time.Millisecond).Result()
	if err != nil {
		return fmt.Errorf("primary %d: %w", l.port, err)
	}
	if int(n) < replicas {
		return fmt.Errorf("primary %d: %d of %d replicas acknowledged a write", l.port, n, replicas)
	}
	return nil
}

// WaitHealthy waits until the live nodes agree that every slot is served
// by a live primary, with exactly primaries of them serving slots (0: any
// number) and at least replicas live replicas each in sync (0: none
// needed). After a primary is killed, WaitHealthy(ctx, 0, 0) waits for the
// failover to complete.
func (c *Cluster) WaitHealthy(ctx context.Context, primaries, replicas int) error {
	var err error
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = c.check(cctx, primaries, replicas)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redistest: cluster not healthy: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Slot returns the hash slot of key, asked of a live node (CLUSTER KEYSLOT).
func (c *Cluster) Slot(ctx context.Context, key string) (int, error) {
	l := c.live()
	if len(l) == 0 {
		return 0, errors.New("redistest: no live node")
	}
	rc := l[0].probe()
	defer rc.Close()
	n, err := rc.ClusterKeySlot(ctx, key).Result()
	return int(n), err
}

// Owner returns the primary serving key's slot, as a live node sees it.
func (c *Cluster) Owner(ctx context.Context, key string) (*Server, error) {
	slot, err := c.Slot(ctx, key)
	if err != nil {
		return nil, err
	}
	for _, s := range c.live() {
		ls, err := clusterNodes(ctx, s)
		if err != nil {
			continue
		}
		for _, n := range ls {
			for _, r := range n.ranges {
				if slot >= r[0] && slot <= r[1] {
					if o := c.byPort(n.port); o != nil {
						return o, nil
					}
				}
			}
		}
	}
	return nil, fmt.Errorf("redistest: no owner of slot %d", slot)
}

// Primaries returns the live nodes that serve slots, as a live node sees it.
func (c *Cluster) Primaries(ctx context.Context) ([]*Server, error) {
	for _, s := range c.live() {
		ls, err := clusterNodes(ctx, s)
		if err != nil {
			continue
		}
		var p []*Server
		for _, n := range ls {
			if o := c.byPort(n.port); o != nil && len(n.ranges) > 0 && o.PID() != 0 {
				p = append(p, o)
			}
		}
		return p, nil
	}
	return nil, errors.New("redistest: no live node")
}
