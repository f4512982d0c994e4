# Replication: a standby seeded while its primary serves, fail-over by
# promotion after a SIGKILL under load, hostile input on the replication
# socket, a semi-synchronous primary that waits for a delayed standby, and
# a write that fails after its batch went to the standby
# (tests/test_replication.c, docs/replication.md). About 22 s under the
# sanitizers on a loaded machine, 10-12 s without.
rl_add_unit(test_replication 48 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_replication.c
            LIBS rltestkit rlshard rlring)
add_dependencies(test_replication shard)
set_tests_properties(test_replication PROPERTIES RESOURCE_LOCK cluster_load)

# The fence of a promotion (an old primary paused or restarted refuses
# reads and writes, and rejoins as a standby after a re-seed), a promoted
# standby restarted within the old primary's lease (it waits out the
# rest: 4 s), a lost disk (and the primary started again on an empty
# directory), a promotion during a re-seed, a standby killed between a
# re-seed's renames, a primary fenced by a ring with a write in flight,
# and a stopped standby in both modes (tests/test_replication_fence.c).
# 30 s without the sanitizers, 49 s under them.
rl_add_unit(test_replication_fence 100 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_replication_fence.c
            LIBS rltestkit rlshard rlring)
add_dependencies(test_replication_fence shard)
set_tests_properties(test_replication_fence PROPERTIES RESOURCE_LOCK cluster_load)

# The fail-over of a shard of a cluster by `rlctl promote SHARD STANDBY`
# (the promotion at a new ring epoch, loaded into every shard, the router
# following), under cross-shard transfers through a router; the old
# primary restarted without --standby is fenced by its peer's ring; the
# runbook, and the fail-over back with s2 stopped (INCOMPLETE, then the
# rerun completes); bad input changes nothing
# (tests/test_replication_promote.c). 18-20 s without the sanitizers,
# 22-27 s with them, at a load of 7-10.
rl_add_unit(test_replication_promote 52 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_replication_promote.c
            LIBS rlrouterkit rltestkit rlring)
add_dependencies(test_replication_promote shard router rlctl)
set_tests_properties(test_replication_promote PROPERTIES RESOURCE_LOCK cluster_load)

# The crash matrix of replication under cross-shard transfers and pending
# transfers (posts, voids, expiries): s1's primary killed at each
# replication failpoint and at the two-phase failpoints of both roles,
# its standby promoted; the standby killed at its failpoints, the primary
# stalled, then serving again (tests/test_replication_crash.c). 15 cases:
# 18-30 s without the sanitizers, 44-62 s with them, at a load of 9-13.
# Its two-shard cluster and load are tests/replxkit.c's, shared with
# test_replication_warm.
rl_add_unit(test_replication_crash 120 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_replication_crash.c
            ${CMAKE_CURRENT_LIST_DIR}/replxkit.c LIBS rltestkit rlshard rlring)
add_dependencies(test_replication_crash shard)
set_tests_properties(test_replication_crash PROPERTIES RESOURCE_LOCK cluster_load LABELS replication)

# Several standbys and a quorum (tests/test_replication_quorum.c): bad
# --repl-quorum values refused at start, a quorum of 1 of 2 serving with
# one standby stopped, the default quorum (2 of 2) stalled by it, and
# `rlctl promote s1 A,B` under the promotion rule (refused while a
# standby is stopped, then the advanced one promoted; and with the old
# primary paused, which then serves nothing), and a standby withdrawn
# from the primary's stream fencing it; a standby stopped while the other
# is on its first seed stalls the primary (busy, never a hang); a primary
# started on an empty directory serves nothing while one standby holds an
# older copy (found at its hello), though an empty second one makes the
# quorum. 24-30 s without the sanitizers (26 s with the lost disk), 37-47 s
# with them at a load of 3-8 (42 s with the lost disk).
rl_add_unit(test_replication_quorum 84 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_replication_quorum.c
            LIBS rltestkit rlring)
add_dependencies(test_replication_quorum shard rlctl)
set_tests_properties(test_replication_quorum PROPERTIES RESOURCE_LOCK cluster_load)

# A standby takes only the stream of the primary its --standby-of names
# (tests/test_replication_standbyof.c): an old primary that never heard
# of the promotion, restarted with a wiped standby of the new primary, is
# refused and acknowledges nothing while the new primary seeds that
# standby; hostile answers to the standby's stream query. 11-13 s
# without the sanitizers, 14-18 s with them, at a load of 4-8.
rl_add_unit(test_replication_standbyof 36 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_replication_standbyof.c
            LIBS rltestkit rlshard rlring)
add_dependencies(test_replication_standbyof shard)
set_tests_properties(test_replication_standbyof PROPERTIES RESOURCE_LOCK cluster_load)

# A promoted standby serves from the ledger state it kept in memory while
# it streamed (its id filter and transfers after the checkpoint): checked
# against its disk by journal.warm.verify at the promotion, then against
# a recovery of the same disk, under cross-shard and pending transfers
# with checkpoints in the stream and a standby restart; and a promotion
# while the standby's first build runs, which reads the disk; and a
# promotion while the primary's checkpoint stopped between two pieces of
# its accounts (tests/test_replication_warm.c). The first two cases:
# 4.5-6.6 s without the sanitizers, 8.4-10.6 s with them, beside a full
# test run; the three: 6.7-7.1 s and 15.5 s at a load of 2.
rl_add_unit(test_replication_warm 31 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_replication_warm.c
            ${CMAKE_CURRENT_LIST_DIR}/replxkit.c LIBS rltestkit rlshard rlring)
add_dependencies(test_replication_warm shard)
set_tests_properties(test_replication_warm PROPERTIES RESOURCE_LOCK cluster_load LABELS replication)
