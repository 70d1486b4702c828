package redistest

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestStandaloneKillRestart(t *testing.T) {
	ctx := context.Background()
	s := Standalone(t, Options{})
	c := s.Client()
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	pid := s.PID()
	s.Kill()
	if s.PID() != 0 || c.Ping(ctx).Err() == nil {
		t.Fatalf("server %d still answers after Kill", pid)
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	// No persistence: the restarted server is empty.
	if n, err := c.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("after restart: exists %d, %v", n, err)
	}
}

// TestCluster: a 3+3 cluster comes up with every slot served, keys with
// different hash tags land on different primaries, and killing a primary
// promotes its replica.
func TestCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := StartCluster(t, ClusterOptions{NodeTimeout: time.Second})
	if len(c.Nodes) != 6 {
		t.Fatalf("%d nodes", len(c.Nodes))
	}
	p, err := c.Primaries(ctx)
	if err != nil || len(p) != 3 {
		t.Fatalf("primaries %v, %v", p, err)
	}
	owners := map[int]string{}
	for i := 0; len(owners) < 3 && i < 100; i++ {
		k := fmt.Sprintf("{h%d}:m", i)
		o, err := c.Owner(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		owners[o.Port] = k
	}
	if len(owners) != 3 {
		t.Fatalf("100 hash tags landed on %d primaries", len(owners))
	}
	rc := c.Client()
	defer rc.Close()
	for _, k := range owners {
		if err := rc.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var k string
	for _, k = range owners {
		break
	}
	old, _ := c.Owner(ctx, k)
	rep := old.Client()
	if err := rep.Wait(ctx, 1, time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	rep.Close()
	old.Kill()
	if err := c.WaitHealthy(ctx, 3, 0); err != nil {
		t.Fatal(err)
	}
	now, err := c.Owner(ctx, k)
	if err != nil || now == old || now.PID() == 0 {
		t.Fatalf("owner after failover: %v, %v", now, err)
	}
	// The client finds the new primary on its next slot-map reload.
	for {
		v, err := rc.Get(ctx, k).Result()
		if err == nil {
			if v != "v" {
				t.Fatalf("get after failover: %q", v)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("get after failover: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPortTakenByAnotherServer: a server started on a port that another
// redis-server holds fails to start, rather than handing the test the
// other server (on a shared machine, another developer's).
func TestPortTakenByAnotherServer(t *testing.T) {
	other := Standalone(t, Options{})
	s, err := NewServer(Options{Port: other.Port, Dir: t.TempDir()})
	if err == nil {
		s.Stop()
		t.Fatalf("started on port %d, which another redis-server holds", other.Port)
	}
	if other.PID() == 0 {
		t.Fatal("the other server was stopped")
	}
	c := other.Client()
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("the other server: %v", err)
	}
}
