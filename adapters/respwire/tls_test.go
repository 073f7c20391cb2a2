package respwire_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis/session"
	"github.com/orbitkernel/orbit/adapters/respwire"
	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/kernel/prod"
	"github.com/orbitkernel/orbit/security"
)

// TestTLS: with Options.TLS the listener speaks RESP over TLS only.
func TestTLS(t *testing.T) {
	dir, caKey := t.TempDir(), filepath.Join(t.TempDir(), "ca.key")
	if err := security.CreateCA(dir, caKey, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	if err := security.CreateNode(dir, caKey, []string{"127.0.0.1"}, time.Hour, false); err != nil {
		t.Fatal(err)
	}
	store, err := security.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	rt := prod.New(prod.Options{NodeID: 1})
	defer rt.Stop()
	layout, err := consensus.NewLayout(nil, []kernel.NodeID{1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := session.New(session.Options{Runtime: rt, Layout: layout, Clients: 8, CommandTimeout: 20 * time.Millisecond, ExpirePeriod: -1})
	if err != nil {
		t.Fatal(err)
	}
	l, err := respwire.Listen(respwire.Options{Addr: "127.0.0.1:0", TLS: store.ServerConfig(tls.VerifyClientCertIfGiven),
		Session: sess, Runtime: rt, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { l.Serve(); close(served) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l.Shutdown(ctx)
		<-served
	}()

	client := store.ClientConfig()
	client.ServerName = "127.0.0.1"
	tc, err := tls.Dial("tcp", l.Addr().String(), client)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := tc.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(tc).ReadString('\n'); err != nil || line != "+PONG\r\n" {
		t.Fatalf("PING over TLS: %q %v", line, err)
	}

	// A plaintext client gets no reply, and the connection ends.
	pc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	_ = pc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := pc.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, _ := bufio.NewReader(pc).ReadString('\n'); line == "+PONG\r\n" {
		t.Fatal("a plaintext client was answered")
	}
}
