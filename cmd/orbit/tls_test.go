package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/orbitkernel/orbit/security"
)

// caPool reads dir/ca.crt into a pool.
func caPool(t testing.TB, dir string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, security.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("ca.crt holds no certificate")
	}
	return pool
}

// httpsClient trusts dir's CA.
func httpsClient(t testing.TB, dir string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: caPool(t, dir)}}}
}

// waitReadyTLS polls https://addr/readyz until it answers 200.
func waitReadyTLS(t testing.TB, c *http.Client, addr string, d time.Duration, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatal("the server exited")
		default:
		}
		if resp, err := c.Get("https://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("https://%s/readyz never said ready in %v", addr, d)
}

// startTLSServer runs orbit serve in-process with --certs-dir dir on free
// loopback ports and waits until it is ready over HTTPS.
func startTLSServer(t *testing.T, dir string) (redisAddr, httpAddr string) {
	t.Helper()
	cfg := serveConfig{nodeID: 1, dataDir: filepath.Join(t.TempDir(), "data"), redisAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0",
		ranges: 1, replicas: 3, splitMB: defaultSplitMB, mergeKB: -1, splitQPS: -1, certsDir: dir,
		cacheMB: 8, memtableMB: 4, maxClockDrift: 0.05, deadAfter: time.Minute}
	a, exited := launchServer(t, cfg)
	waitReadyTLS(t, httpsClient(t, dir), a[1], 30*time.Second, exited)
	return a[0], a[1]
}

// TestServeTLS: with --certs-dir, RESP and HTTP speak TLS only; a client
// certificate is optional, and one of another CA is refused; SIGHUP
// reloads a renewed node certificate for new connections.
func TestServeTLS(t *testing.T) {
	dir, caKey := makeCerts(t, "127.0.0.1", "localhost")
	redisAddr, httpAddr := startTLSServer(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// RESP over TLS, trusting the CA, without a client certificate.
	tlsRedis := goredis.NewClient(&goredis.Options{Addr: redisAddr, MaxRetries: -1,
		TLSConfig: &tls.Config{RootCAs: caPool(t, dir), ServerName: "127.0.0.1"}})
	defer tlsRedis.Close()
	if err := tlsRedis.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET over TLS: %v", err)
	}
	if v, err := tlsRedis.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET over TLS: %q %v", v, err)
	}
	// With the client certificate orbit cert made for "root".
	root, err := tls.LoadX509KeyPair(filepath.Join(dir, security.ClientCertFile("root")), filepath.Join(dir, security.ClientKeyFile("root")))
	if err != nil {
		t.Fatal(err)
	}
	withCert := goredis.NewClient(&goredis.Options{Addr: redisAddr, MaxRetries: -1,
		TLSConfig: &tls.Config{RootCAs: caPool(t, dir), ServerName: "localhost", Certificates: []tls.Certificate{root}}})
	defer withCert.Close()
	if v, err := withCert.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET with a client certificate: %q %v", v, err)
	}
	// A client certificate of another CA is refused.
	otherDir, _ := makeCerts(t, "127.0.0.1")
	foreign, err := tls.LoadX509KeyPair(filepath.Join(otherDir, security.ClientCertFile("root")), filepath.Join(otherDir, security.ClientKeyFile("root")))
	if err != nil {
		t.Fatal(err)
	}
	bad := goredis.NewClient(&goredis.Options{Addr: redisAddr, MaxRetries: -1, DialTimeout: 2 * time.Second,
		TLSConfig: &tls.Config{RootCAs: caPool(t, dir), ServerName: "127.0.0.1", Certificates: []tls.Certificate{foreign}}})
	defer bad.Close()
	if err := bad.Ping(ctx).Err(); err == nil {
		t.Error("a client certificate of another CA was accepted")
	}
	// Plain text is not served.
	plain := goredis.NewClient(&goredis.Options{Addr: redisAddr, MaxRetries: -1, DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second})
	defer plain.Close()
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Error("a plaintext RESP client was served")
	}

	// HTTPS with the CA; plain HTTP is refused.
	resp, err := httpsClient(t, dir).Get("https://" + httpAddr + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz over HTTPS: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("GET /healthz over HTTPS: %s %q", resp.Status, body)
	}
	if resp, err := http.Get("http://" + httpAddr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("GET /healthz over plain HTTP was served")
		}
	}

	testReloadOnHangup(t, dir, caKey, redisAddr)
}

// testReloadOnHangup renews the node certificate, sends SIGHUP, and waits
// for a new handshake to present the new certificate; a broken directory
// then fails the reload, and the server goes on with the certificate it
// has.
func testReloadOnHangup(t *testing.T, dir, caKey, redisAddr string) {
	// Catch SIGHUP in this test too, so that the signal can never end the
	// test process, whatever the server's handler does.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	before := serverSerial(t, dir, redisAddr)
	if code, out := runCert("create-node", "127.0.0.1", "--certs-dir", dir, "--ca-key", caKey, "--overwrite"); code != 0 {
		t.Fatalf("create-node --overwrite: %d %s", code, out)
	}
	want, err := security.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for serverSerial(t, dir, redisAddr) != want.NodeCert().SerialNumber.String() {
		if time.Now().After(deadline) {
			t.Fatalf("after SIGHUP the server still presents serial %s", before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A broken key: the reload fails, the server keeps serving.
	if err := os.WriteFile(filepath.Join(dir, security.NodeKeyFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if got := serverSerial(t, dir, redisAddr); got != want.NodeCert().SerialNumber.String() {
		t.Fatalf("after a failed reload the server presents serial %s, want %s", got, want.NodeCert().SerialNumber)
	}
}

// serverSerial is the serial of the certificate a new TLS connection to
// addr is shown.
func serverSerial(t *testing.T, dir, addr string) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: caPool(t, dir), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestServeTLSRedisCLI: redis-cli --tls round-trips through orbit serve.
func TestServeTLSRedisCLI(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli is not on PATH (scripts/install-test-deps.sh installs it)")
	}
	if help, _ := exec.Command(cli, "--help").CombinedOutput(); !bytes.Contains(help, []byte("--tls")) {
		t.Skip("this redis-cli was built without TLS (no --tls in redis-cli --help)")
	}
	dir, _ := makeCerts(t, "127.0.0.1")
	redisAddr, _ := startTLSServer(t, dir)
	host, port, _ := net.SplitHostPort(redisAddr)
	run := func(args ...string) string {
		base := []string{"--tls", "--cacert", filepath.Join(dir, security.CACertFile), "-h", host, "-p", port}
		out, err := exec.Command(cli, append(base, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run("SET", "cli", "tls"); got != "OK" {
		t.Fatalf("SET: %q", got)
	}
	if got := run("GET", "cli"); got != "tls" {
		t.Fatalf("GET: %q", got)
	}
}

// TestServeTLSCluster: three orbit serve processes linked by mutual TLS
// replicate a write: it survives the node that took it; a fourth node
// joins through a node's HTTPS address.
func TestServeTLSCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	bin := buildOrbit(t)
	dir, _ := makeCerts(t, "127.0.0.1")
	base := t.TempDir()
	var peers []string
	nodes := make([]*testNode, 3)
	for i := range nodes {
		nodes[i] = &testNode{id: i + 1, dir: filepath.Join(base, "node"+strconv.Itoa(i+1)),
			redisAddr: freePort(t), httpAddr: freePort(t), logPath: filepath.Join(base, "node"+strconv.Itoa(i+1)+".log"),
			extra: []string{"--certs-dir", dir, "--ranges", "1"}}
		peers = append(peers, strconv.Itoa(i+1)+"="+freePort(t))
	}
	hc := httpsClient(t, dir)
	for _, n := range nodes {
		n.peers = strings.Join(peers, ",")
		n.start(t, bin)
		t.Cleanup(n.kill)
	}
	for _, n := range nodes {
		waitReadyTLS(t, hc, n.httpAddr, 60*time.Second, n.exited)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := func(n *testNode) *goredis.Client {
		c := goredis.NewClient(&goredis.Options{Addr: n.redisAddr, TLSConfig: &tls.Config{RootCAs: caPool(t, dir), ServerName: "127.0.0.1"}})
		t.Cleanup(func() { c.Close() })
		return c
	}
	if err := client(nodes[0]).Set(ctx, "replicated", "yes", 0).Err(); err != nil {
		t.Fatalf("SET on node 1: %v\n%s", err, readLog(nodes[0]))
	}
	nodes[0].kill()
	// Node 1 is gone; the two others hold the write and elect a leader.
	var v string
	var err error
	for range 100 {
		if v, err = client(nodes[1]).Get(ctx, "replicated").Result(); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil || v != "yes" {
		t.Fatalf("GET on node 2 after node 1 died: %q %v\nnode 2 log:\n%s", v, err, readLog(nodes[1]))
	}
	if log := readLog(nodes[2]); !strings.Contains(log, "tls=true") {
		t.Errorf("node 3 did not log that it serves TLS:\n%s", log)
	}

	// A fourth node joins over HTTPS (--join) and reads the write.
	n4 := &testNode{id: 4, dir: filepath.Join(base, "node4"), redisAddr: freePort(t), httpAddr: freePort(t),
		logPath: filepath.Join(base, "node4.log"),
		extra:   []string{"--certs-dir", dir, "--join", nodes[1].httpAddr, "--peer-addr", freePort(t)}}
	n4.start(t, bin)
	t.Cleanup(n4.kill)
	waitReadyTLS(t, hc, n4.httpAddr, 60*time.Second, n4.exited)
	if v, err := client(n4).Get(ctx, "replicated").Result(); err != nil || v != "yes" {
		t.Fatalf("GET on the joined node 4: %q %v\n%s", v, err, readLog(n4))
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(readLog(n4), "joined the cluster") {
		if time.Now().After(deadline) {
			t.Fatalf("node 4 never joined:\n%s", readLog(n4))
		}
		time.Sleep(100 * time.Millisecond)
	}

	// orbit node list reaches a TLS node with --certs-dir, and not without.
	var out, errOut bytes.Buffer
	if code := nodeList([]string{"--addr", nodes[1].httpAddr, "--certs-dir", dir}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "(as node 2 sees them") {
		t.Errorf("orbit node list --certs-dir: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if code := nodeList([]string{"--addr", nodes[1].httpAddr}, &out, &errOut); code != 1 {
		t.Errorf("orbit node list over plain HTTP to a TLS node: exit %d, want 1", code)
	}
}

// TestServeExposure: without --certs-dir, a listen address off loopback
// needs --insecure; --certs-dir and --insecure together are refused.
func TestServeExposure(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--redis-addr", "0.0.0.0:0"}, 1, "orbit serve: --redis-addr 0.0.0.0:0 is not a loopback address"},
		{[]string{"--http-addr", ":0"}, 1, "orbit serve: --http-addr :0 is not a loopback address"},
		{[]string{"--peers", "1=10.1.2.3:7001,2=127.0.0.1:7002"}, 1, "orbit serve: --peers (node 1) 10.1.2.3:7001 is not a loopback address"},
		{[]string{"--certs-dir", t.TempDir(), "--insecure"}, 2, "orbit serve: --certs-dir and --insecure contradict each other"},
	} {
		var out syncBuffer
		code := serve(append([]string{"--data-dir", data}, c.args...), &out)
		if code != c.code || !strings.HasPrefix(out.String(), c.want) || !strings.Contains(out.String(), "--insecure") {
			t.Errorf("orbit serve %s: exit %d, %q; want %d, %q...", strings.Join(c.args, " "), code, out.String(), c.code, c.want)
		}
	}
	if _, err := os.Stat(data); err == nil {
		t.Error("a refused start created the data directory")
	}
	// Loopback spellings pass the check.
	for _, addr := range []string{"127.0.0.1:1", "127.9.9.9:1", "[::1]:1", "localhost:1"} {
		if !isLoopback(addr) {
			t.Errorf("%s: not taken for loopback", addr)
		}
	}
	for _, addr := range []string{"0.0.0.0:1", "[::]:1", ":1", "10.0.0.1:1", "example.com:1", "localhost.example.com:1"} {
		if isLoopback(addr) {
			t.Errorf("%s: taken for loopback", addr)
		}
	}

	// With --insecure, 0.0.0.0 starts.
	ctx, cancel := context.WithCancel(context.Background())
	cfg := serveConfig{nodeID: 1, dataDir: data, redisAddr: "0.0.0.0:0", httpAddr: "127.0.0.1:0", ranges: 1, replicas: 3,
		splitMB: defaultSplitMB, mergeKB: -1, splitQPS: -1, insecure: true, cacheMB: 8, memtableMB: 4, maxClockDrift: 0.05, deadAfter: time.Minute}
	err := runServer(ctx, cfg, slog.New(slog.DiscardHandler), func(boundAddrs) { cancel() })
	if err != nil {
		t.Fatalf("--insecure --redis-addr 0.0.0.0:0: %v", err)
	}
}

// TestPeerNeedsNodeCertificate: the gRPC listener's configuration takes a
// node certificate, and refuses a user's client certificate of the same
// CA (it must not pass for a node).
func TestPeerNeedsNodeCertificate(t *testing.T) {
	dir, _ := makeCerts(t, "127.0.0.1")
	certs, err := loadTLS(serveConfig{certsDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	root, err := tls.LoadX509KeyPair(filepath.Join(dir, security.ClientCertFile("root")), filepath.Join(dir, security.ClientKeyFile("root")))
	if err != nil {
		t.Fatal(err)
	}
	asNode := certs.peerClient()()
	asNode.ServerName = "127.0.0.1"
	asUser := &tls.Config{RootCAs: caPool(t, dir), ServerName: "127.0.0.1", Certificates: []tls.Certificate{root}}
	for _, c := range []struct {
		name   string
		client *tls.Config
		ok     bool
	}{{"node certificate", asNode, true}, {"client certificate", asUser, false}} {
		a, b := net.Pipe()
		done := make(chan error, 1)
		go func() {
			sc := tls.Server(a, certs.peerServer())
			done <- sc.Handshake()
			a.Close()
		}()
		cc := tls.Client(b, c.client)
		_ = cc.Handshake()
		_, _ = cc.Read(make([]byte, 1)) // TLS 1.3: the server's verdict comes after
		b.Close()
		if err := <-done; (err == nil) != c.ok {
			t.Errorf("%s: server handshake error %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

// TestServeTLSPostgres: with --certs-dir the PostgreSQL listener answers
// SSLRequest and serves TLS: pgx with sslmode=verify-full (the CA from
// the certificates directory, the node certificate's host checked)
// runs a query; sslmode=disable is refused.
func TestServeTLSPostgres(t *testing.T) {
	dir, _ := makeCerts(t, "127.0.0.1", "localhost")
	cfg := serveConfig{nodeID: 1, dataDir: filepath.Join(t.TempDir(), "data"), redisAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0",
		pgAddr: "127.0.0.1:0", certsDir: dir}
	addrs, exited := launchServerAddrs(t, cfg)
	waitReadyTLS(t, httpsClient(t, dir), addrs.http, 30*time.Second, exited)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := "postgres://postgres@" + addrs.pg + "/postgres?sslmode=verify-full&sslrootcert=" + filepath.Join(dir, security.CACertFile)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("sslmode=verify-full: %v", err)
	}
	defer conn.Close(ctx)
	var got int
	if err := conn.QueryRow(ctx, "SELECT 1 + 1").Scan(&got); err != nil || got != 2 {
		t.Fatalf("SELECT 1 + 1 over TLS: %d, %v", got, err)
	}
	if !conn.PgConn().Conn().(interface{ ConnectionState() tls.ConnectionState }).ConnectionState().HandshakeComplete {
		t.Fatal("the connection is not TLS")
	}
	if c, err := pgx.Connect(ctx, "postgres://postgres@"+addrs.pg+"/postgres?sslmode=disable"); err == nil {
		c.Close(ctx)
		t.Fatal("a plaintext connection to a TLS node was served")
	}

	// psql (libpq) with sslmode=verify-full (TLS required, the CA and
	// the host's IP SAN checked).
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Log("psql is not installed (scripts/install-test-deps.sh installs it): libpq not checked")
		return
	}
	host, port, _ := strings.Cut(addrs.pg, ":")
	conninfo := fmt.Sprintf("host=%s port=%s user=postgres dbname=postgres sslmode=verify-full sslrootcert=%s", host, port, filepath.Join(dir, security.CACertFile))
	out, err := exec.CommandContext(ctx, psql, conninfo, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", "SELECT 40 + 2").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "42") {
		t.Fatalf("psql with sslmode=verify-full: %v\n%s", err, out)
	}
	t.Logf("psql over TLS: %s", strings.Join(strings.Fields(string(out)), " "))
}
