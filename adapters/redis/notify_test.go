package redis

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// Keyspace notifications against redis-server: the differential test's
// command sequences, with every command's keyspace events compared (names,
// keys and databases, in order) besides its reply.

// notifyClasses are the classes compared: every one but x (Redis's active
// expiry deletes expired keys in the background, whenever its timer
// fires, so its "expired" events have no fixed place in a sequence) and m.
const notifyClasses = "Eg$lshztdn"

// eventTap is a connection subscribed to every keyevent channel of a real
// server.
type eventTap struct {
	t interface {
		Fatalf(string, ...any)
		Fatal(...any)
	}
	c *respClient
}

func newEventTap(t testing.TB, s *realServer, control *respClient) *eventTap {
	if _, err := control.doStrings("CONFIG", "SET", "notify-keyspace-events", notifyClasses); err != nil {
		t.Fatal(err)
	}
	c := s.dial(t)
	if _, err := c.doStrings("PSUBSCRIBE", "__keyevent@*__:*"); err != nil {
		t.Fatal(err)
	}
	return &eventTap{t: t, c: c}
}

// drain returns the events published since the last drain, as "db event
// key" strings. Redis publishes a command's events before it replies, so
// once the command's reply is in, a PING on this connection is answered
// after all of them.
func (e *eventTap) drain() []string {
	if _, err := e.c.conn.Write(encodeCommand(toArgs([]string{"PING"}))); err != nil {
		e.t.Fatal(err)
	}
	_ = e.c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	var out []string
	for {
		raw, err := e.c.readRaw()
		if err != nil {
			e.t.Fatal(err)
		}
		r, _, err := ParseReply(raw)
		if err != nil || r.Kind != KindArray || len(r.Elems) == 0 {
			e.t.Fatalf("tap: unexpected %q", raw)
		}
		switch string(r.Elems[0].Str) {
		case "pong":
			return out
		case "pmessage":
			ch := string(r.Elems[2].Str) // __keyevent@<db>__:<event>
			db, name, _ := strings.Cut(strings.TrimPrefix(ch, "__keyevent@"), "__:")
			out = append(out, fmt.Sprintf("%s %s %q", db, name, r.Elems[3].Str))
		default:
			e.t.Fatalf("tap: unexpected %q", raw)
		}
	}
}

// discardEvents drops the events both sides have so far.
func (d *differ) discardEvents() {
	if d.tap != nil {
		d.tap.drain()
		d.ev.list = nil
	}
}

// checkEvents compares cmd's events on both sides.
func (d *differ) checkEvents(cmd []string) {
	if d.tap == nil {
		return
	}
	want := d.tap.drain()
	var got []string
	for _, e := range d.ev.list {
		got = append(got, fmt.Sprintf("%d %s %q", e.DB, e.Name, e.Key))
	}
	d.ev.list = nil
	if strings.Join(want, "\n") != strings.Join(got, "\n") {
		d.t.Fatalf("command %.300q: keyspace events differ\nredis:\n  %s\norbit:\n  %s\nsequence:\n  %s",
			cmd, strings.Join(want, "\n  "), strings.Join(got, "\n  "), strings.Join(d.log, "\n  "))
	}
}

// notifyFamilies are the differential generators by family, each checked
// on its own so that a family's difference names it.
var notifyFamilies = map[string][]func(*rapid.T, genEnv) []string{
	"strings": {genStringCmd},
	"keys":    {genKeyCmd, genKeyspaceCmd},
	"hashes":  {genHashCmd},
	"lists":   {genListCmd},
	"sets":    {genSetCmd},
	"zsets":   {genZSetCmd, genZSetCmd2},
	"mixed":   {genBigCmd, genObjectCmd, genLCSCmd},
	"bitmaps": {genBitmapCmd},
	"hll":     {genHLLCmd},
	"geo":     {genGeoCmd},
	"streams": {genStreamCmd, genStreamGroupCmd},
}

func TestNotificationsMatchRedis(t *testing.T) {
	flags, ok := ParseNotifyFlags(notifyClasses)
	if !ok {
		t.Fatal("bad classes")
	}
	for _, name := range []string{"strings", "keys", "hashes", "lists", "sets", "zsets", "mixed", "bitmaps", "hll", "geo", "streams"} {
		gens := notifyFamilies[name]
		t.Run(name, func(t *testing.T) {
			differentialNotify(t, 1, 30, func(rt *rapid.T, env genEnv) []string {
				return gens[rapid.IntRange(0, len(gens)-1).Draw(rt, "family")](rt, env)
			}, flags)
		})
	}
}
