package jepsen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/orbitkernel/orbit/internal/freeport"
	"github.com/orbitkernel/orbit/jepsen/faultproxy"
)

// node is one `orbit serve` process of the cluster under test.
type node struct {
	id                            int
	dir                           string // data directory
	logPath                       string
	redisAddr, httpAddr, peerAddr string      // peerAddr: its real gRPC listen address
	pgAddr                        string      // PostgreSQL wire (the SQL workloads)
	grpcAddr                      string      // the actor service (the actor workloads)
	tls                           *clusterTLS // nil: plaintext

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	paused  bool
	removed bool // taken out of the cluster (membership nemesis)
}

func (n *node) String() string { return "n" + strconv.Itoa(n.id) }

// running reports whether the process is alive (paused counts).
func (n *node) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// cluster runs the nodes, every node-to-node link through the fault proxy.
type cluster struct {
	bin    string
	env    []string // extra environment (ORBIT_MUTATION for a planted-bug build)
	nodes  []*node
	proxy  *faultproxy.Proxy
	ranges int
}

// newCluster lays out n nodes under dir (node directories, logs) and the
// proxy links between them; nothing runs yet.
func newCluster(bin, dir string, n int, seed int64, env []string, sec *clusterTLS, logger *slog.Logger) (*cluster, error) {
	c := &cluster{bin: bin, env: env, proxy: faultproxy.New(seed, logger), ranges: n}
	for i := 1; i <= n; i++ {
		nd := &node{id: i, dir: filepath.Join(dir, fmt.Sprintf("n%d-data", i)), logPath: filepath.Join(dir, fmt.Sprintf("n%d.log", i)), tls: sec}
		for _, a := range []*string{&nd.redisAddr, &nd.httpAddr, &nd.peerAddr, &nd.pgAddr, &nd.grpcAddr} {
			addr, err := freeport.Addr()
			if err != nil {
				return nil, err
			}
			*a = addr
		}
		c.nodes = append(c.nodes, nd)
	}
	for _, a := range c.nodes {
		for _, b := range c.nodes {
			if a != b {
				if _, err := c.proxy.Link(a.id, b.id, b.peerAddr); err != nil {
					return nil, err
				}
			}
		}
	}
	return c, nil
}

// peersFor is node n's --peers: its own real address, and every other
// node's address as a proxy port for the link n → other.
func (c *cluster) peersFor(n *node) string {
	var parts []string
	for _, o := range c.nodes {
		addr := o.peerAddr
		if o != n {
			addr, _ = c.proxy.Link(n.id, o.id, o.peerAddr) // exists: returns it
		}
		parts = append(parts, fmt.Sprintf("%d=%s", o.id, addr))
	}
	return strings.Join(parts, ",")
}

// start launches n's process (it must not be running), with extra flags.
func (c *cluster) start(n *node, extra ...string) error {
	log, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "=== jepsen: starting %s %s\n", n, strings.Join(extra, " "))
	args := append([]string{"serve", "--node-id", strconv.Itoa(n.id), "--peers", c.peersFor(n),
		"--ranges", strconv.Itoa(c.ranges), "--data-dir", n.dir, "--redis-addr", n.redisAddr, "--pg-addr", n.pgAddr,
		"--http-addr", n.httpAddr, "--actors", "bank", "--actor-lease", "1s", "--grpc-addr", n.grpcAddr, "--test-faults"}, n.tls.serverFlags()...)
	args = append(args, extra...)
	cmd := exec.Command(c.bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), c.env...)
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("starting %s: %w", n, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		log.Close()
		close(exited)
	}()
	n.mu.Lock()
	n.cmd, n.exited, n.paused = cmd, exited, false
	n.mu.Unlock()
	return nil
}

// signal sends sig to n's process, if it runs.
func (n *node) signal(sig syscall.Signal) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil && n.cmd.Process != nil {
		_ = n.cmd.Process.Signal(sig)
	}
}

// kill SIGKILLs n and waits until it is gone.
func (c *cluster) kill(n *node) {
	n.signal(syscall.SIGKILL)
	n.mu.Lock()
	exited := n.exited
	n.paused = false
	n.mu.Unlock()
	if exited != nil {
		<-exited
	}
}

func (c *cluster) pause(n *node) {
	n.signal(syscall.SIGSTOP)
	n.mu.Lock()
	n.paused = true
	n.mu.Unlock()
}

func (c *cluster) resume(n *node) {
	n.signal(syscall.SIGCONT)
	n.mu.Lock()
	n.paused = false
	n.mu.Unlock()
}

// stop ends every node gracefully (terminate).
func (c *cluster) stop() {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		if !n.running() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.terminate(n)
		}()
	}
	wg.Wait()
	_ = c.proxy.Close()
}

// terminate stops n gracefully: SIGTERM (orbit serve hands its ranges'
// leadership over, then closes), SIGKILL if it is not gone within a grace
// period.
func (c *cluster) terminate(n *node) {
	n.signal(syscall.SIGCONT)
	n.signal(syscall.SIGTERM)
	n.mu.Lock()
	exited := n.exited
	n.paused = false
	n.mu.Unlock()
	if exited == nil {
		return
	}
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		c.kill(n)
	}
}

// httpPost posts to one of n's HTTP endpoints and returns the reply's text.
func httpPost(ctx context.Context, n *node, path string) (string, error) {
	body, err := httpDo(ctx, http.MethodPost, n, path, 1<<16)
	return strings.TrimSpace(body), err
}

// setClock shifts n's clock (orbit serve --test-faults).
func (c *cluster) setClock(ctx context.Context, n *node, offset time.Duration) error {
	_, err := httpPost(ctx, n, "/test/clock?offset="+url.QueryEscape(offset.String()))
	return err
}

// remove takes n out of the cluster through another node.
func (c *cluster) remove(ctx context.Context, n, via *node) error {
	_, err := httpPost(ctx, via, fmt.Sprintf("/remove?node=%d", n.id))
	if err == nil {
		n.mu.Lock()
		n.removed = true
		n.mu.Unlock()
	}
	return err
}

// rejoin brings a removed node back the way an operator would: stop it,
// wipe its disk, start it with --join through another node, and wait
// until it holds replicas again (ready).
func (c *cluster) rejoin(ctx context.Context, n, via *node) error {
	c.kill(n)
	if err := os.RemoveAll(n.dir); err != nil {
		return err
	}
	if err := c.start(n, "--join", via.httpAddr, "--peer-addr", n.peerAddr); err != nil {
		return err
	}
	n.mu.Lock()
	n.removed = false
	n.mu.Unlock()
	return nil
}

// ready reports whether n answers /readyz (every range has a leader that
// serves a linearizable read).
func ready(ctx context.Context, n *node) bool {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.url("/readyz"), nil)
	resp, err := n.web().Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// waitReady waits until every node in ns is ready, or the deadline.
func waitReady(ctx context.Context, ns []*node, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var notReady []string
		for _, n := range ns {
			if !n.running() {
				return fmt.Errorf("%s is not running; its log: %s", n, n.logPath)
			}
			if !ready(ctx, n) {
				notReady = append(notReady, n.String())
			}
		}
		if len(notReady) == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("not ready after %v: %s", timeout, strings.Join(notReady, ", "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var leaderLineRE = regexp.MustCompile(`range_(\d+):[^\r\n]*leader=([^,\r\n]+)`)

// leaders asks every running, unpaused node which ranges it leads (INFO
// replication), and returns the nodes that lead at least one.
func (c *cluster) leaders(ctx context.Context) []*node {
	var out []*node
	for _, n := range c.nodes {
		n.mu.Lock()
		skip := n.paused
		n.mu.Unlock()
		if skip || !n.running() {
			continue
		}
		cl := goredis.NewClient(&goredis.Options{Addr: n.redisAddr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second,
			TLSConfig: n.tls.clientConfig()})
		info, err := cl.Info(ctx, "replication").Result()
		cl.Close()
		if err != nil {
			continue
		}
		for _, m := range leaderLineRE.FindAllStringSubmatch(info, -1) {
			if m[2] != "elsewhere_or_unknown" {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

var errNoNode = errors.New("no node fits")
