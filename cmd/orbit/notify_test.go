package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// TestServeKeyspaceNotifications: a go-redis subscriber receives the
// keyspace events of orbit serve's commands on four ranges, as a Redis
// subscriber would: plain commands, a MULTI block and an MSET whose keys
// lie in several ranges (cross-range transactions), a script, a function,
// another database, and a key the active expiry deletes.
func TestServeKeyspaceNotifications(t *testing.T) {
	addr := startServer(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	defer rdb.Close()
	if err := rdb.ConfigSet(ctx, "notify-keyspace-events", "KEA").Err(); err != nil {
		t.Fatal(err)
	}
	if got := rdb.ConfigGet(ctx, "notify-keyspace-events").Val()["notify-keyspace-events"]; got != "AKE" {
		t.Fatalf("CONFIG GET notify-keyspace-events: %q", got)
	}
	sub := rdb.PSubscribe(ctx, "__keyevent@*__:*")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the subscription's confirmation
		t.Fatal(err)
	}
	db9 := goredis.NewClient(&goredis.Options{Addr: addr, DB: 9})
	defer db9.Close()

	steps := []struct {
		run  func() error
		want []string // "db event key"
	}{
		{func() error { return rdb.Set(ctx, "a", "1", 0).Err() }, []string{"0 set a"}},
		{func() error { return rdb.IncrBy(ctx, "a", 2).Err() }, []string{"0 incrby a"}},
		{func() error { return rdb.RPush(ctx, "list", "x", "y").Err() }, []string{"0 rpush list"}},
		{func() error { return rdb.LPop(ctx, "list").Err() }, []string{"0 lpop list"}},
		{func() error { return rdb.LPop(ctx, "list").Err() }, []string{"0 lpop list", "0 del list"}},
		{func() error { return rdb.MSet(ctx, "k1", "v", "k2", "v", "k3", "v", "k4", "v").Err() },
			[]string{"0 set k1", "0 set k2", "0 set k3", "0 set k4"}},
		{func() error {
			_, err := rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
				p.HSet(ctx, "h", "f", "v")
				p.Expire(ctx, "k1", time.Hour)
				p.Del(ctx, "k2", "k3", "nosuch")
				return nil
			})
			return err
		}, []string{"0 hset h", "0 expire k1", "0 del k2", "0 del k3"}},
		{func() error {
			return rdb.Eval(ctx, "redis.call('sadd', KEYS[1], 'm') return redis.call('rename', KEYS[1], KEYS[2])", []string{"s", "s2"}).Err()
		}, []string{"0 sadd s", "0 rename_from s", "0 rename_to s2"}},
		{func() error {
			return rdb.FunctionLoadReplace(ctx, "#!lua name=notes\nredis.register_function('zput', function(keys, args) return redis.call('zadd', keys[1], 1, args[1]) end)").Err()
		}, nil},
		{func() error { return rdb.FCall(ctx, "zput", []string{"z"}, "m").Err() }, []string{"0 zadd z"}},
		{func() error { return db9.Set(ctx, "nine", "x", 0).Err() }, []string{"9 set nine"}},
		{func() error { return rdb.Set(ctx, "short", "x", 50*time.Millisecond).Err() }, []string{"0 set short", "0 expire short", "0 expired short"}},
	}
	msgs := sub.Channel()
	for i, s := range steps {
		if err := s.run(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		var got []string
		for len(got) < len(s.want) {
			select {
			case m := <-msgs:
				db, event, _ := strings.Cut(strings.TrimPrefix(m.Channel, "__keyevent@"), "__:")
				got = append(got, db+" "+event+" "+m.Payload)
			case <-time.After(5 * time.Second):
				t.Fatalf("step %d: got %q, want %q", i, got, s.want)
			}
		}
		if !slices.Equal(got, s.want) {
			t.Fatalf("step %d: got %q, want %q", i, got, s.want)
		}
	}
	select {
	case m := <-msgs:
		t.Fatalf("an event nothing caused: %v", m)
	case <-time.After(200 * time.Millisecond):
	}
}
