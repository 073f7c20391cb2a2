package redis

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/kernel"
)

// handler runs one command. A user-facing failure is returned as a
// userError (its text is the error reply); any other error is internal.
// A handler validates all its arguments and types before its first write,
// so that a user error never leaves a command half applied.
type handler func(c *ctx) (Reply, error)

// userError is an error the client sees verbatim as an error reply.
type userError string

func (e userError) Error() string { return string(e) }

// Error replies shared by many commands, worded exactly as Redis 7.0's.
const (
	errWrongType   userError = "WRONGTYPE Operation against a key holding the wrong kind of value"
	errSyntax      userError = "ERR syntax error"
	errNotInt      userError = "ERR value is not an integer or out of range"
	errNotFloat    userError = "ERR value is not a valid float"
	errNoKey       userError = "ERR no such key"
	errOutOfRange  userError = "ERR index out of range"
	errOverflow    userError = "ERR increment or decrement would overflow"
	errInvalidCurs userError = "ERR invalid cursor"
	errNaNInf      userError = "ERR increment would produce NaN or Infinity"
	errTooBig      userError = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
)

func errorf(format string, args ...any) userError {
	return userError(fmt.Sprintf(format, args...))
}

// ctx is one command's execution: the store, the leader-assigned time and
// random seed, and the arguments.
type ctx struct {
	st   Store
	now  int64
	rand uint64
	args [][]byte
	spec *Spec
	// write is set for commands flagged "write": only they may delete an
	// expired key they meet, because a read runs on a read-only Store.
	write bool
	// objCfg is the node's configuration for OBJECT (nil: the defaults).
	objCfg *ObjectConfig
	// ev collects the command's keyspace events (nil: none asked for).
	ev *events
}

// Exec executes one keyed command (args[0] is the name) as one atomic
// operation on st, the range holding all its keys. now is the leader's
// clock in unix milliseconds and rand a seed drawn by the leader (a write
// runs once, on the leader; replicas apply what it wrote). Exec never panics on any input: bad arguments give Redis's
// error replies, and a corrupt record or a failing Store gives an error
// reply with Reply.Err set, after which the caller must discard the
// command's writes.
//
// Commands whose Spec.Where is not WhereKeyed get "ERR unknown command".
func Exec(st Store, now int64, rand uint64, args [][]byte) Reply {
	return execWith(st, now, rand, args, nil, nil)
}

// ExecWithConfig is Exec with the node's configuration for OBJECT's
// replies (see ObjectConfig).
func ExecWithConfig(st Store, now int64, rand uint64, args [][]byte, cfg ObjectConfig) Reply {
	return execWith(st, now, rand, args, &cfg, nil)
}

func execWith(st Store, now int64, rand uint64, args [][]byte, cfg *ObjectConfig, ev *events) (r Reply) {
	if len(args) == 0 {
		return Error("ERR empty command")
	}
	spec, ok := lookupBytes(args[0])
	if !ok || spec.run == nil {
		return unknownCommand(args)
	}
	if !spec.ArityOK(len(args)) {
		return arityError(spec.Name)
	}
	c := &ctx{st: st, now: now, rand: rand, args: args, spec: spec, write: spec.write, objCfg: cfg, ev: ev}
	defer func() {
		// A panic here is a bug; it must not take the node down with a
		// client's command. The reply carries it as an internal error.
		if p := recover(); p != nil {
			rethrowCrash(p)
			r = internalError(fmt.Errorf("redis: panic in %s: %v", spec.Name, p))
		}
	}()
	reply, err := spec.run(c)
	if err != nil {
		var ue userError
		if errors.As(err, &ue) {
			return Error(string(ue))
		}
		return internalError(err)
	}
	return reply
}

// rethrowCrash lets a node crash (kernel.Crash: the node's storage
// failed under the command) go on unwinding: only a bug in a command is
// answered as an internal error (simulator redis seed 197: a failed disk
// read became a client's "ERR internal error").
func rethrowCrash(p any) {
	if c, ok := p.(kernel.NodeCrash); ok {
		panic(c)
	}
}

func internalError(err error) Reply {
	r := Error("ERR internal error")
	if errors.Is(err, errCorrupt) {
		r = Error("ERR corrupt value")
	}
	r.Err = err
	return r
}

// unknownCommand words the error as Redis 7.0's processCommand does.
func unknownCommand(args [][]byte) Reply {
	var b strings.Builder
	for _, a := range args[1:] {
		if b.Len() >= 128 {
			break
		}
		room := 128 - b.Len()
		b.WriteByte('\'')
		b.Write(a[:min(len(a), room)])
		b.WriteString("' ")
	}
	name := args[0]
	if len(name) > 128 {
		name = name[:128]
	}
	return Error(fmt.Sprintf("ERR unknown command '%s', with args beginning with: %s", cstr(name), b.String()))
}

// cstr cuts a byte string at its first NUL, as a C "%s" would print it.
func cstr(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

func arityError(name string) Reply {
	return Error("ERR wrong number of arguments for '" + name + "' command")
}

func (c *ctx) arityErr() error {
	return userError("ERR wrong number of arguments for '" + c.spec.Name + "' command")
}

// obj is a Redis key as one command sees it.
type obj struct {
	key    []byte
	rk     []byte // RouteKey(key)
	exists bool
	m      meta
}

// lookup reads key's metadata. An expired key is absent; a write command
// deletes it on the way (lazy expiry). A read-only command's miss is a
// "keymiss" event (Redis's lookupKeyRead; the sources a write command
// reads are not, a documented difference).
func (c *ctx) lookup(key []byte) (*obj, error) {
	o := &obj{key: key, rk: RouteKey(key)}
	v, found, err := c.st.Get(o.rk)
	if err != nil || !found {
		if err == nil {
			c.keyMiss(key)
		}
		return o, err
	}
	m, err := decodeMeta(v)
	if err != nil {
		return nil, fmt.Errorf("key %q: %w", key, err)
	}
	if m.expireAt != 0 && m.expireAt <= c.now {
		if c.write {
			c.notify(NotifyExpired, "expired", key)
			if mutation.On(MutLazyExpiryLeavesElements) {
				return o, c.st.Delete(o.rk)
			}
			if err := c.st.DeleteRange(o.rk, prefixEnd(o.rk)); err != nil {
				return nil, err
			}
		}
		c.keyMiss(key)
		return o, nil
	}
	o.exists, o.m = true, m
	return o, nil
}

func (c *ctx) keyMiss(key []byte) {
	if c.spec != nil && c.spec.readonly {
		c.notify(NotifyKeyMiss, "keymiss", key)
	}
}

// lookupType is lookup followed by Redis's checkType.
func (c *ctx) lookupType(key []byte, t valueType) (*obj, error) {
	o, err := c.lookup(key)
	if err != nil {
		return nil, err
	}
	if o.exists && o.m.typ != t {
		return nil, errWrongType
	}
	return o, nil
}

// save writes o's metadata record; a key it creates is a "new" event,
// as Redis's dbAdd notifies.
func (c *ctx) save(o *obj) error {
	if !o.exists {
		c.notify(NotifyNew, "new", o.key)
	}
	o.exists = true
	return c.st.Set(o.rk, encodeMeta(o.m))
}

// remove deletes the key and all its elements.
func (c *ctx) remove(o *obj) error {
	o.exists = false
	o.m = meta{}
	return c.st.DeleteRange(o.rk, prefixEnd(o.rk))
}

// saveOrRemove saves a collection, or deletes it once its last element is
// gone (a collection never exists empty).
func (c *ctx) saveOrRemove(o *obj) error {
	if o.m.count == 0 {
		return c.remove(o)
	}
	return c.save(o)
}

// removed is saveOrRemove after a command took elements out of o, with
// Redis's events: the command's, then "del" if o is gone.
func (c *ctx) removed(o *obj, class uint16, event string) error {
	if err := c.saveOrRemove(o); err != nil {
		return err
	}
	c.notify(class, event, o.key)
	if !o.exists {
		c.notify(NotifyGeneric, "del", o.key)
	}
	return nil
}

// scanPage is how many records one Store.Scan fetches while iterating.
const scanPage = 256

// each calls fn on every record with start <= key < end in key order, and
// stops early when fn returns false.
func (c *ctx) each(start, end []byte, fn func(kv KV) (bool, error)) error {
	return eachKV(c.st, start, end, fn)
}

func eachKV(st Store, start, end []byte, fn func(kv KV) (bool, error)) error {
	for {
		kvs, err := st.Scan(start, end, scanPage)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			more, err := fn(kv)
			if err != nil || !more {
				return err
			}
		}
		if len(kvs) < scanPage {
			return nil
		}
		start = append(append([]byte(nil), kvs[len(kvs)-1].Key...), 0)
	}
}

// Argument helpers, one per Redis parsing function.

func argInt(b []byte) (int64, error) {
	v, ok := parseInt(b)
	if !ok {
		return 0, errNotInt
	}
	return v, nil
}

// argPositive is getPositiveLongFromObjectOrReply: one message, msg or by
// default "value is out of range, must be positive", for both a malformed
// and a negative number.
func argPositive(b []byte, msg string) (int64, error) {
	if msg == "" {
		msg = "value is out of range, must be positive"
	}
	v, ok := parseInt(b)
	if !ok || v < 0 {
		return 0, userError("ERR " + msg)
	}
	return v, nil
}

func argFloat(b []byte) (float64, error) {
	f, ok := parseFloat(b)
	if !ok {
		return 0, errNotFloat
	}
	return f, nil
}

func eqFold(b []byte, s string) bool { return strings.EqualFold(string(b), s) }
