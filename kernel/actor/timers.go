package actor

import "time"

// timerState is an activation's timer: when it is next due (the host's
// monotonic clock) and its period (0: once).
type timerState struct {
	due, period time.Duration
}

// setTimers applies a turn's timer changes (after the turn committed).
func (a *activation) setTimers(ts []Timer, now time.Duration) {
	for _, t := range ts {
		if t.Cancel {
			delete(a.timers, t.Name)
			continue
		}
		if a.timers == nil {
			a.timers = map[string]*timerState{}
		}
		a.timers[t.Name] = &timerState{due: now + max(t.After, 0), period: max(t.Period, 0)}
	}
}

// timerFired moves a timer that ticked on by its period, or drops it.
func (a *activation) timerFired(name string, now time.Duration) {
	t := a.timers[name]
	if t == nil {
		return // cancelled by its own tick
	}
	if t.period == 0 {
		delete(a.timers, name)
		return
	}
	t.due = now + t.period
}

// nextTimer is the timer due first ("" if none); ties go to the smallest
// name, so that the order is the same on every run.
func (a *activation) nextTimer() (string, time.Duration) {
	var name string
	var due time.Duration
	for n, t := range a.timers {
		if name == "" || t.due < due || (t.due == due && n < name) {
			name, due = n, t.due
		}
	}
	return name, due
}
