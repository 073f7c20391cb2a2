package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

func TestFromStatefulSet(t *testing.T) {
	base := serveConfig{statefulSet: 3, peerPort: 7000, httpAddr: "0.0.0.0:9090"}
	for _, tc := range []struct {
		pod, podHost string
		given        []string
		id           uint64
		peers, join  string
		peerAddr     string
		err          string
	}{
		{pod: "orbit-0", id: 1, peers: "1=orbit-0.orbit:7000,2=orbit-1.orbit:7000,3=orbit-2.orbit:7000"},
		{pod: "orbit-2", id: 3, peers: "1=orbit-0.orbit:7000,2=orbit-1.orbit:7000,3=orbit-2.orbit:7000"},
		{pod: "orbit-3", id: 4, join: "orbit-0.orbit:9090", peerAddr: "orbit-3.orbit:7000"},
		{pod: "db-orbit-1", podHost: "db-orbit-%d.db.ns.svc", id: 2, peers: "1=db-orbit-0.db.ns.svc:7000,2=db-orbit-1.db.ns.svc:7000,3=db-orbit-2.db.ns.svc:7000"},
		{pod: "orbit", err: "not a StatefulSet pod's"},
		{pod: "", err: "not a StatefulSet pod's"},
		{pod: "orbit-x", err: "not a StatefulSet pod's"},
		{pod: "orbit-0", podHost: "orbit.svc", err: "one %d"},
		{pod: "orbit-0", given: []string{"peers"}, err: "do not give it"},
	} {
		cfg := base
		cfg.podHost = tc.podHost
		given := map[string]bool{}
		for _, g := range tc.given {
			given[g] = true
		}
		err := cfg.fromStatefulSet(tc.pod, given)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, want an error with %q", tc.pod, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.pod, err)
		case cfg.nodeID != tc.id || cfg.peers != tc.peers || cfg.join != tc.join || cfg.peerAddr != tc.peerAddr:
			t.Errorf("%s: node %d, peers %q, join %q, peer-addr %q; want %d, %q, %q, %q",
				tc.pod, cfg.nodeID, cfg.peers, cfg.join, cfg.peerAddr, tc.id, tc.peers, tc.join, tc.peerAddr)
		}
	}
}

// TestStatefulSetPods runs deploy/k8s's StatefulSet the way Kubernetes
// would, as processes: its container's arguments as written, each pod
// with its name ($POD_NAME), its own volume and its own address (pods
// 127.0.2.10–13 on the same ports, as pods share ports on their own IPs;
// --pod-host stands in for the headless Service's DNS), TLS from a
// certificates directory as from the Secret. The first three form the
// cluster, a fourth (a scale-up) joins it, data written through one pod
// is read through another, and SIGTERM ends a pod cleanly.
func TestStatefulSetPods(t *testing.T) {
	if testing.Short() {
		t.Skip("builds orbit and runs four processes")
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "k8s", "statefulset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ss appsv1.StatefulSet
	if err := yaml.UnmarshalStrict(b, &ss); err != nil {
		t.Fatal(err)
	}
	args := ss.Spec.Template.Spec.Containers[0].Args
	bin := buildOrbit(t)
	podIP := func(ordinal int) string { return fmt.Sprintf("127.0.2.1%d", ordinal) }
	dir, _ := makeCerts(t, podIP(0), podIP(1), podIP(2), podIP(3), "localhost")
	// One free port per listener, the same on every pod.
	ports := map[string]string{}
	for _, name := range []string{"redis", "postgres", "http", "actors", "grpc"} {
		_, p, _ := net.SplitHostPort(freePort(t))
		ports[name] = p
	}
	listener := map[string]string{"--redis-addr": "redis", "--pg-addr": "postgres", "--http-addr": "http", "--grpc-addr": "actors"}
	type pod struct {
		cmd    *exec.Cmd
		exited chan struct{}
		log    string
	}
	start := func(ordinal int) *pod {
		var podArgs []string
		for _, a := range args {
			flag, _, _ := strings.Cut(a, "=")
			switch {
			case listener[flag] != "":
				a = flag + "=" + net.JoinHostPort(podIP(ordinal), ports[listener[flag]])
			case flag == "--peer-port":
				a = flag + "=" + ports["grpc"]
			case flag == "--data-dir":
				a = flag + "=" + filepath.Join(t.TempDir(), "data")
			case flag == "--certs-dir":
				a = flag + "=" + dir
			}
			podArgs = append(podArgs, a)
		}
		podArgs = append(podArgs, "--pod-host=127.0.2.1%d", "--cache-mb=8", "--memtable-mb=4")
		p := &pod{cmd: exec.Command(bin, podArgs...), exited: make(chan struct{}), log: filepath.Join(t.TempDir(), "log")}
		p.cmd.Env = append(os.Environ(), fmt.Sprintf("POD_NAME=orbit-%d", ordinal))
		logFile, err := os.Create(p.log)
		if err != nil {
			t.Fatal(err)
		}
		p.cmd.Stderr = logFile
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = p.cmd.Wait(); logFile.Close(); close(p.exited) }()
		t.Cleanup(func() {
			_ = p.cmd.Process.Kill()
			<-p.exited
			if t.Failed() {
				out, _ := os.ReadFile(p.log)
				t.Logf("orbit-%d's log:\n%s", ordinal, out)
			}
		})
		return p
	}
	web := httpsClient(t, dir)
	httpAddr := func(ordinal int) string { return net.JoinHostPort(podIP(ordinal), ports["http"]) }
	pods := make([]*pod, 4)
	for i := range 3 {
		pods[i] = start(i)
	}
	for i := range 3 {
		waitReadyTLS(t, web, httpAddr(i), 90*time.Second, pods[i].exited)
	}
	pods[3] = start(3) // a scale-up: joins through orbit-0
	waitReadyTLS(t, web, httpAddr(3), 90*time.Second, pods[3].exited)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	operator, err := operatorWeb(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	for {
		info, err := operator.fetchCluster(ctx, httpAddr(1))
		if err == nil && len(info.Nodes) == 4 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the cluster as orbit-1 sees it never had 4 nodes: %+v, %v", info, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	redisAt := func(ordinal int) *goredis.Client {
		c := goredis.NewClient(&goredis.Options{Addr: net.JoinHostPort(podIP(ordinal), ports["redis"]),
			TLSConfig: &tls.Config{RootCAs: caPool(t, dir), ServerName: podIP(ordinal)}})
		t.Cleanup(func() { c.Close() })
		return c
	}
	if err := redisAt(0).Set(ctx, "k8s", "pods", 0).Err(); err != nil {
		t.Fatalf("SET through orbit-0: %v", err)
	}
	if v, err := redisAt(3).Get(ctx, "k8s").Result(); err != nil || v != "pods" {
		t.Fatalf("GET through orbit-3 (the pod that joined): %q, %v", v, err)
	}

	// Kubernetes ends a pod with SIGTERM, then waits out the grace period.
	_ = pods[3].cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-pods[3].exited:
		if code := pods[3].cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("orbit-3 exited %d after SIGTERM", code)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("orbit-3 did not exit within the grace period after SIGTERM")
	}
}
