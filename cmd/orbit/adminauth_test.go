package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/orbitkernel/orbit/security"
)

// adminStatus posts to an admin endpoint through web and returns the
// HTTP status.
func adminStatus(t *testing.T, web webClient, httpAddr, path string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, status, err := web.postJSON(ctx, web.url(httpAddr, path), nil)
	if status == 0 {
		t.Fatalf("POST %s: %v", path, err)
	}
	return status
}

// failureCount reads orbit_auth_failures_total{listener=listener} from
// the node's /metrics.
func failureCount(t *testing.T, c *http.Client, url, listener string) string {
	t.Helper()
	resp, err := c.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, `orbit_auth_failures_total{listener="`+listener+`"}`) {
			return strings.Fields(line)[1]
		}
	}
	return "0"
}

// TestAdminEndpointsNeedAuth: with --admin-token, the endpoints that
// change the cluster refuse a request without the token or with a wrong
// one (401, counted in orbit_auth_failures_total) and serve one with it;
// without a token and without TLS they stay open (the plain mode's
// loopback rule); with --certs-dir a client needs a certificate of the
// cluster's CA, and orbit node remove presents certs-dir's.
func TestAdminEndpointsNeedAuth(t *testing.T) {
	t.Run("token", func(t *testing.T) {
		cfg := serveConfig{nodeID: 1, dataDir: filepath.Join(t.TempDir(), "data"), redisAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0",
			adminToken: "tok"}
		addrs, _ := launchServerAddrs(t, cfg)
		waitReady(t, addrs.http)
		for _, tc := range []struct {
			token string
			want  int
		}{{"", http.StatusUnauthorized}, {"nope", http.StatusUnauthorized}, {"tok", http.StatusNotFound}} {
			web := webClient{scheme: "http", client: http.DefaultClient, token: tc.token}
			if got := adminStatus(t, web, addrs.http, "/remove?node=9"); got != tc.want {
				t.Errorf("POST /remove?node=9 with token %q: %d, want %d", tc.token, got, tc.want)
			}
		}
		if got := failureCount(t, http.DefaultClient, "http://"+addrs.http, "http"); got != "2" {
			t.Errorf("orbit_auth_failures_total{listener=\"http\"} = %s, want 2", got)
		}
		// A Redis login that fails counts too.
		rdb := goredis.NewClient(&goredis.Options{Addr: addrs.redis})
		defer rdb.Close()
		if err := rdb.Do(context.Background(), "AUTH", "alice", "wrong").Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGPASS") {
			t.Fatalf("AUTH alice wrong: %v, want WRONGPASS", err)
		}
		if got := failureCount(t, http.DefaultClient, "http://"+addrs.http, "redis"); got != "1" {
			t.Errorf("orbit_auth_failures_total{listener=\"redis\"} = %s, want 1", got)
		}
		// orbit node remove takes the token from its flag or the environment.
		t.Setenv("ORBIT_ADMIN_TOKEN", "")
		var errOut strings.Builder
		if code := nodeCommand([]string{"remove", "--addr", addrs.http, "9"}, &errOut); code != 1 || !strings.Contains(errOut.String(), "401") {
			t.Errorf("orbit node remove without the token: exit %d, %q", code, errOut.String())
		}
		errOut.Reset()
		t.Setenv("ORBIT_ADMIN_TOKEN", "tok")
		if code := nodeCommand([]string{"remove", "--addr", addrs.http, "9"}, &errOut); code != 1 || !strings.Contains(errOut.String(), "404") {
			t.Errorf("orbit node remove with $ORBIT_ADMIN_TOKEN: exit %d, %q (want the node's 404: unknown node)", code, errOut.String())
		}
	})
	t.Run("plain", func(t *testing.T) {
		cfg := serveConfig{nodeID: 1, dataDir: filepath.Join(t.TempDir(), "data"), redisAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0"}
		addrs, _ := launchServerAddrs(t, cfg)
		waitReady(t, addrs.http)
		if got := adminStatus(t, plainWeb, addrs.http, "/remove?node=9"); got != http.StatusNotFound {
			t.Errorf("plain mode without a token: %d, want the handler's 404", got)
		}
	})
	t.Run("tls", func(t *testing.T) {
		dir, _ := makeCerts(t, "127.0.0.1", "localhost")
		_, httpAddr := startTLSServer(t, dir)
		anonymous := webClient{scheme: "https", client: httpsClient(t, dir)}
		if got := adminStatus(t, anonymous, httpAddr, "/remove?node=9"); got != http.StatusUnauthorized {
			t.Errorf("HTTPS without a client certificate: %d, want 401", got)
		}
		withCert, err := operatorWeb(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := adminStatus(t, withCert, httpAddr, "/remove?node=9"); got != http.StatusNotFound {
			t.Errorf("HTTPS with client.root's certificate: %d, want the handler's 404", got)
		}
		// Without client.root, the node certificate in the directory does.
		for _, f := range []string{security.ClientCertFile("root"), security.ClientKeyFile("root")} {
			if err := os.Remove(filepath.Join(dir, f)); err != nil {
				t.Fatal(err)
			}
		}
		withNode, err := operatorWeb(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := adminStatus(t, withNode, httpAddr, "/remove?node=9"); got != http.StatusNotFound {
			t.Errorf("HTTPS with node.crt: %d, want the handler's 404", got)
		}
		if got := failureCount(t, httpsClient(t, dir), "https://"+httpAddr, "http"); got != "1" {
			t.Errorf("orbit_auth_failures_total{listener=\"http\"} = %s, want 1", got)
		}
	})
}
