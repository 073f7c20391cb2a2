package session

import (
	"strconv"
	"strings"
	"sync"

	"github.com/orbitkernel/orbit/adapters/redis"
)

// scriptCache holds the scripts this node has seen (EVAL, SCRIPT LOAD) by
// their SHA1, for EVALSHA: one cache per node, as every Redis Cluster
// node keeps its own (a client that meets NOSCRIPT sends EVAL, as
// go-redis's Script.Run does). It is bounded (maxScriptBytes): a full
// cache refuses SCRIPT LOAD and stops remembering EVAL's scripts until
// SCRIPT FLUSH.
type scriptCache struct {
	mu     sync.Mutex // never held across a blocking call
	bodies map[string][]byte
	bytes  int
}

// maxScriptBytes bounds the text a node's script cache holds.
const maxScriptBytes = 64 << 20

// add remembers body; false if the cache is full.
func (sc *scriptCache) add(body []byte) (sha string, ok bool) {
	sha = redis.ScriptSHA(body)
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if _, ok := sc.bodies[sha]; ok {
		return sha, true
	}
	if sc.bytes+len(body) > maxScriptBytes {
		return sha, false
	}
	if sc.bodies == nil {
		sc.bodies = map[string][]byte{}
	}
	sc.bodies[sha] = append([]byte(nil), body...)
	sc.bytes += len(body)
	return sha, true
}

func (sc *scriptCache) get(sha []byte) ([]byte, bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	body, ok := sc.bodies[strings.ToLower(string(sha))]
	return body, ok
}

func (sc *scriptCache) flush() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.bodies, sc.bytes = nil, 0
}

// scriptArgs turns EVALSHA into the EVAL of the script it names, when this
// node knows it (else it goes on as is, and the command layer answers
// NOSCRIPT, in EXEC's place if queued, as Redis does); EVAL's script is
// remembered for a later EVALSHA.
func (s *Server) scriptArgs(name string, args [][]byte) (string, [][]byte) {
	switch name {
	case "eval", "eval_ro":
		// Remembered as Redis does: only with a valid key count, and
		// only if it compiles (compiled once per script and node).
		n, err := strconv.ParseInt(string(args[2]), 10, 64)
		if err != nil || n < 0 || n > int64(len(args)-3) {
			break
		}
		if _, ok := s.scripts.get([]byte(redis.ScriptSHA(args[1]))); !ok && redis.CompileScript(args[1]) == nil {
			s.scripts.add(args[1])
		}
	case "evalsha", "evalsha_ro":
		if body, ok := s.scripts.get(args[1]); ok {
			name = strings.TrimPrefix(name, "evalsha")
			name = "eval" + name
			return name, append([][]byte{[]byte(name), body}, args[2:]...)
		}
	}
	return name, args
}

// scriptCommand answers SCRIPT (LOAD, EXISTS, FLUSH, KILL, HELP).
func (s *Server) scriptCommand(args [][]byte) redis.Reply {
	sub := strings.ToLower(string(args[1]))
	switch {
	case sub == "load" && len(args) == 3:
		if err := redis.CompileScript(args[2]); err != nil {
			return redis.Error(err.Error())
		}
		sha, ok := s.scripts.add(args[2])
		if !ok {
			return redis.Error("ERR the script cache is full (Orbit bounds it at 64 MB): SCRIPT FLUSH, or send EVAL")
		}
		return redis.BulkString(sha)
	case sub == "exists" && len(args) >= 3:
		out := make([]redis.Reply, len(args)-2)
		for i, sha := range args[2:] {
			_, ok := s.scripts.get(sha)
			out[i] = redis.Int(map[bool]int64{false: 0, true: 1}[ok])
		}
		return redis.Array(out...)
	case sub == "flush" && len(args) <= 3:
		if len(args) == 3 && !strings.EqualFold(string(args[2]), "sync") && !strings.EqualFold(string(args[2]), "async") {
			return redis.Error("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
		}
		s.scripts.flush()
		return redis.OK()
	case sub == "kill" && len(args) == 2:
		// A script never outlives its command here (it is bounded by
		// instructions, redis.ScriptInstructionLimit).
		return redis.Error("NOTBUSY No scripts in execution right now.")
	case sub == "help" && len(args) == 2:
		return redis.HelpReply("SCRIPT", scriptHelp)
	case sub == "load" || sub == "exists" || sub == "flush" || sub == "kill" || sub == "help":
		return redis.Error("ERR unknown subcommand or wrong number of arguments for '" + string(args[1]) + "'. Try SCRIPT HELP.")
	}
	return redis.Error("ERR unknown subcommand '" + string(args[1]) + "'. Try SCRIPT HELP.")
}

var scriptHelp = []string{
	"DEBUG (YES|SYNC|NO)",
	"    Set the debug mode for subsequent scripts executed.",
	"EXISTS <sha1> [<sha1> ...]",
	"    Return information about the existence of the scripts in the script cache.",
	"FLUSH [ASYNC|SYNC]",
	"    Flush the Lua scripts cache. Very dangerous on replicas.",
	"    When called without the optional mode argument, the behavior is determined by the",
	"    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
	"    * ASYNC: Asynchronously flush the scripts cache.",
	"    * SYNC: Synchronously flush the scripts cache.",
	"KILL",
	"    Kill the currently executing Lua script.",
	"LOAD <script>",
	"    Load a script into the scripts cache without executing it.",
}
