// Package redistest starts real Redis servers for tests: a standalone
// redis-server, or a local Redis Cluster of primaries and replicas, each on
// free loopback ports in a temporary directory of its own, stopped by PID
// when the test ends.
//
// Ports are found by listening on port 0 and closing the listener, so
// another process can take one before redis-server binds it: a server that
// exits at start (address in use) is started again on new ports. Cluster
// nodes get their bus port from the cluster-port setting (Redis 7) instead
// of the default port+10000, which may be taken or above 65535.
//
// Functions taking a testing.TB fail the test on error and register the
// cleanup; the New* forms return errors and leave stopping to the caller,
// for TestMain.
package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// StartTimeout bounds how long a server may take to answer PING.
const StartTimeout = 10 * time.Second

// startTries is how many times a server is started on new ports when the
// ones it was given were taken meanwhile.
const startTries = 5

// Options configure a server.
type Options struct {
	// Port to listen on; 0 means a free one.
	Port int
	// Dir is the server's working directory (its log, and nodes.conf of a
	// cluster node); "" means a new temporary directory, removed by Stop.
	Dir string
	// Args are extra redis-server arguments, as "--name", "value", ...
	Args []string
}

// Server is a redis-server process started by this package.
type Server struct {
	// Port the server listens on, at 127.0.0.1.
	Port int
	// BusPort is the cluster bus port of a cluster node, 0 otherwise.
	BusPort int
	// Dir is the server's working directory; its log is Dir/redis.log.
	Dir string

	args    []string
	ownDir  bool
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	stopped bool
}

// Standalone starts a redis-server without persistence for the test and
// stops it when the test ends.
func Standalone(t testing.TB, opt Options) *Server {
	t.Helper()
	if opt.Dir == "" {
		opt.Dir = t.TempDir()
	}
	s, err := NewServer(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// NewServer starts a redis-server without persistence and waits until it
// answers PING. The caller stops it with Stop.
func NewServer(opt Options) (*Server, error) {
	return newServer(opt, false)
}

func newServer(opt Options, cluster bool) (*Server, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, errors.New("redistest: redis-server not found: run scripts/test.sh or apt-get install -y redis-server")
	}
	s := &Server{Port: opt.Port, Dir: opt.Dir, args: opt.Args}
	if s.Dir == "" {
		d, err := os.MkdirTemp("", "redistest")
		if err != nil {
			return nil, fmt.Errorf("redistest: %w", err)
		}
		s.Dir, s.ownDir = d, true
	}
	var err error
	for try := 0; try < startTries; try++ {
		port, bus := opt.Port, 0
		if port == 0 {
			if port, err = freePort(); err != nil {
				break
			}
		}
		if cluster {
			if bus, err = freePort(); err != nil {
				break
			}
		}
		s.Port, s.BusPort = port, bus
		if err = s.start(); err == nil {
			return s, nil
		}
		if opt.Port != 0 && !cluster {
			break // a fixed port: trying again would only repeat the collision
		}
	}
	s.Stop()
	return nil, err
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redistest: no free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL is redis://host:port/0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Client returns a new go-redis client of the server; the caller closes it.
func (s *Server) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.Addr(), DisableIdentity: true})
}

// probe returns a client that dials once and does not retry, for the
// polling loops here, which are the retry.
func (s *Server) probe() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.Addr(), DisableIdentity: true, DialerRetries: 1, MaxRetries: -1})
}

// PID is the process id of the running server, 0 if it is not running.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.stopped {
		return 0
	}
	return s.cmd.Process.Pid
}

func (s *Server) start() error {
	args := []string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.Dir, "--logfile", "redis.log"}
	if s.BusPort != 0 {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-port", strconv.Itoa(s.BusPort))
	}
	args = append(args, s.args...)
	cmd := exec.Command("redis-server", args...)
	cmd.Dir = s.Dir
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: start redis-server: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited, s.stopped = cmd, exited, false
	s.mu.Unlock()

	c := s.probe()
	defer c.Close()
	deadline := time.Now().Add(StartTimeout)
	for {
		// Dial before PING: go-redis logs every refused dial.
		err := errors.New("not listening yet")
		if nc, derr := net.DialTimeout("tcp", s.Addr(), time.Second); derr == nil {
			nc.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err = c.Ping(ctx).Err()
			var info string
			if err == nil {
				info, err = c.Info(ctx, "server").Result()
			}
			cancel()
			if err == nil {
				// The port was free a moment ago, but on a shared machine
				// another process may have taken it since: then ours
				// exits, and what answers is someone else's server,
				// which the test must never write to.
				if !strings.Contains(info, "process_id:"+strconv.Itoa(cmd.Process.Pid)+"\r\n") {
					s.Kill()
					return fmt.Errorf("redistest: port %d answers for another redis-server than the one started", s.Port)
				}
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("redistest: redis-server on port %d exited at start: %s", s.Port, s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("redistest: redis-server on port %d did not answer PING: %v: %s", s.Port, err, s.logTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logTail returns the end of the server's log, for errors.
func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.Dir + "/redis.log")
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// Kill sends SIGKILL to the server, as a crash, and waits for it to exit.
// Its directory stays, so Restart can start it again.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, exited, stopped := s.cmd, s.exited, s.stopped
	s.stopped = true
	s.mu.Unlock()
	if cmd == nil || stopped {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// Restart starts a killed server again on the same ports and directory
// (a cluster node rejoins with its nodes.conf) and waits for PING.
func (s *Server) Restart() error {
	s.Kill()
	return s.start()
}

// Stop kills the server and removes its directory if this package made it.
func (s *Server) Stop() {
	s.Kill()
	if s.ownDir {
		_ = os.RemoveAll(s.Dir)
	}
}

// Pause stops the server's process with SIGSTOP: it keeps its connections
// open and answers nothing, as a server stalled by its host, until Resume
// (Kill and Stop work on a paused server: SIGKILL ends a stopped process).
func (s *Server) Pause() error { return s.signal(syscall.SIGSTOP) }

// Resume continues a server stopped by Pause (SIGCONT).
func (s *Server) Resume() error { return s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.stopped {
		return errors.New("redistest: server not running")
	}
	return s.cmd.Process.Signal(sig)
}
