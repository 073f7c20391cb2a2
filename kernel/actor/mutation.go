package actor

import "github.com/orbitkernel/orbit/internal/mutation"

// Planted bugs for the mutation self-test (`make mutations`,
// internal/mutation): each a real class of actor bug that the simulator's
// actor scenario must catch. Compiled out of every build without the
// orbit_mutations tag.
var (
	MutLeaseNotFenced = mutation.Plant("lease-not-fenced", mutation.Actors,
		"a turn commits without checking that its activation's epoch is still the directory's: a deposed activation writes state from what it last knew (two live activations)")
	MutStateAfterLeaseLoss = mutation.Plant("state-after-lease-loss", mutation.Actors,
		"a turn checks its epoch in one transaction and writes the state in another: a takeover in between lets the deposed activation write")
	MutRequestsForgotten = mutation.Plant("requests-forgotten", mutation.Actors,
		"callers' last requests are kept in the activation's memory, not with the state: after a failover a retried call runs twice")
	MutUnsureCallFailed = mutation.Plant("unsure-call-failed", mutation.Actors,
		"a call between actors whose outcome is unknown (a timeout) is answered to its sender as refused: a saga compensates the steps before it and abandons one that may have happened")
	MutReminderDeletedEarly = mutation.Plant("reminder-deleted-early", mutation.Actors,
		"a firing reminder is removed in a transaction of its own before its turn runs: a turn that then fails (a deposed activation, a crash) loses the reminder, which never fires")
	MutPrivateRoutes = mutation.Plant("private-actor-routes", mutation.ActorAvailability,
		"each actor client keeps its own routes, not the node's: every pooled client learns on its own, one attempt apiece, that a host stopped answering (a paused host's actors stay out of reach far longer than their lease)")
	MutExpiredCallsRun = mutation.Plant("expired-calls-run", mutation.Actors,
		"a host runs every queued call in order, also those whose callers gave the attempt up: a host slowed below its callers' attempt timeout spends its turns on abandoned attempts, and no call is answered in time (congestion collapse)")
	MutRequestsExpireEarly = mutation.Plant("requests-expire-early", mutation.Actors,
		"callers' last requests expire a thousand times too early (milliseconds taken for microseconds): a call sent again after its record went runs twice")
	MutReadRunsForgotten = mutation.Plant("read-runs-forgotten", mutation.Actors,
		"a numbered call that ran as a read (it changed nothing, so no record) is forgotten: a copy of it delivered later (a resend, a duplicate from the network) runs again and may change the actor after its caller took the read's answer (a compare-and-set answered false, then applied)")
	MutRequestsNotTouched = mutation.Plant("requests-not-touched", mutation.Actors,
		"a caller's last request expires RequestTTL after the call ran, however often it is sent again: an outbox that keeps resending a call whose answer turn keeps failing outlives the record, and the call runs twice")
)
