package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/orbitkernel/orbit/security"
)

// TLS for orbit serve (docs/security.md): with --certs-dir, RESP and HTTP
// are served over TLS (a client certificate is optional, and checked
// against the CA when given) and the gRPC links between nodes use mutual
// TLS with node certificates. Without it, every listener must be on
// loopback unless --insecure says the network is trusted.

// errExposed is returned when a plaintext listener would face the network.
var errExposed = errors.New("is not a loopback address: without TLS anyone who reaches it can read and write every key; give --certs-dir DIR (made with orbit cert) or, on a network you trust, --insecure")

// checkExposure refuses, without --certs-dir or --insecure, a listen
// address off loopback: flag names the flag it came from.
func (cfg serveConfig) checkExposure(flag, addr string) error {
	if cfg.certsDir != "" || cfg.insecure || addr == "" || isLoopback(addr) {
		return nil
	}
	return fmt.Errorf("%s %s %w", flag, addr, errExposed)
}

// isLoopback reports whether addr (HOST:PORT) listens on loopback only:
// 127.0.0.0/8, ::1 or localhost. An empty host ("[::]:6379", ":6379")
// listens on every interface; other names are not resolved, and so are
// not taken for loopback.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serveTLS is the TLS configurations of one node's listeners, from its
// certificates directory; nil (no --certs-dir) means plaintext.
type serveTLS struct {
	store *security.Store
}

// loadTLS loads --certs-dir, if given.
func loadTLS(cfg serveConfig) (*serveTLS, error) {
	if cfg.certsDir == "" {
		return nil, nil
	}
	s, err := security.Load(cfg.certsDir)
	if err != nil {
		return nil, fmt.Errorf("--certs-dir %s: %w", cfg.certsDir, err)
	}
	return &serveTLS{store: s}, nil
}

// clientFacing is the configuration of RESP and HTTP: server TLS, and a
// client certificate checked if given (no user is authenticated by it
// yet; issue 18).
func (t *serveTLS) clientFacing() *tls.Config {
	if t == nil {
		return nil
	}
	return t.store.ServerConfig(tls.VerifyClientCertIfGiven)
}

// listen wraps a listener in TLS when the node has certificates.
func (t *serveTLS) listen(ln net.Listener) net.Listener {
	if t == nil {
		return ln
	}
	return tls.NewListener(ln, t.clientFacing())
}

// peerServer is the gRPC listener's configuration: mutual TLS, and the
// client must be a node (CN "node"), not a user's client certificate of
// the same CA.
func (t *serveTLS) peerServer() *tls.Config {
	if t == nil {
		return nil
	}
	cfg := t.store.ServerConfig(tls.RequireAndVerifyClientCert)
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 || cs.PeerCertificates[0].Subject.CommonName != security.NodeCommonName {
			return errors.New("orbit: a peer must present a node certificate (CN \"node\")")
		}
		return nil
	}
	return cfg
}

// peerClient gives grpcnet a fresh client configuration per dial; nil
// without certificates.
func (t *serveTLS) peerClient() func() *tls.Config {
	if t == nil {
		return nil
	}
	return t.store.ClientConfig
}

// web is how this node reaches other nodes' HTTP addresses (--join),
// sending token (the admin token, if any) with its requests.
func (t *serveTLS) web(token string) webClient {
	if t == nil {
		return webClient{scheme: "http", client: http.DefaultClient, token: token}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = t.store.ClientConfig()
	return webClient{scheme: "https", client: &http.Client{Transport: tr}, token: token}
}

// reloadOnHangup re-reads the certificates directory at each SIGHUP until
// ctx ends, and logs the outcome; a failed reload keeps the certificates
// in use, and the server runs on either way.
func (t *serveTLS) reloadOnHangup(ctx context.Context, logger *slog.Logger) {
	if t == nil {
		return
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			if err := t.store.Reload(); err != nil {
				logger.Error("orbit serve: SIGHUP: certificates not reloaded; keeping those in use", "dir", t.store.Dir(), "err", err)
				continue
			}
			c := t.store.NodeCert()
			logger.Info("orbit serve: SIGHUP: certificates reloaded; new connections use them",
				"dir", t.store.Dir(), "serial", c.SerialNumber.Text(16), "expires", c.NotAfter)
		}
	}()
}

// webClient reaches a node's HTTP address: plain HTTP, or HTTPS trusting
// the cluster's CA (and presenting a certificate), with the admin token
// if one is set.
type webClient struct {
	scheme string // "http" or "https"
	client *http.Client
	token  string // sent as "Authorization: Bearer token" ("": none)
}

// do sends req with the admin token.
func (w webClient) do(req *http.Request) (*http.Response, error) {
	if w.token != "" {
		req.Header.Set("Authorization", "Bearer "+w.token)
	}
	return w.client.Do(req)
}

// operatorWeb is orbit node's client: plain HTTP without certsDir, else
// HTTPS trusting certsDir's ca.crt and presenting the first certificate
// found there of client.root.crt/key and node.crt/key (the admin
// endpoints take either); token, if set, goes with every request.
func operatorWeb(certsDir, token string) (webClient, error) {
	if certsDir == "" {
		return webClient{scheme: "http", client: http.DefaultClient, token: token}, nil
	}
	pool, err := security.LoadCA(certsDir)
	if err != nil {
		return webClient{}, fmt.Errorf("--certs-dir %s: %w", certsDir, err)
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	for _, name := range []string{"client.root", "node"} {
		cert, err := tls.LoadX509KeyPair(filepath.Join(certsDir, name+".crt"), filepath.Join(certsDir, name+".key"))
		if err == nil {
			conf.Certificates = []tls.Certificate{cert}
			break
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = conf
	return webClient{scheme: "https", client: &http.Client{Transport: tr}, token: token}, nil
}

// plainWeb is plain HTTP with Go's default client.
var plainWeb = webClient{scheme: "http", client: http.DefaultClient}

// url is the URL of path (with its query) on the node at addr.
func (w webClient) url(addr, path string) string { return w.scheme + "://" + addr + path }
