/*  failpoint_list.h: the registry of every failpoint, one line each.

    X (ENUM_SUFFIX, "stable-name", "where it sits")

    Names are stable: tests and docs refer to them. Add new points at the
    end of their group; never rename one. docs/testing.md lists them.
*/
RL_FP_X (TEST_ALPHA, "test.alpha", "test only: exercised by test_failpoint")
RL_FP_X (TEST_BETA, "test.beta", "test only: exercised by test_failpoint")
RL_FP_X (SHARD_BEFORE_COMMIT, "shard.before_commit", "shard: group commit built, before the WriteBatch is written")
RL_FP_X (SHARD_AFTER_WRITE, "shard.after_write", "shard: WriteBatch written, before the WAL sync")
RL_FP_X (SHARD_AFTER_SYNC, "shard.after_sync", "shard: WAL synced, before replies are sent")
RL_FP_X (SHARD_AFTER_REPLY, "shard.after_reply", "shard: replies of a group commit sent")
