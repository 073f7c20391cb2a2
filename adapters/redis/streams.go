package redis

import (
	"math"
	"slices"
	"strings"
)

// Streams (t_stream.c): XADD, XRANGE, XREVRANGE, XLEN, XDEL, XTRIM, XREAD,
// XREADGROUP, XSETID and XINFO here; the consumer-group commands in
// streamgroups.go; the records in streamstore.go. Every check runs in
// Redis's order, so that a command with several faults gets Redis's error.
// Time (auto IDs, delivery and seen times, idle times) is the command's
// leader-stamped clock, c.now.

// entryReply is one entry: [ID, [field, value, ...]].
func entryReply(id streamID, fv [][]byte) Reply { return Array(id.reply(), bulks(fv)) }

// addArgs are XADD's options (streamAddTrimArgs).
type addArgs struct {
	trimArgs
	id                streamID
	idGiven, seqGiven bool // an ID other than "*"; other than "<ms>-*"
	noMkStream        bool
	idPos             int // where the ID is; the fields follow
}

// parseAddOrTrim is streamParseAddOrTrimArgsOrReply, for XADD (xadd) or
// XTRIM: the options from args[2] on, up to XADD's ID.
func parseAddOrTrim(args [][]byte, xadd bool) (addArgs, error) {
	var a addArgs
	limitGiven := false
	i := 2
options:
	for ; i < len(args); i++ {
		more := len(args) - 1 - i
		opt := args[i]
		switch {
		case xadd && string(cstr(opt)) == "*":
			break options
		case (cEqualFold(opt, "maxlen") || cEqualFold(opt, "minid")) && more > 0:
			if a.strategy != trimNone {
				return a, userError("ERR syntax error, MAXLEN and MINID options at the same time are not compatible")
			}
			a.approx = false
			if next := string(cstr(args[i+1])); more >= 2 && next == "~" {
				a.approx = true
				i++
			} else if more >= 2 && next == "=" {
				i++
			}
			if cEqualFold(opt, "maxlen") {
				n, err := argInt(args[i+1])
				if err != nil {
					return a, err
				}
				if n < 0 {
					return a, userError("ERR The MAXLEN argument must be >= 0.")
				}
				a.strategy, a.maxLen = trimMaxLen, n
			} else {
				id, err := parseStrictID(args[i+1])
				if err != nil {
					return a, err
				}
				a.strategy, a.minID = trimMinID, id
			}
			i++
		case cEqualFold(opt, "limit") && more > 0:
			n, err := argInt(args[i+1])
			if err != nil {
				return a, err
			}
			if n < 0 {
				return a, userError("ERR The LIMIT argument must be >= 0.")
			}
			a.limit, limitGiven = n, true
			i++
		case xadd && cEqualFold(opt, "nomkstream"):
			a.noMkStream = true
		case xadd:
			// The ID, or a syntax error that reads as a bad ID.
			id, seqGiven, err := parseStreamID(opt, 0, true, true)
			if err != nil {
				return a, err
			}
			a.id, a.seqGiven, a.idGiven = id, seqGiven, true
			break options
		default:
			return a, errSyntax
		}
	}
	a.idPos = i
	switch {
	case a.limit != 0 && a.strategy == trimNone:
		return a, userError("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy")
	case !xadd && a.strategy == trimNone:
		return a, userError("ERR syntax error, XTRIM must be called with a trimming strategy")
	case limitGiven && !a.approx:
		return a, userError("ERR syntax error, LIMIT cannot be used without the special ~ option")
	case !limitGiven && a.approx:
		// At most 100 nodes' worth of work, as Redis bounds a "~" without
		// LIMIT.
		a.limit = 100 * streamNodeMaxEntries
	case !limitGiven:
		a.limit = 0 // exact trimming has no limit
	}
	return a, nil
}

// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value [field value ...]
func cmdXAdd(c *ctx) (Reply, error) {
	a, err := parseAddOrTrim(c.args, true)
	if err != nil {
		return Reply{}, err
	}
	fields := c.args[min(a.idPos+1, len(c.args)):]
	if a.idPos+1 > len(c.args) || len(fields) < 2 || len(fields)%2 == 1 {
		return Reply{}, c.arityErr()
	}
	// A 0-0 ID fails before the key is created.
	if a.idGiven && a.seqGiven && a.id.isZero() {
		return Reply{}, userError("ERR The ID specified in XADD must be greater than 0-0")
	}
	s, err := c.lookupStream(c.args[1])
	if err != nil {
		return Reply{}, err
	}
	if !s.exists() {
		if a.noMkStream {
			return Null(), nil
		}
		s.create()
	}
	m := s.meta()
	// As in Redis, the stream created above stays when the entry is
	// refused.
	refuse := func(msg string) (Reply, error) {
		if err := s.save(); err != nil {
			return Reply{}, err
		}
		return Reply{}, userError(msg)
	}
	if m.lastID == maxStreamID {
		return refuse("ERR The stream has exhausted the last possible ID, unable to add more items")
	}
	id, msg := nextStreamID(m.lastID, a, uint64(c.now))
	if msg == "" {
		var total int64
		for _, f := range fields {
			total += int64(len(f))
		}
		if total > streamListpackMaxSize {
			msg = "ERR Elements are too large to be stored"
		}
	}
	if msg != "" {
		return refuse(msg)
	}
	if err := s.add(id, fields); err != nil {
		return Reply{}, err
	}
	c.notify(NotifyStream, "xadd", s.o.key)
	trimmed, _, err := s.trim(a.trimArgs)
	if err != nil {
		return Reply{}, err
	}
	if trimmed > 0 {
		c.notify(NotifyStream, "xtrim", s.o.key)
	}
	return id.reply(), s.save()
}

// nextStreamID is the ID streamAppendItem gives a new entry after last,
// or the error it replies: "*" is now, or last's successor when now is not
// later (so IDs only grow whatever the clock does); "<ms>-*" is the next
// sequence within ms.
func nextStreamID(last streamID, a addArgs, now uint64) (streamID, string) {
	const smaller = "ERR The ID specified in XADD is equal or smaller than the target stream top item"
	var id streamID
	switch {
	case !a.idGiven:
		if now > last.ms {
			id = streamID{ms: now}
		} else {
			id, _ = last.next()
		}
	case a.seqGiven:
		id = a.id
	case last.ms == a.id.ms:
		if last.seq == math.MaxUint64 {
			// Redis fails here without setting errno, and so answers
			// with its other error.
			return id, "ERR Elements are too large to be stored"
		}
		id = streamID{ms: last.ms, seq: last.seq + 1}
	default:
		id = a.id
	}
	if id.cmp(last) <= 0 {
		return id, smaller
	}
	return id, ""
}

// XRANGE key start end [COUNT count], XREVRANGE key end start [COUNT count]
func cmdXRange(c *ctx) (Reply, error)    { return c.xrange(false) }
func cmdXRevRange(c *ctx) (Reply, error) { return c.xrange(true) }

func (c *ctx) xrange(rev bool) (Reply, error) {
	startArg, endArg := c.args[2], c.args[3]
	if rev {
		startArg, endArg = endArg, startArg
	}
	start, err := parseRangeStart(startArg)
	if err != nil {
		return Reply{}, err
	}
	end, err := parseRangeEnd(endArg)
	if err != nil {
		return Reply{}, err
	}
	count := int64(-1)
	for j := 4; j < len(c.args); j++ {
		if !cEqualFold(c.args[j], "count") || j+1 >= len(c.args) {
			return Reply{}, errSyntax
		}
		if count, err = argInt(c.args[j+1]); err != nil {
			return Reply{}, err
		}
		count = max(count, 0)
		j++
	}
	s, err := c.lookupStream(c.args[1])
	if err != nil || !s.exists() {
		return Array(), err
	}
	if count == 0 {
		return NullArray(), nil
	}
	out := []Reply{}
	emit := func(id streamID, fv [][]byte) (bool, error) {
		out = append(out, entryReply(id, fv))
		return count < 0 || int64(len(out)) < count, nil
	}
	if rev {
		err = s.backward(start, end, emit)
	} else {
		err = s.forward(start, end, emit)
	}
	return Array(out...), err
}

// XLEN key
func cmdXLen(c *ctx) (Reply, error) {
	s, err := c.lookupStream(c.args[1])
	if err != nil || !s.exists() {
		return Int(0), err
	}
	return Int(int64(s.meta().length)), nil
}

// XDEL key id [id ...]
func cmdXDel(c *ctx) (Reply, error) {
	s, err := c.lookupStream(c.args[1])
	if err != nil || !s.exists() {
		return Int(0), err
	}
	// Every ID is checked before anything is deleted.
	ids := make([]streamID, 0, len(c.args)-2)
	for _, a := range c.args[2:] {
		id, err := parseStrictID(a)
		if err != nil {
			return Reply{}, err
		}
		ids = append(ids, id)
	}
	m := s.meta()
	var deleted int64
	firstGone := false
	for _, id := range ids {
		ok, err := s.delete(id)
		if err != nil {
			return Reply{}, err
		}
		if !ok {
			continue
		}
		firstGone = firstGone || id == m.firstID
		m.maxDeleted = laterID(m.maxDeleted, id)
		deleted++
	}
	if deleted == 0 {
		return Int(0), nil
	}
	switch {
	case m.length == 0:
		m.firstID = streamID{}
	case firstGone:
		if m.firstID, _, err = s.firstEntry(streamID{}); err != nil {
			return Reply{}, err
		}
	}
	c.notify(NotifyStream, "xdel", s.o.key)
	return Int(deleted), s.save()
}

// XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]
func cmdXTrim(c *ctx) (Reply, error) {
	a, err := parseAddOrTrim(c.args, false)
	if err != nil {
		return Reply{}, err
	}
	s, err := c.lookupStream(c.args[1])
	if err != nil || !s.exists() {
		return Int(0), err
	}
	n, changed, err := s.trim(a.trimArgs)
	if err != nil || !changed {
		return Int(n), err
	}
	if n > 0 {
		c.notify(NotifyStream, "xtrim", s.o.key)
	}
	return Int(n), s.save()
}

// XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]
func cmdXSetID(c *ctx) (Reply, error) {
	id, err := parseStrictID(c.args[2])
	if err != nil {
		return Reply{}, err
	}
	entriesAdded := int64(-1)
	var maxDeleted streamID
	for i := 3; i < len(c.args); i += 2 {
		switch opt := c.args[i]; {
		case cEqualFold(opt, "entriesadded") && i+1 < len(c.args):
			if entriesAdded, err = argInt(c.args[i+1]); err != nil {
				return Reply{}, err
			}
			if entriesAdded < 0 {
				return Reply{}, userError("ERR entries_added must be positive")
			}
		case cEqualFold(opt, "maxdeletedid") && i+1 < len(c.args):
			if maxDeleted, err = parseStrictID(c.args[i+1]); err != nil {
				return Reply{}, err
			}
			if id.cmp(maxDeleted) < 0 {
				return Reply{}, userError("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id")
			}
		default:
			return Reply{}, errSyntax
		}
	}
	s, err := c.lookupStream(c.args[1])
	if err != nil {
		return Reply{}, err
	}
	if !s.exists() {
		return Reply{}, errNoKey
	}
	m := s.meta()
	if m.length > 0 {
		last, _, err := s.lastEntry()
		if err != nil {
			return Reply{}, err
		}
		if id.cmp(last) < 0 {
			return Reply{}, userError("ERR The ID specified in XSETID is smaller than the target stream top item")
		}
		if entriesAdded != -1 && m.length > uint64(entriesAdded) {
			return Reply{}, userError("ERR The entries_added specified in XSETID is smaller than the target stream length")
		}
	}
	m.lastID = id
	if entriesAdded != -1 {
		m.entriesAdded = uint64(entriesAdded)
	}
	if !maxDeleted.isZero() {
		m.maxDeleted = maxDeleted
	}
	c.notify(NotifyStream, "xsetid", s.o.key)
	return OK(), s.save()
}

// xreadArgs are XREAD's and XREADGROUP's options.
type xreadArgs struct {
	block    int64 // ms; -1: no BLOCK
	count    int64 // 0: no limit
	keys     [][]byte
	ids      [][]byte
	group    []byte // XREADGROUP's GROUP group consumer
	consumer []byte
	noAck    bool
}

// parseXRead is xreadCommand's option loop.
func parseXRead(args [][]byte, readGroup bool) (xreadArgs, error) {
	a := xreadArgs{block: -1}
	streamsAt := 0
options:
	for i := 1; i < len(args); i++ {
		more := len(args) - i - 1
		switch o := args[i]; {
		case cEqualFold(o, "block") && more > 0:
			i++
			ms, ok := parseInt(args[i])
			if !ok {
				return a, userError("ERR timeout is not an integer or out of range")
			}
			if ms < 0 {
				return a, userError("ERR timeout is negative")
			}
			a.block = ms
		case cEqualFold(o, "count") && more > 0:
			i++
			n, err := argInt(args[i])
			if err != nil {
				return a, err
			}
			a.count = max(n, 0)
		case cEqualFold(o, "streams") && more > 0:
			streamsAt = i + 1
			if (len(args)-streamsAt)%2 != 0 {
				return a, userError("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.")
			}
			n := (len(args) - streamsAt) / 2
			a.keys, a.ids = args[streamsAt:streamsAt+n], args[streamsAt+n:]
			break options
		case cEqualFold(o, "group") && more >= 2:
			if !readGroup {
				return a, userError("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.")
			}
			a.group, a.consumer = args[i+1], args[i+2]
			i += 2
		case cEqualFold(o, "noack"):
			if !readGroup {
				return a, userError("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.")
			}
			a.noAck = true
		default:
			return a, errSyntax
		}
	}
	if streamsAt == 0 {
		return a, errSyntax
	}
	if readGroup && a.group == nil {
		return a, userError("ERR Missing GROUP option for XREADGROUP")
	}
	return a, nil
}

// XREAD [COUNT count] [BLOCK ms] STREAMS key [key ...] id [id ...]
func cmdXRead(c *ctx) (Reply, error) {
	r, _, err := c.xread(false)
	return r, err
}

// XREADGROUP GROUP group consumer [COUNT count] [BLOCK ms] [NOACK] STREAMS key [key ...] id [id ...]
func cmdXReadGroup(c *ctx) (Reply, error) {
	r, _, err := c.xread(true)
	return r, err
}

// xread is xreadCommand without blocking: it serves what it can now, or
// answers a null array (as Redis does for BLOCK inside MULTI). ids are the
// IDs it read from, "$" resolved (what a blocked client waits after).
func (c *ctx) xread(readGroup bool) (r Reply, ids []streamID, err error) {
	a, err := parseXRead(c.args, readGroup)
	if err != nil {
		return Reply{}, nil, err
	}
	// A key may be named twice: it is one stream (and one group) for both.
	streams := map[string]*stream{}
	lookup := func(key []byte) (*stream, error) {
		if s, ok := streams[string(key)]; ok {
			return s, nil
		}
		s, err := c.lookupStream(key)
		streams[string(key)] = s
		return s, err
	}
	ids = make([]streamID, len(a.keys))
	groups := make([]*group, len(a.keys))
	for i, key := range a.keys {
		s, err := lookup(key)
		if err != nil {
			return Reply{}, nil, err
		}
		if readGroup {
			if s.exists() {
				groups[i], err = s.group(a.group)
				if err != nil {
					return Reply{}, nil, err
				}
			}
			if groups[i] == nil {
				return Reply{}, nil, errorf("NOGROUP No such key '%s' or consumer group '%s' in XREADGROUP with GROUP option", cstr(key), cstr(a.group))
			}
		}
		switch string(cstr(a.ids[i])) {
		case "$":
			if readGroup {
				return Reply{}, nil, userError("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.")
			}
			if s.exists() {
				ids[i] = s.meta().lastID
			}
			continue
		case ">":
			if !readGroup {
				return Reply{}, nil, userError("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.")
			}
			// The largest ID stands for ">", as in Redis (so that ID
			// given explicitly reads as ">" too).
			ids[i] = maxStreamID
			continue
		}
		if ids[i], err = parseStrictID(a.ids[i]); err != nil {
			return Reply{}, nil, err
		}
	}
	var out []Reply
	var served []*stream // in order, once each: the ones to save
	for i, key := range a.keys {
		s := streams[string(key)]
		if !s.exists() {
			continue
		}
		gt, serve, history := ids[i], false, false
		if readGroup && gt != maxStreamID {
			serve, history = true, true
		} else if s.meta().length > 0 {
			from := gt
			if readGroup {
				from = groups[i].lastID
			}
			next, ok := from.next()
			if ok {
				_, serve, err = s.firstEntry(next)
				if err != nil {
					return Reply{}, nil, err
				}
			}
			gt = from
		}
		if !serve {
			continue
		}
		start, _ := gt.next()
		var entries Reply
		if readGroup {
			if !slices.Contains(served, s) {
				served = append(served, s)
			}
			g := groups[i]
			cn, err := s.consumerOrCreate(g, a.consumer)
			if err != nil {
				return Reply{}, nil, err
			}
			if history {
				entries, err = s.history(g, cn, start, a.count)
			} else {
				entries, err = s.deliver(g, cn, start, a.count, a.noAck)
			}
			if err != nil {
				return Reply{}, nil, err
			}
		} else {
			var es []Reply
			err := s.forward(start, maxStreamID, func(id streamID, fv [][]byte) (bool, error) {
				es = append(es, entryReply(id, fv))
				return a.count == 0 || int64(len(es)) < a.count, nil
			})
			if err != nil {
				return Reply{}, nil, err
			}
			entries = Array(es...)
		}
		out = append(out, Bulk(key), entries)
	}
	for _, s := range served {
		if err := s.save(); err != nil {
			return Reply{}, nil, err
		}
	}
	if len(out) == 0 {
		return NullArray(), ids, nil
	}
	// RESP3 has a map of key to entries; RESP2 an array of [key, entries].
	return Reply{Kind: KindMap, Elems: out, PairsInRESP2: true}, ids, nil
}

// deliver is streamReplyWithRange for a group: the entries from start on
// (at most count, 0: all) go to consumer cn, move the group's last ID and
// read counter, and unless noAck become pending for cn (taken from
// another consumer if XGROUP SETID made the group deliver them again).
func (s *stream) deliver(g *group, cn *consumer, start streamID, count int64, noAck bool) (Reply, error) {
	out := []Reply{}
	err := s.forward(start, maxStreamID, func(id streamID, fv [][]byte) (bool, error) {
		if id.cmp(g.lastID) > 0 {
			if g.entriesRead != invalidEntriesRead && !s.hasTombstones(id) {
				g.entriesRead++
			} else if s.meta().entriesAdded != 0 {
				g.entriesRead = s.estimateReads(id)
			}
			g.lastID, g.dirty = id, true
		}
		out = append(out, entryReply(id, fv))
		if !noAck {
			n, err := s.nack(g, id)
			if err != nil {
				return false, err
			}
			owned := n != nil
			if owned {
				n.delivered, n.deliveries = s.c.now, 1
			} else {
				n = s.newNACK(g, id)
			}
			if err := s.setOwner(g, n, owned, cn); err != nil {
				return false, err
			}
		}
		return count == 0 || int64(len(out)) < count, nil
	})
	return Array(out...), err
}

// history is streamReplyWithRangeFromConsumerPEL: cn's pending entries
// from start on (at most count, 0: all), each delivered once more; one
// deleted from the stream since shows as [ID, null].
func (s *stream) history(g *group, cn *consumer, start streamID, count int64) (Reply, error) {
	out := []Reply{}
	err := s.eachNACK(g, cn, start, maxStreamID, func(n *streamNACK) (bool, error) {
		if count != 0 && int64(len(out)) >= count {
			return false, nil
		}
		fv, found, err := s.entry(n.id)
		if err != nil {
			return false, err
		}
		if !found {
			out = append(out, Array(n.id.reply(), NullArray()))
			return true, nil
		}
		out = append(out, entryReply(n.id, fv))
		n.delivered = s.c.now
		n.deliveries++
		return true, s.saveNACK(g, n)
	})
	return Array(out...), err
}

// XINFO STREAM key [FULL [COUNT count]] | GROUPS key | CONSUMERS key group | HELP
func cmdXInfo(c *ctx) (Reply, error) {
	name, bad, ok := c.subcommand()
	if !ok {
		return bad, nil
	}
	if name == "help" {
		return HelpReply("XINFO", []string{
			"CONSUMERS <key> <groupname>",
			"    Show consumers of <groupname>.",
			"GROUPS <key>",
			"    Show the stream consumer groups.",
			"STREAM <key> [FULL [COUNT <count>]",
			"    Show information about the stream.",
		}), nil
	}
	s, err := c.lookupStream(c.args[2])
	if err != nil {
		return Reply{}, err
	}
	if !s.exists() {
		return Reply{}, errNoKey
	}
	switch name {
	case "consumers":
		g, err := s.group(c.args[3])
		if err != nil {
			return Reply{}, err
		}
		if g == nil {
			return Reply{}, errorf("NOGROUP No such consumer group '%s' for key name '%s'", cstr(c.args[3]), cstr(c.args[2]))
		}
		return s.consumersInfo(g, false, 0)
	case "groups":
		out := []Reply{}
		err := s.eachGroup(func(g *group) error {
			out = append(out, Map(BulkString("name"), Bulk(g.name),
				BulkString("consumers"), Int(g.consumers),
				BulkString("pending"), Int(g.pending),
				BulkString("last-delivered-id"), g.lastID.reply(),
				BulkString("entries-read"), entriesReadReply(g),
				BulkString("lag"), s.lag(g)))
			return nil
		})
		return Array(out...), err
	}
	return c.xinfoStream(s)
}

func entriesReadReply(g *group) Reply {
	if g.entriesRead == invalidEntriesRead {
		return Null()
	}
	return Int(g.entriesRead)
}

// xinfoStream is xinfoReplyWithStreamInfo.
func (c *ctx) xinfoStream(s *stream) (Reply, error) {
	full, count := false, int64(10)
	switch opts := c.args[3:]; {
	case len(opts) == 0:
	case len(opts) != 1 && len(opts) != 3, !cEqualFold(opts[0], "full"), len(opts) == 3 && !cEqualFold(opts[1], "count"):
		return Reply{}, c.subcommandSyntaxErr()
	default:
		full = true
		if len(opts) == 3 {
			n, err := argInt(opts[2])
			if err != nil {
				return Reply{}, err
			}
			if n >= 0 {
				count = n
			}
		}
	}
	m := s.meta()
	var keys [][]byte
	p := tagPrefix(s.o.rk, tagNode)
	err := s.c.each(p, prefixEnd(p), func(kv KV) (bool, error) {
		keys = append(keys, kv.Key[len(p):])
		return true, nil
	})
	if err != nil {
		return Reply{}, err
	}
	out := []Reply{
		BulkString("length"), Int(int64(m.length)),
		BulkString("radix-tree-keys"), Int(m.nodes),
		BulkString("radix-tree-nodes"), Int(raxNodes(keys)),
		BulkString("last-generated-id"), m.lastID.reply(),
		BulkString("max-deleted-entry-id"), m.maxDeleted.reply(),
		BulkString("entries-added"), Int(int64(m.entriesAdded)),
		BulkString("recorded-first-entry-id"), m.firstID.reply(),
	}
	edge := func(rev bool) (Reply, error) {
		r := Null()
		emit := func(id streamID, fv [][]byte) (bool, error) {
			r = entryReply(id, fv)
			return false, nil
		}
		if rev {
			return r, s.backward(streamID{}, maxStreamID, emit)
		}
		return r, s.forward(streamID{}, maxStreamID, emit)
	}
	if !full {
		first, err := edge(false)
		if err != nil {
			return Reply{}, err
		}
		last, err := edge(true)
		if err != nil {
			return Reply{}, err
		}
		return Map(append(out, BulkString("groups"), Int(m.groups),
			BulkString("first-entry"), first, BulkString("last-entry"), last)...), nil
	}
	entries := []Reply{}
	err = s.forward(streamID{}, maxStreamID, func(id streamID, fv [][]byte) (bool, error) {
		entries = append(entries, entryReply(id, fv))
		return count == 0 || int64(len(entries)) < count, nil
	})
	if err != nil {
		return Reply{}, err
	}
	groups := []Reply{}
	err = s.eachGroup(func(g *group) error {
		pending := []Reply{}
		err := s.eachNACK(g, nil, streamID{}, maxStreamID, func(n *streamNACK) (bool, error) {
			if count != 0 && int64(len(pending)) >= count {
				return false, nil
			}
			pending = append(pending, Array(n.id.reply(), Bulk(n.consumer), Int(n.delivered), Int(int64(n.deliveries))))
			return true, nil
		})
		if err != nil {
			return err
		}
		consumers, err := s.consumersInfo(g, true, count)
		if err != nil {
			return err
		}
		groups = append(groups, Map(BulkString("name"), Bulk(g.name),
			BulkString("last-delivered-id"), g.lastID.reply(),
			BulkString("entries-read"), entriesReadReply(g),
			BulkString("lag"), s.lag(g),
			BulkString("pel-count"), Int(g.pending),
			BulkString("pending"), Array(pending...),
			BulkString("consumers"), consumers))
		return nil
	})
	if err != nil {
		return Reply{}, err
	}
	return Map(append(out, BulkString("entries"), Array(entries...), BulkString("groups"), Array(groups...))...), nil
}

// consumersInfo lists g's consumers in name order: XINFO CONSUMERS's
// (name, pending, idle), or XINFO STREAM FULL's (name, seen-time,
// pel-count, and up to count of its pending entries, 0: all).
func (s *stream) consumersInfo(g *group, full bool, count int64) (Reply, error) {
	out := []Reply{}
	err := s.eachConsumer(g, func(cn *consumer) error {
		if !full {
			out = append(out, Map(BulkString("name"), Bulk(cn.name), BulkString("pending"), Int(cn.pending),
				BulkString("idle"), Int(max(s.c.now-cn.seen, 0))))
			return nil
		}
		pending := []Reply{}
		err := s.eachNACK(g, cn, streamID{}, maxStreamID, func(n *streamNACK) (bool, error) {
			if count != 0 && int64(len(pending)) >= count {
				return false, nil
			}
			pending = append(pending, Array(n.id.reply(), Int(n.delivered), Int(int64(n.deliveries))))
			return true, nil
		})
		out = append(out, Map(BulkString("name"), Bulk(cn.name), BulkString("seen-time"), Int(cn.seen),
			BulkString("pel-count"), Int(cn.pending), BulkString("pending"), Array(pending...)))
		return err
	})
	return Array(out...), err
}

// HelpReply is addReplyHelp: a header naming the command, the lines, and
// HELP's own.
func HelpReply(command string, lines []string) Reply {
	out := []Reply{SimpleString(command + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")}
	for _, l := range lines {
		out = append(out, SimpleString(l))
	}
	return Array(append(out, SimpleString("HELP"), SimpleString("    Prints this help."))...)
}

// subcommandSyntaxErr is addReplySubcommandSyntaxError.
func (c *ctx) subcommandSyntaxErr() error {
	sub := cstr(c.args[1])
	return errorf("ERR unknown subcommand or wrong number of arguments for '%s'. Try %s HELP.",
		sub[:min(len(sub), 128)], strings.ToUpper(string(cstr(c.args[0]))))
}
