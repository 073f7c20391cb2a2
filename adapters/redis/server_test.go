package redis

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/orbitkernel/orbit/internal/freeport"
)

// realServer is a redis-server the differential tests compare against: a
// private process on a free loopback port, no persistence.
type realServer struct {
	cmd  *exec.Cmd
	addr string
}

// startRealServer starts redis-server, or skips the test if it is not
// installed — except in CI (CI non-empty), which installs it
// (scripts/install-test-deps.sh), so its absence is a failure there.
func startRealServer(t testing.TB) *realServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redis-server is not on PATH, and CI is set: run scripts/install-test-deps.sh")
		}
		t.Skip("redis-server is not on PATH; install it (scripts/install-test-deps.sh) to run the differential tests")
	}
	for attempt := 0; ; attempt++ {
		addr, port := freePort(t)
		cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "",
			"--loglevel", "warning", "--dir", t.TempDir(),
			// Blocked clients time out on the server's cron: 500 Hz makes
			// a 1 ms BLPOP return in about 2 ms instead of up to 100.
			"--hz", "500")
		var logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting redis-server: %v", err)
		}
		s := &realServer{cmd: cmd, addr: addr}
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			c, err := net.Dial("tcp", s.addr)
			if err == nil {
				c.Close()
				t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
				return s
			}
			time.Sleep(20 * time.Millisecond)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if attempt == 2 {
			t.Fatalf("redis-server did not come up on %s:\n%s", s.addr, logs.String())
		}
	}
}

func freePort(t testing.TB) (addr, port string) {
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ = net.SplitHostPort(addr)
	return addr, port
}

// respClient is a minimal RESP client that returns each reply's raw bytes,
// so replies can be compared byte for byte.
type respClient struct {
	conn net.Conn
	r    *bufio.Reader
}

func (s *realServer) dial(t testing.TB) *respClient {
	t.Helper()
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &respClient{conn: c, r: bufio.NewReaderSize(c, 1<<16)}
}

func encodeCommand(args [][]byte) []byte {
	b := fmt.Appendf(nil, "*%d\r\n", len(args))
	for _, a := range args {
		b = appendBulk(b, a)
	}
	return b
}

// do sends one command and returns the raw reply.
func (c *respClient) do(args ...[]byte) ([]byte, error) {
	_ = c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write(encodeCommand(args)); err != nil {
		return nil, err
	}
	return c.readRaw()
}

func (c *respClient) doStrings(args ...string) ([]byte, error) {
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	return c.do(bs...)
}

// readRaw reads exactly one reply, of any RESP version.
func (c *respClient) readRaw() ([]byte, error) {
	var out []byte
	pending := 1
	for pending > 0 {
		line, err := c.r.ReadBytes('\n')
		if err != nil {
			return nil, err
		}
		if len(line) < 3 || line[len(line)-2] != '\r' {
			return nil, errors.New("bad RESP line")
		}
		out = append(out, line...)
		pending--
		body := string(line[1 : len(line)-2])
		switch line[0] {
		case '$', '=':
			n, err := strconv.Atoi(body)
			if err != nil {
				return nil, err
			}
			if n >= 0 {
				buf := make([]byte, n+2)
				if _, err := io.ReadFull(c.r, buf); err != nil {
					return nil, err
				}
				out = append(out, buf...)
			}
		case '*', '~', '>', '%':
			n, err := strconv.Atoi(body)
			if err != nil {
				return nil, err
			}
			if n > 0 {
				if line[0] == '%' {
					n *= 2
				}
				pending += n
			}
		}
	}
	return out, nil
}
