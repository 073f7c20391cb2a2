package actorapi

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestProtoFileMatches: the descriptor built in proto.go says what
// actor.proto says, message for message, field for field, method for
// method (actor.proto is the documented schema; proto.go is what runs).
func TestProtoFileMatches(t *testing.T) {
	src, err := os.ReadFile("actor.proto")
	if err != nil {
		t.Fatal(err)
	}
	var fromFile []string
	msg := regexp.MustCompile(`^message (\w+) \{`)
	fld := regexp.MustCompile(`^(repeated )?(\w+) (\w+) = (\d+);`)
	rpc := regexp.MustCompile(`^rpc (\w+)\((\w+)\) returns \((\w+)\);`)
	for _, line := range strings.Split(string(src), "\n") {
		line = strings.TrimSpace(line)
		if m := msg.FindStringSubmatch(line); m != nil {
			fromFile = append(fromFile, "message "+m[1])
		} else if m := fld.FindStringSubmatch(line); m != nil {
			fromFile = append(fromFile, fmt.Sprintf("field %s%s %s %s", m[1], m[2], m[3], m[4]))
		} else if m := rpc.FindStringSubmatch(line); m != nil {
			fromFile = append(fromFile, fmt.Sprintf("rpc %s %s %s", m[1], m[2], m[3]))
		}
	}
	var built []string
	for _, m := range methods {
		built = append(built, fmt.Sprintf("rpc %s %s %s", m[0], m[1], m[2]))
	}
	for _, m := range messages {
		built = append(built, "message "+m.name)
		for _, f := range m.fields {
			rep := ""
			if f.repeated {
				rep = "repeated "
			}
			kind := strings.ToLower(strings.TrimPrefix(f.kind.String(), "TYPE_"))
			if f.message != "" {
				kind = f.message[strings.LastIndex(f.message, ".")+1:]
			}
			built = append(built, fmt.Sprintf("field %s%s %s %d", rep, kind, f.name, f.number))
		}
	}
	if got, want := strings.Join(built, "\n"), strings.Join(fromFile, "\n"); got != want {
		t.Fatalf("proto.go builds:\n%s\n\nactor.proto says:\n%s", got, want)
	}
	if file.Services().ByName("ActorService") == nil {
		t.Fatal("no ActorService in the built descriptor")
	}
}
