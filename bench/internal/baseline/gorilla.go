package baseline

import (
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
)

// gorillaSendQueue is the per-connection queue of the classic hub: a
// connection that falls this many broadcasts behind is dropped, as in the
// gorilla chat example.
const gorillaSendQueue = 256

// NewGorilla returns an http.Handler serving /echo and /fanout with one
// reader goroutine per connection and, on /fanout, one writer goroutine per
// connection fed by a hub.
func NewGorilla(log zerolog.Logger) http.Handler {
	g := &gorillaServer{
		log: log,
		up: websocket.Upgrader{
			ReadBufferSize:  4096,
			WriteBufferSize: 4096,
			CheckOrigin:     func(*http.Request) bool { return true },
		},
		clients: make(map[*gorillaClient]struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", g.echo)
	mux.HandleFunc("/fanout", g.fanout)
	return mux
}

type gorillaServer struct {
	log     zerolog.Logger
	up      websocket.Upgrader
	mu      sync.RWMutex // guards clients
	clients map[*gorillaClient]struct{}
}

type gorillaClient struct {
	c    *websocket.Conn
	send chan *websocket.PreparedMessage // closed by the hub side when the client is dropped
	once sync.Once
	slow atomic.Bool // dropped for a full queue, not because the peer left
}

func (g *gorillaServer) echo(w http.ResponseWriter, r *http.Request) {
	c, err := g.up.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade already answered with an HTTP error
	}
	defer c.Close()
	for {
		mt, p, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(mt, p); err != nil {
			return
		}
	}
}

func (g *gorillaServer) fanout(w http.ResponseWriter, r *http.Request) {
	c, err := g.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	cl := &gorillaClient{c: c, send: make(chan *websocket.PreparedMessage, gorillaSendQueue)}
	g.mu.Lock()
	g.clients[cl] = struct{}{}
	g.mu.Unlock()
	go g.writer(cl)
	defer g.drop(cl)
	for {
		mt, p, err := c.ReadMessage()
		if err != nil {
			return
		}
		pm, err := websocket.NewPreparedMessage(mt, p)
		if err != nil {
			return
		}
		g.broadcast(pm)
	}
}

// broadcast hands pm to every client without blocking; a client whose queue
// is full is dropped rather than allowed to stall everyone else.
func (g *gorillaServer) broadcast(pm *websocket.PreparedMessage) {
	var slow []*gorillaClient
	g.mu.RLock()
	for cl := range g.clients {
		select {
		case cl.send <- pm:
		default:
			slow = append(slow, cl)
		}
	}
	g.mu.RUnlock()
	for _, cl := range slow {
		cl.slow.Store(true)
		g.log.Debug().Msg("baseline: dropping slow fanout client")
		g.drop(cl)
	}
}

func (g *gorillaServer) drop(cl *gorillaClient) {
	cl.once.Do(func() {
		g.mu.Lock()
		delete(g.clients, cl)
		g.mu.Unlock()
		close(cl.send)
	})
}

func (g *gorillaServer) writer(cl *gorillaClient) {
	defer cl.c.Close()
	for pm := range cl.send {
		if err := cl.c.WritePreparedMessage(pm); err != nil {
			g.drop(cl)
			// Drain so broadcasters never see a full queue of a dead client.
			for range cl.send {
			}
			return
		}
	}
	if cl.slow.Load() {
		_ = cl.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "slow"), timeNowPlus(closeWait))
	}
}
