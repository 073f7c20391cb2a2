package main

import (
	"bytes"
	"fmt"
	"testing"
)

// Redis 7 functions through orbit serve, against redis-server 7.0.15, in
// both protocols: FUNCTION LOAD (every metadata and registration error),
// FCALL and FCALL_RO (keys and arguments as the callback's parameters,
// flags, errors raised in a function and by redis.call), FUNCTION LIST,
// STATS, DELETE and FLUSH, FCALL inside MULTI, and on four ranges, where
// a function's keys may lie in several ranges.

const (
	libCounter = "#!lua name=counter\n" +
		"local function incr(keys, args) return redis.call('incrby', keys[1], args[1]) end\n" +
		"redis.register_function('incr', incr)\n" +
		"redis.register_function{function_name='peek', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads'}\n"
	libCounterV2 = "#!lua name=counter\n" +
		"redis.register_function('incr', function(keys, args) return redis.call('incrby', keys[1], 2 * args[1]) end)\n"
	libMove = "#!LUA name=mover\n" +
		"redis.register_function('move', function(keys, args)\n" +
		"  local v = redis.call('get', keys[1])\n" +
		"  if not v then return redis.error_reply('ERR nothing to move') end\n" +
		"  redis.call('del', keys[1])\n" +
		"  redis.call('set', keys[2], v)\n" +
		"  return {v, #keys, #args, args[1] or false}\n" +
		"end)\n" +
		"redis.register_function('boom', function(keys) return redis.call('lpush', keys[1]) end)\n" +
		"redis.register_function('luaerr', function() return redis.call('get', 1, 2, 3) end)\n" +
		"redis.register_function('globals', function() return KEYS end)\n" +
		"redis.register_function('ro_write', function(keys) return redis.call('set', keys[1], 'x') end)\n"
)

var functionCases = [][]string{
	{"FUNCTION", "FLUSH"},
	{"FCALL", "incr", "1", "a", "1"},
	{"FUNCTION", "LOAD", libCounter},
	{"FUNCTION", "LOAD", libCounter},
	{"FUNCTION", "LOAD", "REPLACE", libCounter},
	{"FUNCTION", "LIST"},
	{"FUNCTION", "LIST", "WITHCODE"},
	{"FUNCTION", "LIST", "LIBRARYNAME", "count*"},
	{"FUNCTION", "LIST", "LIBRARYNAME", "x*"},
	{"FUNCTION", "LIST", "LIBRARYNAME"},
	{"FUNCTION", "LIST", "bogus"},
	{"FUNCTION", "STATS"},
	{"FCALL", "incr", "1", "a", "5"},
	{"FCALL", "incr", "1", "a", "5"},
	{"FCALL", "peek", "1", "a"},
	{"FCALL_RO", "peek", "1", "a"},
	{"FCALL_RO", "incr", "1", "a", "1"},
	{"FCALL", "incr", "x", "a"},
	{"FCALL", "incr", "-1", "a"},
	{"FCALL", "incr", "3", "a"},
	{"FCALL", "nosuch", "0"},
	{"FCALL", "incr", "1", "a", "notanumber"},
	{"FUNCTION", "LOAD", "REPLACE", libCounterV2},
	{"FCALL", "incr", "1", "a", "5"},
	{"FCALL", "peek", "1", "a"},
	{"FUNCTION", "LOAD", libMove},
	{"SET", "b", "hello"},
	{"FCALL", "move", "2", "b", "c", "x", "y"},
	{"GET", "c"},
	{"FCALL", "move", "2", "b", "c"},
	{"FCALL", "boom", "1", "b"},
	{"FCALL", "globals", "0"},
	{"FCALL", "luaerr", "0"},
	{"FCALL_RO", "ro_write", "1", "b"},
	{"MULTI"}, {"FCALL", "incr", "1", "a", "1"}, {"FCALL", "nosuch", "0"}, {"GET", "a"}, {"EXEC"},
	{"FUNCTION", "DELETE", "counter"},
	{"FUNCTION", "DELETE", "counter"},
	{"FCALL", "incr", "1", "a", "1"},
	{"FUNCTION", "STATS"},
	// Load errors, each as Redis words it.
	{"FUNCTION", "LOAD", "return 1"},
	{"FUNCTION", "LOAD", "#!lua name=x"},
	{"FUNCTION", "LOAD", "#!lua\nreturn 1"},
	{"FUNCTION", "LOAD", "#!lua name=a name=b\nreturn 1"},
	{"FUNCTION", "LOAD", "#!lua name=x foo=bar\nreturn 1"},
	{"FUNCTION", "LOAD", "#!lua name=bad-name\nreturn 1"},
	{"FUNCTION", "LOAD", "#!python name=x\nreturn 1"},
	{"FUNCTION", "LOAD", "#!lua name=empty\nlocal x = 1"},
	{"FUNCTION", "LOAD", "#!lua name=calls\nredis.call('set', 'a', 'b')"},
	{"FUNCTION", "LOAD", "#!lua name=globals\nstring.format('x')"},
	{"FUNCTION", "LOAD", "#!lua name=newglobal\nx = 1"},
	{"FUNCTION", "LOAD", "#!lua name=dupfn\nredis.register_function('f', function() end)\nredis.register_function('f', function() end)"},
	{"FUNCTION", "LOAD", "#!lua name=clash\nredis.register_function('move', function() end)"},
	{"FUNCTION", "LOAD", "#!lua name=args\nredis.register_function('f')"},
	{"FUNCTION", "LOAD", "#!lua name=args\nredis.register_function(1, 2, 3)"},
	{"FUNCTION", "LOAD", "#!lua name=args\nredis.register_function('f', 1)"},
	{"FUNCTION", "LOAD", "#!lua name=args\nredis.register_function({}, function() end)"},
	{"FUNCTION", "LOAD", "#!lua name=args\nredis.register_function{callback=function() end}"},
	{"FUNCTION", "LOAD", "#!lua name=args\nredis.register_function{function_name='f'}"},
	{"FUNCTION", "LOAD", "#!lua name=args\nredis.register_function{function_name='f', callback=function() end, flags={'bogus'}}"},
	{"FUNCTION", "LOAD", "#!lua name=args\nredis.register_function{function_name='f', callback=function() end, flags='no-writes'}"},
	{"FUNCTION", "LOAD", "#!lua name=args\nredis.register_function{function_name='f', callback=function() end, other=1}"},
	{"FUNCTION", "LOAD", "#!lua name=args\nredis.register_function{function_name='bad name', callback=function() end}"},
	{"FUNCTION", "LOAD", "#!lua name=args\nredis.register_function('f', function() end, 'x')"},
	{"FUNCTION", "LOAD", "bogus", "#!lua name=x\n"},
	{"FUNCTION", "LOAD"},
	{"FUNCTION", "LIST"},
	{"FUNCTION", "FLUSH", "bogus"},
	{"FUNCTION", "FLUSH", "ASYNC"},
	{"FUNCTION", "LIST"},
	{"FCALL", "move", "2", "b", "c"},
	{"FUNCTION", "BOGUS"},
	{"FUNCTION", "DELETE"},
	{"FUNCTION", "KILL"},
	{"FUNCTION", "HELP"}, {"SCRIPT", "HELP"}, {"OBJECT", "HELP"}, {"MEMORY", "HELP"},
	{"FUNCTION", "FLUSH", "SYNC", "x"},
	{"FCALL"},
	{"MULTI"}, {"FUNCTION", "LOAD", libCounter}, {"FCALL", "incr", "1", "a", "1"}, {"WAIT", "0", "0"}, {"EXEC"},
}

func TestFunctionsMatchRedis(t *testing.T) {
	for _, ranges := range []int{1, 4} {
		t.Run(fmt.Sprintf("ranges=%d", ranges), func(t *testing.T) {
			realAddr, orbitAddr := startRedisServer(t), startServer(t, ranges)
			for _, proto := range []string{"2", "3"} {
				r, o := dialRESP(t, realAddr), dialRESP(t, orbitAddr)
				for _, c := range []*respConn{r, o} {
					if _, err := c.do("HELLO", proto); err != nil {
						t.Fatal(err)
					}
					if _, err := c.do("FLUSHALL"); err != nil {
						t.Fatal(err)
					}
				}
				for _, cmd := range functionCases {
					want, got := bothReplies(t, r, o, cmd)
					want, got = normalizeRaw(cmd, want), normalizeRaw(cmd, got)
					if !bytes.Equal(want, got) {
						t.Errorf("RESP%s %q:\nredis: %q\norbit: %q", proto, cmd, want, got)
					}
				}
			}
		})
	}
}
