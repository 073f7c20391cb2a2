package respwire_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/orbitkernel/orbit/adapters/respwire"
)

// TestRequestFraming reads requests as Redis 7.0.15 does (each case was
// checked against redis-server): what runs before a bad request, and the
// error that ends the connection.
func TestRequestFraming(t *testing.T) {
	for _, tc := range []struct{ in, reqs, err string }{
		{"*-10\r\n*1\r\n$4\r\nPING\r\n", "[PING]", ""},
		{"*0\r\n*1\r\n$4\r\nPING\r\n", "[PING]", ""},
		{"*+1\r\n$4\r\nPING\r\n", "", "invalid multibulk length"},
		{"*01\r\n$4\r\nPING\r\n", "", "invalid multibulk length"},
		{"*-0\r\n", "", "invalid multibulk length"},
		{"*\r\n", "", "invalid multibulk length"},
		{"*1\r\n$04\r\nPING\r\n", "", "invalid bulk length"},
		{"*1\r\n$-0\r\n", "", "invalid bulk length"},
		{"*1\r\n$\r\n", "", "invalid bulk length"},
		{"*1\r\n$-1\r\n", "", "invalid bulk length"},
		{"*1\r\n$4\r\nPING\r\n*1\r\n*4\r\n", "[PING]", "expected '$', got '*'"},
		{"*1\r\n$4\r\nPING\r\n*1\r\n$999999999999\r\n", "[PING]", "invalid bulk length"},
		{"*1\r\n$4\r\nPING\r\n*99999999999\r\n", "[PING]", "invalid multibulk length"},
		{"*2\r\n$3\r\nGET\r\n$0\r\n\r\nPING\r\n", "[GET ] [PING]", ""},
	} {
		reqs, err := respwire.ReadRequests(strings.NewReader(tc.in), 10)
		var got []string
		for _, r := range reqs {
			got = append(got, fmt.Sprintf("%s", r))
		}
		gotErr := ""
		if err != nil {
			gotErr = strings.TrimPrefix(err.Error(), "Protocol error: ")
		}
		if strings.Join(got, " ") != tc.reqs || gotErr != tc.err {
			t.Errorf("%q: read %v, %q; want %s, %q", tc.in, got, gotErr, tc.reqs, tc.err)
		}
	}
}

// endless is a header followed by an endless run of x.
type endless struct {
	head []byte
	read int64
}

func (e *endless) Read(p []byte) (int, error) {
	n := copy(p, e.head)
	e.head = e.head[n:]
	for i := n; i < len(p); i++ {
		p[i] = 'x'
	}
	e.read += int64(len(p))
	return len(p), nil
}

// TestEndlessHeadersAreCut: a header line or inline request that never
// ends fails after 64 KB, with Redis's error, having read little more.
func TestEndlessHeadersAreCut(t *testing.T) {
	for head, want := range map[string]string{
		"*\x00":       "too big mbulk count string",
		"*1\r\n$\x00": "too big bulk count string",
		"*1":          "too big mbulk count string",
		"GET ":        "too big inline request",
	} {
		e := &endless{head: []byte(head)}
		_, err := respwire.ReadRequests(e, 10)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q...: %v, want %q", head, err, want)
		}
		if e.read > 1<<20 {
			t.Errorf("%q...: read %d bytes before failing", head, e.read)
		}
	}
}

// TestGuardPassesLargeArguments: a large argument, read in small pieces,
// arrives whole.
func TestGuardPassesLargeArguments(t *testing.T) {
	big := bytes.Repeat([]byte("v"), 5<<20)
	in := append([]byte(fmt.Sprintf("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n", len(big))), big...)
	in = append(in, "\r\n*1\r\n$4\r\nPING\r\n"...)
	reqs, err := respwire.ReadRequests(io.MultiReader(bytes.NewReader(in[:7]), bytes.NewReader(in[7:])), 10)
	if err != nil || len(reqs) != 2 || !bytes.Equal(reqs[0][2], big) || string(reqs[1][0]) != "PING" {
		t.Fatalf("read %d requests, %v", len(reqs), err)
	}
}
