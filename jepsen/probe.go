package jepsen

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/orbitkernel/orbit/jepsen/topo"
)

// What the harness reads from the nodes' HTTP endpoints: GET /metrics
// (Prometheus text) and GET /cluster (JSON, cmd/orbit's clusterInfo).
// Every read has a short timeout: the node may be paused or cut off, and a
// probe must never hold up the run.

// httpGet fetches one of n's HTTP endpoints.
func httpGet(ctx context.Context, n *node, path string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return httpDo(ctx, http.MethodGet, n, path, 8<<20)
}

// httpDo sends a request without a body to one of n's HTTP endpoints and
// returns the reply's text (at most limit bytes); a status other than 200
// is an error that carries the reply.
func httpDo(ctx context.Context, method string, n *node, path string, limit int64) (string, error) {
	req, err := http.NewRequestWithContext(ctx, method, n.url(path), nil)
	if err != nil {
		return "", err
	}
	resp, err := n.web().Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s %s: %s: %s", n, path, resp.Status, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}

// clusterView is the part of GET /cluster the harness reads.
type clusterView struct {
	Node   int `json:"node"`
	Ranges []struct {
		ID    int    `json:"id"`
		Slots string `json:"slots"`
		// Replicas is absent when the range did not answer the node
		// within a second.
		Replicas []int `json:"replicas"`
		Leader   bool  `json:"leader"`
	} `json:"ranges"`
}

func fetchCluster(ctx context.Context, n *node, timeout time.Duration) (clusterView, error) {
	var v clusterView
	body, err := httpGet(ctx, n, "/cluster", timeout)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		return v, fmt.Errorf("%s /cluster: %w", n, err)
	}
	return v, nil
}

// sample is one line of Prometheus text: a metric, its labels, its value.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseMetrics reads the Prometheus text format's samples, skipping
// comments and lines it cannot read.
func parseMetrics(text string) []sample {
	var out []sample
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if s, ok := parseSample(line); ok {
			out = append(out, s)
		}
	}
	return out
}

func parseSample(line string) (sample, bool) {
	s := sample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return s, false
	}
	s.name, line = line[:i], line[i:]
	if line[0] == '{' {
		line = line[1:]
		for {
			line = strings.TrimLeft(line, " ,")
			if strings.HasPrefix(line, "}") {
				line = line[1:]
				break
			}
			eq := strings.Index(line, `="`)
			if eq <= 0 {
				return s, false
			}
			key := line[:eq]
			line = line[eq+2:]
			var val strings.Builder
			j := 0
			for ; j < len(line) && line[j] != '"'; j++ {
				if line[j] == '\\' && j+1 < len(line) {
					j++
					switch line[j] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(line[j])
					}
					continue
				}
				val.WriteByte(line[j])
			}
			if j == len(line) {
				return s, false
			}
			s.labels[key] = val.String()
			line = line[j+1:]
		}
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return s, false
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, false
	}
	s.value = v
	return s, true
}

// probeable lists the nodes worth asking: running, not paused, members.
func (c *cluster) probeable() []*node {
	var out []*node
	for _, n := range c.nodes {
		n.mu.Lock()
		skip := n.paused || n.removed
		n.mu.Unlock()
		if !skip && n.running() {
			out = append(out, n)
		}
	}
	return out
}

// leadersByRange reads orbit_raft_leader{range} and
// orbit_raft_leader_term{range} from every probeable node's /metrics: the
// leader of each range is the node that says it leads it in the highest
// term (a deposed leader that has not heard yet says so in an older one).
func (c *cluster) leadersByRange(ctx context.Context) map[int]int {
	type claim struct{ node, term int }
	var mu sync.Mutex
	best := map[int]claim{}
	var wg sync.WaitGroup
	for _, n := range c.probeable() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			text, err := httpGet(ctx, n, "/metrics", time.Second)
			if err != nil {
				return
			}
			leads, terms := map[int]bool{}, map[int]int{}
			for _, s := range parseMetrics(text) {
				r, err := strconv.Atoi(s.labels["range"])
				if err != nil {
					continue
				}
				switch s.name {
				case "orbit_raft_leader":
					leads[r] = s.value == 1
				case "orbit_raft_leader_term":
					terms[r] = int(s.value)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for r, yes := range leads {
				if b, ok := best[r]; yes && (!ok || terms[r] > b.term || terms[r] == b.term && n.id < b.node) {
					best[r] = claim{n.id, terms[r]}
				}
			}
		}()
	}
	wg.Wait()
	out := map[int]int{}
	for r, cl := range best {
		out[r] = cl.node
	}
	return out
}

// topology is the ranges as the cluster shows them now: slots and
// replicas from the first probeable node whose GET /cluster answers for
// each range, leaders from /metrics. Nil when no node answers /cluster.
func (c *cluster) topology(ctx context.Context) []topo.Range {
	leaders := c.leadersByRange(ctx)
	var out []topo.Range
	for _, n := range c.probeable() {
		v, err := fetchCluster(ctx, n, 2*time.Second)
		if err != nil {
			continue
		}
		if out == nil {
			for _, r := range v.Ranges {
				first, last, err := topo.ParseSlots(r.Slots)
				if err != nil {
					return nil // a shape the harness does not know: say nothing rather than something wrong
				}
				out = append(out, topo.Range{ID: r.ID, First: first, Last: last, Leader: leaders[r.ID]})
			}
		}
		missing := false
		for i := range out {
			for _, r := range v.Ranges {
				if r.ID == out[i].ID && out[i].Replicas == nil && r.Replicas != nil {
					out[i].Replicas = append([]int{}, r.Replicas...)
					sort.Ints(out[i].Replicas)
				}
			}
			missing = missing || out[i].Replicas == nil
		}
		if !missing {
			break
		}
	}
	return out
}

// unanswered asks every probeable node not in skip for GET /cluster and
// returns, for each that answered, the ranges it could not reach (an
// empty list when it reached them all).
func (c *cluster) unanswered(ctx context.Context, skip []int) map[int][]int {
	var mu sync.Mutex
	out := map[int][]int{}
	var wg sync.WaitGroup
	for _, n := range c.probeable() {
		if slices.Contains(skip, n.id) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := fetchCluster(ctx, n, 1500*time.Millisecond)
			if err != nil {
				return
			}
			missing := []int{}
			for _, r := range v.Ranges {
				if r.Replicas == nil {
					missing = append(missing, r.ID)
				}
			}
			sort.Ints(missing)
			mu.Lock()
			out[n.id] = missing
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// oversizedLogLine is what the transport logs (once per peer and process)
// when it refuses a message larger than MaxMessageBytes.
const oversizedLogLine = "larger than MaxMessageBytes"

// sizeFinding is what one node says about messages refused for size.
type sizeFinding struct {
	node      int
	scraped   bool    // its /metrics answered
	counter   float64 // orbit_transport_oversized_messages_total, summed over peers (absent: 0)
	byPeer    []string
	logHits   int    // lines of its log naming a refusal
	firstHit  string // the first of them
	logErr    error
	scrapeErr error
}

// oversized scrapes every running node's /metrics for
// orbit_transport_oversized_messages_total and reads every node's log for
// oversizedLogLine. The counter restarts with the process, so a node
// restarted during the run may have forgotten a refusal; its log, appended
// across restarts, still has it.
func (c *cluster) oversized(ctx context.Context) []sizeFinding {
	var out []sizeFinding
	for _, n := range c.nodes {
		f := sizeFinding{node: n.id}
		if n.running() {
			text, err := httpGet(ctx, n, "/metrics", 3*time.Second)
			f.scrapeErr = err
			if err == nil {
				f.scraped = true
				for _, s := range parseMetrics(text) {
					if s.name == "orbit_transport_oversized_messages_total" {
						f.counter += s.value
						if s.value != 0 {
							f.byPeer = append(f.byPeer, fmt.Sprintf("peer %s: %g", s.labels["peer"], s.value))
						}
					}
				}
			}
		} else {
			f.scrapeErr = fmt.Errorf("%s is not running", n)
		}
		f.logHits, f.firstHit, f.logErr = grepFile(n.logPath, oversizedLogLine)
		out = append(out, f)
	}
	return out
}

// grepFile counts the lines of path containing sub and returns the first.
func grepFile(path, sub string) (hits int, first string, err error) {
	file, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), sub) {
			if hits == 0 {
				first = sc.Text()
			}
			hits++
		}
	}
	return hits, first, sc.Err()
}
