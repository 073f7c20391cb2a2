// Package kernel is Orbit's runtime contract: the only way component code
// (storage, consensus, txn, query, kernel/actor and the pure half of the
// adapters) touches time, concurrency, randomness, files and the network.
//
// Two implementations exist. kernel/prod is the production runtime
// (goroutines, the wall clock, the real filesystem). sim is the deterministic
// simulator: one task runs at a time, virtual time jumps to the next event, and
// a seed decides every tie, so a whole cluster replays exactly.
//
// The rules every component obeys (shared/DESIGN.md, checked by `make lint`):
//
//  1. Time comes only from Runtime: Now, Sleep, AfterFunc, WithTimeout.
//  2. Concurrency comes only from Runtime.Go; block only in the runtime's
//     primitives (Mailbox.Recv, Future.Wait, Sleep, Cond.Wait).
//  3. Randomness comes only from Runtime.Rand.
//  4. Files only through Runtime.FS, Pebble's vfs.FS.
//  5. Network only through Runtime.Net: messages between node IDs.
//  6. Nothing observable depends on map iteration order or select choice.
//  7. A task owns its state; tasks talk by messages.
//
// Two more that the simulator depends on: only a task may block (never a
// timer callback, never a goroutine a library started), and a component never
// swallows a panic it did not raise — the simulator unwinds the tasks of a
// crashed node with a panic, and a recover() that eats it leaves a ghost
// task spinning on a dead node.
package kernel
