package sim

// eventKind says what an event does when its time comes.
type eventKind uint8

const (
	// evResume hands the processor to a parked task.
	evResume eventKind = iota + 1
	// evCall runs a function on the scheduler (timer callbacks, message
	// deliveries, faults). It must not block.
	evCall
)

// event is one entry of the simulator's agenda.
type event struct {
	at   int64  // virtual time, nanoseconds since the start of the run
	tie  uint64 // drawn from the seed: orders events due at the same time
	seq  uint64 // push order: unique, so the order is total
	kind eventKind
	task *task  // evResume: who to run
	gen  uint64 // evResume: the park generation this wake-up is for
	fn   func() // evCall
	// timer, when set, can cancel an evCall: a stopped timer's event is
	// skipped without a trace entry.
	timer *simTimer
	// node, when set, ties the event to a node: it is held while the node is
	// paused, and dropped if the node's incarnation is no longer inc (inc
	// 0 means any incarnation, for packets that outlive a process).
	node  *Node
	inc   uint32
	label string // for traces: a constant, formatted only when shown
}

func (a *event) before(b *event) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	if a.tie != b.tie {
		return a.tie < b.tie
	}
	return a.seq < b.seq
}

// queue is a binary min-heap of events, typed to avoid interface boxing on
// the hot path.
type queue []event

func (q *queue) push(e event) {
	*q = append(*q, e)
	h := *q
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h[i].before(&h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (q *queue) pop() event {
	h := *q
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h[last] = event{} // drop references for the GC
	h = h[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		m := l
		if r := l + 1; r < len(h) && h[r].before(&h[l]) {
			m = r
		}
		if !h[m].before(&h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	*q = h
	return top
}
