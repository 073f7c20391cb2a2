package redis

import (
	"encoding/binary"
	"strconv"
)

// Keyspace notifications (Redis's notify.c).
//
// A write command reports what it did to each key as events — "set",
// "lpush", "del", "expired", "new" … — exactly where Redis's commands call
// notifyKeyspaceEvent, in the same order. They are collected while the
// command runs at the range's leaseholder, only for the classes the node
// that sent the command asked for (WithNotify, from its
// notify-keyspace-events), and travel back with the reply (Reply.Events);
// that node publishes them (session), to every node's subscribers. An event
// is published only for a command whose reply came back: a command whose
// reply was lost (its client's node died) notifies nobody, as a Redis
// primary that dies before its pub/sub messages leave.

// Event classes: Redis's NOTIFY_* flags, the bits notify-keyspace-events
// sets.
const (
	NotifyKeyspace uint16 = 1 << iota // K: __keyspace@<db>__:<key> channels
	NotifyKeyevent                    // E: __keyevent@<db>__:<event> channels
	NotifyGeneric                     // g: DEL, EXPIRE, RENAME, ...
	NotifyString                      // $
	NotifyList                        // l
	NotifySet                         // s
	NotifyHash                        // h
	NotifyZSet                        // z
	NotifyExpired                     // x: a key deleted because it expired
	NotifyEvicted                     // e: never here (nothing is evicted)
	NotifyStream                      // t
	NotifyKeyMiss                     // m: a read of a key that does not exist
	notifyLoaded                      // modules only
	NotifyModule                      // d: never here (no modules)
	NotifyNew                         // n: a key created

	// NotifyAll is 'A': every class but n and m.
	NotifyAll = NotifyGeneric | NotifyString | NotifyList | NotifySet | NotifyHash | NotifyZSet |
		NotifyExpired | NotifyEvicted | NotifyStream | NotifyModule
)

// notifyChars are the class characters in the order Redis's
// keyspaceEventsFlagsToString writes them.
var notifyChars = []struct {
	c    byte
	flag uint16
}{
	{'g', NotifyGeneric}, {'$', NotifyString}, {'l', NotifyList}, {'s', NotifySet}, {'h', NotifyHash},
	{'z', NotifyZSet}, {'x', NotifyExpired}, {'e', NotifyEvicted}, {'t', NotifyStream}, {'d', NotifyModule},
	{'n', NotifyNew}, {'K', NotifyKeyspace}, {'E', NotifyKeyevent}, {'m', NotifyKeyMiss},
}

// ParseNotifyFlags is Redis's keyspaceEventsStringToFlags: ok is false
// for a character that is no class.
func ParseNotifyFlags(s string) (flags uint16, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == 'A' {
			flags |= NotifyAll
			continue
		}
		found := false
		for _, nc := range notifyChars {
			if nc.c == s[i] {
				flags, found = flags|nc.flag, true
			}
		}
		if !found {
			return 0, false
		}
	}
	return flags, true
}

// NotifyFlagsString is Redis 7.0's keyspaceEventsFlagsToString, what
// CONFIG GET notify-keyspace-events answers: "A" for all of NotifyAll,
// then the other classes, K, E and m. It leaves out n, as Redis 7.0 does
// (the class is set all the same).
func NotifyFlagsString(flags uint16) string {
	var out []byte
	for _, nc := range notifyChars {
		if nc.flag == NotifyNew {
			continue
		}
		if flags&NotifyAll == NotifyAll && nc.flag&NotifyAll != 0 {
			if nc.flag == NotifyGeneric {
				out = append(out, 'A')
			}
			continue
		}
		if flags&nc.flag != 0 {
			out = append(out, nc.c)
		}
	}
	return string(out)
}

// Event is one keyspace event: what happened (Redis's event name) to a key
// of a database.
type Event struct {
	Name string
	DB   int
	Key  []byte
}

// Messages are the pub/sub messages of e under flags (a K and an E
// channel, either or both): channel, message pairs.
func (e Event) Messages(flags uint16) [][2][]byte {
	var out [][2][]byte
	db := strconv.Itoa(e.DB)
	if flags&NotifyKeyspace != 0 {
		out = append(out, [2][]byte{append([]byte("__keyspace@"+db+"__:"), e.Key...), []byte(e.Name)})
	}
	if flags&NotifyKeyevent != 0 {
		out = append(out, [2][]byte{[]byte("__keyevent@" + db + "__:" + e.Name), e.Key})
	}
	return out
}

// events collects a command's events of the classes asked for.
type events struct {
	flags uint16
	list  []Event
}

// add records an event of class about key in database db, if asked for.
func (ev *events) add(class uint16, name string, db int, key []byte) {
	if ev == nil || ev.flags&class == 0 {
		return
	}
	ev.list = append(ev.list, Event{Name: name, DB: db, Key: append([]byte(nil), key...)})
}

// notify is Redis's notifyKeyspaceEvent for this command's database.
func (c *ctx) notify(class uint16, name string, key []byte) {
	if c.ev == nil {
		return
	}
	_, db := databaseOf(c.st)
	c.ev.add(class, name, db, key)
}

// WithNotify wraps cmd (any command of this file's encoders, InDB and
// WithObjectConfig included) so that its reply carries the keyspace events
// of the classes in flags (Reply.Events). Flags without K or E ask for
// nothing, and cmd is returned as it is.
func WithNotify(flags uint16, cmd []byte) []byte {
	if flags&(NotifyKeyspace|NotifyKeyevent) == 0 || flags&^(NotifyKeyspace|NotifyKeyevent) == 0 {
		return cmd
	}
	return append(binary.AppendUvarint([]byte{cmdVersion, opNotify}, uint64(flags)), cmd...)
}

// readNotify undoes WithNotify: the collector and the command it wraps.
func readNotify(cmd []byte) (*events, []byte, bool) {
	flags, n := binary.Uvarint(cmd[2:])
	if n <= 0 || flags > 0xffff || len(cmd) < 2+n+2 || cmd[2+n] != cmdVersion || cmd[3+n] == opNotify {
		return nil, nil, false
	}
	return &events{flags: uint16(flags)}, cmd[2+n:], true
}

// appendEvents and readEvents carry a top-level reply's events
// (EncodeReply's flag 8).
func appendEvents(dst []byte, list []Event) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(list)))
	for _, e := range list {
		dst = appendField(dst, []byte(e.Name))
		dst = binary.AppendUvarint(dst, uint64(e.DB))
		dst = appendField(dst, e.Key)
	}
	return dst
}

func readEvents(fr *fieldReader) []Event {
	n := fr.uint()
	if n > uint64(len(fr.b)) {
		fr.err = errMalformed
		return nil
	}
	list := make([]Event, 0, n)
	for i := uint64(0); i < n && fr.err == nil; i++ {
		name := string(fr.field())
		db := fr.uint()
		key := fr.field()
		if db >= Databases {
			fr.err = errMalformed
		}
		list = append(list, Event{Name: name, DB: int(db), Key: key})
	}
	return list
}
