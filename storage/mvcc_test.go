package storage

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"pgregory.net/rapid"

	"github.com/orbitkernel/orbit/kernel/hlc"
)

// mvccModel is what the MVCC layer must behave like: per user key, its
// committed versions and its intent.
type mvccModel map[string]*mvccModelKey

type mvccModelKey struct {
	versions map[hlc.Timestamp]mvccModelVersion
	intent   *Intent
	records  map[string]bool // run-local records' names
}

type mvccModelVersion struct {
	value   string
	deleted bool
}

func (m mvccModel) at(key string) *mvccModelKey {
	k := m[key]
	if k == nil {
		k = &mvccModelKey{versions: map[hlc.Timestamp]mvccModelVersion{}, records: map[string]bool{}}
		m[key] = k
	}
	return k
}

// sorted are the version timestamps, newest first.
func (k *mvccModelKey) sorted() []hlc.Timestamp {
	var ts []hlc.Timestamp
	for t := range k.versions {
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(a, b hlc.Timestamp) int { return b.Compare(a) })
	return ts
}

func (k *mvccModelKey) empty() bool { return k == nil || (len(k.versions) == 0 && k.intent == nil) }

// get is MVCCGet's specification.
func (k *mvccModelKey) get(key string, opts MVCCReadOptions) (string, bool, error) {
	v, live, _, _, err := k.decide(key, opts)
	if !live {
		v = ""
	}
	return v, live, err
}

// decide is what a read as of opts settles on for key: the value, live
// or deleted, and the version's timestamp (or the own intent's); decided
// is false when nothing at or below the read exists.
func (k *mvccModelKey) decide(key string, opts MVCCReadOptions) (value string, live bool, ts hlc.Timestamp, decided bool, err error) {
	if k == nil {
		return "", false, ts, false, nil
	}
	if in := k.intent; in != nil {
		own := opts.Txn != nil && in.Txn.ID == opts.Txn.ID
		for _, f := range opts.Finalized {
			if !own && f.Txn.ID == in.Txn.ID {
				// The read must see what the resolution will leave.
				resolved := &mvccModelKey{versions: maps.Clone(k.versions)}
				if f.Commit && f.Txn.Epoch == in.Txn.Epoch {
					resolved.versions[f.TS] = mvccModelVersion{value: string(in.Value), deleted: in.Deleted}
				}
				plain := opts
				plain.Finalized = nil
				return resolved.decide(key, plain)
			}
		}
		if own && in.Txn.Epoch == opts.Txn.Epoch {
			return string(in.Value), !in.Deleted, in.Txn.Timestamp, true, nil
		}
		if !own && !opts.limit().Less(in.Txn.Timestamp) {
			return "", false, ts, false, &IntentError{Key: []byte(key), Intent: *in}
		}
	}
	for _, ts := range k.sorted() {
		if opts.Timestamp.Less(ts) && !opts.limit().Less(ts) {
			return "", false, ts, false, &UncertainError{Key: []byte(key), ValueTS: ts}
		}
		if !opts.Timestamp.Less(ts) {
			v := k.versions[ts]
			return v.value, !v.deleted, ts, true, nil
		}
	}
	return "", false, ts, false, nil
}

func (k *mvccModelKey) newest() (hlc.Timestamp, bool) {
	ts := k.sorted()
	if len(ts) == 0 {
		return hlc.Timestamp{}, false
	}
	return ts[0], true
}

// TestMVCCMatchesItsModel drives the MVCC layer on a real engine and a
// model through random writes, intents, resolutions, reads, scans and
// garbage collection over keys chosen to test the key encoding (zero
// bytes, prefixes of each other), and requires the same answers.
func TestMVCCMatchesItsModel(t *testing.T) {
	keys := []string{"", "\x00", "a", "a\x00", "a\x00\x00", "a\x00b", "a\xff", "ab", "b"}
	outer := t
	rapid.Check(t, func(t *rapid.T) {
		e := openEngine(outer, vfs.NewMem(), testOptions())
		defer e.Close()
		model := mvccModel{}
		genKey := rapid.SampledFrom(keys)
		genTS := rapid.Custom(func(t *rapid.T) hlc.Timestamp {
			return hlc.Timestamp{WallNanos: rapid.Int64Range(0, 12).Draw(t, "wall"), Logical: rapid.Int32Range(0, 2).Draw(t, "logical")}
		})
		genTxn := rapid.Custom(func(t *rapid.T) TxnMeta {
			var id [16]byte
			id[15] = byte(rapid.IntRange(1, 3).Draw(t, "txn"))
			return TxnMeta{ID: id, Timestamp: genTS.Draw(t, "txnTS"), Epoch: uint32(rapid.IntRange(0, 1).Draw(t, "epoch"))}
		})
		genRead := rapid.Custom(func(t *rapid.T) MVCCReadOptions {
			o := MVCCReadOptions{Timestamp: genTS.Draw(t, "readTS")}
			if rapid.Bool().Draw(t, "uncertain") {
				o.Uncertainty = o.Timestamp.Add(time.Duration(rapid.Int64Range(0, 4).Draw(t, "window")))
			}
			if rapid.Bool().Draw(t, "inTxn") {
				txn := genTxn.Draw(t, "reader")
				o.Txn = &txn
			}
			if rapid.IntRange(0, 3).Draw(t, "changes") == 0 {
				o.Changes, o.Since = true, genTS.Draw(t, "since")
			}
			return o
		})
		for i := range rapid.IntRange(1, 80).Draw(t, "ops") {
			b := e.NewBatch()
			key := genKey.Draw(t, "key")
			k := model[key]
			switch op := rapid.IntRange(0, 9).Draw(t, "op"); op {
			case 0: // a committed write
				ts, deleted := genTS.Draw(t, "ts"), rapid.Bool().Draw(t, "deleted")
				value := fmt.Sprintf("v%d", i)
				err := MVCCPut(b, []byte(key), ts, []byte(value), deleted)
				var want error
				if k != nil && k.intent != nil {
					want = &IntentError{Key: []byte(key), Intent: *k.intent}
				} else if n, ok := k.newestOK(); ok && !n.Less(ts) {
					want = &WriteTooOldError{Key: []byte(key), Existing: n}
				}
				sameMVCCError(t, i, "put", err, want)
				if want == nil {
					model.at(key).versions[ts] = mvccModelVersion{value: value, deleted: deleted}
				}
			case 1: // an intent
				in := Intent{Txn: genTxn.Draw(t, "writer"), Value: fmt.Appendf(nil, "p%d", i), Deleted: rapid.Bool().Draw(t, "deleted")}
				err := MVCCPutIntent(b, []byte(key), in)
				var want error
				if k != nil && k.intent != nil && k.intent.Txn.ID != in.Txn.ID {
					want = &IntentError{Key: []byte(key), Intent: *k.intent}
				} else if n, ok := k.newestOK(); ok && !n.Less(in.Txn.Timestamp) {
					want = &WriteTooOldError{Key: []byte(key), Existing: n}
				}
				sameMVCCError(t, i, "intent", err, want)
				if want == nil {
					model.at(key).intent = &in
				}
			case 2: // a resolution
				txn, commit := genTxn.Draw(t, "resolver"), rapid.Bool().Draw(t, "commit")
				var commitTS hlc.Timestamp
				if k != nil && k.intent != nil {
					commitTS = k.intent.Txn.Timestamp.Add(time.Duration(rapid.Int64Range(0, 3).Draw(t, "pushed")))
				}
				done, err := MVCCResolveIntent(b, []byte(key), txn, commit, commitTS)
				want := k != nil && k.intent != nil && k.intent.Txn.ID == txn.ID
				if err != nil || done != want {
					t.Fatalf("op %d: resolve %q: %t, %v; want %t", i, key, done, err, want)
				}
				if want {
					in := k.intent
					k.intent = nil
					if commit && in.Txn.Epoch == txn.Epoch {
						k.versions[commitTS] = mvccModelVersion{value: string(in.Value), deleted: in.Deleted}
					}
				}
			case 3: // a read
				opts := withFinalized(t, model, genRead.Draw(t, "read"))
				v, found, err := MVCCGet(b, []byte(key), opts)
				wv, wfound, werr := k.get(key, opts)
				sameMVCCError(t, i, "get", err, werr)
				if werr == nil && (string(v) != wv || found != wfound) {
					t.Fatalf("op %d: get %q at %+v = %q, %t; want %q, %t", i, key, opts, v, found, wv, wfound)
				}
			case 4: // a scan
				opts := withFinalized(t, model, genRead.Draw(t, "read"))
				start, end := genKey.Draw(t, "start"), genKey.Draw(t, "end")+"\xff\xff"
				limit := rapid.IntRange(1, 4).Draw(t, "limit")
				kvs, resume, err := MVCCScan(b, []byte(start), []byte(end), opts, limit)
				wkvs, wresume, werr := model.scan(start, end, opts, limit)
				sameMVCCError(t, i, "scan", err, werr)
				if werr == nil && (fmt.Sprint(kvs) != fmt.Sprint(wkvs) || !bytes.Equal(resume, wresume)) {
					t.Fatalf("op %d: scan [%q, %q) limit %d at %+v = %q resume %q; want %q resume %q", i, start, end, limit, opts, kvs, resume, wkvs, wresume)
				}
			case 5: // garbage collection
				threshold := genTS.Draw(t, "threshold")
				n, err := MVCCGC(b, []byte(key), threshold)
				if err != nil {
					t.Fatalf("op %d: gc: %v", i, err)
				}
				want := 0
				if k != nil {
					kept := false
					for _, ts := range k.sorted() {
						if threshold.Less(ts) {
							continue
						}
						if !kept {
							kept = true
							if !k.versions[ts].deleted {
								continue
							}
						}
						delete(k.versions, ts)
						want++
					}
				}
				if n != want {
					t.Fatalf("op %d: gc %q at %v removed %d, want %d", i, key, threshold, n, want)
				}
			case 8: // what a write must come after
				newest, ok, in, err := MVCCLatest(b, []byte(key))
				wantNewest, wantOK := k.newestOK()
				if err != nil || ok != wantOK || newest != wantNewest || (in == nil) != (k == nil || k.intent == nil) || (in != nil && in.Txn.ID != k.intent.Txn.ID) {
					t.Fatalf("op %d: latest %q = %v %t %v %v", i, key, newest, ok, in, err)
				}
			case 7: // a refresh
				from, to := genTS.Draw(t, "from"), genTS.Draw(t, "to")
				txn := genTxn.Draw(t, "refresher")
				start, end := genKey.Draw(t, "start"), genKey.Draw(t, "end")+"\xff\xff"
				sameMVCCError(t, i, "refresh", MVCCRefresh(b, []byte(start), []byte(end), from, to, &txn), model.refresh(start, end, from, to, txn))
			case 6: // a run-local record: no read or write of versions sees it
				name := rapid.SampledFrom([]string{"", "txn", "txn\x7e"}).Draw(t, "local")
				b.Set(MVCCRunLocalKey([]byte(key), []byte(name)), []byte("record"))
				model.at(key).records[name] = true
			case 9: // the runs garbage collection walks
				start, end := genKey.Draw(t, "start"), genKey.Draw(t, "end")+"\xff\xff"
				limit := rapid.IntRange(1, 4).Draw(t, "limit")
				runs, resume, err := MVCCRuns(b, []byte(start), []byte(end), limit)
				var want []string
				for key, k := range model {
					if key >= start && key < end && (!k.empty() || len(k.records) > 0) {
						want = append(want, key)
					}
				}
				slices.Sort(want)
				var wantResume []byte
				if len(want) > limit {
					want, wantResume = want[:limit], []byte(want[limit])
				}
				var got []string
				for _, r := range runs {
					got = append(got, string(r.Key))
					if in := model[string(r.Key)].intent; (r.Intent == nil) != (in == nil) || (in != nil && (r.Intent.Txn.ID != in.Txn.ID || r.Intent.Txn.Timestamp != in.Txn.Timestamp)) {
						t.Fatalf("op %d: run %q lists intent %+v, want %+v", i, r.Key, r.Intent, in)
					}
					if len(r.Records) != len(model[string(r.Key)].records) {
						t.Fatalf("op %d: run %q lists %d records, want %d", i, r.Key, len(r.Records), len(model[string(r.Key)].records))
					}
					for _, rec := range r.Records {
						if !model[string(r.Key)].records[string(rec.Key)] {
							t.Fatalf("op %d: run %q lists record %q it never had", i, r.Key, rec.Key)
						}
					}
				}
				if err != nil || !slices.Equal(got, want) || !bytes.Equal(resume, wantResume) {
					t.Fatalf("op %d: runs [%q, %q) limit %d = %q resume %q, %v; want %q resume %q", i, start, end, limit, got, resume, err, want, wantResume)
				}
			}
			if err := b.Commit(false); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// withFinalized adds to opts, sometimes, a transaction the reader knows
// finalized: committed (in the epoch drawn) or aborted, at a commit
// timestamp no lower than any of its intents' (a commit never lands below
// its writes).
func withFinalized(t *rapid.T, model mvccModel, opts MVCCReadOptions) MVCCReadOptions {
	if !rapid.Bool().Draw(t, "knowsFinalized") {
		return opts
	}
	var f FinalizedTxn
	f.Txn.ID[15] = byte(rapid.IntRange(1, 3).Draw(t, "finalized"))
	f.Txn.Epoch = uint32(rapid.IntRange(0, 1).Draw(t, "finalizedEpoch"))
	f.Commit = rapid.Bool().Draw(t, "finalizedCommit")
	for _, k := range model {
		if k.intent != nil && k.intent.Txn.ID == f.Txn.ID && f.TS.Less(k.intent.Txn.Timestamp) {
			f.TS = k.intent.Txn.Timestamp
		}
	}
	f.TS = f.TS.Add(time.Duration(rapid.Int64Range(0, 3).Draw(t, "finalizedPushed")))
	opts.Finalized = []FinalizedTxn{f}
	return opts
}

func (k *mvccModelKey) newestOK() (hlc.Timestamp, bool) {
	if k == nil {
		return hlc.Timestamp{}, false
	}
	return k.newest()
}

// scan is MVCCScan's specification.
func (m mvccModel) scan(start, end string, opts MVCCReadOptions, limit int) (kvs []KeyValue, resume []byte, err error) {
	var keys []string
	for key, k := range m {
		if !k.empty() && key >= start && key < end {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	for _, key := range keys {
		if len(kvs) == limit {
			return kvs, []byte(key), nil
		}
		v, live, ts, decided, err := m[key].decide(key, opts)
		switch {
		case err != nil:
			return nil, nil, err
		case opts.Changes && decided && opts.Since.Less(ts):
			kvs = append(kvs, KeyValue{Key: []byte(key), Value: ChangeValue([]byte(v), !live)})
		case !opts.Changes && live:
			kvs = append(kvs, KeyValue{Key: []byte(key), Value: []byte(v)})
		}
	}
	return kvs, nil, nil
}

// refresh is MVCCRefresh's specification.
func (m mvccModel) refresh(start, end string, from, to hlc.Timestamp, txn TxnMeta) error {
	var keys []string
	for key := range m {
		if key >= start && key < end {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	for _, key := range keys {
		k := m[key]
		if in := k.intent; in != nil && in.Txn.ID != txn.ID && !to.Less(in.Txn.Timestamp) {
			return &IntentError{Key: []byte(key), Intent: *in}
		}
		for _, ts := range k.sorted() {
			if from.Less(ts) && !to.Less(ts) {
				return &UncertainError{Key: []byte(key), ValueTS: ts}
			}
		}
	}
	return nil
}

// sameError requires err to be want's kind with the same details.
func sameMVCCError(t *rapid.T, op int, what string, err, want error) {
	if fmt.Sprint(err) != fmt.Sprint(want) {
		t.Fatalf("op %d: %s: error %v, want %v", op, what, err, want)
	}
	for _, kind := range []error{ErrIntent, ErrWriteTooOld, ErrUncertain} {
		if errors.Is(err, kind) != errors.Is(want, kind) {
			t.Fatalf("op %d: %s: error %v, want %v", op, what, err, want)
		}
	}
}

// TestMVCCKeysKeepUserKeyOrder: runs sort as their user keys do, and a
// run's versions sort newest first, between its intent and the next run.
func TestMVCCKeysKeepUserKeyOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		genKey := rapid.SliceOfN(rapid.SampledFrom([]byte{0, 1, 0xfe, 0xff, 'a'}), 0, 5)
		genTS := rapid.Custom(func(t *rapid.T) hlc.Timestamp {
			return hlc.Timestamp{WallNanos: rapid.Int64Min(0).Draw(t, "wall"), Logical: rapid.Int32().Draw(t, "logical")}
		})
		a, b := genKey.Draw(t, "a"), genKey.Draw(t, "b")
		ta, tb := genTS.Draw(t, "ta"), genTS.Draw(t, "tb")
		ka, kb := mvccVersionKey(a, ta), mvccVersionKey(b, tb)
		want := bytes.Compare(a, b)
		if want == 0 {
			want = tb.Compare(ta) // newest first
		}
		if got := bytes.Compare(ka, kb); got != want {
			t.Fatalf("(%q, %v) vs (%q, %v): stored keys compare %d, want %d", a, ta, b, tb, got, want)
		}
		if !bytes.Equal(a, b) && bytes.Compare(a, b) < 0 && bytes.Compare(mvccRun(b), ka) <= 0 {
			t.Fatalf("version %q of %q sorts after the run of %q", ka, a, b)
		}
		key, ts, intent, err := decodeMVCCKey(ka)
		if err != nil || intent || !bytes.Equal(key, a) || ts != ta {
			t.Fatalf("decode %q: %q %v %t %v", ka, key, ts, intent, err)
		}
	})
}

// TestMVCCSplitKeysKeepRunsWhole: the split point of any stored key of a
// run (intent, version, run-local record) sorts after every stored key of
// earlier user keys and at or before every stored key of its own; the user
// key at a split point is the run's own, and inside a run the next one.
func TestMVCCSplitKeysKeepRunsWhole(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		genKey := rapid.SliceOfN(rapid.SampledFrom([]byte{0, 1, 0x7f, 0x80, 0xfe, 0xff, 'a'}), 0, 5)
		genTS := rapid.Custom(func(t *rapid.T) hlc.Timestamp {
			return hlc.Timestamp{WallNanos: rapid.Int64Min(0).Draw(t, "wall"), Logical: rapid.Int32().Draw(t, "logical")}
		})
		stored := func(k []byte, which string) []byte {
			switch rapid.IntRange(0, 2).Draw(t, which) {
			case 0:
				return mvccRun(k)
			case 1:
				return mvccVersionKey(k, genTS.Draw(t, which+"ts"))
			}
			return MVCCRunLocalKey(k, []byte(genKey.Filter(func(b []byte) bool { return len(b) == 0 || b[0] < 0x7f }).Draw(t, which+"local")))
		}
		a, b := genKey.Draw(t, "a"), genKey.Draw(t, "b")
		sa, sb := stored(a, "sa"), stored(b, "sb")
		split, ok := MVCCSplitKey(sb)
		if !ok {
			t.Fatalf("no split key for %q", sb)
		}
		if cmp := bytes.Compare(a, b); (cmp < 0) != (bytes.Compare(sa, split) < 0) {
			t.Fatalf("split point %q of %q (key %q) vs %q (key %q): user keys compare %d", split, sb, b, sa, a, cmp)
		}
		if got := MVCCKeyAt(split); !bytes.Equal(got, b) {
			t.Fatalf("key at split point %q = %q, want %q", split, got, b)
		}
		if got := MVCCKeyAt(sb); !bytes.Equal(got, append(slices.Clone(b), 0)) && !bytes.Equal(sb, mvccRun(b)) {
			t.Fatalf("key at %q (inside %q's run) = %q, want the next key", sb, b, got)
		}
		if bytes.Equal(sb, mvccRun(b)) && !bytes.Equal(MVCCKeyAt(sb), b) {
			t.Fatalf("key at %q (%q's run start) = %q", sb, b, MVCCKeyAt(sb))
		}
	})
}
