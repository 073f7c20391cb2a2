package redis

import (
	"bytes"
	"encoding/binary"
)

// OBJECT ENCODING, FREQ, IDLETIME, REFCOUNT and HELP, as Redis 7.0's
// objectCommand (object.c).
//
// Orbit stores every value one way (records, doc.go), so ENCODING reports
// the encoding Redis 7.0 gives the value when it is built afresh — by SET
// of the same string, or by adding the same elements to a new key, or by
// RESTORE — under the thresholds the node's CONFIG GET reports
// (ObjectConfig):
//
//   - string: "int" for a canonical 64-bit integer (string2ll: no sign but
//     '-', no leading zero, at most 20 bytes), else "embstr" up to 44
//     bytes, else "raw";
//   - list: "quicklist" (Redis 7.0 has no other list encoding);
//   - stream: "stream" (likewise);
//   - set: "intset" when every member is a canonical integer and there are
//     at most set-max-intset-entries, else "hashtable";
//   - hash: "listpack" for at most hash-max-listpack-entries fields, every
//     field and value at most hash-max-listpack-value bytes, else
//     "hashtable";
//   - zset: "listpack" for at most zset-max-listpack-entries members, each
//     at most zset-max-listpack-value bytes, else "skiplist".
//
// Redis's encodings also remember history, which Orbit does not keep: a
// string written by APPEND, SETRANGE, SETBIT, BITFIELD or BITOP is "raw"
// there (INCRBYFLOAT's result "embstr"), and a collection keeps its large
// encoding after it shrinks back under the thresholds. REFCOUNT follows
// ENCODING: 2147483647 (Redis's shared integers) for an "int" from 0 to
// 9999, as Redis with maxmemory 0 shares them, else 1.
//
// Orbit does not track accesses (a read would have to write), so IDLETIME
// answers 0 (as if every key had just been read) and, under an LFU
// maxmemory-policy, FREQ answers 5 (LFU_INIT_VAL: the counter of a key
// never read since it was written). Each refuses, as in Redis, under the
// other kind of policy.

// ObjectConfig is what OBJECT's replies depend on besides the data: the
// node's settings as CONFIG GET reports them. The session layer sends its
// own with each OBJECT command (WithObjectConfig); Exec uses
// DefaultObjectConfig, Redis 7.0's defaults.
type ObjectConfig struct {
	HashMaxListpackEntries int64 // hash-max-listpack-entries
	HashMaxListpackValue   int64 // hash-max-listpack-value, bytes
	SetMaxIntsetEntries    int64 // set-max-intset-entries
	ZSetMaxListpackEntries int64 // zset-max-listpack-entries
	ZSetMaxListpackValue   int64 // zset-max-listpack-value, bytes
	// LFU says maxmemory-policy is allkeys-lfu or volatile-lfu.
	LFU bool
}

// DefaultObjectConfig is Redis 7.0's default configuration.
func DefaultObjectConfig() ObjectConfig {
	return ObjectConfig{
		HashMaxListpackEntries: 512, HashMaxListpackValue: 64,
		SetMaxIntsetEntries:    512,
		ZSetMaxListpackEntries: 128, ZSetMaxListpackValue: 64,
	}
}

// Redis constants OBJECT reports.
const (
	embstrSizeLimit   = 44         // OBJ_ENCODING_EMBSTR_SIZE_LIMIT
	sharedIntegers    = 10000      // OBJ_SHARED_INTEGERS
	sharedRefcount    = 2147483647 // OBJ_SHARED_REFCOUNT (INT_MAX)
	lfuInitVal        = 5          // LFU_INIT_VAL
	errLFUNotSelected = userError("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
	errLFUSelected    = userError("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
)

var objectHelp = []string{
	"ENCODING <key>",
	"    Return the kind of internal representation used in order to store the value",
	"    associated with a <key>.",
	"FREQ <key>",
	"    Return the access frequency index of the <key>. The returned integer is",
	"    proportional to the logarithm of the recent access frequency of the key.",
	"IDLETIME <key>",
	"    Return the idle time of the <key>, that is the approximated number of",
	"    seconds elapsed since the last access to the key.",
	"REFCOUNT <key>",
	"    Return the number of references of the value associated with the specified",
	"    <key>.",
}

func cmdObject(c *ctx) (Reply, error) {
	name, bad, ok := c.subcommand()
	if !ok {
		return bad, nil
	}
	if name == "help" {
		return HelpReply("OBJECT", objectHelp), nil
	}
	o, err := c.lookup(c.args[2])
	if err != nil {
		return Reply{}, err
	}
	if !o.exists {
		return Null(), nil
	}
	cfg := DefaultObjectConfig()
	if c.objCfg != nil {
		cfg = *c.objCfg
	}
	switch name {
	case "freq":
		if !cfg.LFU {
			return Reply{}, errLFUNotSelected
		}
		return Int(lfuInitVal), nil
	case "idletime":
		if cfg.LFU {
			return Reply{}, errLFUSelected
		}
		return Int(0), nil
	}
	enc, err := c.encoding(o, cfg)
	if err != nil {
		return Reply{}, err
	}
	if name == "encoding" {
		return BulkString(enc), nil
	}
	if enc == "int" { // refcount
		if n, _ := parseInt(o.m.value); n >= 0 && n < sharedIntegers {
			return Int(sharedRefcount), nil
		}
	}
	return Int(1), nil
}

// encoding is the encoding Redis 7.0 gives o's value built afresh under
// cfg. It reads at most the thresholds' number of elements.
func (c *ctx) encoding(o *obj, cfg ObjectConfig) (string, error) {
	switch o.m.typ {
	case typeString:
		v := o.m.value
		if _, ok := parseInt(v); ok {
			return "int", nil
		}
		if len(v) <= embstrSizeLimit {
			return "embstr", nil
		}
		return "raw", nil
	case typeList:
		return "quicklist", nil
	case typeSet:
		if o.m.count > cfg.SetMaxIntsetEntries {
			return "hashtable", nil
		}
		small, err := c.allMembers(o, func(member, _ []byte) bool {
			_, ok := parseInt(member)
			return ok
		})
		return pickEncoding(small, "intset", "hashtable"), err
	case typeHash:
		if o.m.count > cfg.HashMaxListpackEntries {
			return "hashtable", nil
		}
		small, err := c.allMembers(o, func(field, value []byte) bool {
			return int64(len(field)) <= cfg.HashMaxListpackValue && int64(len(value)) <= cfg.HashMaxListpackValue
		})
		return pickEncoding(small, "listpack", "hashtable"), err
	case typeStream:
		return "stream", nil
	case typeZSet:
		if o.m.count > cfg.ZSetMaxListpackEntries {
			return "skiplist", nil
		}
		small, err := c.allMembers(o, func(member, _ []byte) bool {
			return int64(len(member)) <= cfg.ZSetMaxListpackValue
		})
		return pickEncoding(small, "listpack", "skiplist"), err
	}
	return "", corruptf("key %q of type %d", o.key, o.m.typ)
}

func pickEncoding(small bool, yes, no string) string {
	if small {
		return yes
	}
	return no
}

// allMembers reports whether fn holds for every member (hash field) of o
// and its value, stopping at the first that fails.
func (c *ctx) allMembers(o *obj, fn func(member, value []byte) bool) (bool, error) {
	prefix := memberPrefix(o.rk)
	all := true
	err := c.each(prefix, prefixEnd(prefix), func(kv KV) (bool, error) {
		all = fn(kv.Key[len(prefix):], kv.Value)
		return all, nil
	})
	return all, err
}

// WithObjectConfig wraps cmd (any command of this file's encoders, InDB
// included) so that the OBJECT commands it runs answer under cfg rather
// than DefaultObjectConfig.
func WithObjectConfig(cfg ObjectConfig, cmd []byte) []byte {
	b := []byte{cmdVersion, opConfig}
	for _, v := range []int64{cfg.HashMaxListpackEntries, cfg.HashMaxListpackValue, cfg.SetMaxIntsetEntries,
		cfg.ZSetMaxListpackEntries, cfg.ZSetMaxListpackValue} {
		b = binary.AppendUvarint(b, uint64(max(v, 0)))
	}
	lfu := byte(0)
	if cfg.LFU {
		lfu = 1
	}
	return append(append(b, lfu), cmd...)
}

// readObjectConfig undoes WithObjectConfig: the configuration and the
// command it wraps.
func readObjectConfig(cmd []byte) (*ObjectConfig, []byte, bool) {
	r := bytes.NewReader(cmd[2:])
	var vs [5]int64
	for i := range vs {
		u, err := binary.ReadUvarint(r)
		if err != nil || u > maxInt64 {
			return nil, nil, false
		}
		vs[i] = int64(u)
	}
	lfu, err := r.ReadByte()
	if err != nil || lfu > 1 {
		return nil, nil, false
	}
	rest := cmd[len(cmd)-r.Len():]
	cfg := &ObjectConfig{HashMaxListpackEntries: vs[0], HashMaxListpackValue: vs[1], SetMaxIntsetEntries: vs[2],
		ZSetMaxListpackEntries: vs[3], ZSetMaxListpackValue: vs[4], LFU: lfu == 1}
	return cfg, rest, true
}
