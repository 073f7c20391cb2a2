package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/orbitkernel/orbit/internal/mutation"
	"github.com/orbitkernel/orbit/kernel/hlc"
)

// MVCC: the versioned keys of a transactional keyspace (docs/txn.md, step
// 2). Nothing above this file uses them yet; the transaction layer will.
//
// A user key K (the caller's, keyspace prefix included) is stored as a run
// of keys, all under the user data prefix:
//
//	esc(K) 0x00                 its intent, if any (at most one)
//	esc(K) 0x00 ^enc(ts)        a committed version at ts, newest first
//
// esc escapes every 0x00 of K as 0x00 0xFF, so encoded runs keep the user
// keys' order and no run is a prefix of another's; enc is hlc's
// order-preserving encoding, inverted (^) so that newer versions sort
// first and a read at ts seeks straight to the newest version at or
// below it. A version's first byte is 0x7F or below for every timestamp
// at or after the Unix epoch (MVCC timestamps never precede it), below the
// 0xFF that follows an escaped 0x00: a run ends before the next key's
// begins. A range must never split inside a run (split keys in a
// transactional keyspace are user keys' run starts).
//
// Values: a version is a tag byte (mvccValue or mvccTombstone) and the
// value; an intent is its transaction's meta and the provisional value
// (encodeIntent).

const (
	mvccValue     byte = 0
	mvccTombstone byte = 1
)

// mvccRun is the prefix of user key's run: esc(key) 0x00, also its intent's
// key.
func mvccRun(key []byte) []byte {
	out := make([]byte, 0, len(key)+2+hlc.EncodedLen)
	for _, c := range key {
		out = append(out, c)
		if c == 0 {
			out = append(out, 0xFF)
		}
	}
	return append(out, 0)
}

// Run-local records: keys after a run's versions and before the next
// run (runEnd's 0x80 and up, below the 0xFF of an escaped zero), for
// records that belong with a user key and must move with it through
// splits (a transaction record, anchored at its first key). Reads and
// scans of versions never see them.
const runLocalMark byte = 0x80

// errRunLocal is decodeMVCCKey's answer for a run-local record's key.
var errRunLocal = errors.New("storage: a run-local record, not a version")

// MVCCRunLocalKey is the key of key's run-local record named local (the
// caller's names must not start with 0x7F or more: the mark and the name
// stay below the next run's 0xFF).
func MVCCRunLocalKey(key, local []byte) []byte {
	if len(local) > 0 && local[0] >= 0x7F {
		panic(fmt.Sprintf("storage: run-local name %q starts at or above 0x7F", local))
	}
	return append(append(mvccRun(key), runLocalMark), local...)
}

// MVCCRouteKey is where key's run starts: the key a request about key is
// routed by (its intent, versions and run-local records are all in the
// range holding it, as long as ranges split at MVCCSplitKey's keys).
func MVCCRouteKey(key []byte) []byte { return mvccRun(key) }

// MVCCIntentKey is where key's intent is kept, and the prefix of every
// version of key: a write there or under it is the intent written,
// replaced or removed, or a version committed (a waiter for the key waits
// for one: consensus.WaitForWrite).
func MVCCIntentKey(key []byte) []byte { return mvccRun(key) }

// MVCCSplitKey is the split point nearest before the run that stored
// key belongs to: esc(K) for its user key K, which sorts after every
// earlier run (their terminator 0x00 and what follows it are below any
// byte of K's, or below the 0xFF of an escaped zero) and at or before
// K's own. False: stored is not a run's key.
func MVCCSplitKey(stored []byte) ([]byte, bool) {
	key, ok := MVCCUserKey(stored)
	if !ok {
		return nil, false
	}
	return MVCCSplitKeyOf(key), true
}

// MVCCUserKey is the user key whose run stored (a version, an intent or
// a run-local record) belongs to. False: stored is not a run's key.
func MVCCUserKey(stored []byte) ([]byte, bool) {
	key, _, _, err := decodeMVCCKey(stored)
	if err != nil && !errors.Is(err, errRunLocal) {
		return nil, false
	}
	return key, true
}

// MVCCSplitKeyOf is the split point just before user key K's run,
// esc(K): a range that starts there holds K's run and every later one.
func MVCCSplitKeyOf(key []byte) []byte {
	run := mvccRun(key)
	return run[:len(run)-1]
}

// MVCCKeyAt is the first user key whose run starts at or after bound, a
// range's boundary: for a split point esc(K) it is K (the unescaped
// bytes), and for a bound inside K's run the key after K.
func MVCCKeyAt(bound []byte) []byte {
	key, rest, terminated := unescapeKey(bound)
	if terminated && len(rest) > 0 {
		// Inside key's run: the next user key's run is the first after it.
		return append(key, 0)
	}
	return key // the split point esc(K), or exactly where K's run starts
}

// unescapeKey reads an escaped user key off the front of b: its bytes,
// what follows its run's terminator (a lone 0x00), and whether there was
// one.
func unescapeKey(b []byte) (key, rest []byte, terminated bool) {
	key = make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != 0 {
			key = append(key, b[i])
			continue
		}
		if i+1 < len(b) && b[i+1] == 0xFF {
			key = append(key, 0)
			i++
			continue
		}
		return key, b[i+1:], true
	}
	return key, nil, false
}

// mvccVersionKey is the key of key's version at ts.
func mvccVersionKey(key []byte, ts hlc.Timestamp) []byte {
	return appendInverted(mvccRun(key), ts)
}

// appendInverted returns a new slice: run followed by ts's inverted
// encoding. (Appending in place would let two keys made from one run
// share their bytes: the model test caught an uncertainty check that read
// its start key overwritten by its end key.)
func appendInverted(run []byte, ts hlc.Timestamp) []byte {
	if ts.WallNanos < 0 {
		panic(fmt.Sprintf("storage: MVCC timestamp %v before the Unix epoch", ts))
	}
	n := len(run)
	b := ts.AppendEncoded(append(make([]byte, 0, n+hlc.EncodedLen), run...))
	for i := n; i < len(b); i++ {
		b[i] = ^b[i]
	}
	return b
}

// decodeMVCCKey splits a stored key of a run into its user key and, for a
// version, its timestamp (intent: an intent's key).
func decodeMVCCKey(stored []byte) (key []byte, ts hlc.Timestamp, intent bool, err error) {
	key, rest, terminated := unescapeKey(stored)
	switch {
	case !terminated:
		return nil, hlc.Timestamp{}, false, fmt.Errorf("storage: MVCC key %q has no terminator", stored)
	case len(rest) == 0:
		return key, hlc.Timestamp{}, true, nil
	case rest[0] >= runLocalMark:
		return key, hlc.Timestamp{}, false, errRunLocal
	}
	inv := make([]byte, len(rest))
	for j, b := range rest {
		inv[j] = ^b
	}
	if ts, err = hlc.Decode(inv); err != nil {
		return nil, hlc.Timestamp{}, false, fmt.Errorf("storage: MVCC key %q: %w", stored, err)
	}
	return key, ts, false, nil
}

// TxnMeta is what an intent records of its transaction.
type TxnMeta struct {
	ID        [16]byte
	Timestamp hlc.Timestamp // the transaction's write timestamp
	Epoch     uint32        // bumped by a restart: intents of older epochs are the transaction's past
	// Anchor is the user key the transaction's record is kept with (its
	// first write's): where a conflicting request finds its status.
	Anchor []byte
}

// Intent is a provisional write: the value (or deletion) a transaction
// wrote, at its write timestamp, until it commits or aborts.
type Intent struct {
	Txn     TxnMeta
	Value   []byte
	Deleted bool
}

func encodeIntent(in Intent) []byte {
	b := append([]byte(nil), in.Txn.ID[:]...)
	b = in.Txn.Timestamp.AppendEncoded(b)
	b = binary.BigEndian.AppendUint32(b, in.Txn.Epoch)
	b = binary.AppendUvarint(b, uint64(len(in.Txn.Anchor)))
	b = append(b, in.Txn.Anchor...)
	tag := mvccValue
	if in.Deleted {
		tag = mvccTombstone
	}
	return append(append(b, tag), in.Value...)
}

func decodeIntent(b []byte) (Intent, error) {
	const head = 16 + hlc.EncodedLen + 4
	if len(b) < head {
		return Intent{}, fmt.Errorf("storage: intent of %d bytes", len(b))
	}
	var in Intent
	copy(in.Txn.ID[:], b)
	ts, err := hlc.Decode(b[16 : 16+hlc.EncodedLen])
	if err != nil {
		return Intent{}, err
	}
	in.Txn.Timestamp = ts
	in.Txn.Epoch = binary.BigEndian.Uint32(b[16+hlc.EncodedLen:])
	b = b[head:]
	n, w := binary.Uvarint(b)
	if w <= 0 || uint64(len(b)-w) < n+1 {
		return Intent{}, fmt.Errorf("storage: intent's anchor does not decode")
	}
	in.Txn.Anchor = append([]byte{}, b[w:w+int(n)]...)
	b = b[w+int(n):]
	in.Deleted = b[0] == mvccTombstone
	in.Value = append([]byte{}, b[1:]...)
	return in, nil
}

// Typed MVCC conflicts, checked with errors.Is; each comes as a *…Error
// with the details.
var (
	// ErrWriteTooOld: a write at a timestamp at or below the key's newest
	// committed version. The transaction's write timestamp must move above
	// it (and the transaction refresh its reads).
	ErrWriteTooOld = errors.New("storage: write too old")
	// ErrUncertain: a read met a committed version above its timestamp
	// but within its uncertainty limit: it may have happened before the
	// read began, on a clock ahead of the reader's.
	ErrUncertain = errors.New("storage: read uncertain")
	// ErrIntent: another transaction's intent is in the way; the caller
	// pushes that transaction (docs/txn.md, step 6).
	ErrIntent = errors.New("storage: conflicting intent")
)

// WriteTooOldError names the key and its newest version's timestamp.
type WriteTooOldError struct {
	Key      []byte
	Existing hlc.Timestamp
}

func (e *WriteTooOldError) Error() string {
	return fmt.Sprintf("%v: %q has a version at %v", ErrWriteTooOld, e.Key, e.Existing)
}
func (e *WriteTooOldError) Unwrap() error { return ErrWriteTooOld }

// UncertainError names the key and the uncertain version's timestamp.
type UncertainError struct {
	Key     []byte
	ValueTS hlc.Timestamp
}

func (e *UncertainError) Error() string {
	return fmt.Sprintf("%v: %q has a version at %v", ErrUncertain, e.Key, e.ValueTS)
}
func (e *UncertainError) Unwrap() error { return ErrUncertain }

// IntentError names the key and the intent in the way.
type IntentError struct {
	Key    []byte
	Intent Intent
}

func (e *IntentError) Error() string {
	return fmt.Sprintf("%v: %q by transaction %x at %v", ErrIntent, e.Key, e.Intent.Txn.ID, e.Intent.Txn.Timestamp)
}
func (e *IntentError) Unwrap() error { return ErrIntent }

// MVCCReader is what MVCC reads need: a Batch, a View or an Engine.
type MVCCReader interface {
	Get(key []byte) ([]byte, error)
	Scan(start, end []byte, limit int) (kvs []KeyValue, resume []byte, err error)
}

// MVCCWriter is what MVCC writes need: a Batch.
type MVCCWriter interface {
	MVCCReader
	Set(key, value []byte)
	Delete(key []byte)
}

// MVCCReadOptions say how a read sees the versions.
type MVCCReadOptions struct {
	// Timestamp is the read's: it sees the newest version at or below it.
	Timestamp hlc.Timestamp
	// Uncertainty, when above Timestamp, is the read's uncertainty limit:
	// a committed version in (Timestamp, Uncertainty] fails the read with
	// ErrUncertain.
	Uncertainty hlc.Timestamp
	// Txn is the reader's transaction (nil: none). Its own intent of its
	// current epoch is read as the value; another transaction's intent at
	// or below the uncertainty limit (or Timestamp) fails the read with
	// ErrIntent.
	Txn *TxnMeta
	// Changes makes MVCCScan return what changed in (Since, Timestamp]:
	// every key whose newest version at or below Timestamp lies above
	// Since, deletions included, each value tagged (ChangeValue) — an
	// incremental backup's read.
	Changes bool
	Since   hlc.Timestamp
	// Finalized are transactions whose outcome the reader knows for
	// certain while their intents are still being resolved (its own
	// coordinator's commits: txn's asynchronous resolution). A read takes
	// such a transaction's intent as its resolution will leave it, a
	// version at the commit timestamp or nothing, instead of failing
	// with ErrIntent (CockroachDB's finalized-transaction cache).
	Finalized []FinalizedTxn
}

// FinalizedTxn is a transaction whose decision is durable: committed at
// TS in Txn's epoch, or aborted.
type FinalizedTxn struct {
	Txn    TxnMeta
	Commit bool
	TS     hlc.Timestamp
}

// settled says how the resolution of in will leave it when opts knows
// its transaction finalized (known): a version at ts holding in's value
// (version), or nothing. It mirrors MVCCResolveIntent: only an intent of
// the committing epoch becomes a version.
func (o MVCCReadOptions) settled(in Intent) (ts hlc.Timestamp, version, known bool) {
	for _, f := range o.Finalized {
		if f.Txn.ID == in.Txn.ID {
			return f.TS, f.Commit && f.Txn.Epoch == in.Txn.Epoch, true
		}
	}
	return hlc.Timestamp{}, false, false
}

// ChangeValue is a change as MVCCScan returns it under Changes: a byte
// (0: the value follows; 1: the key was deleted) and the value.
func ChangeValue(value []byte, deleted bool) []byte {
	if deleted {
		return []byte{1}
	}
	return append([]byte{0}, value...)
}

// SplitChange is ChangeValue's inverse (ok false: not a change).
func SplitChange(v []byte) (value []byte, deleted, ok bool) {
	if len(v) == 0 || v[0] > 1 || (v[0] == 1 && len(v) > 1) {
		return nil, false, false
	}
	return v[1:], v[0] == 1, true
}

// limit is the highest timestamp whose writes the read must know of.
func (o MVCCReadOptions) limit() hlc.Timestamp {
	if o.Timestamp.Less(o.Uncertainty) {
		return o.Uncertainty
	}
	return o.Timestamp
}

// MVCCGet reads key as of opts.
func MVCCGet(r MVCCReader, key []byte, opts MVCCReadOptions) (value []byte, found bool, err error) {
	run := mvccRun(key)
	in, ok, err := readIntent(r, run)
	if err != nil {
		return nil, false, err
	}
	if ok {
		own := opts.Txn != nil && in.Txn.ID == opts.Txn.ID
		ts, version, known := opts.settled(in)
		switch {
		case !own && known && version && !opts.Timestamp.Less(ts):
			// A finalized commit at or below the read: its value is the
			// newest version the read sees.
			if in.Deleted {
				return nil, false, nil
			}
			return slices.Clone(in.Value), true, nil
		case !own && known && version && !opts.limit().Less(ts):
			return nil, false, &UncertainError{Key: key, ValueTS: ts}
		case !own && known:
			// Above the read, or aborted: the versions beneath decide.
		case own && in.Txn.Epoch == opts.Txn.Epoch && in.Deleted:
			return nil, false, nil
		case own && in.Txn.Epoch == opts.Txn.Epoch:
			return in.Value, true, nil
		case !own && !opts.limit().Less(in.Txn.Timestamp) && mutation.On(MutReadsUncommitted):
			return in.Value, !in.Deleted, nil
		case !own && !opts.limit().Less(in.Txn.Timestamp):
			return nil, false, &IntentError{Key: key, Intent: in}
		}
	}
	if ts, ok, err := uncertainVersion(r, run, opts); err != nil || ok {
		if err == nil {
			err = &UncertainError{Key: key, ValueTS: ts}
		}
		return nil, false, err
	}
	kvs, _, err := r.Scan(appendInverted(run, opts.Timestamp), runEnd(run), 1)
	if err != nil || len(kvs) == 0 {
		return nil, false, err
	}
	return versionValue(kvs[0].Value)
}

// runEnd is a key after run's versions and before the next run: every
// version's first byte after the run is 0x7F or below (an inverted
// encoding of a timestamp at or after the Unix epoch), and a longer key's
// run continues with 0xFF (an escaped zero byte). (run with its last byte
// raised would take in the runs of the keys that extend this one with a
// zero byte; the model test found it.)
func runEnd(run []byte) []byte {
	return append(append([]byte(nil), run...), 0x80)
}

func readIntent(r MVCCReader, run []byte) (Intent, bool, error) {
	v, err := r.Get(run)
	if errors.Is(err, ErrNotFound) {
		return Intent{}, false, nil
	}
	if err != nil {
		return Intent{}, false, err
	}
	in, err := decodeIntent(v)
	return in, err == nil, err
}

// uncertainVersion finds a committed version of run in (opts.Timestamp,
// opts.Uncertainty].
func uncertainVersion(r MVCCReader, run []byte, opts MVCCReadOptions) (hlc.Timestamp, bool, error) {
	if !opts.Timestamp.Less(opts.Uncertainty) {
		return hlc.Timestamp{}, false, nil
	}
	kvs, _, err := r.Scan(appendInverted(run, opts.Uncertainty), appendInverted(run, opts.Timestamp), 1)
	if err != nil || len(kvs) == 0 {
		return hlc.Timestamp{}, false, err
	}
	_, ts, _, err := decodeMVCCKey(kvs[0].Key)
	return ts, err == nil, err
}

func versionValue(v []byte) ([]byte, bool, error) {
	if len(v) == 0 {
		return nil, false, fmt.Errorf("storage: an MVCC version without its tag")
	}
	if v[0] == mvccTombstone {
		return nil, false, nil
	}
	return append([]byte{}, v[1:]...), true, nil
}

// newestVersion is the timestamp of run's newest committed version.
func newestVersion(r MVCCReader, run []byte) (hlc.Timestamp, bool, error) {
	kvs, _, err := r.Scan(append(append([]byte(nil), run...), 0), runEnd(run), 1)
	if err != nil || len(kvs) == 0 {
		return hlc.Timestamp{}, false, err
	}
	_, ts, _, err := decodeMVCCKey(kvs[0].Key)
	return ts, err == nil, err
}

// mvccScanPage bounds the stored keys (versions included) one step of an
// MVCC scan reads.
const mvccScanPage = 256

// MVCCScan reads the live keys in [start, end) as of opts, at most limit
// of them, and the user key to resume at (nil: the span is done).
func MVCCScan(r MVCCReader, start, end []byte, opts MVCCReadOptions, limit int) (kvs []KeyValue, resume []byte, err error) {
	if limit <= 0 {
		panic(fmt.Sprintf("storage: MVCC scan with limit %d", limit))
	}
	if end == nil {
		// The user keyspace holds other keyspaces' plain keys too: an
		// MVCC scan stays inside its own.
		return nil, nil, errors.New("storage: an MVCC scan needs an end key (its keyspace's)")
	}
	lo, hi := mvccRun(start), mvccRun(end)
	// One user key at a time: its intent, then its versions.
	var (
		cur      []byte // the user key being read
		decided  bool   // cur's value is settled (read, or shadowed)
		haveCur  bool
		curValue []byte
		curLive  bool
		curTS    hlc.Timestamp // the version read (or the own intent's)
	)
	flush := func() {
		switch {
		case !haveCur:
		case opts.Changes && decided && opts.Since.Less(curTS):
			kvs = append(kvs, KeyValue{Key: cur, Value: ChangeValue(curValue, !curLive)})
		case !opts.Changes && curLive:
			kvs = append(kvs, KeyValue{Key: cur, Value: curValue})
		}
	}
	for {
		page, next, err := r.Scan(lo, hi, mvccScanPage)
		if err != nil {
			return nil, nil, err
		}
		for _, kv := range page {
			key, ts, isIntent, err := decodeMVCCKey(kv.Key)
			if errors.Is(err, errRunLocal) {
				continue // a record kept with the key, not a version
			}
			if err != nil {
				return nil, nil, err
			}
			if !haveCur || !bytes.Equal(key, cur) {
				flush()
				if len(kvs) == limit {
					return kvs, key, nil
				}
				cur, haveCur, decided, curLive, curValue, curTS = key, true, false, false, nil, hlc.Timestamp{}
			}
			if decided {
				continue
			}
			var finalized *Intent // an intent read as the version its resolution leaves
			if isIntent {
				in, err := decodeIntent(kv.Value)
				if err != nil {
					return nil, nil, err
				}
				own := opts.Txn != nil && in.Txn.ID == opts.Txn.ID
				settledTS, version, known := opts.settled(in)
				switch {
				case !own && known && version:
					finalized, ts = &in, settledTS
				case !own && known:
					continue // aborted: the versions beneath decide
				case own && in.Txn.Epoch == opts.Txn.Epoch:
					decided, curLive, curValue, curTS = true, !in.Deleted, in.Value, in.Txn.Timestamp
					continue
				case !own && !opts.limit().Less(in.Txn.Timestamp):
					return nil, nil, &IntentError{Key: key, Intent: in}
				default:
					continue
				}
			}
			switch {
			case opts.Timestamp.Less(ts) && !opts.limit().Less(ts):
				return nil, nil, &UncertainError{Key: key, ValueTS: ts}
			case opts.Timestamp.Less(ts):
				continue // above the read: not seen
			}
			if finalized != nil {
				decided, curLive, curValue, curTS = true, !finalized.Deleted, slices.Clone(finalized.Value), ts
				continue
			}
			v, live, err := versionValue(kv.Value)
			if err != nil {
				return nil, nil, err
			}
			decided, curLive, curValue, curTS = true, live, v, ts
		}
		if next == nil {
			break
		}
		lo = next
	}
	flush()
	if len(kvs) > limit {
		kvs = kvs[:limit]
	}
	return kvs, nil, nil
}

// MVCCRefresh checks that a transaction's reads of [start, end) at from
// would read the same at to: no committed version in (from, to], and no
// other transaction's intent at or below to (its own intents are its
// writes, not what it read). It returns an UncertainError naming the
// first such version, or an IntentError. Unlike a scan it looks beneath
// the transaction's own intents: a version committed there after the
// read is exactly what a refresh must find.
func MVCCRefresh(r MVCCReader, start, end []byte, from, to hlc.Timestamp, txn *TxnMeta) error {
	if end == nil {
		return errors.New("storage: an MVCC refresh needs an end key (its keyspace's)")
	}
	lo, hi := mvccRun(start), mvccRun(end)
	for {
		page, next, err := r.Scan(lo, hi, mvccScanPage)
		if err != nil {
			return err
		}
		for _, kv := range page {
			key, ts, isIntent, err := decodeMVCCKey(kv.Key)
			switch {
			case errors.Is(err, errRunLocal):
				continue
			case err != nil:
				return err
			case isIntent:
				in, err := decodeIntent(kv.Value)
				if err != nil {
					return err
				}
				if (txn == nil || in.Txn.ID != txn.ID) && !to.Less(in.Txn.Timestamp) {
					return &IntentError{Key: key, Intent: in}
				}
			case from.Less(ts) && !to.Less(ts):
				return &UncertainError{Key: key, ValueTS: ts}
			}
		}
		if next == nil {
			return nil
		}
		lo = next
	}
}

// MVCCLatest reports what a write of key must come after: its newest
// committed version's timestamp (ok false: none) and any intent on it.
func MVCCLatest(r MVCCReader, key []byte) (newest hlc.Timestamp, ok bool, intent *Intent, err error) {
	run := mvccRun(key)
	in, has, err := readIntent(r, run)
	if err != nil {
		return hlc.Timestamp{}, false, nil, err
	}
	if has {
		intent = &in
	}
	newest, ok, err = newestVersion(r, run)
	return newest, ok, intent, err
}

// MVCCRunInfo is one user key's run as MVCCRuns lists it: the key, its
// intent if it has one, and its run-local records (their names and
// values).
type MVCCRunInfo struct {
	Key     []byte
	Intent  *Intent
	Records []KeyValue
}

// MVCCRuns lists the runs of the user keys in [start, end), at most limit
// of them, and the user key to resume at (nil: done): what garbage
// collection walks.
func MVCCRuns(r MVCCReader, start, end []byte, limit int) (runs []MVCCRunInfo, resume []byte, err error) {
	lo, hi := mvccRun(start), mvccRun(end)
	for {
		page, next, err := r.Scan(lo, hi, mvccScanPage)
		if err != nil {
			return nil, nil, err
		}
		for _, kv := range page {
			key, _, intent, err := decodeMVCCKey(kv.Key)
			local := errors.Is(err, errRunLocal)
			if err != nil && !local {
				return nil, nil, err
			}
			if n := len(runs); n == 0 || !bytes.Equal(runs[n-1].Key, key) {
				if n == limit {
					return runs, key, nil
				}
				runs = append(runs, MVCCRunInfo{Key: key})
			}
			if intent {
				in, err := decodeIntent(kv.Value)
				if err != nil {
					return nil, nil, err
				}
				runs[len(runs)-1].Intent = &in
			}
			if local {
				name := kv.Key[len(mvccRun(key))+1:]
				runs[len(runs)-1].Records = append(runs[len(runs)-1].Records, KeyValue{Key: slices.Clone(name), Value: kv.Value})
			}
		}
		if next == nil {
			return runs, nil, nil
		}
		lo = next
	}
}

// MVCCPut writes a committed version of key at ts (a write outside a
// transaction, or a resolved intent's value). deleted writes a deletion.
func MVCCPut(w MVCCWriter, key []byte, ts hlc.Timestamp, value []byte, deleted bool) error {
	run := mvccRun(key)
	if in, ok, err := readIntent(w, run); err != nil || ok {
		if err == nil {
			err = &IntentError{Key: key, Intent: in}
		}
		return err
	}
	if err := checkNotTooOld(w, key, run, ts); err != nil {
		return err
	}
	w.Set(appendInverted(run, ts), versionBytes(value, deleted))
	return nil
}

func versionBytes(value []byte, deleted bool) []byte {
	if deleted {
		return []byte{mvccTombstone}
	}
	return append([]byte{mvccValue}, value...)
}

func checkNotTooOld(r MVCCReader, key, run []byte, ts hlc.Timestamp) error {
	newest, ok, err := newestVersion(r, run)
	if err != nil {
		return err
	}
	if ok && !newest.Less(ts) {
		return &WriteTooOldError{Key: key, Existing: newest}
	}
	return nil
}

// MVCCPutIntent writes txn's provisional value (or deletion) of key at
// its write timestamp, replacing its own earlier intent. Another
// transaction's intent is a conflict (ErrIntent); a committed version at
// or above the write timestamp is ErrWriteTooOld.
func MVCCPutIntent(w MVCCWriter, key []byte, in Intent) error {
	run := mvccRun(key)
	old, ok, err := readIntent(w, run)
	if err != nil {
		return err
	}
	if ok && old.Txn.ID != in.Txn.ID {
		return &IntentError{Key: key, Intent: old}
	}
	if err := checkNotTooOld(w, key, run, in.Txn.Timestamp); err != nil {
		return err
	}
	w.Set(run, encodeIntent(in))
	return nil
}

// MVCCResolveIntent settles txn's intent on key, if it is there (a resolve
// repeated or for another transaction does nothing, and says so):
// committed, its value becomes a version at commitTS; aborted, it goes.
// An intent of an older epoch than the committing transaction's is a
// write the transaction abandoned when it restarted: it goes too.
func MVCCResolveIntent(w MVCCWriter, key []byte, txn TxnMeta, commit bool, commitTS hlc.Timestamp) (bool, error) {
	run := mvccRun(key)
	in, ok, err := readIntent(w, run)
	if err != nil || !ok || in.Txn.ID != txn.ID {
		return false, err
	}
	w.Delete(run)
	if commit && in.Txn.Epoch == txn.Epoch {
		w.Set(appendInverted(run, commitTS), versionBytes(in.Value, in.Deleted))
	}
	return true, nil
}

// MVCCGC removes key's versions that no read at or above threshold can
// see: every version below the newest one at or below threshold, and that
// one too if it is a deletion. It returns how many it removed.
func MVCCGC(w MVCCWriter, key []byte, threshold hlc.Timestamp) (int, error) {
	run := mvccRun(key)
	start, end := appendInverted(run, threshold), runEnd(run)
	removed, first := 0, true
	for {
		kvs, next, err := w.Scan(start, end, mvccScanPage)
		if err != nil {
			return removed, err
		}
		for _, kv := range kvs {
			if first {
				first = false
				if len(kv.Value) > 0 && kv.Value[0] != mvccTombstone && !mutation.On(MutGCDropsNewest) {
					continue // the newest visible at threshold stays
				}
			}
			w.Delete(kv.Key)
			removed++
		}
		if next == nil {
			return removed, nil
		}
		start = next
	}
}
