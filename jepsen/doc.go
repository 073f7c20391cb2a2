// Package jepsen checks real orbit serve processes the way Jepsen checks
// databases: it starts a cluster on loopback with every node-to-node link
// through a fault proxy (faultproxy), drives a workload through go-redis
// clients while nemeses inject faults (partitions, kills that lose unsynced
// writes, pauses, clock offsets, delay, loss, membership changes), heals,
// requires the cluster to serve again within a bound, and checks the
// history (check) into a report directory (report). Run is the whole run;
// `orbit jepsen` and `make jepsen` call it. docs/jepsen.md explains the
// model, the files a run writes, and the limits.
package jepsen
