package jepsen

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/orbitkernel/orbit/security"
)

// clusterTLS is how the harness runs a cluster with TLS on (Config.TLS):
// a certificates directory it makes in the run's directory (a CA, a node
// certificate for 127.0.0.1, a client certificate "root"), given to every
// node with --certs-dir, and the client side of it, which every client
// of the harness uses: go-redis, pgx (sslmode=verify-full's checks), the
// actor service's gRPC client, and HTTPS (the admin endpoints take the
// client certificate). The fault proxy between nodes carries their mutual
// TLS as bytes.
type clusterTLS struct {
	dir    string
	client *tls.Config // trusts the CA, presents client.root
	web    *http.Client
}

func newClusterTLS(outDir string) (*clusterTLS, error) {
	dir, caKey := filepath.Join(outDir, "certs"), filepath.Join(outDir, "ca.key")
	const lifetime = 24 * time.Hour
	if err := security.CreateCA(dir, caKey, lifetime, true); err != nil {
		return nil, err
	}
	if err := security.CreateNode(dir, caKey, []string{"127.0.0.1", "localhost"}, lifetime, true); err != nil {
		return nil, err
	}
	if err := security.CreateClient(dir, caKey, "root", lifetime, true); err != nil {
		return nil, err
	}
	pool, err := security.LoadCA(dir)
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, security.ClientCertFile("root")), filepath.Join(dir, security.ClientKeyFile("root")))
	if err != nil {
		return nil, fmt.Errorf("the harness's client certificate: %w", err)
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1"}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = conf
	return &clusterTLS{dir: dir, client: conf, web: &http.Client{Transport: tr}}, nil
}

// serverFlags are the flags a node runs with.
func (t *clusterTLS) serverFlags() []string {
	if t == nil {
		return nil
	}
	return []string{"--certs-dir", t.dir}
}

// clientConfig is the TLS configuration of a client of a node (nil: plain).
func (t *clusterTLS) clientConfig() *tls.Config {
	if t == nil {
		return nil
	}
	return t.client.Clone()
}

// url is path on n's HTTP address, over HTTPS when TLS is on.
func (n *node) url(path string) string {
	if n.tls == nil {
		return "http://" + n.httpAddr + path
	}
	return "https://" + n.httpAddr + path
}

// web is the HTTP client for n.
func (n *node) web() *http.Client {
	if n.tls == nil {
		return http.DefaultClient
	}
	return n.tls.web
}
