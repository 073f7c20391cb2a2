package actor

import (
	"context"
	"fmt"
	"time"

	"github.com/orbitkernel/orbit/kernel"
	"github.com/orbitkernel/orbit/txn"
)

// Reminders (docs/actors.md, "Reminders"): each is a record with its
// actor (reminderKey) and an entry in the due index (dueKey), written,
// moved and removed together in the turns' transactions. Every host scans
// the index for what is due and fires it: a firing is a turn that runs
// only while the reminder is still due at the time it was fired for, and
// removes (or moves on, if it repeats) the reminder in its own
// transaction — so a reminder fires at least once after its time, and a
// firing that lost a race with another host's runs nothing.

// readReminder reads one of an actor's reminders in tx.
func readReminder(ctx context.Context, tx *txn.Tx, ref Ref, name string) (reminderRecord, bool, error) {
	v, found, err := tx.Get(ctx, reminderKey(ref, name))
	if err != nil || !found {
		return reminderRecord{}, false, err
	}
	m, err := decodeReminderRecord(v)
	if err != nil {
		return m, false, fmt.Errorf("actor %s: reminder %q: %w", ref, name, err)
	}
	return m, true, nil
}

// removeReminder removes a reminder and its index entry.
func removeReminder(ctx context.Context, tx *txn.Tx, ref Ref, name string, m reminderRecord) error {
	if err := tx.Delete(ctx, dueKey(m.Due, ref, name)); err != nil {
		return err
	}
	return tx.Delete(ctx, reminderKey(ref, name))
}

// putReminder writes a reminder and its index entry.
func putReminder(ctx context.Context, tx *txn.Tx, ref Ref, name string, m reminderRecord) error {
	if err := tx.Put(ctx, dueKey(m.Due, ref, name), []byte{1}); err != nil { // the key says it all
		return err
	}
	return tx.Put(ctx, reminderKey(ref, name), m.encode())
}

// setReminders applies a turn's reminder changes.
func setReminders(ctx context.Context, tx *txn.Tx, ref Ref, changes []Reminder) error {
	for _, r := range changes {
		if r.Name == "" || r.Name[0] == 0 {
			return fmt.Errorf("actor %s: a reminder's name must be set and must not start with a 0 byte", ref)
		}
		old, found, err := readReminder(ctx, tx, ref, r.Name)
		if err != nil {
			return err
		}
		if found {
			if err := removeReminder(ctx, tx, ref, r.Name, old); err != nil {
				return err
			}
		}
		if r.Cancel {
			continue
		}
		if err := putReminder(ctx, tx, ref, r.Name, reminderRecord{Due: r.Due.UnixNano(), Period: int64(r.Period), Payload: r.Payload}); err != nil {
			return err
		}
	}
	return nil
}

// settleFired ends a fired reminder: removed, or moved on by its period
// to its first due time after now.
func settleFired(ctx context.Context, tx *txn.Tx, ref Ref, name string, m reminderRecord, now int64) error {
	if err := removeReminder(ctx, tx, ref, name, m); err != nil {
		return err
	}
	if m.Period <= 0 {
		return nil
	}
	next := m
	next.Due += (max(now-m.Due, 0)/m.Period + 1) * m.Period
	return putReminder(ctx, tx, ref, name, next)
}

// remindersDue is how many due reminders one scan takes at most.
const remindersDue = 128

// scanReminders is a host's task: every ReminderScan (jittered), fire
// the reminders due by this node's clock.
func (h *Host) scanReminders(ctx context.Context) {
	var cl *Client
	for {
		jitter := time.Duration(h.rt.Rand().Int64N(int64(h.opts.ReminderScan)/2 + 1))
		if h.rt.Sleep(ctx, h.opts.ReminderScan/2+jitter) != nil {
			return
		}
		if cl == nil {
			var err error
			if cl, err = NewClient(h.opts); err != nil {
				kernel.Crash("actor: the reminder scanner's client: %v", err)
			}
		}
		var due []reminderDue
		sctx, cancel := h.rt.WithTimeout(ctx, h.opts.ReminderScan*4)
		err := h.withDB(sctx, func(tx *txn.Tx) error {
			due = due[:0]
			kvs, err := tx.Scan(sctx, dueIndex, dueEnd(h.opts.Wall().UnixNano()), remindersDue)
			if err != nil {
				return err
			}
			for _, kv := range kvs {
				d, ref, name, err := decodeDueKey(kv.Key)
				if err != nil {
					return fmt.Errorf("actor: reminder index entry %q: %w", kv.Key, err)
				}
				due = append(due, reminderDue{ref: ref, name: name, due: d})
			}
			return nil
		})
		cancel()
		if err != nil {
			continue // faults: the next scan
		}
		// Calls left waiting: the host that made them delivers them as
		// they commit (kick), so only those waiting a few scans are
		// picked up here, by every host (deliveries are numbered: the
		// target runs each once).
		left := h.opts.Wall().UnixNano() - 3*int64(h.opts.ReminderScan)
		for _, d := range due {
			if d.name == outboxName {
				if d.due <= left {
					h.kick(d.ref)
				}
				continue
			}
			fctx, cancel := h.rt.WithTimeout(ctx, h.opts.AttemptTimeout*2)
			_ = cl.fire(fctx, d) // not run: still due, the next scan fires it again
			cancel()
		}
	}
}

// reminderDue is a due index entry.
type reminderDue struct {
	ref  Ref
	name string
	due  int64
}
