package security

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"sync/atomic"
)

// Store is a certificates directory loaded for a server: the CA, and the
// node's certificate and key. The tls.Configs it hands out read the
// current material at each handshake, so that Reload (a renewed node
// certificate, a new CA) takes effect for new connections without a
// restart; connections already open keep what they negotiated.
type Store struct {
	dir string
	// Invariant: never nil after Load; the node certificate chains to the
	// CA, for server and client use alike.
	cur atomic.Pointer[material]
}

// material is one consistent reading of the directory.
type material struct {
	ca   *x509.Certificate
	pool *x509.CertPool // holds ca alone
	node tls.Certificate
}

// Load reads dir/ca.crt, dir/node.crt and dir/node.key, and checks that the
// node certificate chains to the CA.
func Load(dir string) (*Store, error) {
	m, err := loadMaterial(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir}
	s.cur.Store(m)
	return s, nil
}

// Reload reads the directory again. On failure the material in use stays,
// and the error says why: a half-copied renewal must not take a running
// server's certificates away.
func (s *Store) Reload() error {
	m, err := loadMaterial(s.dir)
	if err != nil {
		return err
	}
	s.cur.Store(m)
	return nil
}

// Dir is the certificates directory.
func (s *Store) Dir() string { return s.dir }

// NodeCert is the node certificate in use (to log its serial and expiry).
func (s *Store) NodeCert() *x509.Certificate { return s.cur.Load().node.Leaf }

// CAPool is the CA in use, as a pool for RootCAs or ClientCAs.
func (s *Store) CAPool() *x509.CertPool { return s.cur.Load().pool }

// LoadCA reads dir/ca.crt alone, as a pool for RootCAs: what a client
// (orbit node, a test) needs to trust a node.
func LoadCA(dir string) (*x509.CertPool, error) {
	ca, err := readCert(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, nil
}

func loadMaterial(dir string) (*material, error) {
	ca, err := readCert(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, err
	}
	if !ca.IsCA {
		return nil, fmt.Errorf("%w: %s is not a CA certificate", ErrInvalid, filepath.Join(dir, CACertFile))
	}
	certPath, keyPath := filepath.Join(dir, NodeCertFile), filepath.Join(dir, NodeKeyFile)
	node, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %s, %s: %v", ErrInvalid, certPath, keyPath, err)
	}
	// LoadX509KeyPair fills Leaf since Go 1.23.
	if node.Leaf == nil {
		if node.Leaf, err = x509.ParseCertificate(node.Certificate[0]); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, NodeCertFile, err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	// The node certificate serves clients and peers and dials peers: it
	// must verify for both uses, or the failure would only show at the
	// first handshake.
	for _, use := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := node.Leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{use}}); err != nil {
			return nil, fmt.Errorf("%w: %s does not verify against %s: %v", ErrInvalid,
				filepath.Join(dir, NodeCertFile), filepath.Join(dir, CACertFile), err)
		}
	}
	return &material{ca: ca, pool: pool, node: node}, nil
}

// ServerConfig is a server's TLS configuration: TLS 1.2 or later, the
// current node certificate, and client certificates checked against the
// current CA as clientAuth says (tls.VerifyClientCertIfGiven: optional;
// tls.RequireAndVerifyClientCert: mutual TLS).
//
// Each handshake runs on a clone of the returned config, made at that
// moment (GetConfigForClient) with the current CA as ClientCAs: fields the
// caller sets on the returned config before serving (VerifyConnection,
// NextProtos) apply. Fields set only on a clone of it do not, unless the
// cloner wraps GetConfigForClient as gRPC's credentials.NewTLS does
// (net/http's ServeTLS does not: its ALPN "h2" is lost, and HTTPS is
// HTTP/1.1).
func (s *Store) ServerConfig(clientAuth tls.ClientAuthType) *tls.Config {
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		ClientAuth:     clientAuth,
		GetCertificate: s.certificate,
	}
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c := cfg.Clone()
		c.GetConfigForClient = nil
		c.ClientCAs = s.cur.Load().pool
		return c, nil
	}
	return cfg
}

// ClientConfig is a client's TLS configuration for dialling a node: the
// current node certificate as the client certificate, the current CA as
// the only root. ServerName is the caller's to set (the host dialled).
// The CA is read now: take a new ClientConfig after a Reload to trust a
// new CA.
func (s *Store) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS12,
		RootCAs:              s.cur.Load().pool,
		GetClientCertificate: s.clientCertificate,
	}
}

func (s *Store) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return &s.cur.Load().node, nil
}

func (s *Store) clientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return &s.cur.Load().node, nil
}
