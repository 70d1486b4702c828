package gateway

import (
	"embed"
	"net/http"
	"strconv"
	"strings"

	huntgatejs "github.com/huntgate/huntgate/clients/js"
)

// The player port answers a few plain HTTP GET and HEAD requests besides
// the WebSocket upgrades (conn.Config.Static): the SDK at /sdk/huntgate.js in
// every mode, and in development mode the play page at /. Everything is
// embedded and its responses are built once, at start, so serving one is a
// map lookup and a write from the loop, with nothing read from disk. The
// admin listener serves the dashboard from the same files.

//go:embed web
var webFiles embed.FS

// staticFile is one file's prebuilt responses.
type staticFile struct{ get, head []byte }

// staticSite is what the player port serves to plain requests.
type staticSite struct {
	files    map[string]staticFile
	notFound staticFile
}

// Content-Security-Policy of the pages: their scripts and styles come from
// the gateway only, and they connect back to it over WebSocket or HTTP.
const pageCSP = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"

// staticResponse builds the response to GET and to HEAD for body; extra
// are more header lines, each ending in CRLF.
func staticResponse(status int, ctype string, body []byte, extra ...string) staticFile {
	h := "HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status) + "\r\n" +
		strings.Join(extra, "") +
		"Content-Type: " + ctype + "\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n" +
		"Cache-Control: no-cache\r\n" +
		"X-Content-Type-Options: nosniff\r\n"
	if ctype == "text/html; charset=utf-8" {
		h += "Content-Security-Policy: " + pageCSP + "\r\n"
	}
	h += "Connection: close\r\n\r\n"
	head := []byte(h)
	return staticFile{get: append(head[:len(head):len(head)], body...), head: head}
}

// mustWebFile reads an embedded file; they are part of the binary, so a
// missing one is a build mistake.
func mustWebFile(name string) []byte {
	b, err := webFiles.ReadFile("web/" + name)
	if err != nil {
		panic("gateway: embedded file missing: " + name)
	}
	return b
}

// Content types of the files served.
const (
	typeJS   = "text/javascript; charset=utf-8"
	typeHTML = "text/html; charset=utf-8"
	typeCSS  = "text/css; charset=utf-8"
)

// newStaticSite builds the player port's plain responses; dev adds the play
// page.
func newStaticSite(dev bool) *staticSite {
	s := &staticSite{
		// A game served from its own origin imports the SDK from the
		// gateway: module scripts are fetched with CORS.
		files:    map[string]staticFile{"/sdk/huntgate.js": staticResponse(http.StatusOK, typeJS, huntgatejs.Source(), "Access-Control-Allow-Origin: *\r\n")},
		notFound: staticResponse(http.StatusNotFound, "text/plain; charset=utf-8", []byte("not found: players connect to /ws\n")),
	}
	if dev {
		s.files["/"] = staticResponse(http.StatusOK, typeHTML, mustWebFile("play.html"))
		s.files["/play.js"] = staticResponse(http.StatusOK, typeJS, mustWebFile("play.js"))
		s.files["/play.css"] = staticResponse(http.StatusOK, typeCSS, mustWebFile("play.css"))
	}
	return s
}

// serve is conn.Config.Static: the response for path, or nil for the
// WebSocket endpoints, whose plain requests the upgrade path refuses as
// before (400 with the reason).
func (s *staticSite) serve(path []byte, head bool) []byte {
	f, ok := s.files[string(path)]
	if !ok {
		if route(path) != epNone {
			return nil
		}
		f = s.notFound
	}
	if head {
		return f.head
	}
	return f.get
}

// dashboard adds the live dashboard to the admin mux: a page and its script
// and style, which poll GET /v1/stats. Like every GET of the admin API it
// needs no key.
func dashboard(mux *http.ServeMux) {
	for path, f := range map[string]struct{ name, ctype string }{
		"/dashboard":     {"dashboard.html", typeHTML},
		"/dashboard.js":  {"dashboard.js", typeJS},
		"/dashboard.css": {"dashboard.css", typeCSS},
	} {
		body := mustWebFile(f.name)
		ctype := f.ctype
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			h.Set("Content-Type", ctype)
			h.Set("Content-Length", strconv.Itoa(len(body)))
			h.Set("Cache-Control", "no-cache")
			h.Set("X-Content-Type-Options", "nosniff")
			if ctype == typeHTML {
				h.Set("Content-Security-Policy", pageCSP)
			}
			_, _ = w.Write(body)
		})
	}
}
