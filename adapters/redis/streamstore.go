package redis

import (
	"bytes"
	"encoding/binary"
	"maps"
	"math"
	"slices"
	"strconv"

	"github.com/orbitkernel/orbit/internal/mutation"
)

// Stream records (doc.go lists the layout). A stream is its metadata
// record (streamMeta), one record per entry keyed by its ID, one record per
// node (below), and its consumer groups, each with its consumers and its
// pending entries list (PEL), indexed by consumer too.
//
// Why nodes. Redis keeps a stream as a radix tree of listpacks ("nodes"),
// each holding up to stream-node-max-entries entries and about
// stream-node-max-bytes bytes, and two things a client sees depend on
// them: approximate trimming (MAXLEN ~, MINID ~) removes whole nodes only,
// and XINFO STREAM reports radix-tree-keys and radix-tree-nodes. So every
// stream keeps, per node, what Redis's listpack would hold — its live and
// deleted entries, its size in bytes as listpack.c counts them, its last
// entry (deleted or not), its master entry's fields — and new entries open
// nodes exactly where streamAppendItem would. Entries themselves are
// records of their own: a deleted entry is gone from the Store, only its
// node remembers it.

// The node limits Redis 7.0 uses by default (they are not settings here).
const (
	streamNodeMaxBytes    = 4096    // stream-node-max-bytes
	streamNodeMaxEntries  = 100     // stream-node-max-entries
	streamListpackMaxSize = 1 << 30 // STREAM_LISTPACK_MAX_SIZE: the most one entry may hold
)

// streamID is a stream entry ID, <ms>-<seq>.
type streamID struct{ ms, seq uint64 }

var maxStreamID = streamID{math.MaxUint64, math.MaxUint64}

func (a streamID) cmp(b streamID) int {
	switch {
	case a.ms < b.ms:
		return -1
	case a.ms > b.ms:
		return 1
	case a.seq < b.seq:
		return -1
	case a.seq > b.seq:
		return 1
	}
	return 0
}

func (id streamID) isZero() bool { return id == streamID{} }

func (id streamID) String() string {
	return strconv.FormatUint(id.ms, 10) + "-" + strconv.FormatUint(id.seq, 10)
}

func (id streamID) reply() Reply { return BulkString(id.String()) }

// next is streamIncrID: the ID after id, or 0-0 and false after the last.
func (id streamID) next() (streamID, bool) {
	switch {
	case id.seq < math.MaxUint64:
		id.seq++
	case id.ms < math.MaxUint64:
		id.ms, id.seq = id.ms+1, 0
	default:
		return streamID{}, false
	}
	return id, true
}

// prev is streamDecrID: the ID before id, or the last ID and false before 0-0.
func (id streamID) prev() (streamID, bool) {
	switch {
	case id.seq > 0:
		id.seq--
	case id.ms > 0:
		id.ms, id.seq = id.ms-1, math.MaxUint64
	default:
		return maxStreamID, false
	}
	return id, true
}

// appendStreamID appends id as 16 big-endian bytes, which sort as IDs do.
func appendStreamID(dst []byte, id streamID) []byte {
	dst = binary.BigEndian.AppendUint64(dst, id.ms)
	return binary.BigEndian.AppendUint64(dst, id.seq)
}

func readStreamID(b []byte) streamID {
	return streamID{binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])}
}

// errBadStreamID is every malformed ID's error.
const errBadStreamID userError = "ERR Invalid stream ID specified as stream command argument"

// parseStreamID is streamGenericParseIDOrReply: "<ms>-<seq>", or "<ms>"
// with missingSeq for the sequence, or (unless strict) "-" and "+" for the
// first and last IDs, or (with autoSeq, for XADD) "<ms>-*", for which
// seqGiven is false. Each part is string2ull's: see parseUint. The C code
// reads the argument as a C string of at most 127 bytes, so a NUL ends it.
func parseStreamID(arg []byte, missingSeq uint64, strict, autoSeq bool) (id streamID, seqGiven bool, err error) {
	if len(arg) > 127 {
		return id, false, errBadStreamID
	}
	b := cstr(arg)
	switch string(b) {
	case "-":
		if strict {
			return id, false, errBadStreamID
		}
		return streamID{}, true, nil
	case "+":
		if strict {
			return id, false, errBadStreamID
		}
		return maxStreamID, true, nil
	}
	msPart, seqPart, dash := bytes.Cut(b, []byte("-"))
	ms, ok := parseUint(msPart)
	if !ok {
		return id, false, errBadStreamID
	}
	id, seqGiven = streamID{ms: ms, seq: missingSeq}, true
	if dash {
		if autoSeq && string(seqPart) == "*" {
			id.seq, seqGiven = 0, false
		} else if id.seq, ok = parseUint(seqPart); !ok {
			return streamID{}, false, errBadStreamID
		}
	}
	return id, seqGiven, nil
}

// parseStrictID is streamParseStrictIDOrReply without "<ms>-*".
func parseStrictID(arg []byte) (streamID, error) {
	id, _, err := parseStreamID(arg, 0, true, false)
	return id, err
}

// parseRangeStart and parseRangeEnd are streamParseIntervalIDOrReply for
// the bounds of XRANGE, XPENDING and XAUTOCLAIM: "(" makes a bound
// exclusive (then "-" and "+" are invalid), and a missing sequence is 0
// for a start, the largest for an end.
func parseRangeStart(arg []byte) (streamID, error) {
	if len(arg) > 1 && arg[0] == '(' {
		id, _, err := parseStreamID(arg[1:], 0, true, false)
		if err != nil {
			return id, err
		}
		if id, ok := id.next(); ok {
			return id, nil
		}
		return id, userError("ERR invalid start ID for the interval")
	}
	id, _, err := parseStreamID(arg, 0, false, false)
	return id, err
}

func parseRangeEnd(arg []byte) (streamID, error) {
	if len(arg) > 1 && arg[0] == '(' {
		id, _, err := parseStreamID(arg[1:], math.MaxUint64, true, false)
		if err != nil {
			return id, err
		}
		if id, ok := id.prev(); ok {
			return id, nil
		}
		return id, userError("ERR invalid end ID for the interval")
	}
	id, _, err := parseStreamID(arg, math.MaxUint64, false, false)
	return id, err
}

// streamMeta is a stream's metadata record body (after the common header):
//
//	length (8) | last ID (16) | first ID (16) | max deleted ID (16) |
//	entries added (8) | groups (8) | nodes (8) | tail node (16)
//
// Invariants: length is the number of entry records; firstID is the
// first entry's ID, 0-0 when empty ("recorded-first-entry-id"); lastID is
// at least every entry's ID; nodes is the number of node records and tail
// the last one's first ID (meaningless when nodes is 0); every entry lies
// in a node.
type streamMeta struct {
	length       uint64
	lastID       streamID // last-generated-id
	firstID      streamID
	maxDeleted   streamID // max-deleted-entry-id (XDEL's)
	entriesAdded uint64
	groups       int64
	nodes        int64 // radix-tree-keys
	tail         streamID
}

const streamMetaSize = 8 + 16 + 16 + 16 + 8 + 8 + 8 + 16

func (s streamMeta) append(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, s.length)
	b = appendStreamID(b, s.lastID)
	b = appendStreamID(b, s.firstID)
	b = appendStreamID(b, s.maxDeleted)
	b = binary.BigEndian.AppendUint64(b, s.entriesAdded)
	b = binary.BigEndian.AppendUint64(b, uint64(s.groups))
	b = binary.BigEndian.AppendUint64(b, uint64(s.nodes))
	return appendStreamID(b, s.tail)
}

func decodeStreamMeta(b []byte) (streamMeta, error) {
	if len(b) != streamMetaSize {
		return streamMeta{}, corruptf("stream metadata of %d bytes", len(b))
	}
	s := streamMeta{
		length:       binary.BigEndian.Uint64(b),
		lastID:       readStreamID(b[8:]),
		firstID:      readStreamID(b[24:]),
		maxDeleted:   readStreamID(b[40:]),
		entriesAdded: binary.BigEndian.Uint64(b[56:]),
		groups:       int64(binary.BigEndian.Uint64(b[64:])),
		nodes:        int64(binary.BigEndian.Uint64(b[72:])),
		tail:         readStreamID(b[80:]),
	}
	if s.groups < 0 || s.nodes < 0 || (s.nodes == 0 && s.length != 0) {
		return streamMeta{}, corruptf("stream metadata: %d entries, %d nodes, %d groups", s.length, s.nodes, s.groups)
	}
	return s, nil
}

// Record keys, under the stream's route key rk.

func entryKey(rk []byte, id streamID) []byte {
	return appendStreamID(append(append(make([]byte, 0, len(rk)+17), rk...), tagEntry), id)
}

func nodeKey(rk []byte, id streamID) []byte {
	return appendStreamID(append(append(make([]byte, 0, len(rk)+17), rk...), tagNode), id)
}

func tagPrefix(rk []byte, tag byte) []byte { return append(append([]byte(nil), rk...), tag) }

// groupKey is a group's record: rk 'G' and the escaped name, after which
// its consumers ('C' name), PEL ('P' ID) and per-consumer PEL index ('Q'
// escaped consumer, ID) follow, so a group is one key range.
func groupKey(rk, name []byte) []byte { return appendEscaped(tagPrefix(rk, tagGroup), name) }

func consumerKey(gk, name []byte) []byte {
	return append(append(append([]byte(nil), gk...), 'C'), name...)
}

func pelKey(gk []byte, id streamID) []byte {
	return appendStreamID(append(append([]byte(nil), gk...), 'P'), id)
}

func consumerPELPrefix(gk, consumer []byte) []byte {
	return appendEscaped(append(append([]byte(nil), gk...), 'Q'), consumer)
}

// after is the first key after k in key order.
func after(k []byte) []byte { return append(append([]byte(nil), k...), 0) }

// encodeFields and decodeFields are an entry record's value: its fields
// and values, alternating.
func encodeFields(fv [][]byte) []byte { return appendList(nil, fv) }

func decodeFields(b []byte) ([][]byte, error) {
	r := fieldReader{b: b}
	fv := r.list()
	if r.err != nil || len(r.b) != 0 || len(fv)%2 != 0 {
		return nil, corruptf("stream entry of %d bytes", len(b))
	}
	return fv, nil
}

// streamNode is a node record: what Redis's listpack for the entries from
// master on holds.
//
//	live (8) | deleted (8) | bytes (8) | last ID (16) | has prev (1) |
//	prev (16) | master fields (a field list)
//
// bytes is lpBytes of the listpack; last is its last entry's ID, deleted or
// not (MINID trimming looks at it); prev links the nodes backwards, so
// that the tail's predecessor and reverse ranges need no reverse scan.
//
// Invariant: the node's live entries number live, and their IDs are at
// least master, at most last, and below the next node's master (which
// may be below last: see spanEnd).
type streamNode struct {
	master, last  streamID
	live, deleted int64
	bytes         int64
	hasPrev       bool
	prev          streamID
	fields        [][]byte
}

func (n *streamNode) encode() []byte {
	b := make([]byte, 0, 57+8*len(n.fields))
	b = binary.BigEndian.AppendUint64(b, uint64(n.live))
	b = binary.BigEndian.AppendUint64(b, uint64(n.deleted))
	b = binary.BigEndian.AppendUint64(b, uint64(n.bytes))
	b = appendStreamID(b, n.last)
	if n.hasPrev {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = appendStreamID(b, n.prev)
	return appendList(b, n.fields)
}

func decodeNode(master streamID, b []byte) (*streamNode, error) {
	if len(b) < 57 || b[40] > 1 {
		return nil, corruptf("stream node of %d bytes", len(b))
	}
	n := &streamNode{
		master:  master,
		live:    int64(binary.BigEndian.Uint64(b)),
		deleted: int64(binary.BigEndian.Uint64(b[8:])),
		bytes:   int64(binary.BigEndian.Uint64(b[16:])),
		last:    readStreamID(b[24:]),
		hasPrev: b[40] == 1,
		prev:    readStreamID(b[41:]),
	}
	r := fieldReader{b: b[57:]}
	n.fields = r.list()
	if r.err != nil || len(r.b) != 0 || n.live < 0 || n.deleted < 0 || n.last.cmp(master) < 0 {
		return nil, corruptf("stream node %s", master)
	}
	return n, nil
}

// Listpack sizes (listpack.c): an element is its encoding and a backlen
// (the encoding's size, in 1 to 5 bytes); a string that string2ll reads
// is stored as an integer.

func lpIntSize(v int64) int64 {
	var enc int64
	switch {
	case v >= 0 && v <= 127:
		enc = 1
	case v >= -4096 && v <= 4095:
		enc = 2
	case v >= -32768 && v <= 32767:
		enc = 3
	case v >= -8388608 && v <= 8388607:
		enc = 4
	case v >= -2147483648 && v <= 2147483647:
		enc = 5
	default:
		enc = 9
	}
	return enc + lpBacklenSize(enc)
}

func lpStringSize(s []byte) int64 {
	if v, ok := parseInt(s); ok {
		return lpIntSize(v)
	}
	enc := int64(len(s))
	switch {
	case len(s) < 64:
		enc++
	case len(s) < 4096:
		enc += 2
	default:
		enc += 5
	}
	return enc + lpBacklenSize(enc)
}

func lpBacklenSize(l int64) int64 {
	switch {
	case l <= 127:
		return 1
	case l < 16383:
		return 2
	case l < 2097151:
		return 3
	case l < 268435455:
		return 4
	}
	return 5
}

// lpHeaderSize is an empty listpack: its header and end byte.
const lpHeaderSize = 6 + 1

// newNodeBytes is a new node's listpack before its first entry: count 1,
// deleted 0, the master fields and their terminator.
func newNodeBytes(fields [][]byte) int64 {
	b := lpHeaderSize + lpIntSize(1) + lpIntSize(0) + lpIntSize(int64(len(fields))) + lpIntSize(0)
	for _, f := range fields {
		b += lpStringSize(f)
	}
	return b
}

// entryBytes is what one entry adds to its node's listpack: flags, the ID
// as differences from the master ID (wrapping, as the C code subtracts
// unsigned numbers), the fields unless they are the master's (sameFields),
// the values, and the count of the entry's elements.
func entryBytes(master, id streamID, fv [][]byte, sameFields bool) int64 {
	n := int64(len(fv) / 2)
	flags, count := int64(0), 2*n+4
	if sameFields {
		flags, count = 2, n+3
	}
	b := lpIntSize(flags) + lpIntSize(int64(id.ms-master.ms)) + lpIntSize(int64(id.seq-master.seq)) + lpIntSize(count)
	if !sameFields {
		b += lpIntSize(n)
	}
	for i := 0; i+1 < len(fv); i += 2 {
		if !sameFields {
			b += lpStringSize(fv[i])
		}
		b += lpStringSize(fv[i+1])
	}
	return b
}

// raxNodes is the number of nodes of Redis's radix tree over the nodes'
// first IDs (XINFO STREAM's radix-tree-nodes): its root, every key, every
// prefix two keys branch at and every child of such a prefix (a chain of
// single children is one compressed node). keys are in order.
func raxNodes(keys [][]byte) int64 {
	seen := map[string]bool{"": true}
	for i, k := range keys {
		seen[string(k)] = true
		if i == 0 {
			continue
		}
		prev := keys[i-1]
		l := 0
		for l < len(k) && l < len(prev) && k[l] == prev[l] {
			l++
		}
		seen[string(k[:l])] = true
		if l < len(prev) {
			seen[string(prev[:l+1])] = true
		}
		if l < len(k) {
			seen[string(k[:l+1])] = true
		}
	}
	return int64(len(seen))
}

// streamGroup is a consumer group record:
//
//	last delivered ID (16) | entries read (8, -1 unknown) | consumers (8) | pending (8)
type streamGroup struct {
	key         []byte // groupKey
	name        []byte
	lastID      streamID
	entriesRead int64 // SCG_INVALID_ENTRIES_READ (-1): unknown
	consumers   int64
	pending     int64 // entries in the PEL
}

const invalidEntriesRead = -1

func (g *streamGroup) encode() []byte {
	b := appendStreamID(make([]byte, 0, 40), g.lastID)
	b = binary.BigEndian.AppendUint64(b, uint64(g.entriesRead))
	b = binary.BigEndian.AppendUint64(b, uint64(g.consumers))
	return binary.BigEndian.AppendUint64(b, uint64(g.pending))
}

func decodeGroup(key, name, b []byte) (*streamGroup, error) {
	if len(b) != 40 {
		return nil, corruptf("consumer group record of %d bytes", len(b))
	}
	g := &streamGroup{key: key, name: name, lastID: readStreamID(b),
		entriesRead: int64(binary.BigEndian.Uint64(b[16:])),
		consumers:   int64(binary.BigEndian.Uint64(b[24:])),
		pending:     int64(binary.BigEndian.Uint64(b[32:]))}
	if g.entriesRead < invalidEntriesRead || g.consumers < 0 || g.pending < 0 {
		return nil, corruptf("consumer group %q", name)
	}
	return g, nil
}

// streamConsumer is a consumer record: seen-time (8, unix ms) | pending (8).
type streamConsumer struct {
	name    []byte
	seen    int64
	pending int64
}

func (c *streamConsumer) encode() []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 16), uint64(c.seen))
	return binary.BigEndian.AppendUint64(b, uint64(c.pending))
}

func decodeConsumer(name, b []byte) (*streamConsumer, error) {
	if len(b) != 16 || int64(binary.BigEndian.Uint64(b[8:])) < 0 {
		return nil, corruptf("consumer record %q", name)
	}
	return &streamConsumer{name: name, seen: int64(binary.BigEndian.Uint64(b)), pending: int64(binary.BigEndian.Uint64(b[8:]))}, nil
}

// streamNACK is a PEL record: delivery time (8, unix ms) | deliveries (8)
// | consumer name. Redis's counter is unsigned and replied as signed.
type streamNACK struct {
	id         streamID
	consumer   []byte
	delivered  int64
	deliveries uint64
}

func (n *streamNACK) encode() []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 16+len(n.consumer)), uint64(n.delivered))
	b = binary.BigEndian.AppendUint64(b, n.deliveries)
	return append(b, n.consumer...)
}

func decodeNACK(id streamID, b []byte) (*streamNACK, error) {
	if len(b) < 16 {
		return nil, corruptf("PEL entry %s of %d bytes", id, len(b))
	}
	return &streamNACK{id: id, delivered: int64(binary.BigEndian.Uint64(b)),
		deliveries: binary.BigEndian.Uint64(b[8:]), consumer: b[16:]}, nil
}

// stream is a stream key during one command: its metadata, and the groups
// and consumers the command has read, which save writes back.
type stream struct {
	c      *ctx
	o      *obj
	groups map[string]*group // by name, read so far; nil entries: no such group
}

// group is a consumer group during one command, with the consumers read
// so far; dirty marks what save must write.
type group struct {
	streamGroup
	dirty bool
	cons  map[string]*consumer // nil entries: no such consumer
}

type consumer struct {
	streamConsumer
	dirty bool
}

// lookupStream is lookupKey and checkType for a stream: WRONGTYPE for
// another type; a missing key gives a stream that does not exist
// (create makes it).
func (c *ctx) lookupStream(key []byte) (*stream, error) {
	o, err := c.lookupType(key, typeStream)
	if err != nil {
		return nil, err
	}
	return &stream{c: c, o: o}, nil
}

func (s *stream) exists() bool      { return s.o.exists }
func (s *stream) meta() *streamMeta { return &s.o.m.stream }

// create makes the missing key an empty stream (written by save): Redis's
// dbAdd, with its "new" event.
func (s *stream) create() {
	s.o.m = meta{typ: typeStream}
	s.o.exists = true
	s.c.notify(NotifyNew, "new", s.o.key)
}

// save writes the metadata and every group and consumer the command
// changed, in name order (what a command writes must not depend on map
// order).
func (s *stream) save() error {
	for _, name := range slices.Sorted(maps.Keys(s.groups)) {
		g := s.groups[name]
		if g == nil {
			continue
		}
		for _, cname := range slices.Sorted(maps.Keys(g.cons)) {
			if cn := g.cons[cname]; cn != nil && cn.dirty {
				if err := s.c.st.Set(consumerKey(g.key, cn.name), cn.encode()); err != nil {
					return err
				}
				cn.dirty = false
			}
		}
		if g.dirty {
			if err := s.c.st.Set(g.key, g.encode()); err != nil {
				return err
			}
			g.dirty = false
		}
	}
	return s.c.save(s.o)
}

// Entries.

func (s *stream) entry(id streamID) ([][]byte, bool, error) {
	v, found, err := s.c.st.Get(entryKey(s.o.rk, id))
	if err != nil || !found {
		return nil, false, err
	}
	fv, err := decodeFields(v)
	return fv, err == nil, err
}

// forward calls fn on the entries from start to end, in order, until fn
// returns false.
func (s *stream) forward(start, end streamID, fn func(id streamID, fv [][]byte) (bool, error)) error {
	if start.cmp(end) > 0 {
		return nil
	}
	prefix := len(s.o.rk) + 1
	return s.c.each(entryKey(s.o.rk, start), after(entryKey(s.o.rk, end)), func(kv KV) (bool, error) {
		if len(kv.Key) != prefix+16 {
			return false, corruptf("stream %q: entry record %x", s.o.key, kv.Key)
		}
		fv, err := decodeFields(kv.Value)
		if err != nil {
			return false, err
		}
		return fn(readStreamID(kv.Key[prefix:]), fv)
	})
}

// backward calls fn on the entries from end down to start until fn
// returns false: node by node from the one holding end, each node's
// entries read forwards and reversed (the Store scans one way).
func (s *stream) backward(start, end streamID, fn func(id streamID, fv [][]byte) (bool, error)) error {
	if start.cmp(end) > 0 {
		return nil
	}
	n, err := s.nodeOf(end)
	hi := end
	for n != nil && err == nil {
		type ent struct {
			id streamID
			fv [][]byte
		}
		var ents []ent
		lo := laterID(start, n.master)
		hi = earlierID(hi, n.last)
		err = s.forward(lo, hi, func(id streamID, fv [][]byte) (bool, error) {
			ents = append(ents, ent{id, fv})
			return true, nil
		})
		for i := len(ents) - 1; i >= 0 && err == nil; i-- {
			var more bool
			if more, err = fn(ents[i].id, ents[i].fv); !more {
				return err
			}
		}
		if err != nil || n.master.cmp(start) <= 0 || !n.hasPrev {
			return err
		}
		// The node before holds the entries below this one's first (its
		// last entry, deleted, may lie further: see spanEnd).
		hi, _ = n.master.prev()
		n, err = s.node(n.prev)
	}
	return err
}

func laterID(a, b streamID) streamID {
	if a.cmp(b) >= 0 {
		return a
	}
	return b
}

func earlierID(a, b streamID) streamID {
	if a.cmp(b) <= 0 {
		return a
	}
	return b
}

// firstEntry is the first entry from start on (ok false: none).
func (s *stream) firstEntry(start streamID) (id streamID, ok bool, err error) {
	err = s.forward(start, maxStreamID, func(i streamID, _ [][]byte) (bool, error) {
		id, ok = i, true
		return false, nil
	})
	return id, ok, err
}

// lastEntry is streamLastValidID: the last entry's ID (ok false: empty).
func (s *stream) lastEntry() (id streamID, ok bool, err error) {
	err = s.backward(streamID{}, maxStreamID, func(i streamID, _ [][]byte) (bool, error) {
		id, ok = i, true
		return false, nil
	})
	return id, ok, err
}

// Nodes.

func (s *stream) node(master streamID) (*streamNode, error) {
	v, found, err := s.c.st.Get(nodeKey(s.o.rk, master))
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, corruptf("stream %q: no node %s", s.o.key, master)
	}
	return decodeNode(master, v)
}

func (s *stream) saveNode(n *streamNode) error {
	return s.c.st.Set(nodeKey(s.o.rk, n.master), n.encode())
}

// nodeFrom is the first node whose first ID is at least id (nil: none).
func (s *stream) nodeFrom(id streamID) (*streamNode, error) {
	p := tagPrefix(s.o.rk, tagNode)
	kvs, err := s.c.st.Scan(nodeKey(s.o.rk, id), prefixEnd(p), 1)
	if err != nil || len(kvs) == 0 {
		return nil, err
	}
	if len(kvs[0].Key) != len(p)+16 {
		return nil, corruptf("stream %q: node record %x", s.o.key, kvs[0].Key)
	}
	return decodeNode(readStreamID(kvs[0].Key[len(p):]), kvs[0].Value)
}

// nodeOf is the node whose entries may include id: the last one whose
// first ID is at most id (nil: id comes before every node).
func (s *stream) nodeOf(id streamID) (*streamNode, error) {
	n, err := s.nodeFrom(id)
	switch {
	case err != nil:
		return nil, err
	case n != nil && n.master == id:
		return n, nil
	case n != nil && !n.hasPrev:
		return nil, nil
	case n != nil:
		return s.node(n.prev)
	case s.meta().nodes > 0:
		return s.node(s.meta().tail)
	}
	return nil, nil
}

// add is streamAppendItem after its checks: the entry goes into the tail
// node, or opens a new one where Redis would (the tail is full by bytes or
// by entries, live and deleted).
func (s *stream) add(id streamID, fv [][]byte) error {
	m := s.meta()
	var total int64
	for _, b := range fv {
		total += int64(len(b))
	}
	var n *streamNode
	if m.nodes > 0 {
		tail, err := s.node(m.tail)
		if err != nil {
			return err
		}
		if id.cmp(tail.master) < 0 {
			// Only an emptied stream can get here: an exact MINID trim
			// kept its last node with every entry deleted, and XSETID set
			// the last ID below that node's first. Redis appends before
			// the node's first ID, into it; here the empty node goes, so
			// that every node holds the IDs from its first on (doc.go).
			if err := s.removeNode(tail); err != nil {
				return err
			}
			tail = nil
		}
		if tail != nil && tail.bytes+total < streamNodeMaxBytes && tail.live+tail.deleted < streamNodeMaxEntries {
			n = tail
		}
	}
	same := true
	if n == nil {
		n = &streamNode{master: id, live: 1, hasPrev: m.nodes > 0, prev: m.tail}
		for i := 0; i < len(fv); i += 2 {
			n.fields = append(n.fields, fv[i])
		}
		n.bytes = newNodeBytes(n.fields)
		m.nodes++
		m.tail = id
	} else {
		n.bytes += lpIntSize(n.live+1) - lpIntSize(n.live)
		n.live++
		same = len(n.fields) == len(fv)/2
		for i := 0; same && i < len(n.fields); i++ {
			same = bytes.Equal(n.fields[i], fv[2*i])
		}
	}
	n.bytes += entryBytes(n.master, id, fv, same)
	n.last = id
	if err := s.saveNode(n); err != nil {
		return err
	}
	m.length++
	m.entriesAdded++
	m.lastID = id
	if m.length == 1 {
		m.firstID = id
	}
	return s.c.st.Set(entryKey(s.o.rk, id), encodeFields(fv))
}

// markDeleted records in n that k of its live entries were deleted, as
// the listpack's master entry counts them.
func (n *streamNode) markDeleted(k int64) {
	n.bytes += lpIntSize(n.live-k) - lpIntSize(n.live) + lpIntSize(n.deleted+k) - lpIntSize(n.deleted)
	n.live -= k
	n.deleted += k
}

// delete is streamDeleteItem: it removes entry id, and its node with it if
// it was the node's last live entry. It reports whether id existed.
func (s *stream) delete(id streamID) (bool, error) {
	if _, found, err := s.entry(id); err != nil || !found {
		return false, err
	}
	n, err := s.nodeOf(id)
	if err == nil && n == nil {
		err = corruptf("stream %q: entry %s in no node", s.o.key, id)
	}
	if err != nil {
		return false, err
	}
	if err := s.c.st.Delete(entryKey(s.o.rk, id)); err != nil {
		return false, err
	}
	if n.live > 1 {
		n.markDeleted(1)
		if !mutation.On(MutXDelKeepsLength) {
			s.meta().length--
		}
		return true, s.saveNode(n)
	}
	s.meta().length--
	return true, s.removeNode(n)
}

// next is the node after n (nil for the tail).
func (s *stream) next(n *streamNode) (*streamNode, error) {
	if n.master == s.meta().tail {
		return nil, nil
	}
	id, _ := n.master.next() // not the last ID: a node follows
	next, err := s.nodeFrom(id)
	if err == nil && next == nil {
		err = corruptf("stream %q: node %s is not the tail but has no successor", s.o.key, n.master)
	}
	return next, err
}

// spanEnd is the last ID n's entries may have: its last entry's, deleted
// or not, unless the next node starts before that. (It can: XSETID may
// set the last ID below a deleted entry, and the next XADD open a node
// there. Entries belong to the node with the greatest first ID not above
// theirs.)
func spanEnd(n, next *streamNode) streamID {
	if next != nil && next.master.cmp(n.last) <= 0 {
		end, _ := next.master.prev()
		return end
	}
	return n.last
}

// removeNode deletes node n and its entries, and unlinks it.
func (s *stream) removeNode(n *streamNode) error {
	m := s.meta()
	next, err := s.next(n)
	if err != nil {
		return err
	}
	if err := s.c.st.DeleteRange(entryKey(s.o.rk, n.master), after(entryKey(s.o.rk, spanEnd(n, next)))); err != nil {
		return err
	}
	if err := s.c.st.Delete(nodeKey(s.o.rk, n.master)); err != nil {
		return err
	}
	m.nodes--
	if next == nil {
		m.tail = n.prev
		return nil
	}
	next.hasPrev, next.prev = n.hasPrev, n.prev
	return s.saveNode(next)
}

const (
	trimNone = iota
	trimMaxLen
	trimMinID
)

// trimArgs are the trimming options of XADD and XTRIM.
type trimArgs struct {
	strategy int
	approx   bool  // "~": whole nodes only
	limit    int64 // at most this many entries (0: no limit)
	maxLen   int64
	minID    streamID
}

// trim is streamTrim: from the first node on, it removes whole nodes while
// the stream stays long enough (MAXLEN) or the node ends before the
// minimum ID (MINID), then, unless approx, the entries of the next node
// that must go. It returns how many entries it removed and whether it
// changed the records at all: a node whose entries XDEL and an earlier exact
// trim all deleted is removed without removing an entry, and its removal
// must be saved all the same.
func (s *stream) trim(a trimArgs) (deleted int64, changed bool, err error) {
	if a.strategy == trimNone {
		return 0, false, nil
	}
	m := s.meta()
	for a.strategy != trimMaxLen || m.length > uint64(a.maxLen) {
		n, err := s.nodeFrom(streamID{}) // the first node: those before it are gone
		if err != nil {
			return 0, false, err
		}
		if n == nil || (a.limit != 0 && deleted+n.live > a.limit) {
			break
		}
		whole := n.last.cmp(a.minID) < 0
		if a.strategy == trimMaxLen {
			whole = m.length-uint64(n.live) >= uint64(a.maxLen)
		}
		if whole {
			if err := s.removeNode(n); err != nil {
				return 0, false, err
			}
			changed = true
			m.length -= uint64(n.live)
			deleted += n.live
			continue
		}
		if a.approx {
			break
		}
		next, err := s.next(n)
		if err != nil {
			return 0, false, err
		}
		var gone []streamID
		err = s.forward(n.master, spanEnd(n, next), func(id streamID, _ [][]byte) (bool, error) {
			if a.strategy == trimMaxLen && m.length-uint64(len(gone)) <= uint64(a.maxLen) ||
				a.strategy == trimMinID && id.cmp(a.minID) >= 0 {
				return false, nil
			}
			gone = append(gone, id)
			return true, nil
		})
		for _, id := range gone {
			if err == nil {
				err = s.c.st.Delete(entryKey(s.o.rk, id))
			}
		}
		if err != nil {
			return 0, false, err
		}
		m.length -= uint64(len(gone))
		deleted += int64(len(gone))
		n.markDeleted(int64(len(gone)))
		if err := s.saveNode(n); err != nil {
			return 0, false, err
		}
		changed = true
		break // the next node keeps all its entries
	}
	switch {
	case m.length == 0:
		m.firstID = streamID{}
	case deleted > 0:
		first, _, err := s.firstEntry(streamID{})
		if err != nil {
			return 0, false, err
		}
		m.firstID = first
	}
	return deleted, changed, nil
}

// hasTombstones is streamRangeHasTombstones(s, start, +): whether an entry
// deleted by XDEL may lie at or after start.
func (s *stream) hasTombstones(start streamID) bool {
	m := s.meta()
	if m.length == 0 || m.maxDeleted.isZero() || m.firstID.cmp(m.maxDeleted) > 0 {
		return false
	}
	return start.cmp(m.maxDeleted) <= 0
}

// estimateReads is streamEstimateDistanceFromFirstEverEntry: the number
// of entries added up to id, when it can be known (else -1).
func (s *stream) estimateReads(id streamID) int64 {
	m := s.meta()
	if m.entriesAdded == 0 {
		return 0
	}
	if m.length == 0 && id.cmp(m.lastID) < 1 {
		return int64(m.entriesAdded)
	}
	switch id.cmp(m.lastID) {
	case 0:
		return int64(m.entriesAdded)
	case 1:
		return invalidEntriesRead
	}
	if m.maxDeleted.isZero() || m.maxDeleted.cmp(m.firstID) < 0 {
		switch id.cmp(m.firstID) {
		case -1:
			return int64(m.entriesAdded - m.length)
		case 0:
			return int64(m.entriesAdded - m.length + 1)
		}
	}
	return invalidEntriesRead
}

// lag is streamReplyWithCGLag: how many entries the group has not read,
// or null when that cannot be known.
func (s *stream) lag(g *group) Reply {
	m := s.meta()
	if m.entriesAdded == 0 {
		return Int(0)
	}
	if g.entriesRead != invalidEntriesRead && !s.hasTombstones(g.lastID) {
		return Int(int64(m.entriesAdded) - g.entriesRead)
	}
	if read := s.estimateReads(g.lastID); read != invalidEntriesRead {
		return Int(int64(m.entriesAdded) - read)
	}
	return Null()
}

// Consumer groups.

// group is the named consumer group (nil: none).
func (s *stream) group(name []byte) (*group, error) {
	if g, ok := s.groups[string(name)]; ok {
		return g, nil
	}
	if s.groups == nil {
		s.groups = map[string]*group{}
	}
	gk := groupKey(s.o.rk, name)
	v, found, err := s.c.st.Get(gk)
	if err != nil || !found {
		s.groups[string(name)] = nil
		return nil, err
	}
	sg, err := decodeGroup(gk, bytes.Clone(name), v)
	if err != nil {
		return nil, err
	}
	g := &group{streamGroup: *sg}
	s.groups[string(name)] = g
	return g, nil
}

// createGroup makes a group that does not exist.
func (s *stream) createGroup(name []byte, last streamID, entriesRead int64) *group {
	if s.groups == nil {
		s.groups = map[string]*group{}
	}
	g := &group{streamGroup: streamGroup{key: groupKey(s.o.rk, name), name: bytes.Clone(name),
		lastID: last, entriesRead: entriesRead}, dirty: true}
	s.groups[string(name)] = g
	s.meta().groups++
	return g
}

// destroyGroup deletes a group with its consumers and PEL.
func (s *stream) destroyGroup(g *group) error {
	s.groups[string(g.name)] = nil
	s.meta().groups--
	return s.c.st.DeleteRange(g.key, prefixEnd(g.key))
}

// eachGroup calls fn on every group, in name order.
func (s *stream) eachGroup(fn func(g *group) error) error {
	p := tagPrefix(s.o.rk, tagGroup)
	start := p
	for {
		kvs, err := s.c.st.Scan(start, prefixEnd(p), 1)
		if err != nil || len(kvs) == 0 {
			return err
		}
		// The first record from start on is a group's own: its sub-records
		// follow it.
		name, n, ok := unescape(kvs[0].Key[len(p):])
		if !ok || n != len(kvs[0].Key)-len(p) {
			return corruptf("stream %q: group record %x", s.o.key, kvs[0].Key)
		}
		g, err := s.group(name)
		if err == nil && g == nil {
			err = corruptf("stream %q: group %q vanished", s.o.key, name)
		}
		if err != nil {
			return err
		}
		if err := fn(g); err != nil {
			return err
		}
		start = prefixEnd(kvs[0].Key)
	}
}

// unescape reads a string appendEscaped wrote at the start of b, and the
// bytes it took.
func unescape(b []byte) (s []byte, n int, ok bool) {
	s = []byte{}
	for i := 0; i+1 < len(b); i++ {
		if b[i] != 0 {
			s = append(s, b[i])
			continue
		}
		switch b[i+1] {
		case 0xFF:
			s = append(s, 0)
			i++
		case 0x01:
			return s, i + 2, true
		default:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// consumer is g's consumer of that name (nil: none), its seen-time moved
// to now if refresh (streamLookupConsumer without SLC_NO_REFRESH).
func (s *stream) consumer(g *group, name []byte, refresh bool) (*consumer, error) {
	cn, ok := g.cons[string(name)]
	if !ok {
		v, found, err := s.c.st.Get(consumerKey(g.key, name))
		if err != nil {
			return nil, err
		}
		if found {
			sc, err := decodeConsumer(bytes.Clone(name), v)
			if err != nil {
				return nil, err
			}
			cn = &consumer{streamConsumer: *sc}
		}
		if g.cons == nil {
			g.cons = map[string]*consumer{}
		}
		g.cons[string(name)] = cn
	}
	if cn != nil && refresh {
		cn.seen, cn.dirty = s.c.now, true
	}
	return cn, nil
}

// eachConsumer calls fn on g's consumers, in name order.
func (s *stream) eachConsumer(g *group, fn func(cn *consumer) error) error {
	p := consumerKey(g.key, nil)
	var names [][]byte
	err := s.c.each(p, prefixEnd(p), func(kv KV) (bool, error) {
		names = append(names, kv.Key[len(p):])
		return true, nil
	})
	for _, name := range names {
		var cn *consumer
		if err == nil {
			if cn, err = s.consumer(g, name, false); err == nil && cn == nil {
				err = corruptf("stream %q: consumer %q vanished", s.o.key, name)
			}
		}
		if err == nil {
			err = fn(cn)
		}
	}
	return err
}

// createConsumer makes a consumer that does not exist, seen now
// (streamCreateConsumer, with its event).
func (s *stream) createConsumer(g *group, name []byte) *consumer {
	cn := &consumer{streamConsumer: streamConsumer{name: bytes.Clone(name), seen: s.c.now}, dirty: true}
	if g.cons == nil {
		g.cons = map[string]*consumer{}
	}
	g.cons[string(name)] = cn
	g.consumers++
	g.dirty = true
	s.c.notify(NotifyStream, "xgroup-createconsumer", s.o.key)
	return cn
}

// consumerOrCreate is the consumer of that name, created if missing, its
// seen-time now either way.
func (s *stream) consumerOrCreate(g *group, name []byte) (*consumer, error) {
	cn, err := s.consumer(g, name, true)
	if err == nil && cn == nil {
		cn = s.createConsumer(g, name)
	}
	return cn, err
}

// deleteConsumer is streamDelConsumer: the consumer goes, with its pending
// entries (from the group's PEL too). It returns how many were pending.
func (s *stream) deleteConsumer(g *group, cn *consumer) (int64, error) {
	p := consumerPELPrefix(g.key, cn.name)
	var ids []streamID
	err := s.c.each(p, prefixEnd(p), func(kv KV) (bool, error) {
		if len(kv.Key) != len(p)+16 {
			return false, corruptf("stream %q: PEL index record %x", s.o.key, kv.Key)
		}
		ids = append(ids, readStreamID(kv.Key[len(p):]))
		return true, nil
	})
	for _, id := range ids {
		if err == nil {
			err = s.c.st.Delete(pelKey(g.key, id))
		}
	}
	if err == nil {
		err = s.c.st.DeleteRange(p, prefixEnd(p))
	}
	if err == nil {
		err = s.c.st.Delete(consumerKey(g.key, cn.name))
	}
	if err != nil {
		return 0, err
	}
	g.pending -= int64(len(ids))
	g.consumers--
	g.dirty = true
	g.cons[string(cn.name)] = nil
	return cn.pending, nil
}

// PEL entries. owned is false for a NACK XCLAIM FORCE has just made.

func (s *stream) nack(g *group, id streamID) (*streamNACK, error) {
	v, found, err := s.c.st.Get(pelKey(g.key, id))
	if err != nil || !found {
		return nil, err
	}
	return decodeNACK(id, v)
}

func (s *stream) saveNACK(g *group, n *streamNACK) error {
	return s.c.st.Set(pelKey(g.key, n.id), n.encode())
}

func consumerPELKey(gk, consumer []byte, id streamID) []byte {
	return appendStreamID(consumerPELPrefix(gk, consumer), id)
}

// newNACK adds id to the group's PEL, owned by nobody yet (setOwner
// gives it one), delivered now, once.
func (s *stream) newNACK(g *group, id streamID) *streamNACK {
	g.pending++
	g.dirty = true
	return &streamNACK{id: id, delivered: s.c.now, deliveries: 1}
}

// setOwner makes cn the owner of n, taking it from its previous owner's
// PEL, and saves n.
func (s *stream) setOwner(g *group, n *streamNACK, owned bool, cn *consumer) error {
	if !owned || !bytes.Equal(n.consumer, cn.name) {
		if owned {
			if err := s.dropFromOwner(g, n); err != nil {
				return err
			}
		}
		cn.pending++
		cn.dirty = true
		if err := s.c.st.Set(consumerPELKey(g.key, cn.name, n.id), nil); err != nil {
			return err
		}
		n.consumer = cn.name
	}
	return s.saveNACK(g, n)
}

// dropFromOwner takes n out of its owner's PEL.
func (s *stream) dropFromOwner(g *group, n *streamNACK) error {
	old, err := s.consumer(g, n.consumer, false)
	if err == nil && old == nil {
		err = corruptf("stream %q: PEL entry %s of a missing consumer %q", s.o.key, n.id, n.consumer)
	}
	if err != nil {
		return err
	}
	old.pending--
	old.dirty = true
	return s.c.st.Delete(consumerPELKey(g.key, old.name, n.id))
}

// ack removes n from the group's PEL and its owner's.
func (s *stream) ack(g *group, n *streamNACK) error {
	if err := s.dropFromOwner(g, n); err != nil {
		return err
	}
	g.pending--
	g.dirty = true
	return s.c.st.Delete(pelKey(g.key, n.id))
}

// eachNACK calls fn on the PEL entries from start to end, in ID order:
// the group's, or with cn the consumer's, until fn returns false.
func (s *stream) eachNACK(g *group, cn *consumer, start, end streamID, fn func(n *streamNACK) (bool, error)) error {
	if start.cmp(end) > 0 {
		return nil
	}
	p := append(append([]byte(nil), g.key...), 'P')
	if cn != nil {
		p = consumerPELPrefix(g.key, cn.name)
	}
	return s.c.each(appendStreamID(bytes.Clone(p), start), after(appendStreamID(bytes.Clone(p), end)), func(kv KV) (bool, error) {
		if len(kv.Key) != len(p)+16 {
			return false, corruptf("stream %q: PEL record %x", s.o.key, kv.Key)
		}
		id := readStreamID(kv.Key[len(p):])
		if cn == nil {
			n, err := decodeNACK(id, kv.Value)
			if err != nil {
				return false, err
			}
			return fn(n)
		}
		n, err := s.nack(g, id)
		if err == nil && n == nil {
			err = corruptf("stream %q: consumer %q's PEL holds %s, the group's does not", s.o.key, cn.name, id)
		}
		if err != nil {
			return false, err
		}
		return fn(n)
	})
}
