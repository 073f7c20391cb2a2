package redis

import (
	"bytes"
	"slices"
	"testing"

	"github.com/orbitkernel/orbit/consensus"
	"github.com/orbitkernel/orbit/storage"
)

// memRange is a consensus.RangeData over a map, spanning [start, end).
type memRange struct {
	start, end []byte
	kv         map[string][]byte
	hints      uint64
}

func (m *memRange) Get(k []byte) ([]byte, bool, error) { v, ok := m.kv[string(k)]; return v, ok, nil }
func (m *memRange) Set(k, v []byte) error              { m.kv[string(k)] = v; return nil }
func (m *memRange) Delete(k []byte) error              { delete(m.kv, string(k)); return nil }
func (m *memRange) Bounds() ([]byte, []byte)           { return m.start, m.end }
func (m *memRange) Range() storage.RangeID             { return 1 }
func (m *memRange) Hints() uint64                      { return m.hints }
func (m *memRange) SetHints(h uint64) error            { m.hints = h; return nil }

func (m *memRange) Scan(start, end []byte, limit int) ([]storage.KeyValue, error) {
	var out []storage.KeyValue
	for _, k := range m.sorted() {
		if bytes.Compare([]byte(k), start) >= 0 && (end == nil || bytes.Compare([]byte(k), end) < 0) && len(out) < limit {
			out = append(out, storage.KeyValue{Key: []byte(k), Value: m.kv[k]})
		}
	}
	return out, nil
}

func (m *memRange) DeleteRange(start, end []byte) error {
	for _, k := range m.sorted() {
		if bytes.Compare([]byte(k), start) >= 0 && (end == nil || bytes.Compare([]byte(k), end) < 0) {
			delete(m.kv, k)
		}
	}
	return nil
}

func (m *memRange) sorted() []string {
	var ks []string
	for k := range m.kv {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestKeyspaceWideCommandsStayInRedisKeys: the range holding the last
// slots also holds the kernel's system keys (consensus.RangeIDKey);
// FLUSHALL, SCAN and DBSIZE's count neither see nor delete them.
func TestKeyspaceWideCommandsStayInRedisKeys(t *testing.T) {
	m := &memRange{start: SlotKey(100), kv: map[string][]byte{}}
	sm := &StateMachine{}
	meta := consensus.CommandMeta{NowMillis: 1000}
	key := []byte("a{x}") // any key; its slot must be in the range
	for i := 0; Slot(key) < 100; i++ {
		key = []byte("k" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
	}
	if _, err := sm.Apply(m, ExecCommand([][]byte{[]byte("set"), key, []byte("v")}), meta); err != nil {
		t.Fatal(err)
	}
	m.kv[string(consensus.RangeIDKey)] = []byte{0, 0, 0, 0, 0, 0, 0, 9}
	r, err := sm.Query(m, CountCommand(m.start), meta)
	if err != nil || string(r) != string(EncodeReply(nil, Int(1))) {
		t.Fatalf("count = %q, %v; want 1 (the system key is not a Redis key)", r, err)
	}
	if _, err := sm.Apply(m, FlushAllCommand(m.start), meta); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.kv[string(consensus.RangeIDKey)]; !ok || len(m.kv) != 1 {
		t.Fatalf("after FLUSHALL the range holds %q; want only the system key", m.sorted())
	}
}

// TestSplitKeyIsASlotBoundary: Redis ranges split only where a slot
// starts, strictly inside the range.
func TestSplitKeyIsASlotBoundary(t *testing.T) {
	sm := &StateMachine{}
	halving := append(SlotKey(300), "some-key\x00\x01"...)
	if k := sm.SplitKey(SlotKey(100), SlotKey(500), halving); !bytes.Equal(k, SlotKey(300)) {
		t.Fatalf("SplitKey = %x, want slot 300's start", k)
	}
	if k := sm.SplitKey(SlotKey(300), SlotKey(500), halving); !bytes.Equal(k, SlotKey(301)) {
		t.Fatalf("SplitKey in the range's first slot = %x, want slot 301's start", k)
	}
	if k := sm.SplitKey(SlotKey(300), SlotKey(301), halving); k != nil {
		t.Fatalf("SplitKey of a one-slot range = %x, want none", k)
	}
	if k := sm.SplitKey(SlotKey(100), nil, consensus.RangeIDKey); k != nil {
		t.Fatalf("SplitKey at a system key = %x, want none", k)
	}
}
