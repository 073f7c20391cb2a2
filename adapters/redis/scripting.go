package redis

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/orbitkernel/orbit/internal/mutation"
)

// Lua scripting: EVAL and EVAL_RO (EVALSHA and the script cache are the
// session's: it turns EVALSHA into EVAL before routing, so the state
// machine only ever sees a script's text).
//
// A script is a keyed command like any other: it runs, as one atomic
// command, where its declared keys are (the range that holds them, or a
// cross-range transaction's coordinator on their images), on the
// leaseholder only, and its writes are replicated as effects, never run
// again. So a script needs no determinism for replication's sake, but the
// simulator replays runs, and so it gets some anyway: math.random is
// seeded from the leader's draw, and the globals are Redis's sandbox (no
// os, io, require, dofile or loadfile).
//
// Departures from Redis 7.0, also in the README:
//   - redis.call and redis.pcall may name only keys the script declared
//     in KEYS (Redis Cluster's rule; standalone Redis lets a script reach
//     any key, but Orbit places a script by its keys).
//   - A script runs at most ScriptInstructionLimit Lua instructions
//     (counted, so that a replayed run stops where it stopped before);
//     Redis instead answers BUSY to others after lua-time-limit and waits
//     for SCRIPT KILL.
//   - The libraries are base, table, string and math; Redis's cjson,
//     cmsgpack, struct and bit are not there.

// ScriptInstructionLimit bounds one script's run: about a second of
// plain Lua on the machines we measured.
const ScriptInstructionLimit = 100_000_000

// maxScriptString bounds the strings string.rep and .. may build, as
// Redis's proto-max-bulk-len bounds values.
const maxScriptString = 512 << 20

// ScriptSHA is the SHA1 of a script's text, in lower-case hex, as
// EVALSHA and SCRIPT LOAD name it.
func ScriptSHA(body []byte) string {
	sum := sha1.Sum(body)
	return hex.EncodeToString(sum[:])
}

// The scripting commands join handlers here rather than in its literal:
// a script calls back into the command layer, whose table is built from
// handlers, and Go refuses that cycle in a variable's initializer.
func init() {
	for name, h := range map[string]handler{"eval": cmdEval, "eval_ro": cmdEval, "evalsha": cmdEvalSHA, "evalsha_ro": cmdEvalSHA,
		"fcall": cmdFCall, "fcall_ro": cmdFCall} {
		handlers[name] = h
	}
}

var (
	errScriptKeysNegative = userError("ERR Number of keys can't be negative")
	errScriptKeysTooMany  = userError("ERR Number of keys can't be greater than number of args")
)

// cmdEval runs EVAL and EVAL_RO: script numkeys key... arg...
func cmdEval(c *ctx) (Reply, error) {
	n, ok := parseInt(c.args[2])
	switch {
	case !ok:
		return Reply{}, errNotInt
	case n < 0:
		return Reply{}, errScriptKeysNegative
	case n > int64(len(c.args)-3):
		return Reply{}, errScriptKeysTooMany
	}
	keys, argv := c.args[3:3+n], c.args[3+n:]
	return runScript(c, c.args[1], keys, argv, c.spec.Name == "eval_ro")
}

// CompileScript reports whether body compiles, with Redis's error if it
// does not (SCRIPT LOAD).
func CompileScript(body []byte) error {
	L := scriptStates.Get().(*lua.LState)
	defer scriptStates.Put(L)
	_, err := compile(L, body)
	return err
}

// compile loads body as the script's function, or gives Redis's error.
func compile(L *lua.LState, body []byte) (*lua.LFunction, error) {
	fn, err := L.Load(strings.NewReader(string(body)), "@user_script")
	if err != nil {
		return nil, errorf("ERR Error compiling script (new function): %s", strings.TrimPrefix(scriptMessage(err), "@"))
	}
	return fn, nil
}

// cmdEvalSHA answers an EVALSHA that reached the command layer: the
// session turns every EVALSHA whose script it knows into EVAL.
func cmdEvalSHA(c *ctx) (Reply, error) {
	return Reply{}, userError("NOSCRIPT No matching script. Please use EVAL.")
}

// script is one run's state: the command it runs in and what it may touch.
type script struct {
	c        *ctx
	sha      string
	declared map[string]bool
	readOnly bool
	// function is set for a function's run (FCALL): errors name it by
	// its name, at @user_function, rather than by the script's SHA.
	function bool
	calls    uint64
	// crash is a reply whose Err is set (a corrupt record, a failing
	// store) met by redis.call: the run ends with it, and the caller
	// discards the writes.
	crash *Reply
}

// scriptState pools Lua states with the sandbox built: building one
// costs more than most scripts take to run.
var scriptStates = sync.Pool{New: func() any { return newScriptState() }}

func runScript(c *ctx, body []byte, keys, argv [][]byte, readOnly bool) (Reply, error) {
	s := &script{c: c, sha: ScriptSHA(body), declared: map[string]bool{}, readOnly: readOnly}
	for _, k := range keys {
		s.declared[string(k)] = true
	}
	L := scriptStates.Get().(*lua.LState)
	fn, err := compile(L, body)
	if err != nil {
		scriptStates.Put(L)
		return Reply{}, err
	}
	L.G.Global.RawSetString("KEYS", stringTable(L, keys))
	L.G.Global.RawSetString("ARGV", stringTable(L, argv))
	return s.run(L, fn)
}

// run calls fn with params on L (from scriptStates, which it returns to
// the pool when the run leaves it clean) as the script s, and gives its
// reply.
func (s *script) run(L *lua.LState, fn *lua.LFunction, params ...lua.LValue) (Reply, error) {
	L.G.Global.RawSetString(scriptKey, &lua.LUserData{Value: s})
	seedRandom(L, s.c.rand)
	budget := &instructionBudget{left: ScriptInstructionLimit, done: make(chan struct{})}
	L.SetContext(budget)
	L.Push(fn)
	for _, p := range params {
		L.Push(p)
	}
	err := L.PCall(len(params), 1, nil)
	var r Reply
	if err == nil {
		r = luaToReply(L.Get(-1), 0)
		L.Pop(1)
	}
	L.RemoveContext()
	// The run may have left its globals behind: the next script must not
	// see them. A state with a broken stack is not reused.
	if err == nil && L.GetTop() == 0 {
		resetGlobals(L)
		scriptStates.Put(L)
	}
	switch {
	case s.crash != nil:
		return *s.crash, nil
	case budget.left <= 0:
		return Reply{}, errorf("ERR Script ran more than %d instructions and was stopped (Orbit's bound on a script's run; Redis would answer BUSY instead) script: %s", ScriptInstructionLimit, s.sha)
	case err != nil:
		return s.errorReply(err), nil
	}
	return r, nil
}

// errorReply is the reply to a script that raised an error: a Redis
// error reply raised by redis.call (or redis.error_reply) keeps its text;
// a Lua error becomes ERR with the script's line; both name the script,
// as Redis 7.0 does.
func (s *script) errorReply(err error) Reply {
	var apiErr *lua.ApiError
	msg := err.Error()
	if errors.As(err, &apiErr) {
		if t, ok := apiErr.Object.(*lua.LTable); ok {
			if e, ok := t.RawGetString("err").(lua.LString); ok {
				where := ""
				if line, ok := t.RawGetString("line").(lua.LString); ok && line != "" {
					where = ", on @" + s.chunk() + ":" + string(line) + "."
				}
				return Error(fmt.Sprintf("%s script: %s%s", e, s.sha, where))
			}
		}
		msg = scriptMessage(apiErr)
	}
	// gopher-lua names the chunk as loaded ("@user_script:3: ..."); Redis
	// says "user_script:3: ... script: SHA, on @user_script:3.".
	msg = strings.TrimPrefix(msg, "@")
	where := ""
	if rest, ok := strings.CutPrefix(msg, s.chunk()+":"); ok {
		if line, _, ok := strings.Cut(rest, ":"); ok {
			where = ", on @" + s.chunk() + ":" + line + "."
		}
	}
	if !strings.HasPrefix(msg, "ERR ") {
		msg = "ERR " + msg
	}
	return Error(fmt.Sprintf("%s script: %s%s", msg, s.sha, where))
}

// chunk is the name Lua gives the code in errors.
func (s *script) chunk() string {
	if s.function {
		return "user_function"
	}
	return "user_script"
}

// scriptMessage is an error's first line, without gopher-lua's traceback.
func scriptMessage(err error) string {
	var apiErr *lua.ApiError
	msg := err.Error()
	if errors.As(err, &apiErr) && apiErr.Object != nil {
		msg = apiErr.Object.String()
	}
	msg, _, _ = strings.Cut(msg, "\n")
	return msg
}

// instructionBudget is the context a script runs under: gopher-lua asks
// Done before every instruction, so counting the calls bounds the run by
// instructions (the same in every replay), not by wall time.
type instructionBudget struct {
	left int64
	done chan struct{}
}

var _ context.Context = (*instructionBudget)(nil)

func (b *instructionBudget) Deadline() (time.Time, bool) { return time.Time{}, false }
func (b *instructionBudget) Value(any) any               { return nil }
func (b *instructionBudget) Err() error {
	if b.left <= 0 {
		return errScriptBudget
	}
	return nil
}
func (b *instructionBudget) Done() <-chan struct{} {
	b.left--
	if b.left == 0 {
		close(b.done)
	}
	return b.done
}

var errScriptBudget = errors.New("script instruction budget spent")

// newScriptState builds a Lua state with Redis's sandbox.
func newScriptState() *lua.LState {
	L := lua.NewState(lua.Options{SkipOpenLibs: true, CallStackSize: 256, RegistrySize: 1024 * 20, RegistryMaxSize: 1024 * 1024})
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	for _, name := range []string{"dofile", "loadfile", "require", "module", "collectgarbage", "print"} {
		L.SetGlobal(name, lua.LNil)
	}
	str := L.GetGlobal("string").(*lua.LTable)
	rep := str.RawGetString("rep").(*lua.LFunction)
	str.RawSetString("rep", L.NewFunction(func(L *lua.LState) int {
		if n := L.OptInt(2, 0); n > 0 && int64(len(L.CheckString(1)))*int64(n) > maxScriptString {
			L.RaiseError("string.rep: the result would exceed %d bytes", maxScriptString)
		}
		L.Push(rep)
		L.Push(L.Get(1))
		L.Push(L.Get(2))
		L.Call(2, 1)
		return 1
	}))
	redisLib := L.NewTable()
	L.SetFuncs(redisLib, map[string]lua.LGFunction{
		"call":               func(L *lua.LState) int { return scriptCall(L, true) },
		"pcall":              func(L *lua.LState) int { return scriptCall(L, false) },
		"error_reply":        func(L *lua.LState) int { L.Push(fieldTable(L, "err", L.CheckString(1))); return 1 },
		"status_reply":       func(L *lua.LState) int { L.Push(fieldTable(L, "ok", L.CheckString(1))); return 1 },
		"sha1hex":            func(L *lua.LState) int { L.Push(lua.LString(ScriptSHA([]byte(L.CheckString(1))))); return 1 },
		"log":                func(L *lua.LState) int { return 0 }, // no script log
		"setresp":            scriptSetResp,
		"set_repl":           func(L *lua.LState) int { return 0 }, // effects are always what replicates
		"replicate_commands": func(L *lua.LState) int { L.Push(lua.LTrue); return 1 },
	})
	for name, v := range map[string]int{"LOG_DEBUG": 0, "LOG_VERBOSE": 1, "LOG_NOTICE": 2, "LOG_WARNING": 3,
		"REPL_NONE": 0, "REPL_AOF": 1, "REPL_SLAVE": 2, "REPL_REPLICA": 2, "REPL_ALL": 3} {
		redisLib.RawSetString(name, lua.LNumber(v))
	}
	L.SetGlobal("redis", redisLib)
	math := L.GetGlobal("math").(*lua.LTable)
	math.RawSetString("random", L.NewFunction(scriptRandom))
	math.RawSetString("randomseed", L.NewFunction(func(L *lua.LState) int {
		setSeed(L, uint64(L.CheckInt64(1)))
		return 0
	}))
	// Globals are Redis's: a script may not create one, and reading one
	// that does not exist is an error, not nil.
	guard := L.NewTable()
	L.SetFuncs(guard, map[string]lua.LGFunction{
		"__index": func(L *lua.LState) int {
			L.RaiseError("Script attempted to access nonexistent global variable '%s'", L.CheckAny(2).String())
			return 0
		},
		"__newindex": func(L *lua.LState) int {
			L.RaiseError("Attempt to modify a readonly table")
			return 0
		},
	})
	L.SetMetatable(L.G.Global, guard)
	// The globals a fresh state has: what a script leaves (through
	// rawset) is removed after it runs (resetGlobals).
	base := map[string]bool{}
	L.G.Global.ForEach(func(k, _ lua.LValue) { base[k.String()] = true })
	baseGlobals.once.Do(func() { baseGlobals.names = base })
	return L
}

// baseGlobals are the names a fresh script state defines.
var baseGlobals struct {
	once  sync.Once
	names map[string]bool
}

func resetGlobals(L *lua.LState) {
	var extra []lua.LValue
	L.G.Global.ForEach(func(k, _ lua.LValue) {
		if !baseGlobals.names[k.String()] {
			extra = append(extra, k)
		}
	})
	for _, k := range extra {
		L.G.Global.RawSet(k, lua.LNil)
	}
}

func scriptSetResp(L *lua.LState) int {
	if v := L.CheckInt(1); v != 2 {
		L.RaiseError("RESP version must be 2 (Orbit's scripts speak RESP2 to redis.call)")
	}
	return 0
}

// The script's random numbers: a xorshift64* sequence seeded by the
// leader's draw (or math.randomseed), kept in a global the script cannot
// reach by name (globals are read-only to it, and unknown names raise).
const (
	randomKey = "__orbit_random"
	scriptKey = "__orbit_script" // the running script, for redis.call
)

func seedRandom(L *lua.LState, seed uint64) { setSeed(L, seed) }

func setSeed(L *lua.LState, seed uint64) {
	if seed == 0 {
		seed = 0x9e3779b97f4a7c15
	}
	L.G.Global.RawSetString(randomKey, &lua.LUserData{Value: &seed})
}

func scriptRandom(L *lua.LState) int {
	ud, _ := L.G.Global.RawGetString(randomKey).(*lua.LUserData)
	state, _ := ud.Value.(*uint64)
	if state == nil {
		L.RaiseError("math.random: no seed")
	}
	x := *state
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	*state = x
	f := float64((x*2685821657736338717)>>11) / (1 << 53)
	switch L.GetTop() {
	case 0:
		L.Push(lua.LNumber(f))
	case 1:
		hi := L.CheckInt64(1)
		if hi < 1 {
			L.ArgError(1, "interval is empty")
		}
		L.Push(lua.LNumber(1 + int64(f*float64(hi))))
	default:
		lo, hi := L.CheckInt64(1), L.CheckInt64(2)
		if lo > hi {
			L.ArgError(2, "interval is empty")
		}
		L.Push(lua.LNumber(lo + int64(f*float64(hi-lo+1))))
	}
	return 1
}

func stringTable(L *lua.LState, items [][]byte) *lua.LTable {
	t := L.CreateTable(len(items), 0)
	for _, it := range items {
		t.Append(lua.LString(it))
	}
	return t
}

func fieldTable(L *lua.LState, field, value string) *lua.LTable {
	t := L.CreateTable(0, 1)
	t.RawSetString(field, lua.LString(value))
	return t
}

// scriptCall is redis.call (raise: an error reply raises it) and
// redis.pcall (an error reply comes back as a table with err).
func scriptCall(L *lua.LState, raise bool) int {
	ud, _ := L.G.Global.RawGetString(scriptKey).(*lua.LUserData)
	s, _ := ud.Value.(*script)
	line := ""
	if dbg, ok := L.GetStack(1); ok {
		if _, err := L.GetInfo("l", dbg, lua.LNil); err == nil && dbg.CurrentLine > 0 {
			line = fmt.Sprint(dbg.CurrentLine)
		}
	}
	fail := func(msg string) int {
		t := fieldTable(L, "err", msg)
		if raise {
			t.RawSetString("line", lua.LString(line))
			L.Error(t, 0)
			return 0
		}
		if mutation.On(MutPcallDropsErrors) {
			L.Push(lua.LNil)
			return 1
		}
		L.Push(t)
		return 1
	}
	top := L.GetTop()
	if top == 0 {
		return fail("ERR Please specify at least one argument for this redis lib call")
	}
	args := make([][]byte, top)
	for i := 1; i <= top; i++ {
		switch v := L.Get(i).(type) {
		case lua.LString:
			args[i-1] = []byte(v)
		case lua.LNumber:
			args[i-1] = []byte(formatLuaNumber(v))
		default:
			return fail("ERR Lua redis lib command arguments must be strings or integers")
		}
	}
	spec, known := lookupBytes(args[0])
	switch {
	case !known:
		return fail("ERR Unknown Redis command called from script")
	case !spec.ArityOK(len(args)):
		return fail("ERR Wrong number of args calling Redis command from script")
	case spec.run == nil || spec.Name == "eval" || spec.Name == "eval_ro" || spec.Name == "evalsha" || spec.Name == "evalsha_ro" ||
		spec.Name == "fcall" || spec.Name == "fcall_ro":
		return fail("ERR This Redis command is not allowed from script")
	case s.readOnly && spec.write:
		return fail("ERR Write commands are not allowed from read-only scripts.")
	}
	for _, k := range Keys(args) {
		if !s.declared[string(k)] {
			return fail(fmt.Sprintf("ERR Script attempted to access key '%s', which it did not declare in KEYS (Orbit places a script by its declared keys)", k))
		}
	}
	s.calls++
	r := execWith(s.c.st, s.c.now, s.c.rand+s.calls, args, s.c.objCfg, s.c.ev) // each call its own seed
	if r.Err != nil {
		s.crash = &r
		L.RaiseError("%v", r.Err)
		return 0
	}
	r = inRESP2(r)
	if r.Kind == KindError {
		return fail(string(r.Str))
	}
	L.Push(replyToLua(L, r))
	return 1
}

// formatLuaNumber writes a number argument as Redis does: integers
// without a fraction, others with %.17g.
func formatLuaNumber(n lua.LNumber) string {
	f := float64(n)
	if f == math.Trunc(f) && math.Abs(f) < 1e17 {
		return fmt.Sprintf("%d", int64(f))
	}
	return fmt.Sprintf("%.17g", f)
}

// inRESP2 is r as a RESP2 client reads it (maps flattened, doubles as
// bulk strings, booleans as integers): what a script sees.
func inRESP2(r Reply) Reply {
	b := AppendRESP2(nil, r)
	out, n, err := ParseReply(b)
	if err != nil || n != len(b) {
		return Error("ERR reply could not be converted for the script")
	}
	return out
}

// replyToLua converts a RESP2 reply as Redis's scripting does.
func replyToLua(L *lua.LState, r Reply) lua.LValue {
	switch r.Kind {
	case KindInt:
		return lua.LNumber(r.Int)
	case KindBulk:
		return lua.LString(r.Str)
	case KindSimple:
		return fieldTable(L, "ok", string(r.Str))
	case KindError:
		return fieldTable(L, "err", string(r.Str))
	case KindArray:
		t := L.CreateTable(len(r.Elems), 0)
		for _, e := range r.Elems {
			t.Append(replyToLua(L, e))
		}
		return t
	}
	return lua.LFalse // nil bulk and nil array
}

// luaToReply converts a script's return value as Redis's scripting does.
func luaToReply(v lua.LValue, depth int) Reply {
	switch v := v.(type) {
	case lua.LString:
		return BulkString(string(v))
	case lua.LNumber:
		return Int(int64(v))
	case lua.LBool:
		if v {
			return Int(1)
		}
		return Null()
	case *lua.LTable:
		if e, ok := v.RawGetString("err").(lua.LString); ok {
			return Error(string(e))
		}
		if s, ok := v.RawGetString("ok").(lua.LString); ok {
			return SimpleString(string(s))
		}
		if depth > 64 {
			return Error("ERR reached lua stack limit")
		}
		var elems []Reply
		for i := 1; ; i++ {
			e := v.RawGetInt(i)
			if e == lua.LNil {
				break
			}
			elems = append(elems, luaToReply(e, depth+1))
		}
		return Array(elems...)
	}
	return Null()
}
