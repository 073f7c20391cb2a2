package mcp

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{{}, {HTTPURL: "http://x", MaxRows: -1}, {HTTPURL: "http://x", Timeout: -time.Second}} {
		if _, err := New(o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("New(%+v) = %v, want ErrInvalidOptions", o, err)
		}
	}
	if _, err := New(Options{PostgresURL: "::not a url::"}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("a bad PostgresURL: %v, want ErrInvalidOptions", err)
	}
}

// TestClusterStatus: only the tools of the listeners given are served;
// cluster_status returns the node's JSON, and a node's refusal is a tool
// error with its status.
func TestClusterStatus(t *testing.T) {
	var status atomic.Int32 // the node's answer; the handler runs on the server's goroutines
	status.Store(http.StatusOK)
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cluster" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(status.Load()))
		w.Write([]byte(`{"node": 1, "nodes": {"1": {"addr": "a"}}}`))
	}))
	defer node.Close()
	s, err := New(Options{HTTPURL: node.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, ct := sdk.NewInMemoryTransports()
	if _, err := s.Connect(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "t", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil || len(tools.Tools) != 1 || tools.Tools[0].Name != "cluster_status" {
		t.Fatalf("tools with only HTTPURL: %v %v", tools, err)
	}
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "cluster_status"})
	if err != nil || res.IsError {
		t.Fatalf("cluster_status: %v %v", res, err)
	}
	if m, ok := res.StructuredContent.(map[string]any); !ok || m["node"] != float64(1) {
		t.Fatalf("cluster_status = %#v", res.StructuredContent)
	}
	status.Store(http.StatusServiceUnavailable)
	res, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "cluster_status"})
	if err != nil || !res.IsError || !strings.Contains(res.Content[0].(*sdk.TextContent).Text, "503") {
		t.Fatalf("cluster_status from a node answering 503: %v %v", res, err)
	}
}
