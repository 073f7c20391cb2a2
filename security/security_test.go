package security

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const hour = time.Hour

// newCerts makes a CA, a node certificate for 127.0.0.1 and localhost, and
// a client certificate for "alice" in a fresh directory; it returns the
// directory and the CA key's path.
func newCerts(t *testing.T) (dir, caKey string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "certs")
	caKey = filepath.Join(t.TempDir(), "safe", "ca.key")
	if err := CreateCA(dir, caKey, 24*hour, false); err != nil {
		t.Fatal(err)
	}
	if err := CreateNode(dir, caKey, []string{"127.0.0.1", "localhost"}, 24*hour, false); err != nil {
		t.Fatal(err)
	}
	if err := CreateClient(dir, caKey, "alice", 24*hour, false); err != nil {
		t.Fatal(err)
	}
	return dir, caKey
}

// handshake runs a TLS handshake over an in-memory pipe and returns the
// client's view and the server's and the client's errors.
func handshake(server, client *tls.Config) (cs tls.ConnectionState, serverErr, clientErr error) {
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() {
		sc := tls.Server(a, server)
		err := sc.Handshake()
		if err == nil {
			// TLS 1.3 delivers the server's verdict on the client's
			// certificate with the first read: read once.
			_, err = sc.Write([]byte{1})
		}
		a.Close()
		done <- err
	}()
	cc := tls.Client(b, client)
	clientErr = cc.Handshake()
	if clientErr == nil {
		_, clientErr = cc.Read(make([]byte, 1))
		cs = cc.ConnectionState()
	}
	b.Close()
	return cs, <-done, clientErr
}

func TestFilesAndModes(t *testing.T) {
	dir, caKey := newCerts(t)
	for path, mode := range map[string]os.FileMode{
		filepath.Join(dir, CACertFile): 0o644, caKey: 0o600,
		filepath.Join(dir, NodeCertFile): 0o644, filepath.Join(dir, NodeKeyFile): 0o600,
		filepath.Join(dir, ClientCertFile("alice")): 0o644, filepath.Join(dir, ClientKeyFile("alice")): 0o600,
	} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), mode)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "ca.key")); err == nil {
		t.Error("the CA key was written into the certificates directory")
	}
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	leaf := s.NodeCert()
	if leaf.Subject.CommonName != NodeCommonName || len(leaf.IPAddresses) != 1 || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "localhost" {
		t.Errorf("node certificate: CN %q, IPs %v, DNS %v", leaf.Subject.CommonName, leaf.IPAddresses, leaf.DNSNames)
	}
	if leaf.SerialNumber.BitLen() < 64 {
		t.Errorf("serial %v: want a random 128-bit number", leaf.SerialNumber)
	}
}

func TestMutualTLS(t *testing.T) {
	dir, _ := newCerts(t)
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	client := s.ClientConfig()
	client.ServerName = "127.0.0.1"
	cs, serr, cerr := handshake(s.ServerConfig(tls.RequireAndVerifyClientCert), client)
	if serr != nil || cerr != nil {
		t.Fatalf("mutual handshake: server %v, client %v", serr, cerr)
	}
	if cs.PeerCertificates[0].Subject.CommonName != NodeCommonName {
		t.Errorf("server presented CN %q", cs.PeerCertificates[0].Subject.CommonName)
	}
	// A name the certificate does not carry fails the client's check.
	client.ServerName = "elsewhere.example"
	if _, _, cerr := handshake(s.ServerConfig(tls.RequireAndVerifyClientCert), client); cerr == nil {
		t.Error("a server name outside the SANs was accepted")
	}
	// A user's client certificate is accepted too (chains to the CA).
	alice, err := tls.LoadX509KeyPair(filepath.Join(dir, ClientCertFile("alice")), filepath.Join(dir, ClientKeyFile("alice")))
	if err != nil {
		t.Fatal(err)
	}
	user := &tls.Config{RootCAs: s.CAPool(), ServerName: "localhost", Certificates: []tls.Certificate{alice}}
	if _, serr, cerr := handshake(s.ServerConfig(tls.RequireAndVerifyClientCert), user); serr != nil || cerr != nil {
		t.Fatalf("client certificate: server %v, client %v", serr, cerr)
	}
}

func TestForeignClientRefused(t *testing.T) {
	dir, _ := newCerts(t)
	other, _ := newCerts(t)
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := Load(other)
	if err != nil {
		t.Fatal(err)
	}
	// Trusts our CA, but presents a certificate of another CA.
	client := foreign.ClientConfig()
	client.RootCAs = s.CAPool()
	client.ServerName = "localhost"
	for _, auth := range []tls.ClientAuthType{tls.RequireAndVerifyClientCert, tls.VerifyClientCertIfGiven} {
		if _, serr, _ := handshake(s.ServerConfig(auth), client); serr == nil {
			t.Errorf("%v: a client certificate of another CA was accepted", auth)
		}
	}
	// Without a certificate: refused when required, accepted when optional.
	bare := &tls.Config{RootCAs: s.CAPool(), ServerName: "localhost"}
	if _, serr, _ := handshake(s.ServerConfig(tls.RequireAndVerifyClientCert), bare); serr == nil {
		t.Error("mutual TLS accepted a client without a certificate")
	}
	if _, serr, cerr := handshake(s.ServerConfig(tls.VerifyClientCertIfGiven), bare); serr != nil || cerr != nil {
		t.Errorf("optional client certificate: server %v, client %v", serr, cerr)
	}
}

func TestReload(t *testing.T) {
	dir, caKey := newCerts(t)
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	server := s.ServerConfig(tls.RequireAndVerifyClientCert)
	client := s.ClientConfig()
	client.ServerName = "localhost"
	before, _, _ := handshake(server, client)
	if err := CreateNode(dir, caKey, []string{"localhost"}, 24*hour, true); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	after, serr, cerr := handshake(server, client)
	if serr != nil || cerr != nil {
		t.Fatalf("after reload: server %v, client %v", serr, cerr)
	}
	if before.PeerCertificates[0].SerialNumber.Cmp(after.PeerCertificates[0].SerialNumber) == 0 {
		t.Error("a new handshake still presented the certificate from before Reload")
	}
	if after.PeerCertificates[0].SerialNumber.Cmp(s.NodeCert().SerialNumber) != 0 {
		t.Error("NodeCert is not the certificate presented")
	}

	// A broken directory: Reload fails and the material in use stays.
	serial := s.NodeCert().SerialNumber
	if err := os.WriteFile(filepath.Join(dir, NodeKeyFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Reload of a broken key: %v, want ErrInvalid", err)
	}
	if s.NodeCert().SerialNumber.Cmp(serial) != 0 {
		t.Error("a failed Reload replaced the material")
	}
	if _, serr, cerr := handshake(server, client); serr != nil || cerr != nil {
		t.Fatalf("after a failed reload: server %v, client %v", serr, cerr)
	}
}

func TestOverwriteRefused(t *testing.T) {
	dir, caKey := newCerts(t)
	caBefore, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	if err := CreateCA(dir, caKey, hour, false); !errors.Is(err, ErrExists) {
		t.Errorf("CreateCA over an existing CA: %v, want ErrExists", err)
	}
	if err := CreateNode(dir, caKey, []string{"localhost"}, hour, false); !errors.Is(err, ErrExists) {
		t.Errorf("CreateNode over an existing node: %v, want ErrExists", err)
	}
	if err := CreateClient(dir, caKey, "alice", hour, false); !errors.Is(err, ErrExists) {
		t.Errorf("CreateClient over an existing client: %v, want ErrExists", err)
	}
	if caAfter, _ := os.ReadFile(filepath.Join(dir, CACertFile)); string(caAfter) != string(caBefore) {
		t.Error("a refused CreateCA changed ca.crt")
	}
	// With overwrite, a new CA replaces the old; the old node certificate
	// then no longer loads.
	if err := CreateCA(dir, caKey, hour, true); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); !errors.Is(err, ErrInvalid) {
		t.Errorf("Load with a node certificate of the old CA: %v, want ErrInvalid", err)
	}
}

func TestWrongCAKey(t *testing.T) {
	dir, _ := newCerts(t)
	_, otherKey := newCerts(t)
	if err := CreateClient(dir, otherKey, "bob", hour, false); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("signing with another CA's key: %v, want ErrKeyMismatch", err)
	}
	if err := CreateNode(dir, otherKey, nil, hour, false); !errors.Is(err, ErrInvalid) {
		t.Errorf("a node without hosts: %v, want ErrInvalid", err)
	}
}
