package grpcnet

import (
	"crypto/tls"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/security"
)

// tlsStore makes a CA and a node certificate for 127.0.0.1 in a fresh
// directory and loads it.
func tlsStore(t *testing.T) *security.Store {
	t.Helper()
	dir, caKey := t.TempDir(), filepath.Join(t.TempDir(), "ca.key")
	if err := security.CreateCA(dir, caKey, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	if err := security.CreateNode(dir, caKey, []string{"127.0.0.1"}, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	s, err := security.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tlsOptions are fastOptions with mutual TLS from s.
func tlsOptions(s *security.Store, self kernel.NodeID) Options {
	o := fastOptions(self, "127.0.0.1:0")
	o.ServerTLS = s.ServerConfig(tls.RequireAndVerifyClientCert)
	o.ClientTLS = s.ClientConfig
	return o
}

// TestMutualTLS: nodes with certificates of one CA exchange messages; a
// node of another CA, and a plaintext one, get no stream, and the dialler
// is told why.
func TestMutualTLS(t *testing.T) {
	s := tlsStore(t)
	a, b := startNode(t, tlsOptions(s, 1)), startNode(t, tlsOptions(s, 2))
	defer a.stop()
	defer b.stop()
	if err := a.tr.SetPeer(2, b.tr.Addr()); err != nil {
		t.Fatal(err)
	}
	a.send(2, seq(1))
	if env := b.recv(t, 5*time.Second); env.From != 1 || unseq(t, env.Body) != 1 {
		t.Fatalf("got %+v", env)
	}

	foreign := startNode(t, tlsOptions(tlsStore(t), 3))
	defer foreign.stop()
	plain := startNode(t, fastOptions(4, "127.0.0.1:0"))
	defer plain.stop()
	for _, n := range []*testNode{foreign, plain} {
		if err := n.tr.SetPeer(2, b.tr.Addr()); err != nil {
			t.Fatal(err)
		}
		n.send(2, seq(2))
	}
	eventually(t, 5*time.Second, "the foreign node's dial fails on the certificate", func() bool {
		return strings.Contains(peerStats(foreign.tr, 2).LastError, "certificate")
	})
	eventually(t, 5*time.Second, "the plaintext node's dial fails", func() bool {
		return peerStats(plain.tr, 2).LastError != ""
	})
	if ps := peerStats(foreign.tr, 2); ps.Connected {
		t.Error("a node of another CA connected")
	}
	if ps := peerStats(plain.tr, 2); ps.Connected {
		t.Error("a plaintext node connected to a TLS listener")
	}
}

func TestTLSOptionsTogether(t *testing.T) {
	o := tlsOptions(tlsStore(t), 1)
	o.ClientTLS = nil
	o.EnsureDefaults()
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "ServerTLS and ClientTLS") {
		t.Errorf("ServerTLS without ClientTLS: %v", err)
	}
}
