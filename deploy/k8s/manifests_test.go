// Package k8s holds Orbit's Kubernetes manifests; its test reads each
// with the Kubernetes API's own types, strictly (an unknown or misplaced
// field fails), and checks that they agree with one another.
package k8s

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// Manifests are every object of the files, decoded strictly by kind.
type Manifests struct {
	StatefulSet *appsv1.StatefulSet
	Services    map[string]*corev1.Service
	PDB         *policyv1.PodDisruptionBudget
}

// Load reads the manifests the kustomization lists.
func Load(t testing.TB) Manifests {
	t.Helper()
	var kust struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		Resources  []string `json:"resources"`
	}
	b, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, &kust); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	m := Manifests{Services: map[string]*corev1.Service{}}
	for _, file := range kust.Resources {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range strings.Split(string(b), "\n---\n") {
			var head struct {
				Kind string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				t.Fatalf("%s #%d: %v", file, i, err)
			}
			strict := func(obj any) {
				if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
					t.Fatalf("%s #%d (%s): %v", file, i, head.Kind, err)
				}
			}
			switch head.Kind {
			case "StatefulSet":
				m.StatefulSet = &appsv1.StatefulSet{}
				strict(m.StatefulSet)
			case "Service":
				svc := &corev1.Service{}
				strict(svc)
				m.Services[svc.Name] = svc
			case "PodDisruptionBudget":
				m.PDB = &policyv1.PodDisruptionBudget{}
				strict(m.PDB)
			default:
				t.Fatalf("%s #%d: unexpected kind %q", file, i, head.Kind)
			}
		}
	}
	if m.StatefulSet == nil || m.PDB == nil || len(m.Services) != 2 {
		t.Fatalf("want a StatefulSet, a PodDisruptionBudget and two Services; got %+v", m)
	}
	return m
}

func TestManifests(t *testing.T) {
	m := Load(t)
	ss := m.StatefulSet
	labels := ss.Spec.Template.Labels
	matches := func(sel map[string]string) bool {
		for k, v := range sel {
			if labels[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	if !matches(ss.Spec.Selector.MatchLabels) || !matches(m.PDB.Spec.Selector.MatchLabels) {
		t.Errorf("the StatefulSet's and the PDB's selectors must pick the pods (labels %v)", labels)
	}
	if m.PDB.Spec.MaxUnavailable == nil || m.PDB.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("the PDB must allow one pod down at most")
	}
	headless := m.Services[ss.Spec.ServiceName]
	if headless == nil || headless.Spec.ClusterIP != corev1.ClusterIPNone || !headless.Spec.PublishNotReadyAddresses {
		t.Fatalf("serviceName %q must be a headless Service that publishes pods before they are ready", ss.Spec.ServiceName)
	}
	if ss.Spec.Replicas == nil || *ss.Spec.Replicas < 3 || ss.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("at least 3 replicas started in parallel (the first ones must all be up to elect)")
	}

	pod := ss.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("one container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for _, svc := range m.Services {
		if !matches(svc.Spec.Selector) {
			t.Errorf("Service %s does not select the pods", svc.Name)
		}
		for _, p := range svc.Spec.Ports {
			if p.TargetPort.Type != intstr.String || ports[p.TargetPort.StrVal] == 0 {
				t.Errorf("Service %s port %s targets %v, not a named container port", svc.Name, p.Name, p.TargetPort)
			}
		}
	}
	for name, probe := range map[string]*corev1.Probe{"/readyz": c.ReadinessProbe, "/healthz": c.LivenessProbe} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != name || ports[probe.HTTPGet.Port.StrVal] == 0 || probe.HTTPGet.Scheme != corev1.URISchemeHTTPS {
			t.Errorf("probe %s: want an HTTPS GET of %s on a named port", name, name)
		}
	}

	// The flags: orbit serve as a StatefulSet's pod, the listeners on the
	// ports the Services name, the data on the volume, TLS from the Secret.
	flags := map[string]string{}
	for _, a := range c.Args[1:] {
		k, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		flags[k] = v
	}
	if c.Args[0] != "serve" || flags["statefulset"] != itoa(*ss.Spec.Replicas) {
		t.Errorf("args %v: want serve --statefulset=%d (the replicas that form the cluster)", c.Args, *ss.Spec.Replicas)
	}
	for flag, port := range map[string]string{"redis-addr": "redis", "pg-addr": "postgres", "http-addr": "http", "grpc-addr": "actors"} {
		if want := "0.0.0.0:" + itoa(ports[port]); flags[flag] != want {
			t.Errorf("--%s=%s, want %s (the %s port)", flag, flags[flag], want, port)
		}
	}
	if flags["peer-port"] != itoa(ports["grpc"]) {
		t.Errorf("--peer-port=%s, want the grpc port %d", flags["peer-port"], ports["grpc"])
	}
	mounts := map[string]string{}
	for _, vm := range c.VolumeMounts {
		mounts[vm.Name] = vm.MountPath
	}
	if !strings.HasPrefix(flags["data-dir"], mounts["data"]+"/") || len(ss.Spec.VolumeClaimTemplates) != 1 || ss.Spec.VolumeClaimTemplates[0].Name != "data" {
		t.Errorf("--data-dir=%s must lie on the data volume claim (mounted at %q)", flags["data-dir"], mounts["data"])
	}
	if flags["certs-dir"] != mounts["certs"] || !slices.ContainsFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == "certs" && v.Secret != nil }) {
		t.Errorf("--certs-dir=%s must be the certs Secret's mount (%q)", flags["certs-dir"], mounts["certs"])
	}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "POD_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name"
	}) {
		t.Error("POD_NAME must come from metadata.name (the ordinal is the node's identity)")
	}

	// Non-root, nothing more than it needs, and time to hand over.
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Error("the pod must run as non-root")
	}
	if sc := c.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("the container must not escalate privileges and must run on a read-only root")
	}
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds < 30 {
		t.Error("terminationGracePeriodSeconds must leave a SIGTERM time to hand leaderships and actors over")
	}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }
