package redis

import "strings"

// MEMORY (USAGE, DOCTOR, MALLOC-STATS, PURGE, HELP).
//
// MEMORY USAGE answers Orbit's own figure, not Redis's: the bytes of the
// key's records as stored (each record's key and value, before Pebble
// compresses them), all of them whatever SAMPLES says (it is checked as
// Redis checks it). Redis's figure is its allocator's, which has no
// counterpart here. MEMORY STATS is not supported: its fields are Redis's
// allocator and buffers.

var memoryHelp = []string{
	"DOCTOR",
	"    Return memory problems reports.",
	"MALLOC-STATS",
	"    Return internal statistics report from the memory allocator.",
	"PURGE",
	"    Attempt to purge dirty pages for reclamation by the allocator.",
	"STATS",
	"    Return information about the memory usage of the server.",
	"USAGE <key> [SAMPLES <count>]",
	"    Return memory in bytes used by <key> and its value. Nested values are",
	"    sampled up to <count> times (default: 5, 0 means sample all).",
}

func cmdMemory(c *ctx) (Reply, error) {
	name, bad, ok := c.subcommand()
	if !ok {
		return bad, nil
	}
	switch name {
	case "help":
		return HelpReply("MEMORY", memoryHelp), nil
	case "usage":
		return c.memoryUsage()
	case "doctor":
		return Reply{Kind: KindVerbatim, Format: "txt", Str: []byte("Orbit keeps its data in Pebble, on disk, not in an allocator's memory: Redis's memory doctor has nothing to examine here.\n")}, nil
	case "malloc-stats":
		return Reply{Kind: KindVerbatim, Format: "txt", Str: []byte("Stats not supported for the current allocator")}, nil
	case "purge":
		return OK(), nil
	case "stats":
		return Reply{}, userError("ERR MEMORY STATS is not supported by Orbit: its fields are Redis's allocator and buffers (INFO memory has Orbit's figures)")
	}
	return Reply{}, errorf("ERR unknown subcommand '%s'. Try MEMORY HELP.", strings.ToUpper(name))
}

// memoryUsage is MEMORY USAGE key [SAMPLES count].
func (c *ctx) memoryUsage() (Reply, error) {
	for j := 3; j < len(c.args); j++ {
		if !eqFold(c.args[j], "samples") || j+1 >= len(c.args) {
			return Reply{}, errSyntax
		}
		n, ok := parseInt(c.args[j+1])
		switch {
		case !ok:
			return Reply{}, errNotInt
		case n < 0:
			return Reply{}, errSyntax
		}
		j++
	}
	o, err := c.lookup(c.args[2])
	if err != nil || !o.exists {
		return Null(), err
	}
	var bytes int64
	err = c.each(o.rk, prefixEnd(o.rk), func(kv KV) (bool, error) {
		bytes += int64(len(kv.Key) + len(kv.Value))
		return true, nil
	})
	return Int(bytes), err
}
