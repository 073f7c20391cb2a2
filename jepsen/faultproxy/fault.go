package faultproxy

import (
	"fmt"
	"math"
	"time"
)

// Cut partitions the link from→to: its connections stop forwarding in both
// directions, and connections accepted while it is cut are held without
// dialing the target. Nothing is lost; Heal resumes. When Cut returns, no
// further byte is written on the link until Heal.
func (p *Proxy) Cut(from, to int) {
	l := p.link(from, to)
	l.mu.Lock()
	l.cut = true
	l.applyDeadlinesLocked()
	l.wakeLocked()
	// Writes in flight were interrupted by the deadlines; wait for them to
	// return so that nothing is written once Cut has returned.
	for l.writing > 0 {
		l.waitLocked(0)
	}
	l.mu.Unlock()
	p.logger.Info("faultproxy: cut", "from", from, "to", to)
}

// Reset closes every current connection of the link from→to at once, both
// sockets, with a TCP reset. Bytes queued in the proxy are lost. New
// connections are accepted as before.
func (p *Proxy) Reset(from, to int) {
	l := p.link(from, to)
	l.mu.Lock()
	conns := make([]*conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.end(endFault)
	}
	p.logger.Info("faultproxy: reset", "from", from, "to", to, "conns", len(conns))
}

// Delay makes every chunk forwarded on the link from→to wait mean±jitter
// (uniform, never below zero) after it was read; order is preserved. Chunks
// already queued wait at most mean+jitter from now. Delay(from, to, 0, 0)
// removes the delay. It panics if mean or jitter is negative.
func (p *Proxy) Delay(from, to int, mean, jitter time.Duration) {
	if mean < 0 || jitter < 0 {
		panic(fmt.Sprintf("faultproxy: Delay(%d, %d, %v, %v): negative duration", from, to, mean, jitter))
	}
	l := p.link(from, to)
	l.mu.Lock()
	l.setDelayLocked(mean, jitter)
	l.mu.Unlock()
	p.logger.Info("faultproxy: delay", "from", from, "to", to, "mean", mean, "jitter", jitter)
}

// Loss makes each chunk forwarded on the link from→to reset its connection
// with probability prob. Loss(from, to, 0) removes it. It panics if prob is
// not in [0, 1].
func (p *Proxy) Loss(from, to int, prob float64) {
	if math.IsNaN(prob) || prob < 0 || prob > 1 {
		panic(fmt.Sprintf("faultproxy: Loss(%d, %d, %v): want a probability in [0, 1]", from, to, prob))
	}
	l := p.link(from, to)
	l.mu.Lock()
	l.loss = prob
	l.mu.Unlock()
	p.logger.Info("faultproxy: loss", "from", from, "to", to, "prob", prob)
}

// Heal undoes Cut, Delay and Loss on the link from→to. Stalled and held
// connections resume; queued chunks are released at once.
func (p *Proxy) Heal(from, to int) {
	l := p.link(from, to)
	l.mu.Lock()
	l.healLocked()
	l.mu.Unlock()
	p.logger.Info("faultproxy: heal", "from", from, "to", to)
}

// HealAll heals every link.
func (p *Proxy) HealAll() {
	for _, l := range p.allLinks() {
		p.Heal(l.from, l.to)
	}
}
