package redis

import (
	"math"
	"strconv"
)

// The consumer-group commands (t_stream.c): XGROUP, XACK, XPENDING, XCLAIM
// and XAUTOCLAIM. XREADGROUP and XINFO GROUPS/CONSUMERS are in streams.go.

// errNoGroup is the NOGROUP error of XPENDING, XCLAIM and XAUTOCLAIM.
func errNoGroup(key, group []byte) error {
	return errorf("NOGROUP No such key '%s' or consumer group '%s'", cstr(key), cstr(group))
}

// XGROUP CREATE key group id|$ [MKSTREAM] [ENTRIESREAD n] | SETID key group id|$ [ENTRIESREAD n] |
// DESTROY key group | CREATECONSUMER key group consumer | DELCONSUMER key group consumer | HELP
func cmdXGroup(c *ctx) (Reply, error) {
	name, bad, ok := c.subcommand()
	if !ok {
		return bad, nil
	}
	if name == "help" {
		return HelpReply("XGROUP", []string{
			"CREATE <key> <groupname> <id|$> [option]",
			"    Create a new consumer group. Options are:",
			"    * MKSTREAM",
			"      Create the empty stream if it does not exist.",
			"    * ENTRIESREAD entries_read",
			"      Set the group's entries_read counter (internal use).",
			"CREATECONSUMER <key> <groupname> <consumer>",
			"    Create a new consumer in the specified group.",
			"DELCONSUMER <key> <groupname> <consumer>",
			"    Remove the specified consumer.",
			"DESTROY <key> <groupname>",
			"    Remove the specified group.",
			"SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
			"    Set the current group ID and entries_read counter.",
		}), nil
	}
	argc := len(c.args)
	mkstream, entriesRead := false, int64(invalidEntriesRead)
	for i := 5; i < argc; {
		switch {
		case name == "create" && cEqualFold(c.args[i], "mkstream"):
			mkstream = true
			i++
		case (name == "create" || name == "setid") && cEqualFold(c.args[i], "entriesread") && i+1 < argc:
			n, err := argInt(c.args[i+1])
			if err != nil {
				return Reply{}, err
			}
			if n < 0 && n != invalidEntriesRead {
				return Reply{}, userError("ERR value for ENTRIESREAD must be positive or -1")
			}
			entriesRead = n
			i += 2
		default:
			return Reply{}, c.subcommandSyntaxErr()
		}
	}
	key, groupName := c.args[2], c.args[3]
	s, err := c.lookupStream(key)
	if err != nil {
		return Reply{}, err
	}
	var g *group
	if !mkstream {
		if !s.exists() {
			return Reply{}, userError("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.")
		}
		if g, err = s.group(groupName); err != nil {
			return Reply{}, err
		}
		if g == nil && (name == "setid" || name == "createconsumer" || name == "delconsumer") {
			return Reply{}, errorf("NOGROUP No such consumer group '%s' for key name '%s'", cstr(groupName), cstr(key))
		}
	}
	switch {
	case name == "create" && argc <= 8:
		var id streamID
		if string(cstr(c.args[4])) == "$" {
			id = s.meta().lastID // 0-0 for a stream MKSTREAM makes
		} else if id, err = parseStrictID(c.args[4]); err != nil {
			return Reply{}, err
		}
		if !s.exists() {
			s.create()
		} else if g, err = s.group(groupName); err != nil {
			return Reply{}, err
		}
		if g != nil {
			return Reply{}, userError("BUSYGROUP Consumer Group name already exists")
		}
		s.createGroup(groupName, id, entriesRead)
		c.notify(NotifyStream, "xgroup-create", key)
		return OK(), s.save()
	case name == "setid" && (argc == 5 || argc == 7):
		id := s.meta().lastID
		if string(cstr(c.args[4])) != "$" {
			// Not strict: "-" and "+" are IDs here.
			if id, _, err = parseStreamID(c.args[4], 0, false, false); err != nil {
				return Reply{}, err
			}
		}
		g.lastID, g.entriesRead, g.dirty = id, entriesRead, true
		c.notify(NotifyStream, "xgroup-setid", key)
		return OK(), s.save()
	case name == "destroy":
		if g == nil {
			return Int(0), nil
		}
		if err := s.destroyGroup(g); err != nil {
			return Reply{}, err
		}
		c.notify(NotifyStream, "xgroup-destroy", key)
		return Int(1), s.save()
	case name == "createconsumer":
		cn, err := s.consumer(g, c.args[4], false)
		if err != nil || cn != nil {
			return Int(0), err
		}
		s.createConsumer(g, c.args[4]) // "xgroup-createconsumer"
		return Int(1), s.save()
	case name == "delconsumer":
		cn, err := s.consumer(g, c.args[4], false)
		if err != nil || cn == nil {
			return Int(0), err
		}
		pending, err := s.deleteConsumer(g, cn)
		if err != nil {
			return Reply{}, err
		}
		c.notify(NotifyStream, "xgroup-delconsumer", key)
		return Int(pending), s.save()
	}
	return Reply{}, c.subcommandSyntaxErr()
}

// streamAndGroup looks up the key's stream and the named group: s or g is
// nil when missing.
func (c *ctx) streamAndGroup(key, name []byte) (*stream, *group, error) {
	s, err := c.lookupStream(key)
	if err != nil || !s.exists() {
		return nil, nil, err
	}
	g, err := s.group(name)
	return s, g, err
}

// XACK key group id [id ...]
func cmdXAck(c *ctx) (Reply, error) {
	s, g, err := c.streamAndGroup(c.args[1], c.args[2])
	if err != nil || g == nil {
		return Int(0), err
	}
	// Every ID is checked before anything is acknowledged.
	ids := make([]streamID, 0, len(c.args)-3)
	for _, a := range c.args[3:] {
		id, err := parseStrictID(a)
		if err != nil {
			return Reply{}, err
		}
		ids = append(ids, id)
	}
	var acked int64
	for _, id := range ids {
		n, err := s.nack(g, id)
		if err == nil && n != nil {
			err = s.ack(g, n)
			acked++
		}
		if err != nil {
			return Reply{}, err
		}
	}
	if acked == 0 {
		return Int(0), nil
	}
	return Int(acked), s.save()
}

// XPENDING key group [[IDLE min-idle-time] start end count [consumer]]
func cmdXPending(c *ctx) (Reply, error) {
	argc := len(c.args)
	if argc != 3 && (argc < 6 || argc > 9) {
		return Reply{}, errSyntax
	}
	var start, end streamID
	var count, minIdle int64
	var consumerName []byte
	if argc >= 6 {
		at := 3
		if cEqualFold(c.args[3], "idle") {
			var err error
			if minIdle, err = argInt(c.args[4]); err != nil {
				return Reply{}, err
			}
			if argc < 8 {
				return Reply{}, errSyntax
			}
			at += 2
		}
		var err error
		if count, err = argInt(c.args[at+2]); err != nil {
			return Reply{}, err
		}
		count = max(count, 0)
		if start, err = parseRangeStart(c.args[at]); err != nil {
			return Reply{}, err
		}
		if end, err = parseRangeEnd(c.args[at+1]); err != nil {
			return Reply{}, err
		}
		if at+3 < argc {
			consumerName = c.args[at+3]
		}
	}
	s, g, err := c.streamAndGroup(c.args[1], c.args[2])
	if err != nil {
		return Reply{}, err
	}
	if g == nil {
		return Reply{}, errNoGroup(c.args[1], c.args[2])
	}
	if argc == 3 {
		return s.pendingSummary(g)
	}
	var cn *consumer
	if consumerName != nil {
		if cn, err = s.consumer(g, consumerName, false); err != nil || cn == nil {
			return Array(), err
		}
	}
	out := []Reply{}
	err = s.eachNACK(g, cn, start, end, func(n *streamNACK) (bool, error) {
		if count == 0 {
			return false, nil
		}
		idle := c.now - n.delivered
		if minIdle != 0 && idle < minIdle {
			return true, nil
		}
		count--
		out = append(out, Array(n.id.reply(), Bulk(n.consumer), Int(max(idle, 0)), Int(int64(n.deliveries))))
		return true, nil
	})
	return Array(out...), err
}

// pendingSummary is XPENDING key group: how many entries are pending,
// the first and last of them, and how many each consumer holds.
func (s *stream) pendingSummary(g *group) (Reply, error) {
	if g.pending == 0 {
		return Array(Int(0), Null(), Null(), NullArray()), nil
	}
	var first, last streamID
	seen := false
	err := s.eachNACK(g, nil, streamID{}, maxStreamID, func(n *streamNACK) (bool, error) {
		if !seen {
			first, seen = n.id, true
		}
		last = n.id
		return true, nil
	})
	if err != nil {
		return Reply{}, err
	}
	var holders []Reply
	err = s.eachConsumer(g, func(cn *consumer) error {
		if cn.pending > 0 {
			holders = append(holders, Array(Bulk(cn.name), BulkString(strconv.FormatInt(cn.pending, 10))))
		}
		return nil
	})
	if err != nil {
		return Reply{}, err
	}
	return Array(Int(g.pending), first.reply(), last.reply(), Array(holders...)), nil
}

// claimOpts are XCLAIM's options after its IDs.
type claimOpts struct {
	delivered int64 // -1: not given (now)
	retries   int64 // -1: not given
	force     bool
	justID    bool
	lastID    streamID // 0-0: not given
}

// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-ms] [RETRYCOUNT count] [FORCE] [JUSTID] [LASTID id]
func cmdXClaim(c *ctx) (Reply, error) {
	s, g, err := c.streamAndGroup(c.args[1], c.args[2])
	if err != nil {
		return Reply{}, err
	}
	if g == nil {
		return Reply{}, errNoGroup(c.args[1], c.args[2])
	}
	minIdle, ok := parseInt(c.args[4])
	if !ok {
		return Reply{}, userError("ERR Invalid min-idle-time argument for XCLAIM")
	}
	minIdle = max(minIdle, 0)
	// IDs up to the first argument that is not one; options after.
	var ids []streamID
	j := 5
	for ; j < len(c.args); j++ {
		id, err := parseStrictID(c.args[j])
		if err != nil {
			break
		}
		ids = append(ids, id)
	}
	o := claimOpts{delivered: -1, retries: -1}
	now := c.now
	for ; j < len(c.args); j++ {
		more := len(c.args) - 1 - j
		opt := c.args[j]
		intOpt := func(what string) (int64, error) {
			j++
			n, ok := parseInt(c.args[j])
			if !ok {
				return 0, userError("ERR Invalid " + what + " option argument for XCLAIM")
			}
			return n, nil
		}
		switch {
		case cEqualFold(opt, "force"):
			o.force = true
		case cEqualFold(opt, "justid"):
			o.justID = true
		case cEqualFold(opt, "idle") && more > 0:
			idle, err := intOpt("IDLE")
			if err != nil {
				return Reply{}, err
			}
			o.delivered = now - idle
		case cEqualFold(opt, "time") && more > 0:
			if o.delivered, err = intOpt("TIME"); err != nil {
				return Reply{}, err
			}
		case cEqualFold(opt, "retrycount") && more > 0:
			if o.retries, err = intOpt("RETRYCOUNT"); err != nil {
				return Reply{}, err
			}
		case cEqualFold(opt, "lastid") && more > 0:
			j++
			if o.lastID, err = parseStrictID(c.args[j]); err != nil {
				return Reply{}, err
			}
		default:
			return Reply{}, errorf("ERR Unrecognized XCLAIM option '%s'", cstr(opt))
		}
	}
	if o.lastID.cmp(g.lastID) > 0 {
		g.lastID, g.dirty = o.lastID, true
	}
	// A bogus time (negative, or in the future) is now, as in Redis.
	if o.delivered < 0 || o.delivered > now {
		o.delivered = now
	}
	var cn *consumer
	out := []Reply{}
	for _, id := range ids {
		n, err := s.nack(g, id)
		if err != nil {
			return Reply{}, err
		}
		fv, found, err := s.entry(id)
		if err != nil {
			return Reply{}, err
		}
		if !found {
			// The entry is gone: so goes its PEL entry.
			if n != nil {
				if err := s.ack(g, n); err != nil {
					return Reply{}, err
				}
			}
			continue
		}
		owned := n != nil
		if !owned {
			if !o.force {
				continue
			}
			n = s.newNACK(g, id) // FORCE: pending from now on, whatever its idle time
		} else if minIdle != 0 && now-n.delivered < minIdle {
			continue
		}
		if cn == nil {
			if cn, err = s.consumerOrCreate(g, c.args[3]); err != nil {
				return Reply{}, err
			}
		}
		n.delivered = o.delivered
		switch {
		case o.retries >= 0:
			n.deliveries = uint64(o.retries)
		case !o.justID:
			n.deliveries++
		}
		if err := s.setOwner(g, n, owned, cn); err != nil {
			return Reply{}, err
		}
		if o.justID {
			out = append(out, id.reply())
		} else {
			out = append(out, entryReply(id, fv))
		}
	}
	return Array(out...), s.save()
}

// XAUTOCLAIM key group consumer min-idle-time start [COUNT count] [JUSTID]
func cmdXAutoClaim(c *ctx) (Reply, error) {
	minIdle, ok := parseInt(c.args[4])
	if !ok {
		return Reply{}, userError("ERR Invalid min-idle-time argument for XAUTOCLAIM")
	}
	minIdle = max(minIdle, 0)
	start, err := parseRangeStart(c.args[5])
	if err != nil {
		return Reply{}, err
	}
	count, justID := int64(100), false
	for j := 6; j < len(c.args); j++ {
		switch {
		case cEqualFold(c.args[j], "count") && j+1 < len(c.args):
			// Redis allocates count IDs, and caps count so that the
			// allocation's size fits a long.
			n, ok := parseInt(c.args[j+1])
			if !ok || n < 1 || n > math.MaxInt64/16 {
				return Reply{}, userError("ERR COUNT must be > 0")
			}
			count = n
			j++
		case cEqualFold(c.args[j], "justid"):
			justID = true
		default:
			return Reply{}, errSyntax
		}
	}
	s, g, err := c.streamAndGroup(c.args[1], c.args[2])
	if err != nil {
		return Reply{}, err
	}
	if g == nil {
		return Reply{}, errNoGroup(c.args[1], c.args[2])
	}
	now := c.now
	attempts := count * 10
	var cn *consumer
	claimed, deleted := []Reply{}, []Reply{}
	next := streamID{} // the cursor: the PEL entry after the last one looked at
	err = s.eachNACK(g, nil, start, maxStreamID, func(n *streamNACK) (bool, error) {
		if attempts == 0 || count == 0 {
			next = n.id
			return false, nil
		}
		attempts--
		fv, found, err := s.entry(n.id)
		if err != nil {
			return false, err
		}
		if !found {
			deleted = append(deleted, n.id.reply())
			count--
			return true, s.ack(g, n)
		}
		if minIdle != 0 && now-n.delivered < minIdle {
			return true, nil
		}
		if cn == nil {
			if cn, err = s.consumerOrCreate(g, c.args[3]); err != nil {
				return false, err
			}
		}
		n.delivered = now
		if !justID {
			n.deliveries++
		}
		if err := s.setOwner(g, n, true, cn); err != nil {
			return false, err
		}
		if justID {
			claimed = append(claimed, n.id.reply())
		} else {
			claimed = append(claimed, entryReply(n.id, fv))
		}
		count--
		return true, nil
	})
	if err != nil {
		return Reply{}, err
	}
	return Array(next.reply(), Array(claimed...), Array(deleted...)), s.save()
}
