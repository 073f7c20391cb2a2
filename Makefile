# Orbit. `make run` and `make test` are the two commands a newcomer needs.
GO      ?= go
SEEDS   ?= 500
SEED    ?= 1
# The availability scenario is ~30x heavier per seed than the KV one.
AVAIL_SEEDS ?= 40

.PHONY: build run cluster bench-redis bench-sql bench-backup bench-peers demo smoke test lint sim sim-avail sim-coverage sim5 determinism bench race mutations jepsen acceptance help sql-diff

# make run's ports and extra flags: `make run PORT=6390 ORBIT_FLAGS='--ranges 4'`
# (6379 is often taken by a local redis-server).
PORT        ?= 6379
HTTP_PORT   ?= 9090
PG_PORT     ?= 5432
ORBIT_FLAGS ?=

## build: the orbit binary, in ./bin/orbit (or: go install ./cmd/orbit)
build:
	$(GO) build -o bin/orbit ./cmd/orbit

## run: the single-node server in the foreground: RESP on 127.0.0.1:$(PORT),
## PostgreSQL on 127.0.0.1:$(PG_PORT), the bank example's actors (gRPC,
## orbit actor call) on 127.0.0.1:9190, /healthz and /readyz on
## 127.0.0.1:$(HTTP_PORT), data in ./orbit-data/single (Ctrl-C stops it
## cleanly; PORT=, PG_PORT=, HTTP_PORT= and ORBIT_FLAGS= change it)
run: build
	@trap : INT; bin/orbit serve --redis-addr 127.0.0.1:$(PORT) --http-addr 127.0.0.1:$(HTTP_PORT) --pg-addr 127.0.0.1:$(PG_PORT) \
		--actors bank --data-dir ./orbit-data/single $(ORBIT_FLAGS)

## cluster: a local 3-node cluster in the foreground: RESP on 127.0.0.1:6379,
## 6380, 6381, HTTP (/metrics, /readyz, /cluster) on 9090-9092, gRPC between
## nodes on 7001-7003, data and logs in ./orbit-data/cluster/node1..3; it keeps
## running when a node dies (kill one and watch the others carry on); Ctrl-C
## stops them all
cluster:
	@trap : INT; GO=$(GO) scripts/cluster.sh

## bench-redis: redis-benchmark against orbit serve (1 node, then 3) and
## redis-server in the same run; prints a markdown table (not part of CI)
bench-redis:
	GO=$(GO) bench/redis.sh

## bench-peers: Orbit against its real peers in one run (redis-server with and
## without appendfsync always, etcd on 1 and 3 nodes, orbit on 1 and 3):
## redis-benchmark and bench/load (1/16/64 clients, put and get); prints one
## table of ratios (bench/peers.sh; DURATION=, N=, PORT=, RESULTS=1 adds it to
## bench/RESULTS.md, PROFILE=DIR keeps CPU profiles; scripts/install-bench-deps.sh
## installs etcd; not part of CI)
bench-peers:
	GO=$(GO) bench/peers.sh

## bench-sql: pgbench -i and the builtin scripts against orbit serve (1 and
## 3 nodes) and a throwaway PostgreSQL 15 in the same run; ratios (bench/pgbench.sh)
bench-sql:
	GO=$(GO) bench/pgbench.sh

## bench-backup: orbit backup create/restore of pgbench's tables against
## PostgreSQL 15's pg_dump/pg_restore, and of KEYS Redis keys against
## redis-cli --rdb and redis-server loading it, in the same run (SCALE=1)
bench-backup:
	GO=$(GO) bench/backup.sh

## demo: a 3-node cluster in the simulator under faults; prints what happened
demo:
	$(GO) run ./cmd/orbit demo -seed $(SEED)

## smoke: build, start `orbit serve` on free ports, PING/SET/GET, SIGTERM (what CI runs)
smoke:
	scripts/smoke-serve.sh

## test: every unit test, the simulator's default seeds, the end-to-end
## server tests (three-node kills, join/remove, differential vs redis-server)
## and the Jepsen checks (a 45 s run, three leader-fault runs, two planted
## bugs, a 30 s actor run, a 30 s SQL bank run with a backup restored);
## about 8 minutes. The per-package timeout is
## 20 minutes: cmd/orbit and jepsen each run real processes for over 5
## minutes, and a loaded 2-core machine doubles that
test:
	$(GO) test -timeout 20m ./...

## lint: gofmt, go vet, staticcheck (pinned in go.mod) and the runtime-contract lint (internal/lint)
lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -count=1 ./internal/lint
	$(GO) tool staticcheck ./...

## sim: a longer sweep, seeds SEED..SEED+SEEDS-1, of the default (KV)
## scenario, the Redis scenario, the split scenarios (kvsplit on 3
## nodes, kvsplit5 on 5) and the cluster scenario (joins, removals, a
## node dead for good, every node's rebalancer); sim5 does the five-node
## KV variant;
## sim-avail the availability scenarios (one fault at a time on a leader,
## recovery bound and slow-leader throughput floor; on the busiest actor
## host, recovery bound), AVAIL_SEEDS seeds
sim:
	$(GO) test ./sim -run '^(TestSim|TestRedisSim|TestSimSplits|TestSimCluster|TestSimBank|TestSimTxnKV|TestSimListAppend|TestSimRedisTxn|TestSimSQLBank|TestSimSQLList|TestSimActors|TestSimSagas|TestSimRecovery)$$' -seed=$(SEED) -seeds=$(SEEDS) -timeout 0
	$(GO) test ./sim -run '^(TestAvailability|TestActorAvailability)$$' -seed=$(SEED) -seeds=$(AVAIL_SEEDS) -timeout 0

sim-avail:
	$(GO) test ./sim -run '^(TestAvailability|TestActorAvailability)$$' -seed=$(SEED) -seeds=$(AVAIL_SEEDS) -timeout 0 -v

## sim-coverage: the share of statements in consensus, storage, kernel,
## adapters/redis and adapters/redis/session that a sweep reaches (SEEDS=100
## KV and Redis seeds, AVAIL_SEEDS=10 availability seeds; about 4 minutes),
## and the functions it never enters; see docs/sim-coverage.md
sim-coverage: SEEDS = 100
sim-coverage: AVAIL_SEEDS = 10
sim-coverage:
	GO=$(GO) SEED=$(SEED) SEEDS=$(SEEDS) AVAIL_SEEDS=$(AVAIL_SEEDS) scripts/sim-coverage.sh

sim5:
	$(GO) test ./sim -run '^TestSimFiveNodes$$' -seed=$(SEED) -seeds=$(SEEDS) -timeout 0

## determinism: run SEEDS seeds of the default scenario, the split
## scenarios and the cluster scenario twice each; every trace must match
determinism:
	$(GO) test ./sim -run '^(TestSim|TestSimSplits|TestSimCluster|TestSimBank|TestSimTxnKV|TestSimListAppend|TestSimRedisTxn|TestSimSQLBank|TestSimSQLList|TestSimActors|TestSimSagas|TestSimRecovery|TestActorAvailability)$$' -seed=$(SEED) -seeds=$(SEEDS) -twice -timeout 0

## sql-diff: generated tables, rows and statements run on Orbit and on a
## throwaway PostgreSQL 15 (query/diff_test.go), compared row for row and
## SQLSTATE for SQLSTATE; CHECKS per run (default 2000, a few minutes)
sql-diff:
	ORBIT_DIFF_RANDOM=1 $(GO) test ./query -run '^TestDiffRandom$$' -count=1 -timeout 0 -rapid.checks=$(or $(CHECKS),2000)

## mutations: plant each bug (internal/mutation; consensus, client,
## snapshot, storage, Redis state machine, availability, split, placement)
## and require the
## simulator to catch it within 300 seeds, then shrink two caught seeds'
## fault plans (-shrink); first, the consensus transcripts must fail under
## the consensus and client bugs they pin down (a bug only a transcript
## reaches is listed in sim/mutation_test.go's outsideTheSweep and not
## swept; so are the transaction and storage bugs their packages' own
## mutation tests pin down)
mutations:
	$(GO) test -tags orbit_mutations ./consensus -run '^(TestTranscriptMutations|TestClockMutations|TestHandOverMutations)$$' -count=1 -v
	$(GO) test -tags orbit_mutations ./txn -run '^(TestHandOverMutation|TestMergeMutation|TestFutureReadMutation|TestFinalizedMutation|TestCoordinatorTranscriptMutations)$$' -count=1 -v
	$(GO) test -tags orbit_mutations ./storage -run '^TestLocalCacheMutation$$' -count=1 -v
	$(GO) test -tags orbit_mutations ./kernel/node -run '^TestReadRunsMutation$$' -count=1 -v
	$(GO) test -tags orbit_mutations ./sim -run '^(TestMutationsAreCaught|TestShrinkPlantedBug)$$' -count=1 -timeout 0 -v

## jepsen: every workload with every nemesis against real orbit serve
## processes (3 nodes; register also on 5), JEPSEN_DURATION each (default
## 120s, about 14 minutes in all, with a leader-fault run); reports under jepsen-out/<time>/
jepsen:
	GO=$(GO) scripts/jepsen.sh

## acceptance: the range layer's acceptance tests against real orbit serve
## processes: 2 million keys split the keyspace (1 node, then 3), a node
## that joins takes replicas and leaderships within a minute, a removed
## node's move away (cmd/orbit/acceptance_test.go); about 16 minutes
acceptance:
	ORBIT_ACCEPTANCE=1 $(GO) test ./cmd/orbit -run '^TestAcceptance' -count=1 -timeout 40m -v

## bench: the simulator's speed (events/s, virtual s per wall s), transfers per second (txn),
## and Redis commands across ranges against redis-server with appendfsync always (cmd/orbit)
bench:
	$(GO) test ./sim -run '^$$' -bench . -benchtime 3s
	$(GO) test ./txn -run '^$$' -bench Transfers -benchtime 300x
	$(GO) test ./cmd/orbit -run '^$$' -bench RedisAcrossRanges -benchtime 1000x
	$(GO) test ./cmd/orbit -run '^$$' -bench Actors -benchtime 1000x

## race: every package under the race detector, with -short (tests of real
## processes skip: Jepsen, cluster, kill -9; the simulator runs a few seeds
## a scenario and no availability seed, minutes each under -race); about
## 5 minutes on 2 cores, more from a clean build cache (CI)
race:
	$(GO) test -race -short -timeout 15m ./...

help:
	@grep -E '^## ' Makefile | sed 's/^## //'
