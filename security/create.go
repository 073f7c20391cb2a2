// Package security holds Orbit's TLS material: it creates a certificate
// authority, node certificates and client certificates (the files `orbit
// cert` writes), and loads a certificates directory into a Store that hands
// out tls.Configs whose certificates can be reloaded while the server runs.
//
// A certificates directory holds:
//
//	ca.crt                    the CA certificate every node and client trusts
//	node.crt, node.key        this node's certificate: server and client at once
//	client.USER.crt/.key      a client's certificate (CN = USER)
//
// The CA's key lives elsewhere (--ca-key), as CockroachDB keeps it: whoever
// holds it can mint nodes, so it need not sit on every server.
//
// Keys are ECDSA P-256, written 0600 in PKCS#8 PEM; certificates 0644.
// Only Go's standard library is used. This is the production edge, outside
// the runtime contract (real files, the wall clock for validity periods,
// crypto/rand for keys and serials); the simulator never needs TLS.
package security

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// File names inside a certificates directory.
const (
	CACertFile   = "ca.crt"
	NodeCertFile = "node.crt"
	NodeKeyFile  = "node.key"
	// NodeCommonName is the CN of every node certificate; peers of the
	// gRPC network must present it.
	NodeCommonName = "node"
)

// Default lifetimes, as CockroachDB's: ten years for the CA, five for the
// certificates it signs.
const (
	DefaultCALifetime   = 87600 * time.Hour
	DefaultCertLifetime = 43800 * time.Hour
)

// clockSkew back-dates NotBefore, so that a certificate made on one machine
// is valid at once on another whose clock is a little behind.
const clockSkew = time.Hour

// Errors, to be matched with errors.Is.
var (
	// ErrExists: a file to be written exists and overwrite was not asked
	// for. Nothing was written.
	ErrExists = errors.New("security: file exists (pass overwrite to replace it)")
	// ErrKeyMismatch: the CA key given does not belong to the CA
	// certificate of the directory.
	ErrKeyMismatch = errors.New("security: CA key does not match ca.crt")
	// ErrInvalid: a file is not the PEM certificate or key expected, a
	// certificate does not chain to the CA, or an argument is unusable.
	ErrInvalid = errors.New("security: invalid TLS material")
)

// ClientCertFile and ClientKeyFile name user's client certificate files.
func ClientCertFile(user string) string { return "client." + user + ".crt" }
func ClientKeyFile(user string) string  { return "client." + user + ".key" }

// CreateCA writes a new CA: dir/ca.crt and its key at keyPath.
func CreateCA(dir, keyPath string, lifetime time.Duration, overwrite bool) error {
	certPath := filepath.Join(dir, CACertFile)
	if err := checkWritable(overwrite, certPath, keyPath); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl, err := template("Orbit CA", lifetime)
	if err != nil {
		return err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	return writePair(certPath, keyPath, der, key)
}

// CreateNode writes dir/node.crt and dir/node.key, signed by the CA of
// dir/ca.crt with the key at caKeyPath: usable as a server (for clients and
// peers) and as a client (dialling peers). Hosts become the subject's
// alternative names (IP addresses as IP SANs, the rest as DNS names); a peer
// dials a node by the host of its address, so list every name and address
// it is reached by.
func CreateNode(dir, caKeyPath string, hosts []string, lifetime time.Duration, overwrite bool) error {
	if len(hosts) == 0 {
		return fmt.Errorf("%w: a node certificate needs at least one host", ErrInvalid)
	}
	tmpl, err := template(NodeCommonName, lifetime)
	if err != nil {
		return err
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return signInto(dir, caKeyPath, tmpl, filepath.Join(dir, NodeCertFile), filepath.Join(dir, NodeKeyFile), overwrite)
}

// CreateClient writes dir/client.USER.crt and .key: a client certificate
// whose CN is user, signed by the CA.
func CreateClient(dir, caKeyPath, user string, lifetime time.Duration, overwrite bool) error {
	if user == "" || strings.ContainsAny(user, `/\`) || user != strings.TrimSpace(user) {
		return fmt.Errorf("%w: user %q (want a name without slashes or surrounding spaces)", ErrInvalid, user)
	}
	tmpl, err := template(user, lifetime)
	if err != nil {
		return err
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return signInto(dir, caKeyPath, tmpl, filepath.Join(dir, ClientCertFile(user)), filepath.Join(dir, ClientKeyFile(user)), overwrite)
}

// template is a leaf or CA certificate's common part: a random 128-bit
// serial (RFC 5280 allows up to 20 octets; randomness keeps two CAs made
// by mistake from issuing equal serials), a validity back-dated by
// clockSkew.
func template(cn string, lifetime time.Duration) (*x509.Certificate, error) {
	if lifetime <= 0 {
		return nil, fmt.Errorf("%w: lifetime %v (want positive)", ErrInvalid, lifetime)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Orbit"}},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     now.Add(lifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}, nil
}

// signInto signs tmpl with the directory's CA and writes the certificate
// and a new key. A lifetime past the CA's end is cut to it: the
// certificate could not be verified beyond that anyway.
func signInto(dir, caKeyPath string, tmpl *x509.Certificate, certPath, keyPath string, overwrite bool) error {
	if err := checkWritable(overwrite, certPath, keyPath); err != nil {
		return err
	}
	ca, caKey, err := loadCA(dir, caKeyPath)
	if err != nil {
		return err
	}
	if tmpl.NotAfter.After(ca.NotAfter) {
		tmpl.NotAfter = ca.NotAfter
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	return writePair(certPath, keyPath, der, key)
}

// loadCA reads dir/ca.crt and the CA key, and checks they belong together.
func loadCA(dir, keyPath string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	ca, err := readCert(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, nil, err
	}
	if !ca.IsCA {
		return nil, nil, fmt.Errorf("%w: %s is not a CA certificate", ErrInvalid, filepath.Join(dir, CACertFile))
	}
	b, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, nil, fmt.Errorf("%w: %s holds no PEM key", ErrInvalid, keyPath)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrInvalid, keyPath, err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(ca.PublicKey) {
		return nil, nil, fmt.Errorf("%w (%s)", ErrKeyMismatch, keyPath)
	}
	return ca, key, nil
}

// readCert parses the first PEM certificate of path.
func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: %s holds no PEM certificate", ErrInvalid, path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, path, err)
	}
	return cert, nil
}

// checkWritable refuses, before anything is written, when a path exists
// and overwrite is off: a half-replaced pair would be worse than none.
func checkWritable(overwrite bool, paths ...string) error {
	if overwrite {
		return nil
	}
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%w: %s", ErrExists, p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// writePair writes the key (0600) then the certificate (0644), each
// through a temporary file renamed into place, so that a server reloading
// meanwhile reads the old file or the new one, never half of one.
func writePair(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writeAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*") // created 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
