/*  failpoint_list.h: the registry of every failpoint, one line each.

    X (ENUM_SUFFIX, "stable-name", "where it sits")

    Names are stable: tests and docs refer to them. Add new points at the
    end of their group; never rename one. docs/testing.md lists them.
*/
RL_FP_X (TEST_ALPHA, "test.alpha", "test only: exercised by test_failpoint")
RL_FP_X (TEST_BETA, "test.beta", "test only: exercised by test_failpoint")
RL_FP_X (SHARD_BEFORE_COMMIT, "shard.before_commit",
         "shard: group commit built, before the WriteBatch is written")
RL_FP_X (SHARD_AFTER_WRITE, "shard.after_write", "shard: WriteBatch written, before the WAL sync")
RL_FP_X (SHARD_AFTER_SYNC, "shard.after_sync", "shard: WAL synced, before replies are sent")
RL_FP_X (SHARD_AFTER_REPLY, "shard.after_reply", "shard: replies of a group commit sent")
RL_FP_X (SHARD_SEND_BEFORE_SYNC, "shard.send_before_sync",
         "test only: shard sends a turn's messages before its group commit (the sent-before-synced "
         "assertion must stop it)")
RL_FP_X (SHARD_SYNC_IN_FLIGHT, "shard.sync_in_flight",
         "shard: a group commit's sync begun on its thread, before the WAL sync; the loop reads, "
         "applies and writes later turns meanwhile, their replies held")
RL_FP_X (STORE_INGEST_STAGED, "store.ingest.staged",
         "checkpoint: an index SST written under its staged name, before it is ingested")
RL_FP_X (STORE_INGEST_DONE, "store.ingest.done",
         "checkpoint: an index SST ingested (staged name gone), before the next step")
RL_FP_X (CHECKPOINT_STARTED, "checkpoint.started",
         "checkpoint: background thread started on a frozen generation, nothing written; the loop "
         "serves meanwhile")
RL_FP_X (CHECKPOINT_INGESTED, "checkpoint.ingested",
         "checkpoint: every index SST ingested, before the checkpoint batch (dirty accounts, "
         "checkpoint_ts)")
RL_FP_X (CHECKPOINT_PIECE, "checkpoint.piece",
         "checkpoint: a piece of the dirty accounts written (not synced) with the piece key, "
         "before the next piece or the batch with checkpoint_ts")
RL_FP_X (CHECKPOINT_COMMITTED, "checkpoint.committed",
         "checkpoint: checkpoint batch synced, before the loop drops the frozen generation")
RL_FP_X (STORE_ITER, "store.iter",
         "a scan's step (store_iter_valid) on a valid key; error: the read fails as with EIO (the "
         "scan ends, the store fails)")
RL_FP_X (STORE_SYNC, "store.sync",
         "group commit: WriteBatch written; error: the sync fails as with EIO (the store fails)")
RL_FP_X (JOURNAL_LEG_LOOKUP, "journal.leg_lookup",
         "participant: the lookup of an applied credit leg; error: it fails like a storage error")
RL_FP_X (TP_COORD_PREPARE_SENT, "tp.coord.prepare_sent",
         "coordinator: debit reserved, PREPARE sent, nothing durable")
RL_FP_X (TP_PART_PREPARED, "tp.part.prepared",
         "participant: credit reserved and prepared record in the batch, before the commit")
RL_FP_X (TP_PART_PREPARE_SYNCED, "tp.part.prepare_synced",
         "participant: prepared record synced, before PREPARE-OK is sent")
RL_FP_X (TP_COORD_DECIDED, "tp.coord.decided",
         "coordinator: decision and debit posting in the batch, before the commit")
RL_FP_X (TP_COORD_DECISION_SYNCED, "tp.coord.decision_synced",
         "coordinator: decision synced, before the client reply and DECIDE")
RL_FP_X (TP_COORD_DECISION_SENT, "tp.coord.decision_sent",
         "coordinator: DECIDE sent, before the acknowledgement")
RL_FP_X (TP_PART_APPLIED, "tp.part.applied",
         "participant: decision applied in the batch, before the commit")
RL_FP_X (TP_PART_APPLY_SYNCED, "tp.part.apply_synced",
         "participant: applied decision synced, before the ACK is sent")
RL_FP_X (TP_COORD_ACKED, "tp.coord.acked",
         "coordinator: ACK received, log entry removal in the batch, before the commit")
RL_FP_X (TP_COORD_ABORT_DECIDED, "tp.coord.abort_decided",
         "coordinator: prepare timed out, abort decided in the batch")
RL_FP_X (TP_PART_QUERY_SENT, "tp.part.query_sent", "participant: outcome query sent")
RL_FP_X (TP_PART_PREPARE_DELAY, "tp.part.prepare_delay",
         "participant: before handling a PREPARE batch (delay: the coordinator times out while it "
         "is in flight)")
RL_FP_X (ROUTER_ALLOC, "router.alloc",
         "router: an allocation for a request in progress (error: out of memory, the request is "
         "answered busy)")
RL_FP_X (
    ROUTER_REFRESH_WANTED, "router.refresh_wanted",
    "router: a ring refresh asks the shard that showed a newer epoch (error: it takes nothing, "
    "as when its connection is down for good)")
RL_FP_X (CLIENT_ALLOC, "client.alloc",
         "client library: an allocation of a call (error: out of memory, the call returns "
         "RL_CLIENT_ERR_NOMEM)")
RL_FP_X (MIGRATE_BEGIN, "migrate.begin",
         "migration: migrate_begin's record in the batch, before the commit")
RL_FP_X (MIGRATE_IMPORT, "migrate.import",
         "migration target: a chunk's keys and the new cursor in the batch, before the commit")
RL_FP_X (MIGRATE_IMPORT_SYNCED, "migrate.import_synced",
         "migration target: a chunk's import synced, before its reply is sent (the tool sends "
         "the chunk again)")
RL_FP_X (MIGRATE_FREEZE, "migrate.freeze",
         "migration source: FROZEN in the batch, the arc frozen in memory, before the commit")
RL_FP_X (MIGRATE_UNFREEZE, "migrate.unfreeze",
         "migration source: COPYING again (migrate_unfreeze or the freeze's time limit) in the "
         "batch, before the commit")
RL_FP_X (MIGRATE_ROUND_BEGUN, "migrate.round_begun",
         "migration source: an export that begins a round has put the rounds begun in the "
         "batch, before the commit (the tool sends the export again)")
RL_FP_X (MIGRATE_SHIPPED, "migrate.shipped",
         "migration source: the final round's last chunk built, SHIPPED in the batch, before the "
         "commit")
RL_FP_X (MIGRATE_COMMIT_TARGET, "migrate.commit_target",
         "migration target: staged accounts installed, arc received, HANDED_OVER in the batch, "
         "before the commit")
RL_FP_X (MIGRATE_COMMIT_TARGET_SYNCED, "migrate.commit_target_synced",
         "migration target: the handover synced, before its reply is sent")
RL_FP_X (MIGRATE_HANDOVER_ALLOC, "migrate.handover_alloc",
         "migration target: halfway through installing the staged accounts; `error`: memory ran "
         "out there (the shard fails, its batch unwritten)")
RL_FP_X (MIGRATE_ADOPTED_CHECKPOINT, "migrate.adopted_checkpoint",
         "migration target: the checkpoint that writes the accounts a handover adopted (and "
         "deletes their staged copies) handed to the background, before the loop goes on")
RL_FP_X (MIGRATE_ADOPTED_CHECKPOINTED, "migrate.adopted_checkpointed",
         "migration target: that checkpoint's batch synced, before the loop forgets the "
         "adopted accounts")
RL_FP_X (MIGRATE_COMMIT_SOURCE, "migrate.commit_source",
         "migration source: HANDED_OVER in the batch, before the commit")
RL_FP_X (MIGRATE_ABORT_TARGET, "migrate.abort_target",
         "migration target: a round of the abort's deletes (and NONE or ABORTING) in the batch, "
         "before the commit")
RL_FP_X (MIGRATE_ABORT_SOURCE, "migrate.abort_source",
         "migration source: NONE in the batch, before the commit")
RL_FP_X (MIGRATE_CLEANUP, "migrate.cleanup",
         "migration source: a round of the cleanup's deletes (the moved accounts, their history) "
         "in the batch, before the commit")
RL_FP_X (MIGRATE_RECOVER, "migrate.recover",
         "migration: at start, the stored migration read, before the arc is frozen again "
         "(a kill during recovery)")
RL_FP_X (REBALANCE_STATE_WRITE, "rebalance.state_write",
         "rebalance apply: a state directory file written and synced under its temporary name, "
         "before the rename")
RL_FP_X (REBALANCE_PERSISTED, "rebalance.persisted",
         "rebalance apply: every step's ring and the state file written, nothing sent")
RL_FP_X (REBALANCE_BEGUN, "rebalance.begun",
         "rebalance apply: migrate_begin answered by the source and the target")
RL_FP_X (REBALANCE_CHUNK, "rebalance.chunk",
         "rebalance apply: a chunk exported from the source and imported into the target (the "
         "final chunk: exported, its import to come with the handover)")
RL_FP_X (REBALANCE_FREEZE_SENT, "rebalance.freeze_sent",
         "rebalance apply: migrate_freeze sent ahead of the round after it, before that "
         "round's first export is sent (a delay lets the source's own freeze limit pass; a "
         "crash may lose the freeze unsent)")
RL_FP_X (REBALANCE_FROZEN, "rebalance.frozen", "rebalance apply: migrate_freeze answered")
RL_FP_X (REBALANCE_UNFROZEN, "rebalance.unfrozen",
         "rebalance apply: a freeze that did not drain in time undone, before the state says so")
RL_FP_X (REBALANCE_SHIPPED, "rebalance.shipped",
         "rebalance apply: the final chunk exported and the step's handover written, nothing "
         "of the handover sent")
RL_FP_X (REBALANCE_TARGET_RING, "rebalance.target_ring",
         "rebalance apply: the final chunk imported, the step's ring and the commit sent to the "
         "target back to back, before their replies are read")
RL_FP_X (REBALANCE_TARGET_COMMITTED, "rebalance.target_committed",
         "rebalance apply: the target committed, before the source's ring")
RL_FP_X (REBALANCE_SOURCE_COMMITTED, "rebalance.source_committed",
         "rebalance apply: the source committed, before the other shards get the step's ring")
RL_FP_X (REBALANCE_STEP_DONE, "rebalance.step_done",
         "rebalance apply: every shard serves the step's ring and the state says done, before "
         "the next step")
RL_FP_X (REBALANCE_ROLLED_BACK, "rebalance.rolled_back",
         "rebalance apply: a target refused its commit and the step's rollback is written, "
         "nothing undone yet")
RL_FP_X (REBALANCE_PUBLISHED, "rebalance.published",
         "rebalance apply: every shard serves the step's ring, before the source's cleanup")
RL_FP_X (REBALANCE_CLEANED, "rebalance.cleaned",
         "rebalance apply: the source's cleanup answered NONE, before the state says done")
RL_FP_X (REBALANCE_COMMIT_REFUSED, "rebalance.commit_refused",
         "rebalance apply: before the target's commit; error: the tool takes it as refused (the "
         "step is rolled back) without sending it")
RL_FP_X (BACKUP_CUT, "backup.cut",
         "shard: a backup's cut (error: the checkpoint fails, the cut is refused storage)")
RL_FP_X (BACKUP_COPY, "backup.copy",
         "shard: the copy of a cut, on its own thread (error: the copy fails; delay: the shard "
         "serves while it copies)")
RL_FP_X (BACKUP_UNHELD, "backup.unheld",
         "shard: a backup's cut (error: the held loop does not wait for the checkpoint's listing, "
         "and the checkpoint waits for a write after the hold: a cut that is not one, which the "
         "copy must refuse)")
RL_FP_X (BACKUP_SET_NUMBER, "backup.set_number",
         "rlctl backup: the set's number picked, before its file is linked (delay: a backup of "
         "other shards beside it picks the same number)")
RL_FP_X (BACKUP_RESTORE_MOVE, "backup.restore_move",
         "rlctl restore: a restored shard's directory about to move into ROOT (error: the move "
         "fails as with EIO, and the shards moved before it must go back)")
RL_FP_X (PENDING_RECOVERY_EXPIRED, "pending.recovery_expired",
         "shard start: the pending transfers that expired while it was down released in memory, "
         "their states in the batch, before the commit")
RL_FP_X (REPL_STANDBY_BEFORE_APPLY, "repl.standby.before_apply",
         "standby: an event of the primary's stream checked, before its synced write (delay: the "
         "primary's replies wait for the acknowledgement)")
RL_FP_X (REPL_STANDBY_REFUSE, "repl.standby.refuse",
         "test only: with `error`, a standby answers the next event of its primary's stream "
         "malformed, changing nothing (the primary must not ask again in a tight loop)")
RL_FP_X (REPL_STANDBY_SEED_FILE, "repl.standby.seed_file",
         "standby: a seed chunk checked, before it is written (delay: a seed held in progress)")
RL_FP_X (REPL_STANDBY_SEED_ASIDE, "repl.standby.seed_aside",
         "standby: a complete seed (its marks set and synced), the data directory moved aside, "
         "before the seed is renamed into its place")
RL_FP_X (REPL_STANDBY_SEED_INSTALLED, "repl.standby.seed_installed",
         "standby: a seed renamed into the data directory (its marks set in it first), before the "
         "old copy is removed and the store opened")
RL_FP_X (REPL_PRIMARY_BEFORE_WRITE, "repl.primary.before_write",
         "primary: a group commit's batch in the log and sent to the streaming standbys, before "
         "the primary's own write of it (a standby may hold a batch its primary never wrote; "
         "error: that write then fails, as the disk's would)")
RL_FP_X (REPL_PRIMARY_WRITTEN, "repl.primary.written",
         "primary: a group commit written and its events in the log, sent to the streaming "
         "standbys already; before the others are sent to (and before the local sync)")
RL_FP_X (REPL_PRIMARY_SHIPPED, "repl.primary.shipped",
         "primary: a standby's acknowledgement of shipped events received, before it is counted "
         "(nothing it covers released)")
RL_FP_X (REPL_PRIMARY_RELEASED, "repl.primary.released",
         "primary: an acknowledgement moved the release, the replies and peer messages it "
         "released handed to their sockets")
RL_FP_X (REPL_STANDBY_APPLIED, "repl.standby.applied",
         "standby: an event applied with its synced write, before its acknowledgement is sent")
RL_FP_X (REPL_STANDBY_ACKED, "repl.standby.acked", "standby: an event's acknowledgement sent")
RL_FP_X (JOURNAL_WARM_BUILD_SLOW, "journal.warm.build.slow",
         "test only: with `error`, a standby's background build of its ledger state (or of a "
         "bigger id filter) waits 5 s, ended early by a cancel, before it scans")
RL_FP_X (REPL_STANDBY_WARM_SMALL, "repl.standby.warm.small",
         "test only: with `error`, a standby sizes the id filter of its ledger state in memory "
         "at 1,024 ids with no room beyond, so that it grows under a test's load")
RL_FP_X (JOURNAL_WARM_VERIFY, "journal.warm.verify",
         "test only: with `error`, a promoted standby's recovery that took its accounts, id filter "
         "and transfers from memory also reads them from the disk and fails the open if they "
         "differ")
