package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/security"
)

// runCert runs `orbit cert ARGS...` and returns its exit code and output.
func runCert(args ...string) (int, string) {
	var out bytes.Buffer
	code := certCommand(args, &out, &out)
	return code, out.String()
}

// makeCerts runs the three cert commands into a fresh directory (a client
// certificate for "root") and returns it and the CA key's path; the node
// certificate names hosts.
func makeCerts(t *testing.T, hosts ...string) (dir, caKey string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "certs")
	caKey = filepath.Join(t.TempDir(), "ca.key")
	for _, args := range [][]string{
		{"create-ca", "--certs-dir", dir, "--ca-key", caKey},
		append(append([]string{"create-node"}, hosts...), "--certs-dir", dir, "--ca-key", caKey),
		{"create-client", "root", "--certs-dir", dir, "--ca-key", caKey},
	} {
		if code, out := runCert(args...); code != 0 {
			t.Fatalf("orbit cert %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
	}
	return dir, caKey
}

func TestCertCommands(t *testing.T) {
	dir, _ := makeCerts(t, "127.0.0.1", "localhost")
	s, err := security.Load(dir)
	if err != nil {
		t.Fatalf("loading what orbit cert wrote: %v", err)
	}
	if ips := s.NodeCert().IPAddresses; len(ips) != 1 || ips[0].String() != "127.0.0.1" {
		t.Errorf("node certificate IPs %v", ips)
	}
	caKey := filepath.Join(dir, "..", "other-ca.key")
	if code, out := runCert("create-client", "bob", "--certs-dir", dir, "--ca-key", filepath.Join(filepath.Dir(dir), "missing.key")); code != 1 {
		t.Errorf("a missing CA key: exit %d, want 1\n%s", code, out)
	}
	// Existing files are kept unless --overwrite.
	code, out := runCert("create-ca", "--certs-dir", dir, "--ca-key", caKey)
	if code != 1 || !strings.Contains(out, "file exists") {
		t.Errorf("create-ca over an existing ca.crt: exit %d, %q", code, out)
	}
	// --overwrite replaces; --lifetime applies (flags before the user too).
	if code, out := runCert("create-ca", "--certs-dir", dir, "--ca-key", caKey, "--overwrite", "--lifetime", "2h"); code != 0 {
		t.Fatalf("create-ca --overwrite: exit %d\n%s", code, out)
	}
	if code, out := runCert("create-node", "--lifetime", "1h", "localhost", "--certs-dir", dir, "--ca-key", caKey, "--overwrite"); code != 0 {
		t.Fatalf("create-node --overwrite: exit %d\n%s", code, out)
	}
	s, err = security.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if life := s.NodeCert().NotAfter.Sub(s.NodeCert().NotBefore); life > 2*time.Hour+time.Minute || life < 2*time.Hour-time.Minute {
		t.Errorf("--lifetime 1h gave a certificate valid for %v (1h plus the hour back-dated)", life)
	}
	for _, bad := range [][]string{
		{},
		{"create-node", "--certs-dir", dir, "--ca-key", caKey}, // no host
		{"create-client", "--certs-dir", dir, "--ca-key", caKey},
		{"create-ca", "--certs-dir", dir}, // no --ca-key
		{"create-ca", "extra", "--certs-dir", dir, "--ca-key", caKey},
		{"rotate", "--certs-dir", dir, "--ca-key", caKey},
	} {
		if code, _ := runCert(bad...); code != 2 {
			t.Errorf("orbit cert %s: exit %d, want 2", strings.Join(bad, " "), code)
		}
	}
}
