package redis

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Redis 7 functions: libraries of Lua functions loaded with FUNCTION LOAD
// and called with FCALL and FCALL_RO.
//
// The libraries are the session's to keep (replicated, in the
// transactional keyspace; session/functions.go). What lives here is the
// engine: ParseLibrary runs a library's code as FUNCTION LOAD does, to
// validate it and learn its functions; and FCALL, a keyed command like
// EVAL, runs one of them where its keys are. The session appends the
// library's code to FCALL's arguments (FCallArgs), so the command carries
// everything the leaseholder needs and the function's writes replicate
// as effects, as a script's do. The library's top-level code runs again
// before each call, in load mode (which can only register functions, so
// running it again changes nothing), rather than being kept compiled
// between commands.

// Function is one function a library registers.
type Function struct {
	Name        string
	Description *string // nil: none given
	Flags       uint8   // functionFlags' bits
}

// The flags a function may declare, in the order Redis 7.0 lists them
// (scripts_flags_def).
var functionFlags = []string{"no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys"}

// FlagNames are the function's flags as FUNCTION LIST shows them.
func (f Function) FlagNames() []string {
	var out []string
	for i, name := range functionFlags {
		if f.Flags&(1<<i) != 0 {
			out = append(out, name)
		}
	}
	return out
}

// NoWrites reports the no-writes flag: FCALL_RO may call the function,
// and it may not write.
func (f Function) NoWrites() bool { return f.Flags&1 != 0 }

// Library is a library FUNCTION LOAD accepted.
type Library struct {
	Name      string
	Engine    string // as the shebang names it ("LUA" in any case)
	Code      []byte // the whole payload, the shebang line included
	Functions []Function
}

// Function returns the library's function of that name.
func (l *Library) Function(name string) (Function, bool) {
	for _, f := range l.Functions {
		if f.Name == name {
			return f, true
		}
	}
	return Function{}, false
}

// ParseLibrary reads a FUNCTION LOAD payload as Redis 7.0 does: the
// shebang ("#!lua name=mylib"), then the code, run once in load mode
// (only redis.register_function, redis.log and the version constants
// exist) to learn the functions it registers. Its errors are Redis's
// replies to FUNCTION LOAD.
func ParseLibrary(code []byte) (*Library, error) {
	lib, err := parseLibraryMeta(code)
	if err != nil {
		return nil, err
	}
	L := scriptStates.Get().(*lua.LState)
	defer scriptStates.Put(L)
	if _, err := loadLibrary(L, lib); err != nil {
		return nil, err
	}
	if len(lib.Functions) == 0 {
		return nil, userError("ERR No functions registered")
	}
	return lib, nil
}

func parseLibraryMeta(code []byte) (*Library, error) {
	if !bytes.HasPrefix(code, []byte("#!")) {
		return nil, userError("ERR Missing library metadata")
	}
	nl := bytes.IndexByte(code, '\n')
	if nl < 0 {
		return nil, userError("ERR Invalid library metadata")
	}
	parts, ok := splitArgs(string(code[:nl]))
	if !ok || len(parts) == 0 {
		return nil, userError("ERR Invalid library metadata")
	}
	lib := &Library{Engine: parts[0][2:], Code: code}
	named := false
	for _, p := range parts[1:] {
		if len(p) >= 5 && strings.EqualFold(p[:5], "name=") {
			if named {
				return nil, userError("ERR Invalid metadata value, name argument was given multiple times")
			}
			lib.Name, named = p[5:], true
			continue
		}
		return nil, errorf("ERR Invalid metadata value given: %s", p)
	}
	if !named {
		return nil, userError("ERR Library name was not given")
	}
	if !validFunctionName(lib.Name) {
		return nil, userError("ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long")
	}
	if !strings.EqualFold(lib.Engine, "lua") {
		return nil, errorf("ERR Engine '%s' not found", lib.Engine)
	}
	return lib, nil
}

// validFunctionName is Redis's functionsVerifyName.
func validFunctionName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// splitArgs is Redis's sdssplitargs, as far as a shebang line needs it:
// words apart by white space, "double" or 'single' quoted ones joined
// (with a double-quoted word's \x escapes); ok is false for unbalanced
// quotes.
func splitArgs(line string) (args []string, ok bool) {
	i := 0
	for {
		for i < len(line) && strings.IndexByte(" \n\r\t\v\f", line[i]) >= 0 {
			i++
		}
		if i >= len(line) {
			return args, true
		}
		var cur []byte
		inDouble, inSingle := false, false
		for done := false; !done; {
			switch {
			case inDouble:
				switch {
				case i >= len(line):
					return nil, false
				case line[i] == '\\' && i+1 < len(line):
					i++
					switch line[i] {
					case 'n':
						cur = append(cur, '\n')
					case 'r':
						cur = append(cur, '\r')
					case 't':
						cur = append(cur, '\t')
					case 'b':
						cur = append(cur, '\b')
					case 'a':
						cur = append(cur, '\a')
					default:
						cur = append(cur, line[i])
					}
				case line[i] == '"':
					if i+1 < len(line) && strings.IndexByte(" \n\r\t\v\f", line[i+1]) < 0 {
						return nil, false // a closing quote must be followed by a space
					}
					done = true
				default:
					cur = append(cur, line[i])
				}
			case inSingle:
				switch {
				case i >= len(line):
					return nil, false
				case line[i] == '\\' && i+1 < len(line) && line[i+1] == '\'':
					i++
					cur = append(cur, '\'')
				case line[i] == '\'':
					if i+1 < len(line) && strings.IndexByte(" \n\r\t\v\f", line[i+1]) < 0 {
						return nil, false
					}
					done = true
				default:
					cur = append(cur, line[i])
				}
			default:
				switch {
				case i >= len(line) || strings.IndexByte(" \n\r\t\v\f", line[i]) >= 0:
					done = true
					i--
				case line[i] == '"':
					inDouble = true
				case line[i] == '\'':
					inSingle = true
				default:
					cur = append(cur, line[i])
				}
			}
			i++
		}
		args = append(args, string(cur))
	}
}

// loadCtx is a library's load: the functions it registered so far, and
// their callbacks.
type loadCtx struct {
	lib       *Library
	callbacks map[string]*lua.LFunction
}

const loadKey = "__orbit_load" // the load in progress, for register_function

// loadLibrary runs lib's code in load mode on L and returns the callbacks
// of the functions it registers (filling lib.Functions). The globals the
// code sees while it loads are only redis (register_function, log, the
// version); its functions, called later, see the script globals (Redis
// swaps the globals' lookup the same way).
func loadLibrary(L *lua.LState, lib *Library) (map[string]*lua.LFunction, error) {
	nl := bytes.IndexByte(lib.Code, '\n')
	// The code after the shebang, from its newline, so lines count from
	// the shebang's as in Redis.
	fn, err := L.Load(strings.NewReader(string(lib.Code[nl:])), "@user_function")
	if err != nil {
		return nil, errorf("ERR Error compiling function: %s", strings.TrimPrefix(scriptMessage(err), "@"))
	}
	loadAPI := L.NewTable()
	redisAPI := L.NewTable()
	L.SetFuncs(redisAPI, map[string]lua.LGFunction{
		"register_function": registerFunction,
		"log":               func(L *lua.LState) int { return 0 },
	})
	for name, v := range map[string]int{"LOG_DEBUG": 0, "LOG_VERBOSE": 1, "LOG_NOTICE": 2, "LOG_WARNING": 3} {
		redisAPI.RawSetString(name, lua.LNumber(v))
	}
	redisAPI.RawSetString("REDIS_VERSION_NUM", lua.LNumber(0x07000f))
	redisAPI.RawSetString("REDIS_VERSION", lua.LString("7.0.15"))
	loadAPI.RawSetString("redis", redisAPI)
	L.SetMetatable(redisAPI, missingGlobalMeta(L))
	// The library's environment: reads go to the load API while it loads
	// and to the script globals after; writes are refused.
	env := L.NewTable()
	loading := true
	meta := L.NewTable()
	L.SetFuncs(meta, map[string]lua.LGFunction{
		"__index": func(L *lua.LState) int {
			name := L.CheckAny(2)
			src := L.G.Global
			if loading {
				src = loadAPI
			}
			v := src.RawGet(name)
			if v == lua.LNil {
				L.RaiseError("Script attempted to access nonexistent global variable '%s'", name.String())
			}
			L.Push(v)
			return 1
		},
		"__newindex": func(L *lua.LState) int {
			L.RaiseError("Attempt to modify a readonly table")
			return 0
		},
	})
	L.SetMetatable(env, meta)
	fn.Env = env
	lc := &loadCtx{lib: lib, callbacks: map[string]*lua.LFunction{}}
	L.G.Global.RawSetString(loadKey, &lua.LUserData{Value: lc})
	budget := &instructionBudget{left: ScriptInstructionLimit, done: make(chan struct{})}
	L.SetContext(budget)
	L.Push(fn)
	err = L.PCall(0, 0, nil)
	L.RemoveContext()
	L.G.Global.RawSetString(loadKey, lua.LNil)
	loading = false
	if budget.left <= 0 {
		return nil, userError("ERR Error registering functions: FUNCTION LOAD timeout")
	}
	if err != nil {
		// Redis's error handler: an error reply raised (as
		// register_function raises its own) keeps its text, any other
		// error becomes ERR and its message with its place.
		msg := "ERR " + strings.TrimPrefix(scriptMessage(err), "@")
		var apiErr *lua.ApiError
		if errors.As(err, &apiErr) {
			if t, ok := apiErr.Object.(*lua.LTable); ok {
				if e, ok := t.RawGetString("err").(lua.LString); ok {
					msg = string(e)
				}
			}
		}
		return nil, errorf("ERR Error registering functions: %s", msg)
	}
	return lc.callbacks, nil
}

// registerFunction is redis.register_function(name, callback) or
// redis.register_function{function_name=..., callback=..., flags={...},
// description=...}, with Redis's errors.
func registerFunction(L *lua.LState) int {
	raise := func(msg string) { L.Error(fieldTable(L, "err", "ERR "+msg), 0) }
	ud, _ := L.G.Global.RawGetString(loadKey).(*lua.LUserData)
	lc, _ := ud.Value.(*loadCtx)
	if lc == nil {
		raise("redis.register_function can only be called on FUNCTION LOAD command")
	}
	var f Function
	var cb *lua.LFunction
	switch L.GetTop() {
	case 1:
		t, ok := L.Get(1).(*lua.LTable)
		if !ok {
			raise("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).")
		}
		named := false
		var fail string
		t.ForEach(func(k, v lua.LValue) {
			if fail != "" {
				return
			}
			key, ok := k.(lua.LString)
			if !ok {
				if _, num := k.(lua.LNumber); !num {
					fail = "named argument key given to redis.register_function is not a string"
					return
				}
			}
			switch strings.ToLower(lua.LVAsString(k)) {
			case "function_name":
				s, ok := luaString(v)
				if !ok {
					fail = "function_name argument given to redis.register_function must be a string"
					return
				}
				f.Name, named = s, true
			case "description":
				s, ok := luaString(v)
				if !ok {
					fail = "description argument given to redis.register_function must be a string"
					return
				}
				f.Description = &s
			case "callback":
				fn, ok := v.(*lua.LFunction)
				if !ok {
					fail = "callback argument given to redis.register_function must be a function"
					return
				}
				cb = fn
			case "flags":
				ft, ok := v.(*lua.LTable)
				if !ok {
					fail = "flags argument to redis.register_function must be a table representing function flags"
					return
				}
				for i := 1; ; i++ {
					e := ft.RawGetInt(i)
					if e == lua.LNil {
						break
					}
					s, ok := luaString(e)
					bit := -1
					for j, name := range functionFlags {
						if ok && strings.EqualFold(s, name) {
							bit = j
						}
					}
					if bit < 0 {
						fail = "unknown flag given"
						return
					}
					f.Flags |= 1 << bit
				}
			default:
				_ = key
				fail = "unknown argument given to redis.register_function"
			}
		})
		switch {
		case fail != "":
			raise(fail)
		case !named:
			raise("redis.register_function must get a function name argument")
		case cb == nil:
			raise("redis.register_function must get a callback argument")
		}
	case 2:
		name, ok := luaString(L.Get(1))
		if !ok {
			raise("first argument to redis.register_function must be a string")
		}
		fn, ok := L.Get(2).(*lua.LFunction)
		if !ok {
			raise("second argument to redis.register_function must be a function")
		}
		f.Name, cb = name, fn
	default:
		raise("wrong number of arguments to redis.register_function")
	}
	if !validFunctionName(f.Name) {
		// Redis 7.0.15's words, though it is a function's name.
		raise("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long")
	}
	if _, dup := lc.callbacks[f.Name]; dup {
		raise("Function already exists in the library")
	}
	lc.lib.Functions = append(lc.lib.Functions, f)
	lc.callbacks[f.Name] = cb
	return 0
}

// luaString is lua_isstring's value: a string, or a number as a string.
func luaString(v lua.LValue) (string, bool) {
	switch v := v.(type) {
	case lua.LString:
		return string(v), true
	case lua.LNumber:
		return formatLuaNumber(v), true
	}
	return "", false
}

// FCallArgs is what the session sends for FCALL or FCALL_RO: the
// client's arguments and the code of the library that holds the function
// (nil when no library does: the command answers "Function not found").
func FCallArgs(args [][]byte, code []byte) [][]byte {
	out := append(make([][]byte, 0, len(args)+1), args...)
	if code == nil {
		code = []byte{}
	}
	return append(out, code)
}

// cmdFCall runs FCALL and FCALL_RO: function numkeys key... arg...,
// then the library's code (FCallArgs).
func cmdFCall(c *ctx) (Reply, error) {
	code := c.args[len(c.args)-1]
	args := c.args[:len(c.args)-1]
	if len(args) < 3 {
		return Reply{}, c.arityErr()
	}
	if len(code) == 0 {
		return Reply{}, userError("ERR Function not found")
	}
	n, ok := parseInt(args[2])
	switch {
	case !ok:
		return Reply{}, userError("ERR Bad number of keys provided")
	case n > int64(len(args)-3):
		return Reply{}, errScriptKeysTooMany
	case n < 0:
		return Reply{}, errScriptKeysNegative
	}
	lib, err := parseLibraryMeta(code)
	if err != nil {
		return Reply{}, fmt.Errorf("redis: FCALL carries a library that does not parse: %w", err)
	}
	L := scriptStates.Get().(*lua.LState)
	callbacks, err := loadLibrary(L, lib)
	if err != nil {
		scriptStates.Put(L)
		return Reply{}, fmt.Errorf("redis: FCALL carries a library that does not load: %w", err)
	}
	name := string(args[1])
	f, ok := lib.Function(name)
	if !ok {
		scriptStates.Put(L)
		return Reply{}, userError("ERR Function not found")
	}
	ro := c.spec.Name == "fcall_ro"
	if ro && !f.NoWrites() {
		scriptStates.Put(L)
		return Reply{}, userError("ERR Can not execute a script with write flag using *_ro command.")
	}
	keys, argv := args[3:3+n], args[3+n:]
	s := &script{c: c, sha: name, declared: map[string]bool{}, readOnly: ro || f.NoWrites(), function: true}
	for _, k := range keys {
		s.declared[string(k)] = true
	}
	return s.run(L, callbacks[name], stringTable(L, keys), stringTable(L, argv))
}

// encodeLibraries and DecodeLibraries are the session's record of every
// library: name and code, in load order.
func EncodeLibraries(libs [][2][]byte) []byte {
	b := binary.AppendUvarint(nil, uint64(len(libs)))
	for _, l := range libs {
		b = appendField(appendField(b, l[0]), l[1])
	}
	return b
}

// DecodeLibraries reads what EncodeLibraries wrote.
func DecodeLibraries(b []byte) ([][2][]byte, error) {
	fr := fieldReader{b: b}
	n := fr.uint()
	if n > uint64(len(b)) {
		return nil, errMalformed
	}
	out := make([][2][]byte, 0, n)
	for i := uint64(0); i < n && fr.err == nil; i++ {
		out = append(out, [2][]byte{fr.field(), fr.field()})
	}
	if fr.err == nil && len(fr.b) != 0 {
		fr.err = errMalformed
	}
	return out, fr.err
}

// missingGlobalMeta makes reading a missing field of a table an error,
// as Redis's error metatable does for its globals and API tables.
func missingGlobalMeta(L *lua.LState) *lua.LTable {
	meta := L.NewTable()
	meta.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("Script attempted to access nonexistent global variable '%s'", L.CheckAny(2).String())
		return 0
	}))
	return meta
}
