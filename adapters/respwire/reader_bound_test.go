package respwire

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// chunks hands out its input in reads of irregular sizes, none of them
// ending at a request's end by design.
type chunks struct {
	in   []byte
	size int
}

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	c.size = c.size*7%4093 + 1
	n := copy(p[:min(len(p), c.size)], c.in)
	c.in = c.in[n:]
	return n, nil
}

// TestPipelineHoldsLittle: a client that pipelines 200,000 SETs without a
// pause (redis-cli --pipe) is read in whole requests while the reader holds
// no more than one read and one unfinished request, however much it sent.
// redcon's Reader held everything sent since its buffer was last empty.
func TestPipelineHoldsLittle(t *testing.T) {
	var in bytes.Buffer
	const n = 200_000
	for i := range n {
		k := fmt.Sprintf("key:%d", i)
		fmt.Fprintf(&in, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$10\r\nvvvvvvvvvv\r\n", len(k), k)
	}
	total := in.Len()
	rd := newRequestReader(&chunks{in: in.Bytes(), size: 1})
	read, most := 0, 0
	for {
		cmds, err := rd.ReadCommands()
		for _, c := range cmds {
			if string(c.Args[1]) != fmt.Sprintf("key:%d", read) {
				t.Fatalf("request %d: %q", read, c.Args)
			}
			read++
		}
		most = max(most, cap(rd.g.out))
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if read != n {
		t.Fatalf("read %d requests of %d", read, n)
	}
	if most > 2*readSize {
		t.Fatalf("the reader held up to %d bytes of a %d-byte pipeline", most, total)
	}
}
