package session

import (
	"context"
	"strings"
	"sync"

	"github.com/orbitkernel/orbit/adapters/redis"
	"github.com/orbitkernel/orbit/txn"
)

// Redis 7 functions: FUNCTION LOAD, DELETE, FLUSH, LIST, STATS, and the
// libraries FCALL calls (the engine is redis/functions.go).
//
// Every library lives in one record of the transactional keyspace
// (functionsKey: each library's name and code, in load order), changed
// only in transactions, so every node sees the same libraries, they
// survive restarts, and a LOAD racing another on the same name has one
// winner. FCALL reads the record (one read, at its range's leaseholder)
// and sends the code of the function's library with the command (FCallArgs):
// what it calls is what was loaded when it read, like a Redis replica
// that has applied the load.
//
// Departures from Redis 7.0, also in the README: FUNCTION DUMP and
// RESTORE are not supported (their payload is Redis's RDB encoding);
// FUNCTION LIST gives libraries in load order, and a library's functions
// in the order it registered them (Redis: its dictionaries' order);
// FUNCTION STATS never shows a running script (one runs inside a single
// command at the leaseholder and cannot be killed).

// functionsKey is the record of every library.
var functionsKey = []byte("redis/functions")

// maxLibraryBytes bounds the code of all libraries together.
const maxLibraryBytes = 16 << 20

// libraryIndex is the libraries of one version of the record, parsed.
type libraryIndex struct {
	libs   []*redis.Library
	byFunc map[string]*redis.Library
}

// functionIndexCache keeps the index of the record last read, by its
// bytes: parsing runs every library's code.
type functionIndexCache struct {
	mu     sync.Mutex // never held across a blocking call
	record string
	index  *libraryIndex
}

// libraries reads the record (nil tdb: the caller takes one) and returns
// its index.
func (s *Server) libraries(ctx context.Context, tx *txn.Tx) (*libraryIndex, error) {
	v, err := s.readRecord(ctx, tx, functionsKey)
	if err != nil {
		return nil, err
	}
	c := &s.functions
	c.mu.Lock()
	if c.index != nil && c.record == string(v) {
		defer c.mu.Unlock()
		return c.index, nil
	}
	c.mu.Unlock()
	pairs, err := redis.DecodeLibraries(v)
	if len(v) == 0 {
		pairs, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	idx := &libraryIndex{byFunc: map[string]*redis.Library{}}
	for _, p := range pairs {
		lib, err := redis.ParseLibrary(p[1])
		if err != nil {
			return nil, err // it loaded once: the record is corrupt
		}
		idx.libs = append(idx.libs, lib)
		for _, f := range lib.Functions {
			idx.byFunc[f.Name] = lib
		}
	}
	c.mu.Lock()
	c.record, c.index = string(v), idx
	c.mu.Unlock()
	return idx, nil
}

// fcallArgs turns the client's FCALL into what the range runs: the
// arguments and the code of the library holding the function (none: the
// command answers "Function not found" there, after checking its
// arguments as Redis does).
func (s *Server) fcallArgs(ctx context.Context, args [][]byte) ([][]byte, error) {
	if s.dbs == nil {
		return redis.FCallArgs(args, nil), nil
	}
	idx, err := s.libraries(ctx, nil)
	if err != nil {
		return nil, err
	}
	var code []byte
	if lib := idx.byFunc[string(args[1])]; lib != nil {
		code = lib.Code
	}
	return redis.FCallArgs(args, code), nil
}

// changeLibraries runs change on the libraries in a transaction and
// writes what it returns; a replyError from change is its answer.
func (s *Server) changeLibraries(ctx context.Context, change func(idx *libraryIndex) ([]*redis.Library, redis.Reply, error)) redis.Reply {
	return s.inTxn(ctx, "ERR FUNCTION needs the transactional keyspace, which this server does not have", func(tx *txn.Tx) (redis.Reply, error) {
		idx, err := s.libraries(ctx, tx)
		if err != nil {
			return redis.Reply{}, err
		}
		libs, r, err := change(idx)
		if err != nil {
			return redis.Reply{}, err
		}
		var pairs [][2][]byte
		size := 0
		for _, l := range libs {
			pairs = append(pairs, [2][]byte{[]byte(l.Name), l.Code})
			size += len(l.Code)
		}
		if size > maxLibraryBytes {
			return redis.Reply{}, replyError{redis.Error("ERR the libraries would hold more than 16 MB of code (Orbit's bound)")}
		}
		if len(pairs) == 0 {
			return r, tx.Delete(ctx, functionsKey)
		}
		return r, tx.Put(ctx, functionsKey, redis.EncodeLibraries(pairs))
	})
}

// functionCommand answers FUNCTION.
func (s *Server) functionCommand(ctx context.Context, args [][]byte) redis.Reply {
	spec, _ := redis.Lookup("function")
	sub, bad, ok := spec.Subcommand(args)
	if !ok {
		return bad
	}
	switch {
	case sub == "load":
		return s.functionLoad(ctx, args[2:])
	case sub == "delete":
		name := string(args[2])
		return s.changeLibraries(ctx, func(idx *libraryIndex) ([]*redis.Library, redis.Reply, error) {
			var keep []*redis.Library
			for _, l := range idx.libs {
				if l.Name != name {
					keep = append(keep, l)
				}
			}
			if len(keep) == len(idx.libs) {
				return nil, redis.Reply{}, replyError{redis.Error("ERR Library not found")}
			}
			return keep, redis.OK(), nil
		})
	case sub == "flush":
		if len(args) > 3 {
			return redis.Error("ERR unknown subcommand or wrong number of arguments for '" + string(args[1]) + "'. Try FUNCTION HELP.")
		}
		if len(args) == 3 && !strings.EqualFold(string(args[2]), "sync") && !strings.EqualFold(string(args[2]), "async") {
			return redis.Error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option")
		}
		if s.dbs == nil {
			return redis.OK() // no library can exist
		}
		return s.changeLibraries(ctx, func(*libraryIndex) ([]*redis.Library, redis.Reply, error) {
			return nil, redis.OK(), nil
		})
	case sub == "list":
		return s.functionList(ctx, args[2:])
	case sub == "stats":
		libs, funcs := 0, 0
		if s.dbs != nil {
			idx, err := s.libraries(ctx, nil)
			if err != nil {
				return failure(err)
			}
			libs, funcs = len(idx.libs), len(idx.byFunc)
		}
		return redis.Map(
			redis.BulkString("running_script"), redis.Null(),
			redis.BulkString("engines"), redis.Map(redis.BulkString("LUA"), redis.Map(
				redis.BulkString("libraries_count"), redis.Int(int64(libs)),
				redis.BulkString("functions_count"), redis.Int(int64(funcs)))))
	case sub == "kill":
		return redis.Error("NOTBUSY No scripts in execution right now.")
	case sub == "dump" || sub == "restore":
		return redis.Error("ERR FUNCTION " + strings.ToUpper(sub) + " is not supported by Orbit: its payload is Redis's RDB encoding (FUNCTION LIST WITHCODE and FUNCTION LOAD carry libraries instead)")
	case sub == "help":
		return functionHelp
	}
	return redis.Error("ERR unknown subcommand '" + string(args[1]) + "'. Try FUNCTION HELP.")
}

// functionLoad is FUNCTION LOAD [REPLACE] code.
func (s *Server) functionLoad(ctx context.Context, args [][]byte) redis.Reply {
	replace := false
	for len(args) > 1 {
		if !strings.EqualFold(string(args[0]), "replace") {
			return redis.Error("ERR Unknown option given: " + string(args[0]))
		}
		replace, args = true, args[1:]
	}
	if len(args) == 0 {
		return redis.Error("ERR Function code is missing")
	}
	lib, err := redis.ParseLibrary(args[0])
	if err != nil {
		return redis.Error(err.Error())
	}
	return s.changeLibraries(ctx, func(idx *libraryIndex) ([]*redis.Library, redis.Reply, error) {
		var out []*redis.Library
		replaced := false
		for _, l := range idx.libs {
			if l.Name != lib.Name {
				out = append(out, l)
				continue
			}
			if !replace {
				return nil, redis.Reply{}, replyError{redis.Error("ERR Library '" + lib.Name + "' already exists")}
			}
			out, replaced = append(out, lib), true
		}
		for _, f := range lib.Functions {
			if other := idx.byFunc[f.Name]; other != nil && other.Name != lib.Name {
				return nil, redis.Reply{}, replyError{redis.Error("ERR Function " + f.Name + " already exists")}
			}
		}
		if !replaced {
			out = append(out, lib)
		}
		return out, redis.BulkString(lib.Name), nil
	})
}

// functionList is FUNCTION LIST [WITHCODE] [LIBRARYNAME pattern].
func (s *Server) functionList(ctx context.Context, args [][]byte) redis.Reply {
	withCode := false
	var pattern []byte
	for i := 0; i < len(args); i++ {
		switch {
		case !withCode && strings.EqualFold(string(args[i]), "withcode"):
			withCode = true
		case pattern == nil && strings.EqualFold(string(args[i]), "libraryname"):
			if i >= len(args)-1 {
				return redis.Error("ERR library name argument was not given")
			}
			i++
			pattern = args[i]
		default:
			return redis.Error("ERR Unknown argument " + string(args[i]))
		}
	}
	if s.dbs == nil {
		return redis.Array()
	}
	idx, err := s.libraries(ctx, nil)
	if err != nil {
		return failure(err)
	}
	var out []redis.Reply
	for _, l := range idx.libs {
		if pattern != nil && !redis.GlobMatch(pattern, []byte(l.Name)) {
			continue
		}
		var funcs []redis.Reply
		for _, f := range l.Functions {
			desc := redis.Null()
			if f.Description != nil {
				desc = redis.BulkString(*f.Description)
			}
			var flags []redis.Reply
			for _, name := range f.FlagNames() {
				flags = append(flags, redis.SimpleString(name))
			}
			funcs = append(funcs, redis.Map(redis.BulkString("name"), redis.BulkString(f.Name),
				redis.BulkString("description"), desc, redis.BulkString("flags"), redis.Set(flags...)))
		}
		fields := []redis.Reply{redis.BulkString("library_name"), redis.BulkString(l.Name),
			redis.BulkString("engine"), redis.BulkString("LUA"), redis.BulkString("functions"), redis.Array(funcs...)}
		if withCode {
			fields = append(fields, redis.BulkString("library_code"), redis.Bulk(l.Code))
		}
		out = append(out, redis.Map(fields...))
	}
	return redis.Array(out...)
}

var functionHelp = redis.HelpReply("FUNCTION", []string{
	"LOAD [REPLACE] <FUNCTION CODE>",
	"    Create a new library with the given library name and code.",
	"DELETE <LIBRARY NAME>",
	"    Delete the given library.",
	"LIST [LIBRARYNAME PATTERN] [WITHCODE]",
	"    Return general information on all the libraries:",
	"    * Library name",
	"    * The engine used to run the Library",
	"    * Library description",
	"    * Functions list",
	"    * Library code (if WITHCODE is given)",
	"    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
	"STATS",
	"    Return information about the current function running:",
	"    * Function name",
	"    * Command used to run the function",
	"    * Duration in MS that the function is running",
	"    If no function is running, return nil",
	"    In addition, returns a list of available engines.",
	"KILL",
	"    Kill the current running function.",
	"FLUSH [ASYNC|SYNC]",
	"    Delete all the libraries.",
	"    When called without the optional mode argument, the behavior is determined by the",
	"    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
	"    * ASYNC: Asynchronously flush the libraries.",
	"    * SYNC: Synchronously flush the libraries.",
	"DUMP",
	"    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
	"RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
	"    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
	"    control how to handle existing libraries (default APPEND):",
	"    * FLUSH: delete all existing libraries.",
	"    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
	"    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
	"      libraries with the new libraries (notice that even on this option there is a chance of failure",
	"      in case of functions name collision with another library).",
})
