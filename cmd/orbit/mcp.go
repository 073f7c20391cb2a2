package main

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	orbitmcp "github.com/orbitkernel/orbit/adapters/mcp"
	"github.com/orbitkernel/orbit/security"
)

const mcpUsage = `usage: orbit mcp [flags]

Serves the Model Context Protocol to AI agents (docs/mcp.md): tools over
one node's listeners — sql_query, describe_schema, explain (PostgreSQL
wire), kv_get, kv_scan (RESP), actor_invoke, actor_list (actor service),
cluster_status (HTTP). On stdio by default (an MCP client starts it as a
subprocess); with --listen, over streamable HTTP at /mcp, where every
request needs "Authorization: Bearer TOKEN" (--token or $ORBIT_MCP_TOKEN).
An empty address leaves that group of tools out.

Flags:`

// mcpConfig is orbit mcp's flags.
type mcpConfig struct {
	pgURL, redisAddr, redisUser, grpcAddr, httpAddr, certsDir string
	listen, token                                             string
	insecure                                                  bool
	opts                                                      orbitmcp.Options
}

func mcpCommand(args []string, stdin io.ReadCloser, stdout io.WriteCloser, stderr io.Writer) int {
	cfg, err := parseMCPFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "orbit mcp: %v\n", err)
		}
		return 2
	}
	srv, err := cfg.server()
	if err != nil {
		fmt.Fprintf(stderr, "orbit mcp: %v\n", err)
		return 2
	}
	defer srv.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.listen == "" {
		if err := srv.Run(ctx, &sdk.IOTransport{Reader: stdin, Writer: stdout}); err != nil && ctx.Err() == nil {
			fmt.Fprintf(stderr, "orbit mcp: %v\n", err)
			return 1
		}
		return 0
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		fmt.Fprintf(stderr, "orbit mcp: %v\n", err)
		return 2
	}
	fmt.Fprintf(stderr, "orbit mcp: serving http://%s/mcp\n", ln.Addr())
	hs := &http.Server{Handler: mcpHTTPHandler(srv.Server, cfg.token), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "orbit mcp: %v\n", err)
		return 1
	}
	return 0
}

func parseMCPFlags(args []string, stderr io.Writer) (*mcpConfig, error) {
	cfg := &mcpConfig{}
	fs := flag.NewFlagSet("mcp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, mcpUsage); fs.PrintDefaults() }
	fs.StringVar(&cfg.pgURL, "pg", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		"the node's PostgreSQL listener, as a connection URL (user, password, sslmode=verify-full with --certs-dir's CA as sslrootcert)")
	fs.StringVar(&cfg.redisAddr, "redis", "127.0.0.1:6379", "the node's RESP listener")
	fs.StringVar(&cfg.redisUser, "redis-user", "", "the Redis ACL user to log in as (its password: $ORBIT_REDIS_PASSWORD)")
	fs.StringVar(&cfg.grpcAddr, "grpc-addr", defaultGRPCAddr, "the node's actor service (orbit serve --grpc-addr)")
	fs.StringVar(&cfg.httpAddr, "http-addr", "127.0.0.1:9090", "the node's HTTP listener (for cluster_status)")
	fs.StringVar(&cfg.certsDir, "certs-dir", "", "reach the node over TLS (RESP, gRPC, HTTPS), trusting DIR/ca.crt")
	fs.BoolVar(&cfg.opts.AllowWrites, "allow-writes", false, "let sql_query write (otherwise it runs in a READ ONLY transaction)")
	fs.IntVar(&cfg.opts.MaxRows, "max-rows", 1000, "the most rows (keys, elements) a tool returns")
	fs.DurationVar(&cfg.opts.Timeout, "timeout", 10*time.Second, "how long one tool call may take")
	fs.StringVar(&cfg.listen, "listen", "", "serve streamable HTTP at this address (/mcp) instead of stdio")
	fs.StringVar(&cfg.token, "token", "", "the bearer token HTTP clients must send (default $ORBIT_MCP_TOKEN)")
	fs.BoolVar(&cfg.insecure, "insecure", false, "with --listen on a loopback address, serve without a token")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if cfg.token == "" {
		cfg.token = os.Getenv("ORBIT_MCP_TOKEN")
	}
	if cfg.listen != "" && cfg.token == "" {
		host, _, err := net.SplitHostPort(cfg.listen)
		if err != nil {
			return nil, fmt.Errorf("--listen %q: %v", cfg.listen, err)
		}
		if ip := net.ParseIP(host); !cfg.insecure || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			return nil, errors.New("--listen needs a bearer token (--token or $ORBIT_MCP_TOKEN); --insecure serves without one, on a loopback address only")
		}
	}
	return cfg, nil
}

// server makes the MCP server for the flags.
func (cfg *mcpConfig) server() (*orbitmcp.Server, error) {
	opts := cfg.opts
	opts.Version = "orbit"
	var tlsConf *tls.Config
	if cfg.certsDir != "" {
		pool, err := security.LoadCA(cfg.certsDir)
		if err != nil {
			return nil, fmt.Errorf("--certs-dir %s: %v", cfg.certsDir, err)
		}
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	}
	opts.PostgresURL = cfg.pgURL
	if cfg.redisAddr != "" {
		opts.Redis = &redis.Options{Addr: cfg.redisAddr, Username: cfg.redisUser, Password: os.Getenv("ORBIT_REDIS_PASSWORD"), TLSConfig: tlsConf}
	}
	if cfg.grpcAddr != "" {
		creds := insecure.NewCredentials()
		if tlsConf != nil {
			creds = credentials.NewTLS(tlsConf)
		}
		opts.ActorAddr, opts.ActorDial = cfg.grpcAddr, []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	}
	if cfg.httpAddr != "" {
		opts.HTTPURL = "http://" + cfg.httpAddr
		if tlsConf != nil {
			opts.HTTPURL = "https://" + cfg.httpAddr
			opts.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf}, Timeout: opts.Timeout}
		}
	}
	return orbitmcp.New(opts)
}

// mcpHTTPHandler serves srv over streamable HTTP at /mcp, every request
// carrying "Authorization: Bearer token" (none needed when token is "").
func mcpHTTPHandler(srv *sdk.Server, token string) http.Handler {
	var h http.Handler = sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv },
		&sdk.StreamableHTTPOptions{Logger: slog.New(slog.DiscardHandler)})
	if token != "" {
		verify := func(_ context.Context, got string, _ *http.Request) (*auth.TokenInfo, error) {
			if subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				return nil, auth.ErrInvalidToken
			}
			return &auth.TokenInfo{Expiration: time.Now().Add(time.Hour)}, nil
		}
		h = auth.RequireBearerToken(verify, nil)(h)
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", h)
	return mux
}
