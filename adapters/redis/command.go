package redis

import (
	"bytes"
	"strings"
)

// CommandReply answers the COMMAND command (args[0] is "command") from the
// table: COMMAND, COMMAND COUNT, COMMAND INFO [name...], COMMAND DOCS
// [name...], COMMAND LIST [FILTERBY PATTERN p | ACLCAT c] and COMMAND
// GETKEYS. The table holds only what Orbit serves, so COUNT and the lists
// are shorter than Redis's; each entry is byte for byte Redis 7.0.15's.
func CommandReply(args [][]byte) Reply {
	if len(args) == 1 {
		return commandInfos(nil, true)
	}
	sub := strings.ToLower(string(args[1]))
	wrongArity := func() Reply { return arityError("command|" + sub) }
	switch sub {
	case "count":
		if len(args) != 2 {
			return wrongArity()
		}
		return Int(int64(len(Commands())))
	case "info":
		return commandInfos(args[2:], len(args) == 2)
	case "docs":
		var out []Reply
		for _, s := range commandsNamed(args[2:], len(args) == 2) {
			if s != nil {
				out = append(out, BulkString(s.Name), s.docs)
			}
		}
		return Map(out...)
	case "list":
		return commandList(args[2:])
	case "getkeys":
		if len(args) < 4 {
			return wrongArity()
		}
		return commandGetKeys(args[2:])
	case "help":
		return Array(
			SimpleString("COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"),
			SimpleString("(no subcommand)"), SimpleString("    Return details about all Redis commands."),
			SimpleString("COUNT"), SimpleString("    Return the total number of commands in this Redis server."),
			SimpleString("LIST"), SimpleString("    Return a list of all commands in this Redis server."),
			SimpleString("INFO [<command-name> ...]"), SimpleString("    Return details about multiple Redis commands."),
			SimpleString("DOCS [<command-name> ...]"), SimpleString("    Return documentation details about multiple Redis commands."),
			SimpleString("GETKEYS <full-command>"), SimpleString("    Return the keys from a full Redis command."),
			SimpleString("HELP"), SimpleString("    Print this help."))
	}
	return Error("ERR unknown subcommand '" + string(cstr(args[1][:min(len(args[1]), 128)])) + "'. Try COMMAND HELP.")
}

// commandsNamed returns the specs of names (nil where unknown), or every
// spec when all is set.
func commandsNamed(names [][]byte, all bool) []*Spec {
	if all {
		return Commands()
	}
	out := make([]*Spec, len(names))
	for i, n := range names {
		if s, ok := lookupBytes(n); ok {
			out[i] = s
		}
	}
	return out
}

func commandInfos(names [][]byte, all bool) Reply {
	var out []Reply
	for _, s := range commandsNamed(names, all) {
		if s == nil {
			out = append(out, Null())
		} else {
			out = append(out, s.info)
		}
	}
	return Array(out...)
}

func commandList(args [][]byte) Reply {
	match := func(*Spec) bool { return true }
	switch {
	case len(args) == 0:
	case len(args) == 3 && eqFold(args[0], "filterby") && eqFold(args[1], "pattern"):
		pattern := args[2]
		match = func(s *Spec) bool { return globMatch(bytes.ToLower(pattern), []byte(s.Name)) }
	case len(args) == 3 && eqFold(args[0], "filterby") && eqFold(args[1], "aclcat"):
		cat := "@" + strings.ToLower(string(args[2]))
		match = func(s *Spec) bool {
			for _, c := range s.ACLCategories {
				if c == cat {
					return true
				}
			}
			return false
		}
	default:
		return errSyntaxReply()
	}
	var out []Reply
	for _, s := range Commands() {
		if match(s) {
			out = append(out, BulkString(s.Name))
		}
	}
	return Array(out...)
}

func errSyntaxReply() Reply { return Error(string(errSyntax)) }

func commandGetKeys(cmd [][]byte) Reply {
	s, ok := lookupBytes(cmd[0])
	if !ok {
		return Error("ERR Invalid command specified")
	}
	if s.subcommands != nil && len(cmd) >= 2 {
		// Redis looks the subcommand up (OBJECT HELP, XINFO HELP, CLIENT
		// LIST... have no key).
		name, arityOK, _ := s.subcommandOf(cmd)
		switch {
		case name == "":
			return Error("ERR Invalid command specified")
		case s.subcommands[name].firstKey == 0:
			return Error("ERR The command has no key arguments")
		case !arityOK:
			return Error("ERR Invalid number of arguments specified for command")
		}
		return bulks(Keys(cmd))
	}
	if s.FirstKey == 0 && !s.HasFlag("movablekeys") {
		return Error("ERR The command has no key arguments")
	}
	if !s.ArityOK(len(cmd)) {
		return Error("ERR Invalid number of arguments specified for command")
	}
	keys := Keys(cmd)
	if len(keys) == 0 {
		return Error("ERR Invalid arguments specified for command")
	}
	return bulks(keys)
}
