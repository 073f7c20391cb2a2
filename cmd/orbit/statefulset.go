package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// A node run as a pod of a Kubernetes StatefulSet (deploy/k8s): `orbit
// serve --statefulset N` takes its identity from its pod's name, as the
// StatefulSet gives it ($POD_NAME, "orbit-2"): the node ID is the
// ordinal plus one; the first N pods form the cluster (--peers: pods 0 to
// N-1 at --pod-host's addresses on --peer-port), and every later pod
// joins it through pod 0's HTTP address (--join), which a scaled-up
// StatefulSet gets for free. A pod restarted on its volume finds its
// cluster record there, which wins over all of this.

// statefulSetFlags are the flags --statefulset derives, which must not
// also be given.
var statefulSetFlags = []string{"node-id", "peers", "peer-addr", "join"}

// fromStatefulSet fills cfg's identity and cluster flags for pod (its
// name) of a StatefulSet whose first cfg.statefulSet pods form the
// cluster; given says which flags the command line set.
func (cfg *serveConfig) fromStatefulSet(pod string, given map[string]bool) error {
	for _, f := range statefulSetFlags {
		if given[f] {
			return fmt.Errorf("--statefulset derives --%s from the pod's name: do not give it", f)
		}
	}
	i := strings.LastIndexByte(pod, '-')
	ordinal, err := strconv.Atoi(pod[i+1:])
	if i <= 0 || err != nil || ordinal < 0 || ordinal >= 1<<32-1 {
		return fmt.Errorf("--statefulset: the pod's name %q ($POD_NAME) is not a StatefulSet pod's (NAME-ORDINAL)", pod)
	}
	set := pod[:i]
	format := cfg.podHost
	if format == "" {
		format = set + "-%d." + set // the headless Service named after the set, in the pod's namespace
	}
	if strings.Count(format, "%d") != 1 {
		return fmt.Errorf("--pod-host %q: want a host name with one %%d for the ordinal", format)
	}
	if cfg.peerPort <= 0 || cfg.peerPort > 65535 {
		return fmt.Errorf("--peer-port %d: not a port", cfg.peerPort)
	}
	host := func(ordinal int) string {
		return net.JoinHostPort(fmt.Sprintf(format, ordinal), strconv.Itoa(cfg.peerPort))
	}
	cfg.nodeID = uint64(ordinal) + 1
	if ordinal < cfg.statefulSet {
		peers := make([]string, cfg.statefulSet)
		for p := range peers {
			peers[p] = fmt.Sprintf("%d=%s", p+1, host(p))
		}
		cfg.peers = strings.Join(peers, ",")
		return nil
	}
	_, httpPort, err := net.SplitHostPort(cfg.httpAddr)
	if err != nil {
		return fmt.Errorf("--http-addr %q: %v", cfg.httpAddr, err)
	}
	cfg.peerAddr = host(ordinal)
	cfg.join = net.JoinHostPort(fmt.Sprintf(format, 0), httpPort)
	return nil
}
