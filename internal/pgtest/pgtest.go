// Package pgtest starts a throwaway PostgreSQL 15 server for tests: the
// reference the SQL engine's differential tests (query) compare against.
//
// It needs PostgreSQL 15's server binaries (initdb, postgres) in
// /usr/lib/postgresql/15/bin, or in the directory $ORBIT_PG_BIN names.
// CI installs them with scripts/install-test-deps.sh; where they are
// missing, Start skips the test and says so.
//
// The cluster is made for speed, not safety: trust authentication, no
// fsync, a temporary data directory removed at the end of the test, UTC,
// and the C.UTF-8 locale, as Orbit reports for its database: text sorts
// by code point, and lower/upper know non-ASCII letters. PostgreSQL refuses to run as
// root, so when the test runs as root (as CI does) initdb and postgres run
// as the "postgres" OS user.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/orbitkernel/orbit/internal/freeport"
)

// DefaultBinDir is where Debian's postgresql-15 package puts the server
// binaries.
const DefaultBinDir = "/usr/lib/postgresql/15/bin"

const (
	startTimeout = 60 * time.Second // initdb plus start-up, on a slow CI machine
	stopTimeout  = 20 * time.Second // after SIGINT (fast shutdown), before SIGKILL
)

// Server is a running PostgreSQL server. User "postgres" (no password)
// may connect to database "postgres" over TCP at Addr.
type Server struct {
	addr    string
	dir     string // holds data/, sock/ and postgres.log
	cmd     *exec.Cmd
	exited  chan struct{} // closed once cmd.Wait returned
	waitErr error         // cmd.Wait's result; read after exited is closed
}

// Addr is the server's TCP address ("127.0.0.1:port").
func (s *Server) Addr() string { return s.addr }

// DSN is a connection string for user postgres, database postgres,
// without TLS.
func (s *Server) DSN() string {
	return "postgres://postgres@" + s.addr + "/postgres?sslmode=disable"
}

// BinDir is the directory Start takes initdb and postgres from.
func BinDir() string {
	if d := os.Getenv("ORBIT_PG_BIN"); d != "" {
		return d
	}
	return DefaultBinDir
}

// Available reports why PostgreSQL cannot be started here ("" when it
// can, as far as the binaries go).
func Available() string {
	dir := BinDir()
	for _, name := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return fmt.Sprintf("PostgreSQL 15 not found (%v); run scripts/install-test-deps.sh or set ORBIT_PG_BIN", err)
		}
	}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			return fmt.Sprintf("running as root and there is no postgres OS user to run PostgreSQL as (%v); run scripts/install-test-deps.sh", err)
		}
	}
	return ""
}

// Start initialises and starts a server for t, waits until it accepts
// connections, and stops it and removes its files when t ends. It skips
// t when PostgreSQL is not installed.
func Start(t testing.TB) *Server {
	t.Helper()
	if why := Available(); why != "" {
		t.Skip(why)
	}
	cred, err := credential()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "orbit-pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	sock := filepath.Join(dir, "sock")
	if err := os.Mkdir(sock, 0o700); err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		for _, d := range []string{dir, sock} {
			if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
				t.Fatal(err)
			}
		}
	}
	data := filepath.Join(dir, "data")
	initdb := command(cred, "initdb", "-D", data, "-A", "trust", "-U", "postgres",
		"--no-sync", "--locale=C.UTF-8", "--encoding=UTF8")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}

	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr)
	logPath := filepath.Join(dir, "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child holds its own descriptor
	s := &Server{addr: addr, dir: dir, exited: make(chan struct{})}
	s.cmd = command(cred, "postgres", "-D", data,
		"-p", port, "-k", sock,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=20",
		"-c", "shared_buffers=16MB",
		"-c", "timezone=UTC",
		"-c", "log_timezone=UTC",
		"-c", "logging_collector=off",
	)
	s.cmd.Stdout = logFile
	s.cmd.Stderr = logFile
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("pgtest: starting postgres: %v", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(s.stop)

	if err := s.waitReady(); err != nil {
		log, _ := os.ReadFile(logPath)
		t.Fatalf("pgtest: %v\npostgres log:\n%s", err, log)
	}
	return s
}

// credential is whom to run PostgreSQL as: nil for the current user, the
// postgres OS user when that is root.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pgtest: postgres user's ids: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

func command(cred *syscall.Credential, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(BinDir(), name), args...)
	// A fixed, minimal environment: the C locale, and no PG* variables of
	// the caller's leaking in.
	cmd.Env = []string{"LC_ALL=C", "LANG=C", "TZ=UTC", "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	return cmd
}

// waitReady polls until a connection succeeds, the server dies or
// startTimeout passes.
func (s *Server) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgconn.Connect(ctx, s.DSN())
		cancel()
		if err == nil {
			_ = c.Close(context.Background())
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("postgres exited before accepting connections: %v", s.waitErr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within %v: %v", startTimeout, err)
		}
	}
}

// stop asks for a fast shutdown (SIGINT: abort transactions, disconnect
// clients, write a checkpoint) and kills the server if that takes too
// long.
func (s *Server) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
		return
	case <-time.After(stopTimeout):
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// String names the server for messages.
func (s *Server) String() string {
	return "PostgreSQL at " + s.addr + " (" + strings.TrimSuffix(s.dir, "/") + ")"
}
