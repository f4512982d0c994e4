# Shard integration tests: real shard processes on 127.0.0.1.
add_library(rltestkit STATIC ${CMAKE_CURRENT_SOURCE_DIR}/testkit.c ${CMAKE_CURRENT_SOURCE_DIR}/tpkit.c
            ${CMAKE_CURRENT_SOURCE_DIR}/replkit.c)
target_include_directories(rltestkit PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(rltestkit PUBLIC rlharness rlcommon rlring PkgConfig::CMOCKA)

rl_add_unit(test_shard 26 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_shard.c
            LIBS rltestkit rlring)
add_dependencies(test_shard shard)
# The crash matrix, with the background checkpoint's states (101 s beside
# other tests; 113 s with sanitizers on a loaded machine, 187 s at load 12-20;
# with the cases between a checkpoint's pieces: 94 s, 106 s with sanitizers,
# on a quiet machine).
rl_add_unit(test_shard_crash 370 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_shard_crash.c
            LIBS rltestkit rlshard rlring)
add_dependencies(test_shard_crash shard)
# The pipelined group commit's states: kills with a sync in flight and
# replies held, under several clients at once (14-18 s; 32 s with
# sanitizers beside other tests at load 25).
rl_add_test(test_shard_crash_pipelined 70 $<TARGET_FILE:test_shard_crash> pipelined)
# User-level pending transfers, rule by rule, on a ledger in memory.
rl_add_unit(test_pending 80 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_pending.c
            ${CMAKE_CURRENT_SOURCE_DIR}/ledgerkit.c LIBS rlshard)
# The crash matrix of pending transfers: SIGKILL at each step (pending,
# post, void, expiry) at each point of the group commit, and restarts.
rl_add_unit(test_pending_crash 400 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_pending_crash.c
            LIBS rltestkit rlring)
add_dependencies(test_pending_crash shard)
rl_add_unit(test_idmap 10 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_idmap.c LIBS rlshard)
# The filter of transfer ids: no false absent over millions of ids, its
# false-present rates, its limits (1 s of CPU; 6-16 s at a load of 25-33,
# 10-19 s with sanitizers).
rl_add_unit(test_idfilter 40 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_idfilter.c LIBS rlshard)
# Retries of the ids each path brings in (checkpoint, recovery, migration
# import, restore) and the filter's growth, on the code a shard runs, and the
# credit legs the filter holds (memory, ingested, across a growth, reopened)
# (4-16 s at a load of 25-33, 10-17 s with sanitizers; with the legs 5-7 s
# and 10-17 s at a load of 17-20).
rl_add_unit(test_idfilter_paths 40 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_idfilter_paths.c
            LIBS rlshard rltestkit)
# The journal's credit-leg index, with pairs that collided under its old key,
# and lookups across the generations of a background checkpoint (0.7 s;
# 1.2 s with sanitizers on a loaded machine, 4.0-5.3 s at a load of 18:
# mostly waiting for a core, 0.9 s of CPU).
rl_add_unit(test_journal 12 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_journal.c LIBS rlshard)
# The checkpoint's radix sort against qsort on hostile inputs (1.4 s alone;
# 3.2 s with sanitizers beside other tests, 5 s beside a build).
rl_add_unit(test_checkpoint_sort 10 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_checkpoint_sort.c
            LIBS rlshard)
# The coordinator log's slim values, and the old format still loading (0.1 s).
rl_add_unit(test_xlog 10 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_xlog.c LIBS rlshard)

# Smoke run of the shard benchmark (at most a few seconds).
rl_add_test(shard_bench_quick 23 $<TARGET_FILE:shard_bench> --quick --batches 1,100
            --data ${CMAKE_BINARY_DIR}/bench-smoke)

# The LD_PRELOAD shim that kills a shard inside RocksDB's ingest (between the
# link into the database and the unlink of the staged name). No sanitizer:
# it is loaded ahead of the program and must not bring a runtime of its own.
add_library(kill_at_unlink MODULE ${CMAKE_CURRENT_SOURCE_DIR}/kill_at_unlink.c)
target_compile_options(kill_at_unlink PRIVATE -fno-sanitize=all)
target_link_options(kill_at_unlink PRIVATE -fno-sanitize=all)
target_link_libraries(kill_at_unlink PRIVATE ${CMAKE_DL_LIBS})
add_dependencies(test_shard_crash kill_at_unlink)
target_compile_definitions(test_shard_crash PRIVATE
    RL_KILL_AT_UNLINK_SO="$<TARGET_FILE:kill_at_unlink>")

# Storage faults beyond kill -9: a full disk (a small tmpfs in a private
# mount namespace), a failed sync (failpoint store.sync) and a scan that
# ends on a read error (failpoint store.iter). 9.6 s, 16.6 s with
# sanitizers at load 3 (CURVE handshakes and key generation included);
# 21 s, and 20-23 s with sanitizers, at load 5-12, where a full run with
# sanitizers passed 33 s: the timeout is twice 35 s.
rl_add_unit(test_storage_faults 70 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_storage_faults.c
            LIBS rltestkit)
add_dependencies(test_storage_faults shard)
# Tests that load a shard to its limits take turns (ctest -j2 on 2 cores).
set_tests_properties(test_storage_faults shard_bench_quick PROPERTIES RESOURCE_LOCK cluster_load)

# The shard's sent-before-synced assertion fires (a test-only failpoint
# sends before the group commit; the shard must abort).
rl_add_unit(test_send_sync 9 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_send_sync.c
            LIBS rltestkit rlring)
add_dependencies(test_send_sync shard)

# Bad options of the shard, the router, rlctl (keygen too) and rlbench: each
# refused with exit 2 and its reason, the order of timeouts and the choice
# of security included, and the replication options (a standby that would
# not sync) (5.7 s; 8.0 s with sanitizers at load 8, 13.8 s beside other
# tests at load 11; with the replication options 32.6 s with sanitizers
# beside other tests at load 12).
rl_add_unit(test_options 65 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_options.c LIBS rlharness rlcommon)
add_dependencies(test_options shard rlctl rlbench router)

# A flood of refused admin requests with control bytes: the shard's log
# stays bounded (one warning line per cause per second) and escaped
# (3.6 s; 4.4 s with sanitizers).
rl_add_unit(test_log_flood 10 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_log_flood.c
            LIBS rltestkit rlring)
add_dependencies(test_log_flood shard)

# The arcs whose data a shard holds (shard/arcs.c): ring changes, gained,
# lost and gained again, the wrap, reopen, stored bytes that lie (0.1 s;
# 0.5 s with sanitizers on a quiet machine, 1.6 s on a loaded one).
rl_add_unit(test_arcs 3 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_arcs.c LIBS rlshard)

# Two-phase records no coordinator sends (zero or all-ones ids, amount 0,
# unknown flags, reserved fields): each frame refused malformed, nothing
# changed, no crash.
rl_add_unit(test_tp_input 10 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_tp_input.c
            LIBS rltestkit)
add_dependencies(test_tp_input shard)

# The sender rules of the two-phase operations (docs/security.md): a
# PREPARE, DECIDE, outcome query and acknowledgement sent with the key of a
# shard the rule does not name are refused unauthorized, counted, and
# change nothing; a shard's own key denies no other payment (a reservation
# of about 2^64, an ABORT with a huge attempt counter, a full message of
# PREPAREs). Each ends with the conservation check.
rl_add_unit(test_tp_senders 40 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_tp_senders.c
            LIBS rltestkit rlring)
add_dependencies(test_tp_senders shard)

# A client that never reads its replies (lookups of 8,190 ids, 1 MiB each)
# cannot make a shard hold more than its --reply-queue-bytes: its peak
# resident size is read from /proc, the drops are counted, a normal client
# is served meanwhile, conservation (1.8 s; 6.6 s with sanitizers at load 19).
rl_add_unit(test_reply_bound 15 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_reply_bound.c
            LIBS rltestkit)
add_dependencies(test_reply_bound shard)
set_tests_properties(test_reply_bound PROPERTIES RESOURCE_LOCK cluster_load)
# A standby's warm state (the accounts, the id filter and the transfers
# after the checkpoint kept current from the stream's writes) against the
# disk it follows, the writes that drop it, and journal.warm.verify
# catching a broken mirror of the accounts (tests/test_journal_warm.c).
# 2.0-3.0 s without the sanitizers, 4.4-5.0 s with them, at a load of 1-4.
rl_add_unit(test_journal_warm 9 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_journal_warm.c
            LIBS rlshard rltestkit)
