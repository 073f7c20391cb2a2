// Package jepsen checks real orbit serve processes the way Jepsen checks
// databases: it starts a cluster on loopback with every node-to-node link
// through a fault proxy (faultproxy), drives a workload through go-redis
// clients while nemeses inject faults (partitions, kills that lose unsynced
// writes, pauses, clock offsets, delay, loss, membership changes, and
// kills, pauses and slowdowns of the node leading the most ranges), heals,
// requires the cluster to serve again within a bound, and checks the
// history (check) into a report directory (report).
//
// Besides safety it judges availability (avail): for each fault, how long
// each node's clients waited to be served again and how much throughput
// survived, with the reason a range served nothing when the recorded
// topology (topo) tells it; kill-leader and pause-leader faults must
// recover within Config.RecoveryBound, slow-leader faults keep
// Config.AvailabilityFloor of calm throughput, and no node may refuse a
// message for its size. Run is the whole run; `orbit jepsen` and `make
// jepsen` call it, and its report prints a command that runs it again.
// docs/jepsen.md explains the model, the files a run writes, and the
// limits.
package jepsen
