package consensus

import (
	"errors"
	"fmt"
	"testing"

	"github.com/orbitkernel/orbit/kernel"
)

// TestErrorsCrossTheNetworkByCode: what a client acts on (a leader hint, a
// retry, a write too large) is read from the remote error's code and
// detail, not from its text.
func TestErrorsCrossTheNetworkByCode(t *testing.T) {
	var ce kernel.CodedError
	nl := NotLeaderError{Leader: 3, Term: 7}
	if !errors.As(fmt.Errorf("wrapped: %w", nl), &ce) || ce.RemoteCode() != codeNotLeader {
		t.Fatalf("NotLeaderError is not a kernel.CodedError with code %s", codeNotLeader)
	}
	remote := &kernel.RemoteError{Code: codeNotLeader, Detail: nl.RemoteDetail(), Msg: "anything at all"}
	if got, ok := AsNotLeader(fmt.Errorf("call: %w", remote)); !ok || got != nl {
		t.Fatalf("AsNotLeader(remote) = %v, %t, want %v", got, ok, nl)
	}
	if got, ok := AsNotLeader(&kernel.RemoteError{Code: codeNotLeader, Detail: []byte{0x80}}); !ok || got != (NotLeaderError{}) {
		t.Fatalf("a not-leader refusal with a bad detail: %v, %t, want a refusal with no leader known", got, ok)
	}
	if _, ok := AsNotLeader(&kernel.RemoteError{Msg: nl.Error()}); ok {
		t.Fatal("a remote error without the code was read as a not-leader refusal from its text")
	}

	retry := retryf("learner %x is catching up", 5)
	if !errors.Is(retry, errRetry) || !errors.As(retry, &ce) || ce.RemoteCode() != codeRetry {
		t.Fatalf("retryf gives %v (code %q)", retry, ce.RemoteCode())
	}
	tooLarge := coded{code: codeTooLarge, err: ErrTooLarge}
	if !errors.Is(tooLarge, ErrTooLarge) || remoteCode(&kernel.RemoteError{Code: codeTooLarge}) != codeTooLarge {
		t.Fatal("the too-large refusal lost its sentinel or its code")
	}
}
