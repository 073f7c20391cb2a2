package redis

import (
	"bytes"
	"math"

	"github.com/orbitkernel/orbit/internal/mutation"
)

// Databases (SELECT 0-15). Database 0's keys have the layout in doc.go; a
// key of database n > 0 carries a marker right after its slot:
//
//	slot (2 bytes) 0x00 0x02 n  escaped key  0x00 0x01   metadata record
//
// No route key of database 0 starts that way after its slot (a 0x00 in a
// key is escaped 0x00 0xFF, the terminator is 0x00 0x01), so the marker
// never collides, database 0's records are as they always were, and every
// database's keys of one slot stay in that slot's range. Within a slot, a
// database's keys are contiguous.
//
// The command code builds database 0's internal keys; dbView translates
// them for database n and hides the other databases from scans. Active
// expiry and FLUSHALL work on the raw range (every database).

// Databases is how many databases SELECT accepts (Redis's default).
const Databases = 16

// dbMarker is what follows the slot in a key of database db > 0.
func dbMarker(db int) []byte { return []byte{0, 2, byte(db)} }

// dbView is database db of a range: the command code's internal keys (in
// database 0's form) in, the database's records out.
type dbView struct {
	st Store
	db int
}

// viewOf returns the view of database db over the raw range store st.
func viewOf(st Store, db int) Store { return dbView{st: st, db: db} }

// databaseOf returns the raw range under st and the database st shows: a
// view's, or database 0 of a store that is no view (tests, the differ).
func databaseOf(st Store) (raw Store, db int) {
	if v, ok := st.(dbView); ok {
		return v.st, v.db
	}
	return st, 0
}

// toRaw maps an internal key in database 0's form to this database's.
func (v dbView) toRaw(ik []byte) []byte {
	if v.db == 0 || len(ik) < 2 || mutation.On(MutDatabaseIgnored) {
		return ik
	}
	raw := make([]byte, 0, len(ik)+3)
	raw = append(raw, ik[:2]...)
	raw = append(raw, dbMarker(v.db)...)
	return append(raw, ik[2:]...)
}

// fromRaw is toRaw's inverse for a key of this database.
func (v dbView) fromRaw(raw []byte) []byte {
	if v.db == 0 || mutation.On(MutDatabaseIgnored) {
		return raw
	}
	ik := make([]byte, 0, len(raw)-3)
	ik = append(ik, raw[:2]...)
	return append(ik, raw[5:]...)
}

// dbOfRaw is the database a raw internal key belongs to.
func dbOfRaw(raw []byte) int {
	if mutation.On(MutDatabaseIgnored) {
		return 0
	}
	if len(raw) >= 5 && raw[2] == 0 && raw[3] == 2 {
		return int(raw[4])
	}
	return 0
}

// skipTo is where a scan goes on from raw, a key of another database:
// this database's keys of raw's slot if they come later, else the next
// slot's (nil: no slot is left).
func (v dbView) skipTo(raw []byte) []byte {
	slot := raw[:2]
	if v.db == 0 {
		// Database 0 has every key of the slot but the marked ones: go
		// past those.
		return append(append([]byte{}, slot...), 0, 3)
	}
	mine := append(append([]byte{}, slot...), dbMarker(v.db)...) // this database's first key in the slot
	if bytes.Compare(raw, mine) < 0 {
		return mine
	}
	s := int(slot[0])<<8 | int(slot[1])
	if s+1 >= SlotCount {
		return nil
	}
	return append([]byte{byte((s + 1) >> 8), byte(s + 1)}, dbMarker(v.db)...)
}

func (v dbView) Get(key []byte) ([]byte, bool, error) { return v.st.Get(v.toRaw(key)) }
func (v dbView) Set(key, value []byte) error          { return v.st.Set(v.toRaw(key), value) }
func (v dbView) Delete(key []byte) error              { return v.st.Delete(v.toRaw(key)) }

// Scan returns this database's records in [start, end), skipping over
// every other database's keys with a seek per slot that holds them.
func (v dbView) Scan(start, end []byte, limit int) ([]KV, error) {
	cur, rawEnd := v.toRaw(start), end
	if end != nil {
		rawEnd = v.toRaw(end)
	}
	if limit <= 0 {
		limit = math.MaxInt32 // every caller pages; this is only a guard
	}
	var out []KV
	for len(out) < limit {
		kvs, err := v.st.Scan(cur, rawEnd, limit-len(out))
		if err != nil || len(kvs) == 0 {
			return out, err
		}
		var next []byte
		for _, kv := range kvs {
			if dbOfRaw(kv.Key) == v.db {
				out = append(out, KV{Key: v.fromRaw(kv.Key), Value: kv.Value})
				continue
			}
			if next = v.skipTo(kv.Key); next == nil {
				return out, nil
			}
			break
		}
		if next == nil {
			return out, nil // every pair was this database's: out is full, or the range ended
		}
		if rawEnd != nil && bytes.Compare(next, rawEnd) >= 0 {
			return out, nil
		}
		cur = next
	}
	return out, nil
}

// DeleteRange deletes this database's records in [start, end). A span
// within one slot is one range deletion; a wider one (FLUSHDB's share of
// a range) deletes the database's keys one by one, leaving the others.
func (v dbView) DeleteRange(start, end []byte) error {
	if start != nil && end != nil && len(start) >= 2 && len(end) >= 2 && bytes.Equal(start[:2], end[:2]) {
		return v.st.DeleteRange(v.toRaw(start), v.toRaw(end))
	}
	for {
		_, _, rk, found, err := firstRecord(v, start, end)
		if err != nil || !found {
			return err
		}
		if err := v.st.DeleteRange(v.toRaw(rk), v.toRaw(prefixEnd(rk))); err != nil {
			return err
		}
		start = prefixEnd(rk)
	}
}
