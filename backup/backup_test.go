package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/orbitkernel/orbit/kernel/hlc"
)

// TestStreamRoundTrip: a header, pairs (empty ones included) and the end
// read back as written; a stream cut anywhere short of its end, and an
// end whose count differs, are refused as corrupt; a sender's failure
// reads as FailedError.
func TestStreamRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	pairs := [][2]string{{"a", "1"}, {"b", ""}, {"c\x00d", strings.Repeat("v", 70000)}}
	if err := enc.Header([]byte(`{"format":1}`)); err != nil {
		t.Fatal(err)
	}
	for _, p := range pairs {
		if err := enc.Pair([]byte(p[0]), []byte(p[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.End(); err != nil {
		t.Fatal(err)
	}
	whole := buf.Bytes()
	read := func(b []byte) ([][2]string, error) {
		dec := NewDecoder(bytes.NewReader(b))
		if _, err := dec.Header(); err != nil {
			return nil, err
		}
		var got [][2]string
		for {
			en, ok, err := dec.Next()
			if err != nil || !ok {
				return got, err
			}
			got = append(got, [2]string{string(en.Key), string(en.Value)})
		}
	}
	got, err := read(whole)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(pairs) {
		t.Fatalf("read back %q, %v", got, err)
	}
	for cut := 0; cut < len(whole); cut += 1 + cut/7 {
		if _, err := read(whole[:cut]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("a stream cut at %d of %d: %v", cut, len(whole), err)
		}
	}
	// An end that counts one pair more.
	var lying bytes.Buffer
	enc = NewEncoder(&lying)
	_ = enc.Header(nil)
	_ = enc.Pair([]byte("k"), []byte("v"))
	enc.entries++
	_ = enc.End()
	if _, err := read(lying.Bytes()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("an end that lies: %v", err)
	}
	// A deletion (an incremental backup's) reads back as one, and counts.
	var inc bytes.Buffer
	enc = NewEncoder(&inc)
	_ = enc.Header(nil)
	_ = enc.Add(Entry{Key: []byte("kept"), Value: []byte{}})
	_ = enc.Add(Entry{Key: []byte("gone"), Deleted: true})
	_ = enc.End()
	dec := NewDecoder(&inc)
	if _, err := dec.Header(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []Entry{{Key: []byte("kept"), Value: []byte{}}, {Key: []byte("gone"), Deleted: true}} {
		en, ok, err := dec.Next()
		if err != nil || !ok || string(en.Key) != string(want.Key) || en.Deleted != want.Deleted || len(en.Value) != 0 {
			t.Fatalf("read %+v, %t, %v; want %+v", en, ok, err, want)
		}
	}
	if _, ok, err := dec.Next(); ok || err != nil || dec.Entries() != 2 {
		t.Fatalf("the end: %t, %v, %d entries", ok, err, dec.Entries())
	}
	// A record of the Redis keyspace reads back as one; it has no
	// deletions.
	var withRedis bytes.Buffer
	enc = NewEncoder(&withRedis)
	_ = enc.Header(nil)
	_ = enc.Add(Entry{Key: []byte("k"), Value: []byte("v")})
	_ = enc.Add(Entry{Key: []byte{0, 7, 'r'}, Value: []byte("rv"), Redis: true})
	if err := enc.Add(Entry{Key: []byte{0, 7, 'r'}, Deleted: true, Redis: true}); err == nil {
		t.Fatal("a deletion in the Redis keyspace was written")
	}
	_ = enc.End()
	dec = NewDecoder(&withRedis)
	if _, err := dec.Header(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []Entry{{Key: []byte("k"), Value: []byte("v")}, {Key: []byte{0, 7, 'r'}, Value: []byte("rv"), Redis: true}} {
		en, ok, err := dec.Next()
		if err != nil || !ok || !bytes.Equal(en.Key, want.Key) || !bytes.Equal(en.Value, want.Value) || en.Redis != want.Redis {
			t.Fatalf("read %+v, %t, %v; want %+v", en, ok, err, want)
		}
	}
	if _, ok, err := dec.Next(); ok || err != nil || dec.Entries() != 2 {
		t.Fatalf("the end: %t, %v, %d entries", ok, err, dec.Entries())
	}
	var failed bytes.Buffer
	enc = NewEncoder(&failed)
	_ = enc.Header(nil)
	_ = enc.Fail("the range is gone")
	var fe *FailedError
	if _, err := read(failed.Bytes()); !errors.As(err, &fe) || fe.Why != "the range is gone" {
		t.Fatalf("a failed stream: %v", err)
	}
}

// writeBackup writes n pairs of 1 MiB (key000, key001, ...) to loc.
func writeBackup(t *testing.T, loc Location, n int) Manifest {
	t.Helper()
	ctx := context.Background()
	w, err := NewWriter(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	ts := hlc.Timestamp{WallNanos: 1_700_000_000_123_456_789, Logical: 2}
	w.Describe(Manifest{Format: FormatVersion, Keyspace: KeyspaceTxn, ClusterID: "c1", AsOf: ts, AsOfTime: WallTime(ts)})
	for i := range n {
		if err := w.Add(Entry{Key: fmt.Appendf(nil, "key%03d", i), Value: megabyte}); err != nil {
			t.Fatal(err)
		}
	}
	m, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if m.Entries != uint64(n) || m.AsOf != ts {
		t.Fatalf("manifest: %d entries, as of %v", m.Entries, m.AsOf)
	}
	if _, err := NewWriter(ctx, loc); err == nil {
		t.Fatal("a second backup into a used location")
	}
	return m
}

var megabyte = bytes.Repeat([]byte("x"), 1<<20)

// readBackup verifies loc and reads every pair back, in order.
func readBackup(t *testing.T, loc Location, n int) {
	t.Helper()
	ctx := context.Background()
	got, err := Verify(ctx, loc)
	if err != nil || got.Entries != uint64(n) || got.ClusterID != "c1" {
		t.Fatalf("Verify: %+v, %v", got, err)
	}
	i := 0
	for _, f := range got.Files {
		if err := ReadFile(ctx, loc, f, func(en Entry) error {
			if string(en.Key) != fmt.Sprintf("key%03d", i) || !bytes.Equal(en.Value, megabyte) || en.Deleted {
				return fmt.Errorf("entry %d: %q", i, en.Key)
			}
			i++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if i != n {
		t.Fatalf("read %d pairs", i)
	}
}

// TestDirRoundTripAndCorruption: a directory written across several data
// files verifies and reads back in order; every kind of damage (a flipped
// byte, a truncated or missing file, an extra byte, a manifest edited or
// missing, another format) is refused by Verify with the file at fault
// named; a directory that holds something already takes no backup; an
// aborted backup leaves the directory empty.
func TestDirRoundTripAndCorruption(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "b")
	const n = 70 // 70 MiB: three files
	if m := writeBackup(t, dirLocation{dir}, n); len(m.Files) != 3 {
		t.Fatalf("%d files", len(m.Files))
	}
	readBackup(t, dirLocation{dir}, n)

	damage := map[string]func(t *testing.T, d string){
		"a flipped byte": func(t *testing.T, d string) {
			edit(t, d, "data-000002.obk", func(b []byte) []byte { b[len(b)/3] ^= 1; return b })
		},
		"a cut file": func(t *testing.T, d string) {
			edit(t, d, "data-000003.obk", func(b []byte) []byte { return b[:len(b)-1] })
		},
		"an extra byte": func(t *testing.T, d string) {
			edit(t, d, "data-000001.obk", func(b []byte) []byte { return append(b, 0) })
		},
		"a missing file": func(t *testing.T, d string) { remove(t, d, "data-000002.obk") },
		"no manifest":    func(t *testing.T, d string) { remove(t, d, ManifestName) },
		"a manifest that counts more": func(t *testing.T, d string) {
			edit(t, d, ManifestName, func(b []byte) []byte {
				return bytes.Replace(b, fmt.Appendf(nil, `"entries": %d`, n), fmt.Appendf(nil, `"entries": %d`, n+1), 1)
			})
		},
		"a manifest that counts Redis records": func(t *testing.T, d string) {
			edit(t, d, ManifestName, func(b []byte) []byte {
				return bytes.Replace(b, []byte(`"redis_entries": 0`), []byte(`"redis_entries": 1`), 1)
			})
		},
		"another format": func(t *testing.T, d string) {
			edit(t, d, ManifestName, func(b []byte) []byte { return bytes.Replace(b, []byte(`"format": 1`), []byte(`"format": 2`), 1) })
		},
		"a name outside": func(t *testing.T, d string) {
			edit(t, d, ManifestName, func(b []byte) []byte {
				return bytes.Replace(b, []byte(`"data-000001.obk"`), []byte(`"../data-000001.obk"`), 1)
			})
		},
	}
	for name, hurt := range damage {
		t.Run(name, func(t *testing.T) {
			d := filepath.Join(t.TempDir(), "copy")
			copyTree(t, dir, d)
			hurt(t, d)
			if _, err := Verify(context.Background(), dirLocation{d}); err == nil {
				t.Fatal("a damaged backup verified")
			}
		})
	}

	aborted := dirLocation{filepath.Join(t.TempDir(), "aborted")}
	w, err := NewWriter(context.Background(), aborted)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if err := w.Add(Entry{Key: fmt.Appendf(nil, "key%03d", i), Value: megabyte}); err != nil {
			t.Fatal(err)
		}
	}
	w.Abort()
	if names, err := aborted.Names(context.Background()); err != nil || len(names) != 0 {
		t.Fatalf("an aborted backup left %v (%v)", names, err)
	}
}

// TestS3RoundTrip: the same through an S3-compatible server (gofakes3,
// in process): a backup under a prefix verifies and reads back, a second
// one into that prefix is refused, and an object overwritten in the
// bucket fails verification.
func TestS3RoundTrip(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("backups"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	defer srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-key")
	url := "s3://backups/nightly/2026-12-05?insecure=1&endpoint=" + strings.TrimPrefix(srv.URL, "http://")
	loc, err := ParseLocation(url)
	if err != nil {
		t.Fatal(err)
	}
	const n = 40 // two files
	writeBackup(t, loc, n)
	readBackup(t, loc, n)
	names, err := loc.Names(context.Background())
	if err != nil || len(names) != 3 {
		t.Fatalf("objects under the prefix: %v, %v", names, err)
	}
	w, err := loc.Create(context.Background(), "data-000002.obk")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(fileMagic)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(context.Background(), loc); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a backup with an object replaced: %v", err)
	}
	for _, bad := range []string{"s3://", "s3://b?color=red", "ftp://host/x"} {
		if _, err := ParseLocation(bad); err == nil {
			t.Errorf("ParseLocation(%q) accepted", bad)
		}
	}
}

func edit(t *testing.T, dir, name string, f func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), f(b), 0o644); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

// TestParseAsOf: now, durations back, RFC 3339 times and a manifest's own
// timestamps; the future and nonsense are refused.
func TestParseAsOf(t *testing.T) {
	now := hlc.Timestamp{WallNanos: 1_800_000_000_000_000_000, Logical: 4}
	for _, tc := range []struct {
		in   string
		want hlc.Timestamp
	}{
		{"", now},
		{"-90s", now.Add(-90 * time.Second)},
		{"2026-12-05T10:00:00Z", hlc.Timestamp{WallNanos: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC).UnixNano()}},
		{"1796465301.999632645,3", hlc.Timestamp{WallNanos: 1796465301_999632645, Logical: 3}},
	} {
		got, err := ParseAsOf(tc.in, now)
		if err != nil || got != tc.want {
			t.Errorf("ParseAsOf(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"1h", "yesterday", "1796465301.5,3", "12,3"} {
		if got, err := ParseAsOf(bad, now); err == nil {
			t.Errorf("ParseAsOf(%q) = %v", bad, got)
		}
	}
}
