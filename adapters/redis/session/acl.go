package session

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/kernel/hlc"
	"github.com/orbitkernel/orbit/txn"
)

// Redis 7.0 ACL users: ACL SETUSER, GETUSER, DELUSER, USERS, LIST, WHOAMI,
// CAT, DRYRUN, GENPASS, HELP, LOG; AUTH and HELLO ... AUTH; and the check
// of every command a connection runs against its user (docs/acl.md).
//
// Every user lives in one record of the transactional keyspace (aclKey:
// the users as ACL LIST prints them, one a line), changed only in
// transactions, as the function libraries are (functions.go): every node
// sees the same users, they survive restarts, and two SETUSERs racing on
// one user are applied one after the other. Each node keeps the users it
// parsed from the record last read; AUTH and the ACL commands read the
// record, and the check of a command re-reads it when the copy is older
// than aclStaleness. So a change made through another node is enforced
// here at most aclStaleness (plus one read) after it committed.
//
// Departures from Redis 7.0.15, also in docs/acl.md: there is no ACL file
// (ACL LOAD and SAVE answer Redis's error for a server without one); ACL
// LOG keeps nothing (an empty list); selectors ("(...)") are refused;
// Lua scripts are checked as the EVAL/FCALL command and its declared keys,
// not per redis.call; a rule naming one command describes the same way,
// but when several single-command rules remain after the categories,
// Orbit lists them in name order where Redis lists them in its command
// dictionary's (seeded, per-process) order; ACL is refused inside MULTI.

// aclKey is the record of every user.
var aclKey = []byte("redis/acl")

// aclStaleness is how often aclLoop reads the users again: a command is
// checked against the users last read, at most this (and a read) old
// while the record's range answers.
const aclStaleness = 100 * time.Millisecond

// maxACLBytes bounds the record.
const maxACLBytes = 4 << 20

// Key pattern permissions (Redis's ACL_READ_PERMISSION, ...).
const (
	aclRead  = 1
	aclWrite = 2
	aclAll   = aclRead | aclWrite
)

// aclCategories are Redis 7.0's categories, in its order (ACL CAT, and the
// order ACL LIST tries them in).
var aclCategories = []string{"keyspace", "read", "write", "set", "sortedset", "list", "hash", "string",
	"bitmap", "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow", "blocking", "dangerous",
	"connection", "transaction", "scripting"}

// aclCommand is one command or subcommand of Redis 7.0.15's table: ACL
// rules and their descriptions are computed over all of them (a category
// counts commands Orbit does not run too), so that ACL LIST prints what
// Redis prints.
type aclCommand struct {
	name   string // full name: "get", "client|kill"
	noAuth bool   // runs before AUTH, and whatever the user's commands
	cats   uint32 // bit i: aclCategories[i]
	parent int    // index of the container; -1: none
	subs   []int  // a container's subcommands
}

var (
	aclOnce     sync.Once
	aclCommands []aclCommand   // in name order, each container's subcommands after it
	aclByName   map[string]int // full name to index
)

func aclTable() []aclCommand {
	aclOnce.Do(func() {
		aclByName = map[string]int{}
		for _, line := range strings.Split(strings.TrimSpace(aclCommandTable), "\n") {
			f := strings.Fields(line)
			c := aclCommand{name: f[0], noAuth: f[1] == "a", parent: -1}
			for _, cat := range strings.Split(f[2], ",") {
				if i := slices.Index(aclCategories, cat); i >= 0 {
					c.cats |= 1 << i
				}
			}
			i := len(aclCommands)
			if p, _, ok := strings.Cut(c.name, "|"); ok {
				c.parent = aclByName[p]
				aclCommands[c.parent].subs = append(aclCommands[c.parent].subs, i)
			}
			aclCommands = append(aclCommands, c)
			aclByName[c.name] = i
		}
	})
	return aclCommands
}

// aclLookup is ACLLookupCommand: "get" or "client|kill", in any case.
func aclLookup(name string) (int, bool) {
	aclTable()
	name = strings.ToLower(name)
	if strings.Count(name, "|") > 1 {
		return 0, false
	}
	i, ok := aclByName[name]
	return i, ok
}

// aclUser is one user: its flags, passwords and root selector.
type aclUser struct {
	name                   string
	on                     bool // "on" (else "off")
	nopass                 bool
	sanitize, skipSanitize bool
	passwords              []string // SHA-256 hex, in the order added
	allKeys                bool
	keys                   []keyPattern
	allChannels            bool
	channels               []string
	// future is set by +@all (allcommands) and cleared by -@all
	// (nocommands): whether ACL LIST starts from +@all.
	future  bool
	allowed []bool // by aclCommands index
	// firstArgs are the first arguments allowed of a command otherwise
	// refused ("+select|0"), by aclCommands index.
	firstArgs map[int][]string
}

type keyPattern struct {
	pattern string
	flags   int
}

// newACLUser is a user as ACL SETUSER creates it: off, no password, no
// key, no channel, no command.
func newACLUser(name string) *aclUser {
	return &aclUser{name: name, allowed: make([]bool, len(aclTable())), firstArgs: map[int][]string{}}
}

// defaultACLUser is the default user of a server that has no record.
func defaultACLUser() *aclUser {
	u := newACLUser("default")
	for _, op := range []string{"on", "nopass", "allkeys", "allchannels", "+@all"} {
		if err := u.apply(op); err != nil {
			panic("redis: default user: " + err.Error())
		}
	}
	return u
}

func (u *aclUser) clone() *aclUser {
	v := *u
	v.passwords = slices.Clone(u.passwords)
	v.keys = slices.Clone(u.keys)
	v.channels = slices.Clone(u.channels)
	v.allowed = slices.Clone(u.allowed)
	v.firstArgs = map[int][]string{}
	for k, a := range u.firstArgs {
		v.firstArgs[k] = slices.Clone(a)
	}
	return &v
}

// aclRuleError is why a rule is refused, in Redis's words
// (ACLSetUserStringError), after "Error in ACL SETUSER modifier '...': ".
type aclRuleError string

func (e aclRuleError) Error() string { return string(e) }

const (
	errACLUnknown  = aclRuleError("Unknown command or category name in ACL")
	errACLSyntax   = aclRuleError("Syntax error")
	errACLAllKeys  = aclRuleError("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns")
	errACLAllChans = aclRuleError("Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels")
	errACLNoPass   = aclRuleError("The password you are trying to remove from the user does not exist")
	errACLBadHash  = aclRuleError("The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters")
	errACLFirstArg = aclRuleError("Allowing first-arg of a subcommand is not supported")
	errACLSelector = aclRuleError("selectors are not supported by Orbit")
)

func hashPassword(p string) string {
	sum := sha256.Sum256([]byte(p))
	return hex.EncodeToString(sum[:])
}

func validHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for _, c := range []byte(h) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// apply is ACLSetUser: one rule.
func (u *aclUser) apply(op string) error {
	lower := strings.ToLower(op)
	switch {
	case lower == "on":
		u.on = true
	case lower == "off":
		u.on = false
	case lower == "skip-sanitize-payload":
		u.skipSanitize, u.sanitize = true, false
	case lower == "sanitize-payload":
		u.skipSanitize, u.sanitize = false, true
	case lower == "nopass":
		u.nopass, u.passwords = true, nil
	case lower == "resetpass":
		u.nopass, u.passwords = false, nil
	case strings.HasPrefix(op, ">") || strings.HasPrefix(op, "#"):
		h := op[1:]
		if op[0] == '>' {
			h = hashPassword(h)
		} else if !validHash(h) {
			return errACLBadHash
		}
		if !slices.Contains(u.passwords, h) {
			u.passwords = append(u.passwords, h)
		}
		u.nopass = false
	case strings.HasPrefix(op, "<") || strings.HasPrefix(op, "!"):
		h := op[1:]
		if op[0] == '<' {
			h = hashPassword(h)
		} else if !validHash(h) {
			return errACLBadHash
		}
		i := slices.Index(u.passwords, h)
		if i < 0 {
			return errACLNoPass
		}
		u.passwords = slices.Delete(u.passwords, i, i+1)
	case strings.HasPrefix(op, "("):
		return errACLSelector
	case lower == "clearselectors":
		// No selector can exist (they are refused).
	case lower == "reset":
		for _, r := range []string{"resetpass", "resetkeys", "resetchannels", "off", "sanitize-payload", "-@all"} {
			if err := u.apply(r); err != nil {
				return err
			}
		}
	default:
		return u.applySelector(op)
	}
	return nil
}

// applySelector is ACLSetSelector on the root selector.
func (u *aclUser) applySelector(op string) error {
	lower := strings.ToLower(op)
	switch {
	case lower == "allkeys" || op == "~*":
		u.allKeys, u.keys = true, nil
	case lower == "resetkeys":
		u.allKeys, u.keys = false, nil
	case lower == "allchannels" || op == "&*":
		u.allChannels, u.channels = true, nil
	case lower == "resetchannels":
		u.allChannels, u.channels = false, nil
	case lower == "allcommands" || lower == "+@all":
		u.future = true
		for i := range u.allowed {
			u.allowed[i] = true
		}
		clear(u.firstArgs)
	case lower == "nocommands" || lower == "-@all":
		u.future = false
		clear(u.allowed)
		clear(u.firstArgs)
	case op != "" && (op[0] == '~' || op[0] == '%'):
		if u.allKeys {
			return errACLAllKeys
		}
		flags, offset := 0, 1
		if op[0] == '%' {
			for ; offset < len(op); offset++ {
				c := op[offset]
				if (c == 'R' || c == 'r') && flags&aclRead == 0 {
					flags |= aclRead
				} else if (c == 'W' || c == 'w') && flags&aclWrite == 0 {
					flags |= aclWrite
				} else if c == '~' {
					offset++
					break
				} else {
					return errACLSyntax
				}
			}
		} else {
			flags = aclAll
		}
		if flags == 0 {
			return errACLSyntax
		}
		pat := op[offset:]
		if i := slices.IndexFunc(u.keys, func(k keyPattern) bool { return k.pattern == pat }); i >= 0 {
			u.keys[i].flags |= flags
		} else {
			u.keys = append(u.keys, keyPattern{pat, flags})
		}
	case op != "" && op[0] == '&':
		if u.allChannels {
			return errACLAllChans
		}
		if !slices.Contains(u.channels, op[1:]) {
			u.channels = append(u.channels, op[1:])
		}
	case len(op) > 1 && (op[0] == '+' || op[0] == '-') && op[1] == '@':
		cat := slices.Index(aclCategories, strings.ToLower(op[2:]))
		if cat < 0 {
			return errACLUnknown
		}
		u.setCategory(cat, op[0] == '+')
	case op != "" && op[0] == '+':
		if !strings.Contains(op, "|") {
			i, ok := aclLookup(op[1:])
			if !ok {
				return errACLUnknown
			}
			u.setCommand(i, true)
			return nil
		}
		at := strings.LastIndexByte(op, '|')
		parent, sub := op[1:at], op[at+1:]
		i, ok := aclLookup(parent)
		switch {
		case !ok:
			return errACLUnknown
		case aclCommands[i].parent >= 0:
			return errACLFirstArg
		case sub == "":
			return errACLSyntax
		case len(aclCommands[i].subs) > 0:
			j, ok := aclLookup(op[1:])
			if !ok {
				return errACLUnknown
			}
			u.setCommand(j, true)
		default:
			if !slices.ContainsFunc(u.firstArgs[i], func(a string) bool { return strings.EqualFold(a, sub) }) {
				u.firstArgs[i] = append(u.firstArgs[i], sub)
			}
		}
	case op != "" && op[0] == '-':
		i, ok := aclLookup(op[1:])
		if !ok {
			return errACLUnknown
		}
		u.setCommand(i, false)
	default:
		return errACLSyntax
	}
	return nil
}

// setCommand is ACLChangeSelectorPerm: the command and its subcommands.
func (u *aclUser) setCommand(i int, allow bool) {
	u.allowed[i] = allow
	delete(u.firstArgs, i)
	for _, j := range aclCommands[i].subs {
		u.allowed[j] = allow
	}
}

// setCategory is ACLSetSelectorCommandBitsForCategory.
func (u *aclUser) setCategory(cat int, allow bool) {
	for i, c := range aclTable() {
		if c.cats&(1<<cat) != 0 {
			u.setCommand(i, allow)
		}
	}
}

// commandRules is ACLDescribeSelectorCommandRules: +@all or -@all, the
// categories that fit best, then single commands.
func (u *aclUser) commandRules() string {
	var b strings.Builder
	fake := newACLUser("")
	additive := !u.future
	if additive {
		b.WriteString("-@all ")
	} else {
		b.WriteString("+@all ")
		fake.applySelector("+@all")
	}
	temp := newACLUser("")
	copy(temp.allowed, u.allowed)
	applied := make([]bool, len(aclCategories))
	for {
		best, mindiff, maxsame := -1, int(^uint(0)>>1), 0
		for j := range aclCategories {
			if applied[j] {
				continue
			}
			on, off := 0, 0
			for i, c := range aclCommands {
				if c.cats&(1<<j) != 0 {
					if temp.allowed[i] {
						on++
					} else {
						off++
					}
				}
			}
			diff, same := on, off
			if additive {
				diff, same = off, on
			}
			if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
				best, mindiff, maxsame = j, diff, same
			}
		}
		if best < 0 {
			break
		}
		fake.setCategory(best, additive)
		temp.setCategory(best, !additive)
		sign := "-@"
		if additive {
			sign = "+@"
		}
		b.WriteString(sign + aclCategories[best] + " ")
		applied[best] = true
	}
	var single func(i int)
	single = func(i int) {
		c := aclCommands[i]
		if u.allowed[i] != fake.allowed[i] {
			if u.allowed[i] {
				b.WriteString("+")
			} else {
				b.WriteString("-")
			}
			b.WriteString(c.name + " ")
			fake.setCommand(i, u.allowed[i])
		}
		for _, j := range c.subs {
			single(j)
		}
		if !u.allowed[i] {
			for _, a := range u.firstArgs[i] {
				b.WriteString("+" + c.name + "|" + a + " ")
			}
		}
	}
	for i, c := range aclCommands {
		if c.parent < 0 {
			single(i)
		}
	}
	return strings.TrimSuffix(b.String(), " ")
}

func (k keyPattern) String() string {
	switch k.flags {
	case aclRead:
		return "%R~" + k.pattern
	case aclWrite:
		return "%W~" + k.pattern
	}
	return "~" + k.pattern
}

// flagNames are the user's flags in ACLUserFlags' order.
func (u *aclUser) flagNames() []string {
	var out []string
	if u.on {
		out = append(out, "on")
	} else {
		out = append(out, "off")
	}
	if u.nopass {
		out = append(out, "nopass")
	}
	if u.skipSanitize {
		out = append(out, "skip-sanitize-payload")
	}
	if u.sanitize {
		out = append(out, "sanitize-payload")
	}
	return out
}

// describe is ACLDescribeUser (ACL LIST without "user <name> ").
func (u *aclUser) describe() string {
	parts := u.flagNames()
	for _, p := range u.passwords {
		parts = append(parts, "#"+p)
	}
	if u.allKeys {
		parts = append(parts, "~*")
	} else {
		for _, k := range u.keys {
			parts = append(parts, k.String())
		}
	}
	if u.allChannels {
		parts = append(parts, "&*")
	} else {
		parts = append(parts, "resetchannels")
		for _, c := range u.channels {
			parts = append(parts, "&"+c)
		}
	}
	parts = append(parts, u.commandRules())
	return strings.Join(parts, " ")
}

// getUser is ACL GETUSER's reply.
func (u *aclUser) getUser() redis.Reply {
	var flags, pws []redis.Reply
	for _, f := range u.flagNames() {
		flags = append(flags, redis.BulkString(f))
	}
	for _, p := range u.passwords {
		pws = append(pws, redis.BulkString(p))
	}
	keys := "~*"
	if !u.allKeys {
		var ks []string
		for _, k := range u.keys {
			ks = append(ks, k.String())
		}
		keys = strings.Join(ks, " ")
	}
	chans := "&*"
	if !u.allChannels {
		var cs []string
		for _, c := range u.channels {
			cs = append(cs, "&"+c)
		}
		chans = strings.Join(cs, " ")
	}
	return redis.Map(
		redis.BulkString("flags"), redis.Set(flags...),
		redis.BulkString("passwords"), redis.Array(pws...),
		redis.BulkString("commands"), redis.BulkString(u.commandRules()),
		redis.BulkString("keys"), redis.BulkString(keys),
		redis.BulkString("channels"), redis.BulkString(chans),
		redis.BulkString("selectors"), redis.Array())
}

// aclCache keeps the users of the record last read, by its bytes.
type aclCache struct {
	mu     sync.Mutex // never held across a blocking call
	record string
	users  map[string]*aclUser
	loaded bool
	// at is the timestamp the record was read at. The cache only moves
	// forward: of two overlapping reads, the one that read earlier may
	// finish last, and storing it would take back a user just made (a
	// connection that had just logged in as it was then closed for its
	// user "deleted": the redistxn pairs' client, three connections on one
	// session, seed 21).
	at hlc.Timestamp
}

func (s *Server) aclCache() *aclCache { return &s.acl }

// decodeUsers parses the record: ACL LIST's lines.
func decodeUsers(v []byte) (map[string]*aclUser, error) {
	users := map[string]*aclUser{}
	for _, line := range strings.Split(string(v), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "user" {
			continue
		}
		u := newACLUser(f[1])
		for _, op := range f[2:] {
			if err := u.apply(op); err != nil {
				return nil, errors.New("ERR the ACL record is corrupt: " + err.Error())
			}
		}
		users[u.name] = u
	}
	if users["default"] == nil {
		users["default"] = defaultACLUser()
	}
	return users, nil
}

// encodeUsers is the record for users: ACL LIST's lines.
func encodeUsers(users map[string]*aclUser) []byte {
	var b strings.Builder
	for _, name := range sortedKeys(users) {
		b.WriteString("user " + name + " " + users[name].describe() + "\n")
	}
	return []byte(b.String())
}

// aclUsers returns the users: from tx (read for update), or from the
// record read now (fresh), or else from the copy aclLoop keeps (read
// now if there is none yet). Without a transactional keyspace only the default user
// exists. The map is never changed: a change makes a new one.
func (s *Server) aclUsers(ctx context.Context, tx *txn.Tx, fresh bool) (map[string]*aclUser, error) {
	c := s.aclCache()
	c.mu.Lock()
	if s.dbs == nil && !c.loaded {
		c.users, c.loaded = map[string]*aclUser{"default": defaultACLUser()}, true
	}
	if s.dbs == nil || (tx == nil && !fresh && c.loaded) {
		// A command's check never waits on the record: aclLoop keeps
		// the users fresh (a command on a range that is up must not
		// stall because the record's range is not).
		defer c.mu.Unlock()
		return c.users, nil
	}
	c.mu.Unlock()
	var v []byte
	var at hlc.Timestamp
	var err error
	if tx != nil {
		v, err = s.readRecord(ctx, tx, aclKey)
	} else {
		v, at, err = s.readLatest(ctx, aclKey)
	}
	if err != nil && tx == nil && !fresh {
		// The record cannot be read now (its range is unavailable):
		// commands go on under the users last read rather than all
		// failing.
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.loaded {
			return c.users, nil
		}
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.loaded && c.record == string(v) {
		defer c.mu.Unlock()
		if c.at.Less(at) {
			c.at = at
		}
		return c.users, nil
	}
	c.mu.Unlock()
	users, err := decodeUsers(v)
	if err != nil {
		return nil, err
	}
	if tx == nil {
		users = c.store(string(v), users, at)
	}
	return users, nil
}

// store keeps users, decoded from record as read at at, unless the cache
// holds a read made later, and returns the users of the later read.
func (c *aclCache) store(record string, users map[string]*aclUser, at hlc.Timestamp) map[string]*aclUser {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.users != nil && at.Less(c.at) {
		return c.users
	}
	c.record, c.users, c.loaded, c.at = record, users, true, at
	return users
}

// changeUsers runs change on the users in a transaction and writes what
// it returns; a replyError from change is its answer.
func (s *Server) changeUsers(ctx context.Context, change func(users map[string]*aclUser) (map[string]*aclUser, redis.Reply, error)) redis.Reply {
	reply := s.inTxn(ctx, "ERR ACL users need the transactional keyspace, which this server does not have (only the default user exists)", func(tx *txn.Tx) (redis.Reply, error) {
		users, err := s.aclUsers(ctx, tx, true)
		if err != nil {
			return redis.Reply{}, err
		}
		out, r, err := change(users)
		if err != nil {
			return redis.Reply{}, err
		}
		rec := encodeUsers(out)
		if len(rec) > maxACLBytes {
			return redis.Reply{}, replyError{redis.Error("ERR the users would take more than 4 MB (Orbit's bound)")}
		}
		return r, tx.Put(ctx, aclKey, rec)
	})
	// The next command here reads the record again.
	c := s.aclCache()
	c.mu.Lock()
	c.loaded = false
	c.mu.Unlock()
	return reply
}

// How a command is refused (Redis's ACL_DENIED_*).
type aclDenial int

const (
	aclOK aclDenial = iota
	aclDeniedCmd
	aclDeniedKey
	aclDeniedChannel
)

// aclCommandOf is the command args run: its aclCommands index (a
// container's subcommand when it names one), and whether it is known.
func aclCommandOf(args [][]byte) (int, bool) {
	i, ok := aclLookup(string(args[0]))
	if !ok || strings.Contains(string(args[0]), "|") {
		return 0, false
	}
	if len(aclCommands[i].subs) > 0 && len(args) >= 2 {
		if j, ok := aclLookup(string(args[0]) + "|" + string(args[1])); ok {
			return j, true
		}
	}
	return i, true
}

// check is ACLSelectorCheckCmd: whether u may run args, and if not why,
// and the key or channel refused.
func (u *aclUser) check(args [][]byte) (aclDenial, string, string) {
	i, known := aclCommandOf(args)
	if !known {
		if u.future {
			return aclOK, "", ""
		}
		return aclDeniedCmd, strings.ToLower(string(args[0])), ""
	}
	c := aclCommands[i]
	if !c.noAuth && !u.allowed[i] {
		at := 1
		if c.parent >= 0 {
			at = 2
		}
		if len(args) <= at || !slices.ContainsFunc(u.firstArgs[i], func(a string) bool { return strings.EqualFold(a, string(args[at])) }) {
			return aclDeniedCmd, c.name, ""
		}
	}
	if !u.allKeys {
		keys := redis.Keys(args)
		flags := keyFlags(args, c.name, len(keys))
		for k, key := range keys {
			if !u.keyAllowed(key, flags[k]) {
				return aclDeniedKey, c.name, string(key)
			}
		}
	}
	if !u.allChannels {
		var chans [][]byte
		pattern := false
		switch c.name {
		case "publish":
			chans = args[1:2]
		case "subscribe":
			chans = args[1:]
		case "psubscribe":
			chans, pattern = args[1:], true
		}
		for _, ch := range chans {
			ok := false
			for _, p := range u.channels {
				if (pattern && p == string(ch)) || (!pattern && redis.GlobMatch([]byte(p), ch)) {
					ok = true
					break
				}
			}
			if !ok {
				return aclDeniedChannel, c.name, string(ch)
			}
		}
	}
	return aclOK, c.name, ""
}

// keyAllowed is ACLSelectorCheckKey.
func (u *aclUser) keyAllowed(key []byte, flags int) bool {
	for _, p := range u.keys {
		if p.flags&flags == flags && redis.GlobMatch([]byte(p.pattern), key) {
			return true
		}
	}
	return false
}

// keyFlags are the permissions each of n keys needs, from the command's
// key specs in COMMAND INFO: ACCESS needs read; INSERT, DELETE and UPDATE
// need write. Key k is taken to be of key spec min(k, specs-1): Orbit
// finds keys by command (redis.Keys), not by key spec.
func keyFlags(args [][]byte, fullname string, n int) []int {
	out := make([]int, n)
	spec, ok := redis.Lookup(string(args[0]))
	if !ok || n == 0 {
		return out
	}
	info := spec.InfoReply()
	if strings.Contains(fullname, "|") && len(info.Elems) == 10 {
		for _, sub := range info.Elems[9].Elems {
			if len(sub.Elems) == 10 && string(sub.Elems[0].Str) == fullname {
				info = sub
			}
		}
	}
	if len(info.Elems) < 9 || len(info.Elems[8].Elems) == 0 {
		return out
	}
	specs := info.Elems[8].Elems
	if fullname == "set" && !slices.ContainsFunc(args[3:], func(a []byte) bool { return strings.EqualFold(string(a), "get") }) {
		// SET's key spec has VARIABLE_FLAGS: without GET, Redis's
		// setGetKeys makes it OW UPDATE (write only).
		for k := range out {
			out[k] = aclWrite
		}
		return out
	}
	for k := range out {
		ks := specs[min(k, len(specs)-1)]
		for j := 0; j+1 < len(ks.Elems); j += 2 {
			if string(ks.Elems[j].Str) != "flags" {
				continue
			}
			for _, f := range ks.Elems[j+1].Elems {
				switch strings.ToLower(string(f.Str)) {
				case "access":
					out[k] |= aclRead
				case "insert", "delete", "update":
					out[k] |= aclWrite
				}
			}
		}
	}
	return out
}

// aclAdmit checks a command against the connection's user, as Redis's
// processCommand does after the arity: NOAUTH, then the user's
// permissions. It returns the refusal (zero Kind: admitted), and whether
// the connection must close (its user was deleted). It sets up the
// connection's authentication on its first command.
func (c *Conn) aclAdmit(ctx context.Context, args [][]byte) (redis.Reply, bool) {
	if c.s.dbs == nil {
		return redis.Reply{}, false // only the default user, which may run anything
	}
	users, err := c.s.aclUsers(ctx, nil, false)
	if err != nil {
		return failure(err), false
	}
	def := users["default"]
	if !c.authInit {
		c.authInit, c.authed = true, def.nopass && def.on
	}
	u := users[c.user]
	if u == nil {
		return redis.Error("ERR this connection's user was deleted"), true
	}
	if i, ok := aclCommandOf(args); !c.authed && (!def.nopass || !def.on) && !(ok && aclCommands[i].noAuth) {
		return redis.Error("NOAUTH Authentication required."), false
	}
	switch d, name, _ := u.check(args); d {
	case aclDeniedCmd:
		return redis.Error("NOPERM this user has no permissions to run the '" + name + "' command"), false
	case aclDeniedKey:
		return redis.Error("NOPERM this user has no permissions to access one of the keys used as arguments"), false
	case aclDeniedChannel:
		return redis.Error("NOPERM this user has no permissions to access one of the channels used as arguments"), false
	}
	return redis.Reply{}, false
}

// aclExecDenials checks EXEC's queued commands again, as Redis does: the
// refused ones get their error in place of their reply and do not run.
func (c *Conn) aclExecDenials(ctx context.Context, queue [][][]byte) map[int]redis.Reply {
	if c.s.dbs == nil {
		return nil
	}
	users, err := c.s.aclUsers(ctx, nil, false)
	if err != nil {
		return nil // each command is checked again as it runs
	}
	u := users[c.user]
	out := map[int]redis.Reply{}
	for i, q := range queue {
		reason := "no permission to execute the command or subcommand"
		d := aclDeniedCmd
		if u != nil {
			d, _, _ = u.check(q)
		}
		switch d {
		case aclOK:
			continue
		case aclDeniedKey:
			reason = "no permission to touch the specified keys"
		case aclDeniedChannel:
			reason = "no permission to access one of the channels used as arguments"
		}
		out[i] = redis.Error("NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: " + reason)
	}
	return out
}

// authenticate is ACLAuthenticateUser, on the users read now.
func (c *Conn) authenticate(ctx context.Context, user, pass []byte) (bool, error) {
	users, err := c.s.aclUsers(ctx, nil, true)
	if err != nil {
		return false, err
	}
	u := users[string(user)]
	if u == nil || !u.on || (!u.nopass && !slices.Contains(u.passwords, hashPassword(string(pass)))) {
		return false, nil
	}
	c.setUser(u.name)
	c.authInit, c.authed = true, true
	return true, nil
}

// setUser makes name the connection's user, and shows it.
func (c *Conn) setUser(name string) {
	c.user = name
	c.show(func(i *clientInfo) { i.user = name })
}

// auth is AUTH [user] password.
func (c *Conn) auth(ctx context.Context, args [][]byte) redis.Reply {
	if len(args) > 3 {
		return redis.Error("ERR syntax error")
	}
	user, pass := []byte("default"), args[len(args)-1]
	if len(args) == 2 {
		users, err := c.s.aclUsers(ctx, nil, true)
		if err != nil {
			return failure(err)
		}
		if users["default"].nopass {
			return redis.Error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
		}
	} else {
		user = args[1]
	}
	ok, err := c.authenticate(ctx, user, pass)
	switch {
	case err != nil:
		return failure(err)
	case !ok:
		return redis.Error("WRONGPASS invalid username-password pair or user is disabled.")
	}
	return redis.OK()
}

// aclSubArity is ACL's subcommands' arity (the container's name included).
var aclSubArity = map[string]int{"cat": -2, "deluser": -3, "dryrun": -4, "genpass": -2, "getuser": 3, "help": 2,
	"list": 2, "load": 2, "log": -2, "save": 2, "setuser": -3, "users": 2, "whoami": 2}

// aclDo runs ACL, which Orbit's command table (generated from the commands
// Orbit runs) does not list: its checks in processCommand's order, then
// the subcommand.
func (c *Conn) aclDo(ctx context.Context, args [][]byte) ([]redis.Reply, bool, handled) {
	c.show(func(i *clientInfo) { i.lastCmd = "acl" })
	if len(args) < 2 {
		c.dirty = c.dirty || c.multi
		return one(arityError("acl")), false, rejected
	}
	sub := strings.ToLower(string(args[1]))
	n, ok := aclSubArity[sub]
	switch {
	case !ok:
		c.dirty = c.dirty || c.multi
		arg := string(args[1][:min(len(args[1]), 128)])
		return errorReply("ERR unknown subcommand '" + arg + "'. Try ACL HELP."), false, rejected
	case (n >= 0 && len(args) != n) || len(args) < -n:
		c.dirty = c.dirty || c.multi
		return one(arityError("acl|" + sub)), false, rejected
	}
	if r, quit := c.aclAdmit(ctx, args); r.Kind != 0 || quit {
		c.dirty = c.dirty || c.multi
		if quit {
			return nil, true, rejected
		}
		return one(r), false, rejected
	}
	if c.proto == 2 && len(c.subs)+len(c.psubs) > 0 {
		return errorReply("ERR Can't execute 'acl|" + sub + "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"), false, rejected
	}
	if c.multi {
		c.dirty = true
		return errorReply("ERR ACL inside MULTI is not supported by Orbit"), false, rejected
	}
	r := c.aclCommand(ctx, sub, args)
	quit := c.closeAfterReply
	c.closeAfterReply = false
	return one(r), quit, ran
}

// aclCommand answers ACL's subcommands.
func (c *Conn) aclCommand(ctx context.Context, sub string, args [][]byte) redis.Reply {
	s := c.s
	switch sub {
	case "setuser":
		name := string(args[2])
		if strings.ContainsAny(name, " \t\n\v\f\r\x00") {
			return redis.Error("ERR Usernames can't contain spaces or null characters")
		}
		ops := args[3:]
		return s.changeUsers(ctx, func(users map[string]*aclUser) (map[string]*aclUser, redis.Reply, error) {
			u := newACLUser(name)
			if old := users[name]; old != nil {
				u = old.clone()
			}
			for _, op := range ops {
				if err := u.apply(string(op)); err != nil {
					return nil, redis.Reply{}, replyError{redis.Error("ERR Error in ACL SETUSER modifier '" + string(op) + "': " + err.Error())}
				}
			}
			out := make(map[string]*aclUser, len(users)+1)
			for k, v := range users {
				out[k] = v
			}
			out[name] = u
			return out, redis.OK(), nil
		})
	case "deluser":
		for _, a := range args[2:] {
			if string(a) == "default" {
				return redis.Error("ERR The 'default' user cannot be removed")
			}
		}
		if s.dbs == nil {
			return redis.Int(0) // only the default user exists
		}
		var gone []string
		r := s.changeUsers(ctx, func(users map[string]*aclUser) (map[string]*aclUser, redis.Reply, error) {
			out := make(map[string]*aclUser, len(users))
			for k, v := range users {
				out[k] = v
			}
			gone = nil
			for _, a := range args[2:] {
				if out[string(a)] != nil {
					delete(out, string(a))
					gone = append(gone, string(a))
				}
			}
			return out, redis.Int(int64(len(gone))), nil
		})
		if r.Kind == redis.KindInt {
			c.killUsers(gone)
		}
		return r
	case "getuser":
		users, err := s.aclUsers(ctx, nil, true)
		if err != nil {
			return failure(err)
		}
		if u := users[string(args[2])]; u != nil {
			return u.getUser()
		}
		return redis.Null()
	case "users", "list":
		users, err := s.aclUsers(ctx, nil, true)
		if err != nil {
			return failure(err)
		}
		var out []redis.Reply
		for _, name := range sortedKeys(users) {
			if sub == "users" {
				out = append(out, redis.BulkString(name))
			} else {
				out = append(out, redis.BulkString("user "+name+" "+users[name].describe()))
			}
		}
		return redis.Array(out...)
	case "whoami":
		return redis.BulkString(c.user)
	case "cat":
		if len(args) > 3 {
			return redis.Error("ERR unknown subcommand or wrong number of arguments for '" + string(args[1]) + "'. Try ACL HELP.")
		}
		var out []redis.Reply
		if len(args) == 2 {
			for _, cat := range aclCategories {
				out = append(out, redis.BulkString(cat))
			}
			return redis.Array(out...)
		}
		cat := slices.Index(aclCategories, strings.ToLower(string(args[2])))
		if cat < 0 {
			return redis.Error("ERR Unknown category '" + string(args[2]) + "'")
		}
		for _, cmd := range aclTable() {
			if cmd.cats&(1<<cat) != 0 {
				out = append(out, redis.BulkString(cmd.name))
			}
		}
		return redis.Array(out...)
	case "dryrun":
		users, err := s.aclUsers(ctx, nil, true)
		if err != nil {
			return failure(err)
		}
		u := users[string(args[2])]
		if u == nil {
			return redis.Error("ERR User '" + string(args[2]) + "' not found")
		}
		cmd := args[3:]
		i, known := aclCommandOf(cmd)
		spec, inTable := redis.Lookup(string(cmd[0]))
		if !known || (!inTable && aclCommands[i].name != "acl" && aclCommands[i].parent < 0) {
			return redis.Error("ERR Command '" + string(cmd[0]) + "' not found")
		}
		if inTable && !spec.ArityOK(len(cmd)) {
			return redis.Error("ERR wrong number of arguments for '" + aclCommands[i].name + "' command")
		}
		switch d, name, what := u.check(cmd); d {
		case aclDeniedCmd:
			return redis.BulkString("This user has no permissions to run the '" + name + "' command")
		case aclDeniedKey:
			return redis.BulkString("This user has no permissions to access the '" + what + "' key")
		case aclDeniedChannel:
			return redis.BulkString("This user has no permissions to access the '" + what + "' channel")
		}
		return redis.OK()
	case "genpass":
		bits := int64(256)
		if len(args) > 2 {
			n, err := strconv.ParseInt(string(args[2]), 10, 64)
			if err != nil {
				return redis.Error("ERR value is not an integer or out of range")
			}
			if n <= 0 || n > 4096 {
				return redis.Error("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096")
			}
			bits = n
		}
		// The node's random source: seeded from the system in
		// production, by the simulator in simulation.
		chars := (bits + 3) / 4
		rnd := s.rt.Rand()
		buf := make([]byte, (chars+1)/2)
		for i := range buf {
			buf[i] = byte(rnd.Uint32())
		}
		return redis.BulkString(hex.EncodeToString(buf)[:chars])
	case "log":
		// ACL LOG keeps nothing in Orbit (docs/acl.md): always empty.
		if len(args) == 3 && !strings.EqualFold(string(args[2]), "reset") {
			if n, err := strconv.ParseInt(string(args[2]), 10, 64); err != nil || n < 0 {
				return redis.Error("ERR value is out of range, must be positive")
			}
		}
		if len(args) > 3 {
			return redis.Error("ERR syntax error")
		}
		if len(args) == 3 && strings.EqualFold(string(args[2]), "reset") {
			return redis.OK()
		}
		return redis.Array()
	case "load", "save":
		// There is no ACL file: users live in the replicated record. The
		// answer is Redis's for a server started without one.
		return redis.Error("ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.")
	case "help":
		return aclHelp
	}
	return redis.Error("ERR unknown subcommand '" + string(args[1]) + "'. Try ACL HELP.")
}

// killUsers closes this node's connections authenticated as one of names
// (Redis's ACLFreeUserAndKillClients): the caller's after its reply.
// Connections on other nodes close on their next command (aclAdmit).
func (c *Conn) killUsers(names []string) {
	if len(names) == 0 {
		return
	}
	var kills []func()
	infos := c.s.connInfos()
	c.s.mu.Lock()
	for o, info := range infos {
		switch {
		case !slices.Contains(names, info.user):
		case o == c:
			c.closeAfterReply = true
		case o.kill != nil:
			kills = append(kills, o.kill)
		}
	}
	c.s.mu.Unlock()
	for _, kill := range kills {
		kill()
	}
}

// knownUser reports whether name is a user, in the users last read (CLIENT
// KILL USER, which reads nothing).
func (s *Server) knownUser(name string) bool {
	c := s.aclCache()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.loaded {
		return name == "default"
	}
	return c.users[name] != nil
}

// connInfos is what every connection of the node shows (their users
// and local addresses among it), read after s.mu: each connection's shown
// state has its own lock.
func (s *Server) connInfos() map[*Conn]clientInfo {
	s.mu.Lock()
	conns := make([]*Conn, 0, len(s.conns))
	for _, o := range s.conns {
		conns = append(conns, o)
	}
	s.mu.Unlock()
	out := make(map[*Conn]clientInfo, len(conns))
	for _, o := range conns {
		out[o] = o.info()
	}
	return out
}

var aclHelp = redis.HelpReply("ACL", []string{
	"CAT [<category>]",
	"    List all commands that belong to <category>, or all command categories",
	"    when no category is specified.",
	"DELUSER <username> [<username> ...]",
	"    Delete a list of users.",
	"DRYRUN <username> <command> [<arg> ...]",
	"    Returns whether the user can execute the given command without executing the command.",
	"GETUSER <username>",
	"    Get the user's details.",
	"GENPASS [<bits>]",
	"    Generate a secure 256-bit user password. The optional `bits` argument can",
	"    be used to specify a different size.",
	"LIST",
	"    Show users details in config file format.",
	"LOAD",
	"    Reload users from the ACL file.",
	"LOG [<count> | RESET]",
	"    Show the ACL log entries.",
	"SAVE",
	"    Save the current config to the ACL file.",
	"SETUSER <username> <attribute> [<attribute> ...]",
	"    Create or modify a user with the specified attributes.",
	"USERS",
	"    List all the registered usernames.",
	"WHOAMI",
	"    Return the current connection username.",
})

// aclCommandTable is Redis 7.0.15's commands and subcommands (from its
// COMMAND): full name, "a" for no_auth, ACL categories.
const aclCommandTable = `
acl - slow
acl|cat - slow
acl|deluser - admin,slow,dangerous
acl|dryrun - admin,slow,dangerous
acl|genpass - slow
acl|getuser - admin,slow,dangerous
acl|help - slow
acl|list - admin,slow,dangerous
acl|load - admin,slow,dangerous
acl|log - admin,slow,dangerous
acl|save - admin,slow,dangerous
acl|setuser - admin,slow,dangerous
acl|users - admin,slow,dangerous
acl|whoami - slow
append - write,string,fast
asking - fast,connection
auth a fast,connection
bgrewriteaof - admin,slow,dangerous
bgsave - admin,slow,dangerous
bitcount - read,bitmap,slow
bitfield - write,bitmap,slow
bitfield_ro - read,bitmap,fast
bitop - write,bitmap,slow
bitpos - read,bitmap,slow
blmove - write,list,slow,blocking
blmpop - write,list,slow,blocking
blpop - write,list,slow,blocking
brpop - write,list,slow,blocking
brpoplpush - write,list,slow,blocking
bzmpop - write,sortedset,slow,blocking
bzpopmax - write,sortedset,fast,blocking
bzpopmin - write,sortedset,fast,blocking
client - slow
client|caching - slow,connection
client|getname - slow,connection
client|getredir - slow,connection
client|help - slow,connection
client|id - slow,connection
client|info - slow,connection
client|kill - admin,slow,dangerous,connection
client|list - admin,slow,dangerous,connection
client|no-evict - admin,slow,dangerous,connection
client|pause - admin,slow,dangerous,connection
client|reply - slow,connection
client|setname - slow,connection
client|tracking - slow,connection
client|trackinginfo - slow,connection
client|unblock - admin,slow,dangerous,connection
client|unpause - admin,slow,dangerous,connection
cluster - slow
cluster|addslots - admin,slow,dangerous
cluster|addslotsrange - admin,slow,dangerous
cluster|bumpepoch - admin,slow,dangerous
cluster|count-failure-reports - admin,slow,dangerous
cluster|countkeysinslot - slow
cluster|delslots - admin,slow,dangerous
cluster|delslotsrange - admin,slow,dangerous
cluster|failover - admin,slow,dangerous
cluster|flushslots - admin,slow,dangerous
cluster|forget - admin,slow,dangerous
cluster|getkeysinslot - slow
cluster|help - slow
cluster|info - slow
cluster|keyslot - slow
cluster|links - slow
cluster|meet - admin,slow,dangerous
cluster|myid - slow
cluster|nodes - slow
cluster|replicas - admin,slow,dangerous
cluster|replicate - admin,slow,dangerous
cluster|reset - admin,slow,dangerous
cluster|saveconfig - admin,slow,dangerous
cluster|set-config-epoch - admin,slow,dangerous
cluster|setslot - admin,slow,dangerous
cluster|shards - slow
cluster|slaves - admin,slow,dangerous
cluster|slots - slow
command - slow,connection
command|count - slow,connection
command|docs - slow,connection
command|getkeys - slow,connection
command|getkeysandflags - slow,connection
command|help - slow,connection
command|info - slow,connection
command|list - slow,connection
config - slow
config|get - admin,slow,dangerous
config|help - slow
config|resetstat - admin,slow,dangerous
config|rewrite - admin,slow,dangerous
config|set - admin,slow,dangerous
copy - keyspace,write,slow
dbsize - keyspace,read,fast
debug - admin,slow,dangerous
decr - write,string,fast
decrby - write,string,fast
del - keyspace,write,slow
discard - fast,transaction
dump - keyspace,read,slow
echo - fast,connection
eval - slow,scripting
eval_ro - slow,scripting
evalsha - slow,scripting
evalsha_ro - slow,scripting
exec - slow,transaction
exists - keyspace,read,fast
expire - keyspace,write,fast
expireat - keyspace,write,fast
expiretime - keyspace,read,fast
failover - admin,slow,dangerous
fcall - slow,scripting
fcall_ro - slow,scripting
flushall - keyspace,write,slow,dangerous
flushdb - keyspace,write,slow,dangerous
function - slow
function|delete - write,slow,scripting
function|dump - slow,scripting
function|flush - write,slow,scripting
function|help - slow,scripting
function|kill - slow,scripting
function|list - slow,scripting
function|load - write,slow,scripting
function|restore - write,slow,scripting
function|stats - slow,scripting
geoadd - write,geo,slow
geodist - read,geo,slow
geohash - read,geo,slow
geopos - read,geo,slow
georadius - write,geo,slow
georadius_ro - read,geo,slow
georadiusbymember - write,geo,slow
georadiusbymember_ro - read,geo,slow
geosearch - read,geo,slow
geosearchstore - write,geo,slow
get - read,string,fast
getbit - read,bitmap,fast
getdel - write,string,fast
getex - write,string,fast
getrange - read,string,slow
getset - write,string,fast
hdel - write,hash,fast
hello a fast,connection
hexists - read,hash,fast
hget - read,hash,fast
hgetall - read,hash,slow
hincrby - write,hash,fast
hincrbyfloat - write,hash,fast
hkeys - read,hash,slow
hlen - read,hash,fast
hmget - read,hash,fast
hmset - write,hash,fast
hrandfield - read,hash,slow
hscan - read,hash,slow
hset - write,hash,fast
hsetnx - write,hash,fast
hstrlen - read,hash,fast
hvals - read,hash,slow
incr - write,string,fast
incrby - write,string,fast
incrbyfloat - write,string,fast
info - slow,dangerous
keys - keyspace,read,slow,dangerous
lastsave - admin,fast,dangerous
latency - slow
latency|doctor - admin,slow,dangerous
latency|graph - admin,slow,dangerous
latency|help - slow
latency|histogram - admin,slow,dangerous
latency|history - admin,slow,dangerous
latency|latest - admin,slow,dangerous
latency|reset - admin,slow,dangerous
lcs - read,string,slow
lindex - read,list,slow
linsert - write,list,slow
llen - read,list,fast
lmove - write,list,slow
lmpop - write,list,slow
lolwut - read,fast
lpop - write,list,fast
lpos - read,list,slow
lpush - write,list,fast
lpushx - write,list,fast
lrange - read,list,slow
lrem - write,list,slow
lset - write,list,slow
ltrim - write,list,slow
memory - slow
memory|doctor - slow
memory|help - slow
memory|malloc-stats - slow
memory|purge - slow
memory|stats - slow
memory|usage - read,slow
mget - read,string,fast
migrate - keyspace,write,slow,dangerous
module - slow
module|help - slow
module|list - admin,slow,dangerous
module|load - admin,slow,dangerous
module|loadex - admin,slow,dangerous
module|unload - admin,slow,dangerous
monitor - admin,slow,dangerous
move - keyspace,write,fast
mset - write,string,slow
msetnx - write,string,slow
multi - fast,transaction
object - slow
object|encoding - keyspace,read,slow
object|freq - keyspace,read,slow
object|help - keyspace,slow
object|idletime - keyspace,read,slow
object|refcount - keyspace,read,slow
persist - keyspace,write,fast
pexpire - keyspace,write,fast
pexpireat - keyspace,write,fast
pexpiretime - keyspace,read,fast
pfadd - write,hyperloglog,fast
pfcount - read,hyperloglog,slow
pfdebug - write,hyperloglog,admin,slow,dangerous
pfmerge - write,hyperloglog,slow
pfselftest - hyperloglog,admin,slow,dangerous
ping - fast,connection
psetex - write,string,slow
psubscribe - pubsub,slow
psync - admin,slow,dangerous
pttl - keyspace,read,fast
publish - pubsub,fast
pubsub - slow
pubsub|channels - pubsub,slow
pubsub|help - slow
pubsub|numpat - pubsub,slow
pubsub|numsub - pubsub,slow
pubsub|shardchannels - pubsub,slow
pubsub|shardnumsub - pubsub,slow
punsubscribe - pubsub,slow
quit a fast,connection
randomkey - keyspace,read,slow
readonly - fast,connection
readwrite - fast,connection
rename - keyspace,write,slow
renamenx - keyspace,write,fast
replconf - admin,slow,dangerous
replicaof - admin,slow,dangerous
reset a fast,connection
restore - keyspace,write,slow,dangerous
restore-asking - keyspace,write,slow,dangerous
role - admin,fast,dangerous
rpop - write,list,fast
rpoplpush - write,list,slow
rpush - write,list,fast
rpushx - write,list,fast
sadd - write,set,fast
save - admin,slow,dangerous
scan - keyspace,read,slow
scard - read,set,fast
script - slow
script|debug - slow,scripting
script|exists - slow,scripting
script|flush - slow,scripting
script|help - slow,scripting
script|kill - slow,scripting
script|load - slow,scripting
sdiff - read,set,slow
sdiffstore - write,set,slow
select - fast,connection
set - write,string,slow
setbit - write,bitmap,slow
setex - write,string,slow
setnx - write,string,fast
setrange - write,string,slow
shutdown - admin,slow,dangerous
sinter - read,set,slow
sintercard - read,set,slow
sinterstore - write,set,slow
sismember - read,set,fast
slaveof - admin,slow,dangerous
slowlog - slow
slowlog|get - admin,slow,dangerous
slowlog|help - slow
slowlog|len - admin,slow,dangerous
slowlog|reset - admin,slow,dangerous
smembers - read,set,slow
smismember - read,set,fast
smove - write,set,fast
sort - write,set,sortedset,list,slow,dangerous
sort_ro - read,set,sortedset,list,slow,dangerous
spop - write,set,fast
spublish - pubsub,fast
srandmember - read,set,slow
srem - write,set,fast
sscan - read,set,slow
ssubscribe - pubsub,slow
strlen - read,string,fast
subscribe - pubsub,slow
substr - read,string,slow
sunion - read,set,slow
sunionstore - write,set,slow
sunsubscribe - pubsub,slow
swapdb - keyspace,write,fast,dangerous
sync - admin,slow,dangerous
time - fast
touch - keyspace,read,fast
ttl - keyspace,read,fast
type - keyspace,read,fast
unlink - keyspace,write,fast
unsubscribe - pubsub,slow
unwatch - fast,transaction
wait - slow,connection
watch - fast,transaction
xack - write,stream,fast
xadd - write,stream,fast
xautoclaim - write,stream,fast
xclaim - write,stream,fast
xdel - write,stream,fast
xgroup - slow
xgroup|create - write,stream,slow
xgroup|createconsumer - write,stream,slow
xgroup|delconsumer - write,stream,slow
xgroup|destroy - write,stream,slow
xgroup|help - stream,slow
xgroup|setid - write,stream,slow
xinfo - slow
xinfo|consumers - read,stream,slow
xinfo|groups - read,stream,slow
xinfo|help - stream,slow
xinfo|stream - read,stream,slow
xlen - read,stream,fast
xpending - read,stream,slow
xrange - read,stream,slow
xread - read,stream,slow,blocking
xreadgroup - write,stream,slow,blocking
xrevrange - read,stream,slow
xsetid - write,stream,fast
xtrim - write,stream,slow
zadd - write,sortedset,fast
zcard - read,sortedset,fast
zcount - read,sortedset,fast
zdiff - read,sortedset,slow
zdiffstore - write,sortedset,slow
zincrby - write,sortedset,fast
zinter - read,sortedset,slow
zintercard - read,sortedset,slow
zinterstore - write,sortedset,slow
zlexcount - read,sortedset,fast
zmpop - write,sortedset,slow
zmscore - read,sortedset,fast
zpopmax - write,sortedset,fast
zpopmin - write,sortedset,fast
zrandmember - read,sortedset,slow
zrange - read,sortedset,slow
zrangebylex - read,sortedset,slow
zrangebyscore - read,sortedset,slow
zrangestore - write,sortedset,slow
zrank - read,sortedset,fast
zrem - write,sortedset,fast
zremrangebylex - write,sortedset,slow
zremrangebyrank - write,sortedset,slow
zremrangebyscore - write,sortedset,slow
zrevrange - read,sortedset,slow
zrevrangebylex - read,sortedset,slow
zrevrangebyscore - read,sortedset,slow
zrevrank - read,sortedset,fast
zscan - read,sortedset,slow
zscore - read,sortedset,fast
zunion - read,sortedset,slow
zunionstore - write,sortedset,slow
`

// aclLoop reads the users again every aclStaleness, so that a change made
// through another node is enforced here within aclStaleness and a read;
// while the record cannot be read, commands go on under the users last
// read.
func (s *Server) aclLoop(ctx context.Context) {
	for s.rt.Sleep(ctx, aclStaleness) == nil {
		_, _ = s.aclUsers(ctx, nil, true)
	}
}
