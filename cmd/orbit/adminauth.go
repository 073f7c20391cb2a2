package main

import (
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// adminGuard decides who may use the HTTP endpoints that change the
// cluster (POST /join, /remove, /split, /merge, /transfer, /test/clock;
// docs/security.md, "The admin endpoints"): a client whose TLS
// certificate chains to the cluster's CA (a node certificate, or one of
// orbit cert create-client), or one that sends the admin token
// (`--admin-token`) as "Authorization: Bearer TOKEN". A node with neither
// TLS nor a token keeps the plain mode's rule: whoever reaches the HTTP
// address (loopback unless --insecure) may. Refusals answer 401, are
// counted and logged (authFailures).
type adminGuard struct {
	token    string
	tls      bool
	failures *authFailures
}

// guarded wraps an admin endpoint.
func (g *adminGuard) guarded(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if why := g.refusal(r); why != "" {
			g.failures.note("http", "path", r.URL.Path, "from", r.RemoteAddr, "why", why)
			w.Header().Set("WWW-Authenticate", `Bearer realm="orbit admin"`)
			http.Error(w, "unauthorized: "+why, http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

// refusal says why r may not change the cluster ("": it may).
func (g *adminGuard) refusal(r *http.Request) string {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return "" // a certificate of the cluster's CA
	}
	if g.token != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if ok && subtle.ConstantTimeCompare([]byte(got), []byte(g.token)) == 1 {
			return ""
		}
		if ok {
			return "wrong admin token"
		}
	}
	switch {
	case g.token != "" && g.tls:
		return "send a client certificate of the cluster's CA or the admin token (Authorization: Bearer ...)"
	case g.token != "":
		return "send the admin token (Authorization: Bearer ...)"
	case g.tls:
		return "send a client certificate of the cluster's CA (orbit cert create-client)"
	}
	return ""
}

// authFailures counts failed authentications by listener
// (orbit_auth_failures_total) and logs them, at most one line a second
// (a scan of a port, or a client retrying a wrong password, must not
// flood the log): the line says how many were not logged since.
type authFailures struct {
	counter *prometheus.CounterVec
	logger  *slog.Logger

	mu         sync.Mutex
	lastLog    time.Time
	suppressed int
}

// note counts one failure on listener and logs it with attrs, unless a
// line went out less than a second ago.
func (a *authFailures) note(listener string, attrs ...any) {
	a.counter.WithLabelValues(listener).Inc()
	a.mu.Lock()
	now := time.Now()
	if now.Sub(a.lastLog) < time.Second {
		a.suppressed++
		a.mu.Unlock()
		return
	}
	suppressed := a.suppressed
	a.lastLog, a.suppressed = now, 0
	a.mu.Unlock()
	a.logger.Warn("orbit serve: authentication failed", append([]any{"listener", listener, "failures_not_logged", suppressed}, attrs...)...)
}
