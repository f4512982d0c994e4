/*  kill_at_unlink.c: an LD_PRELOAD shim for crash tests that SIGKILLs the
    process inside RocksDB's SST ingestion, a window no failpoint of ours
    can reach.

    With move_files, RocksDB hard-links an ingested file into the database,
    records the ingest, and only then unlinks the file's outside name. The
    shim raises SIGKILL at that unlink: when RL_TEST_KILL_AT_UNLINK is set,
    the first unlink(2) of an existing path that contains its value and
    has more than one link (so: already linked into the database) kills the
    process. The path is first appended to RL_TEST_KILL_AT_UNLINK_FILE (when
    set), so that the test can assert that the point was reached. That
    append is not synced: the page cache keeps it across the kill, and a
    sync would hold the process for a disk round trip while RocksDB's own
    threads go on (a compaction may then delete the linked SST, and the
    staged name is left as the file's only link).

    Built without sanitizers: it must not pull a sanitizer runtime ahead of
    the program's own (the sanitizer build then sets
    ASAN_OPTIONS=verify_asan_link_order=0 for the child).
*/
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef int (s_unlink_fn) (const char *path);

int
unlink (const char *path)
{
    static s_unlink_fn *real_unlink;
    if (!real_unlink) {
        real_unlink = (s_unlink_fn *) dlsym (RTLD_NEXT, "unlink");
    }
    const char *match = getenv ("RL_TEST_KILL_AT_UNLINK");
    struct stat st;
    if (match && *match && strstr (path, match) && stat (path, &st) == 0 && st.st_nlink > 1) {
        const char *file = getenv ("RL_TEST_KILL_AT_UNLINK_FILE");
        if (file && *file) {
            int fd = open (file, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                ssize_t n = write (fd, path, strlen (path));
                n += write (fd, "\n", 1);
                (void) n;
                close (fd);
            }
        }
        raise (SIGKILL);
    }
    return real_unlink (path);
}
