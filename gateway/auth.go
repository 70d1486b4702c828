package gateway

import (
	"bytes"
	"errors"
	"net/url"
	"slices"

	"github.com/golang-jwt/jwt/v5"

	"github.com/huntgate/huntgate/state"
)

// Authentication errors. All of them refuse the upgrade with HTTP 401.
var (
	ErrNoCredentials = errors.New("gateway: no token")
	ErrBadToken      = errors.New("gateway: invalid token")
	ErrBadPlayerID   = errors.New("gateway: invalid player id")
)

// Identity is who a connection acts as.
type Identity struct {
	Player string
	// Hunts lists the hunts the player may join; nil means any.
	Hunts []string
}

// Allows reports whether the identity may join hunt.
func (id *Identity) Allows(hunt []byte) bool {
	if id.Hunts == nil {
		return true
	}
	for _, h := range id.Hunts {
		if h == string(hunt) {
			return true
		}
	}
	return false
}

// ValidPlayerID reports whether s is 1-64 chars of [A-Za-z0-9_.-]: player
// ids follow the same rule as hunt ids (state.ValidID).
func ValidPlayerID(s string) bool { return state.ValidID(s) }

// PlayerClaims are the claims of a player token.
type PlayerClaims struct {
	// Hunts lists the hunts the player may join; nil (absent) means any.
	// An empty list is kept in the token: it allows no hunt, where
	// omitempty would drop it and so allow every hunt.
	Hunts []string `json:"hunts,omitzero"`
	jwt.RegisteredClaims
}

// Authenticator checks player credentials at the handshake.
type Authenticator struct {
	secret []byte
	dev    bool
	parser *jwt.Parser
}

// NewAuthenticator returns an Authenticator for HS256 tokens signed with
// secret ("" accepts no token) that also accepts ?player= when dev is set.
func NewAuthenticator(secret string, dev bool) *Authenticator {
	return &Authenticator{
		secret: []byte(secret),
		dev:    dev,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{"HS256"}),
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(0),
		),
	}
}

// SignToken returns an HS256 player token; for tests, tools and the demo.
func SignToken(secret string, c PlayerClaims) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, &c).SignedString([]byte(secret))
}

// VerifyToken validates a compact JWT and returns the identity in it.
func (a *Authenticator) VerifyToken(token string) (Identity, error) {
	if len(a.secret) == 0 {
		return Identity{}, ErrBadToken
	}
	var c PlayerClaims
	_, err := a.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return a.secret, nil })
	if err != nil {
		return Identity{}, errors.Join(ErrBadToken, err)
	}
	if !ValidPlayerID(c.Subject) {
		return Identity{}, ErrBadPlayerID
	}
	id := Identity{Player: c.Subject}
	if c.Hunts != nil {
		id.Hunts = slices.Clip(c.Hunts)
	}
	return id, nil
}

// Authenticate reads the credentials of an upgrade request: ?token=, then
// "Authorization: Bearer", then (dev mode only) ?player=.
func (a *Authenticator) Authenticate(rawQuery, authorization []byte) (Identity, error) {
	q, _ := url.ParseQuery(string(rawQuery))
	if t := q.Get("token"); t != "" {
		return a.VerifyToken(t)
	}
	if t, ok := bearer(authorization); ok {
		return a.VerifyToken(string(t))
	}
	if a.dev {
		if p := q.Get("player"); p != "" {
			if !ValidPlayerID(p) {
				return Identity{}, ErrBadPlayerID
			}
			return Identity{Player: p}, nil
		}
	}
	return Identity{}, ErrNoCredentials
}

// bearer extracts the token of an "Authorization: Bearer <token>" value.
func bearer(v []byte) ([]byte, bool) {
	v = bytes.TrimSpace(v)
	const p = "bearer "
	if len(v) <= len(p) || !bytes.EqualFold(v[:len(p)], []byte(p)) {
		return nil, false
	}
	t := bytes.TrimSpace(v[len(p):])
	return t, len(t) > 0
}
