/*  rlctl_backup.c: backup, verify-backup and restore (docs/backup.md).

        backup DIR --cluster     a backup of every shard at one consistent cut
        backup DIR --name SHARD  a backup of one shard (restorable only as a
                                 whole cluster when the ring has that shard alone)
        verify-backup DIR [SET]  every shard's backup of the set: sizes, then a
                                 trial restore that checks every file's checksum
        restore DIR ROOT [SET]   the whole cluster of the set into ROOT/<shard>

    DESIGN
    A backup is a SET: one backup of each shard, taken at one cut, and a
    set file DIR/set-NNNNNN that names them (shard, backup id, counts), the
    ring of the cut, and a checksum of the file. The shards write their own
    backups (a RocksDB backup engine in DIR/<shard>, incremental: a table
    file already there is not copied again), so DIR is a path on the shards'
    host(s), and rlctl, which writes the set file, runs where DIR is too.

    The cut (backup.c has the argument): rlctl connects one DEALER to each
    shard first, then sends backup_hold to all of them at once and waits for
    every answer, then backup_cut to all, then backup_release to all. Each
    shard is held from its hold until its release; the pause a client sees
    is that time, which each shard measures and reports (held_us). If any
    step fails, every shard is released (a hold also ends by itself after
    RLCTL_BACKUP_HOLD_MS) and no set file is written. Then rlctl waits for
    every copy (backup_status) and writes the set file last: a set file
    exists only for a complete set.

    verify-backup and restore work offline on DIR (no shard is asked).
    restore restores every shard of the set into ROOT/.restore-<pid> first,
    and moves them into ROOT/<shard> only when all succeeded: a failed
    restore leaves ROOT as it was. It refuses a single shard (--name): the
    other shards' two-phase state would disagree with it.

    INVARIANTS
    1. A set file is written only after every shard's copy is done, and it
       is written whole (a temporary file, fsync, a link that never
       replaces another run's set file) with a checksum:
       a torn or edited set file is refused.
    2. restore writes nothing under ROOT/<shard> unless every shard of the
       set restored; it never writes into an existing, non-empty directory.
    3. Names and paths from a set file are checked (shard names of the
       ring's alphabet, no '/', no "..") before any use.

    LIMITS: RL_SHARDS_MAX shards; a set file of at most RLCTL_SET_FILE_BYTES_MAX;
    RLCTL_BACKUP_HOLD_MS per hold; copies are waited for RLCTL_BACKUP_COPY_MS_MAX.
*/
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <czmq.h>
#include <rocksdb/c.h>
#include <xxhash.h>

#include "codec.h"
#include "failpoint.h"
#include "proc.h"
#include "ring.h"
#include "rl_limits.h"
#include "rlctl.h"

#define RLCTL_BACKUP_HOLD_MS     2000          //  a hold ends by itself after this
#define RLCTL_BACKUP_COPY_MS_MAX (3600 * 1000) //  longest wait for the copies
#define RLCTL_BACKUP_POLL_MS     20            //  backup_status every this
#define RLCTL_SET_FILE_BYTES_MAX (16u << 20)   //  a set file (the ring, in hex, is most of it)
#define RLCTL_SET_PREFIX         "set-"
#define RLCTL_SET_MAGIC          "ringledger-backup-set 1"
#define RLCTL_SET_NUMBER_MAX     999999
#define RLCTL_LOCK_FILE          ".rlctl-lock"       //  DIR's lock (flock): see s_lock
#define RLCTL_PURGE_SHARDS_MAX   (4 * RL_SHARDS_MAX) //  shard names over every set of a purge

typedef struct {
    char name[RL_SHARD_NAME_SIZE_MAX];
    uint32_t backup_id;
    uint64_t accounts;
    uint64_t transfers;
    uint64_t last_timestamp;
    uint64_t held_us;
    uint64_t cut_us;
    uint64_t copy_ms;
    uint64_t bytes;
    uint64_t new_bytes;
    uint64_t files;
} s_shard_t;

typedef struct {
    uint64_t token;
    uint64_t created_ns;
    bool cluster;
    uint64_t epoch;
    size_t shard_count;
    s_shard_t shards[RL_SHARDS_MAX];
    uint8_t *ring; //  the encoded ring of the cut
    size_t ring_size;
    unsigned number; //  NNNNNN of set-NNNNNN
} s_set_t;

//  Names and paths ------------------------------------------------------------

//  A shard name usable as a directory name.
static bool
s_name_ok (const char *name)
{
    size_t length = strnlen (name, RL_SHARD_NAME_SIZE_MAX);
    if (length == 0 || length == RL_SHARD_NAME_SIZE_MAX || name[0] == '.') {
        return false;
    }
    for (size_t i = 0; i < length; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                  || c == '-' || c == '_' || c == '.';
        if (!ok) {
            return false;
        }
    }
    return true;
}

//  A path of the command line: not empty, not too long, no control bytes,
//  no ".." component. why: what is wrong.
static bool
s_path_ok (const char *path, bool absolute, const char **why)
{
    size_t length = strlen (path);
    *why = NULL;
    if (length == 0 || length >= RL_BACKUP_DIR_SIZE_MAX) {
        *why = "empty or too long";
    } else if (absolute && path[0] != '/') {
        *why = "not an absolute path (the shards resolve it on their host)";
    }
    for (size_t i = 0; !*why && i < length; i++) {
        unsigned char c = (unsigned char) path[i];
        if (c < 0x20 || c == 0x7f) {
            *why = "it holds a control byte";
        } else if ((i == 0 || path[i - 1] == '/') && path[i] == '.' && path[i + 1] == '.'
                   && (path[i + 2] == '/' || path[i + 2] == 0)) {
            *why = "it holds a '..' component";
        }
    }
    return *why == NULL;
}

static bool
s_is_dir (const char *path)
{
    struct stat st;
    return stat (path, &st) == 0 && S_ISDIR (st.st_mode);
}

//  Fails with a message on stderr (and a JSON error with --json).
static int
s_fail (const rlctl_ctx_t *ctx, const char *what, const char *message)
{
    fprintf (stderr, "rlctl: %s: %s\n", what, message);
    if (ctx->json) {
        cJSON *tree = jsonkit_object ();
        jsonkit_add_string (tree, "error", what);
        jsonkit_add_string (tree, "message", message);
        jsonkit_print (stdout, tree, true);
        cJSON_Delete (tree);
    }
    return RLCTL_EXIT_FAILED;
}

//  DIR's lock: a backup, verify-backup and restore hold it shared while
//  they add or read backups and set files; backup-purge holds it exclusive
//  while it deletes, and is refused at once when anything else holds it.
//  So a set that a restore reads is never deleted under it. Returns the
//  locked descriptor, RLCTL_LOCK_NONE when DIR cannot hold a lock file and
//  a shared lock was asked (a read-only DIR: nothing can delete in it), or
//  -1 with err.
#define RLCTL_LOCK_NONE (-2)
static int
s_lock (const char *dir, bool exclusive, char *err, size_t err_size)
{
    char path[PATH_MAX];
    snprintf (path, sizeof path, "%s/" RLCTL_LOCK_FILE, dir);
    int fd = open (path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && !exclusive) {
        fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && (errno == ENOENT || errno == EROFS || errno == EACCES)) {
            return RLCTL_LOCK_NONE;
        }
    }
    if (fd < 0) {
        snprintf (err, err_size, "cannot open %.200s: %.200s", path, strerror (errno));
        return -1;
    }
    if (flock (fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0) {
        return fd;
    }
    if (errno == EWOULDBLOCK && !exclusive) {
        fprintf (stderr, "rlctl: waiting for the purge of %s to end\n", dir);
        if (flock (fd, LOCK_SH) == 0) {
            return fd;
        }
    }
    if (errno == EWOULDBLOCK) {
        snprintf (err, err_size,
                  "%.200s is in use by a backup, a verify-backup or a restore: try again when it "
                  "has ended",
                  dir);
    } else {
        snprintf (err, err_size, "cannot lock %.200s: %.200s", path, strerror (errno));
    }
    close (fd);
    return -1;
}

static void
s_unlock (int *fd_p)
{
    if (*fd_p >= 0) {
        close (*fd_p); //  releases the flock
    }
    *fd_p = -1;
}

//  Set files ---------------------------------------------------------------------

//  The number of a set file's name: "set-" and exactly six digits, 1 ..
//  RLCTL_SET_NUMBER_MAX; 0 for any other name (sscanf's %u would take a
//  sign, "set--00001" as UINT_MAX, after which a backup wrote set-000000).
static unsigned
s_set_number_of (const char *name)
{
    size_t prefix = strlen (RLCTL_SET_PREFIX);
    if (strncmp (name, RLCTL_SET_PREFIX, prefix) != 0 || strlen (name) != prefix + 6) {
        return 0;
    }
    unsigned n = 0;
    for (size_t i = prefix; i < prefix + 6; i++) {
        if (name[i] < '0' || name[i] > '9') {
            return 0;
        }
        n = n * 10 + (unsigned) (name[i] - '0');
    }
    return n <= RLCTL_SET_NUMBER_MAX ? n : 0;
}

//  The highest NNNNNN of DIR/set-NNNNNN, 0 when none.
static unsigned
s_set_last (const char *dir)
{
    DIR *d = opendir (dir);
    unsigned last = 0;
    struct dirent *e;
    while (d && (e = readdir (d))) {
        unsigned n = s_set_number_of (e->d_name);
        last = n > last ? n : last;
    }
    if (d) {
        closedir (d);
    }
    return last;
}

static char *
s_set_text (const s_set_t *set, size_t *size_p)
{
    size_t cap = 4096 + set->shard_count * 256 + set->ring_size * 2;
    char *text = malloc (cap);
    if (!text) {
        return NULL;
    }
    size_t n = (size_t) snprintf (text, cap,
                                  RLCTL_SET_MAGIC "\ntoken %016" PRIx64 "\ncreated_ns %" PRIu64
                                                  "\ncluster %d\nepoch %" PRIu64 "\nshards %zu\n",
                                  set->token, set->created_ns, set->cluster ? 1 : 0, set->epoch,
                                  set->shard_count);
    for (size_t i = 0; i < set->shard_count; i++) {
        const s_shard_t *s = &set->shards[i];
        n += (size_t) snprintf (text + n, cap - n,
                                "shard %s %u %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", s->name,
                                s->backup_id, s->accounts, s->transfers, s->last_timestamp);
    }
    n += (size_t) snprintf (text + n, cap - n, "ring ");
    for (size_t i = 0; i < set->ring_size; i++) {
        n += (size_t) snprintf (text + n, cap - n, "%02x", set->ring[i]);
    }
    text[n++] = '\n';
    n += (size_t) snprintf (text + n, cap - n, "check %016" PRIx64 "\n",
                            (uint64_t) XXH3_64bits (text, n));
    *size_p = n;
    return text;
}

//  Writes DIR/set-NNNNNN whole: a temporary file, fsync, link (the next
//  free number), fsync DIR.
static int
s_set_write (const char *dir, s_set_t *set, char *err, size_t err_size)
{
    set->number = s_set_last (dir) + 1;
    if (set->number > RLCTL_SET_NUMBER_MAX) {
        snprintf (err, err_size, "%.200s holds set files up to the last number already", dir);
        return -1;
    }
    RL_FAILPOINT (BACKUP_SET_NUMBER);
    size_t size = 0;
    char *text = s_set_text (set, &size);
    char tmp[PATH_MAX], path[PATH_MAX];
    //  Backups of other shards may run beside this one (DIR's lock is
    //  shared between them): a temporary file of this process, and a
    //  link that never replaces a set file another run wrote first, the
    //  next number then.
    snprintf (tmp, sizeof tmp, "%s/.set-%d.tmp", dir, (int) getpid ());
    snprintf (path, sizeof path, "%s/" RLCTL_SET_PREFIX "%06u", dir, set->number);
    int fd = text ? open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600) : -1;
    bool ok = fd >= 0 && write (fd, text, size) == (ssize_t) size && fsync (fd) == 0;
    if (fd >= 0) {
        ok = close (fd) == 0 && ok;
    }
    bool placed = false;
    while (ok && !placed) {
        if (link (tmp, path) == 0) {
            placed = true;
        } else if (errno == EEXIST) {
            ok = ++set->number <= RLCTL_SET_NUMBER_MAX;
            snprintf (path, sizeof path, "%s/" RLCTL_SET_PREFIX "%06u", dir, set->number);
        } else if (errno == EPERM || errno == EOPNOTSUPP) {
            ok = placed = rename (tmp, path) == 0; //  a file system without links
        } else {
            ok = false;
        }
    }
    int why = errno;
    ok = (unlink (tmp) == 0 || errno == ENOENT) && ok;
    errno = ok ? 0 : why;
    int dfd = open (dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        ok = fsync (dfd) == 0 && ok;
        close (dfd);
    }
    free (text);
    if (!ok) {
        snprintf (err, err_size, "cannot write %.200s: %.200s", path, strerror (errno));
        (void) unlink (tmp);
        return -1;
    }
    return 0;
}

static int
s_hex (char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

//  Reads and checks DIR/set-NNNNNN (number 0: the last one).
static int
s_set_read (const char *dir, unsigned number, s_set_t *set, char *err, size_t err_size)
{
    memset (set, 0, sizeof *set);
    if (number == 0 && (number = s_set_last (dir)) == 0) {
        snprintf (err, err_size, "%.200s holds no backup set (no %.200sNNNNNN file)", dir,
                  RLCTL_SET_PREFIX);
        return -1;
    }
    set->number = number;
    char path[PATH_MAX];
    snprintf (path, sizeof path, "%s/" RLCTL_SET_PREFIX "%06u", dir, number);
    FILE *f = fopen (path, "rb");
    if (!f) {
        snprintf (err, err_size, "cannot read %.200s: %.200s", path, strerror (errno));
        return -1;
    }
    char *text = malloc (RLCTL_SET_FILE_BYTES_MAX + 1);
    size_t size = text ? fread (text, 1, RLCTL_SET_FILE_BYTES_MAX + 1, f) : 0;
    fclose (f);
    if (!text || size == 0 || size > RLCTL_SET_FILE_BYTES_MAX) {
        snprintf (err, err_size, "%.200s is empty, too large or unreadable", path);
        free (text);
        return -1;
    }
    text[size] = 0;
    //  The checksum covers everything before the "check" line.
    char *check = strstr (text, "\ncheck ");
    uint64_t want = 0;
    char tail = 0;
    if (!check || sscanf (check + 7, "%16" SCNx64 "%c", &want, &tail) != 2 || tail != '\n'
        || (size_t) (check + 7 + 17 - text) != size
        || want != XXH3_64bits (text, (size_t) (check - text) + 1)) {
        snprintf (err, err_size, "%.200s is damaged (its checksum does not match)", path);
        free (text);
        return -1;
    }
    int rc = -1;
    char *save = NULL;
    char *line = strtok_r (text, "\n", &save);
    int cluster = 0;
    if (!line || strcmp (line, RLCTL_SET_MAGIC) != 0) {
        snprintf (err, err_size, "%.200s is not a backup set of this version", path);
        goto done;
    }
    line = strtok_r (NULL, "\n", &save);
    if (!line || sscanf (line, "token %" SCNx64, &set->token) != 1) {
        goto bad;
    }
    line = strtok_r (NULL, "\n", &save);
    if (!line || sscanf (line, "created_ns %" SCNu64, &set->created_ns) != 1) {
        goto bad;
    }
    line = strtok_r (NULL, "\n", &save);
    if (!line || sscanf (line, "cluster %d", &cluster) != 1) {
        goto bad;
    }
    set->cluster = cluster == 1;
    line = strtok_r (NULL, "\n", &save);
    if (!line || sscanf (line, "epoch %" SCNu64, &set->epoch) != 1) {
        goto bad;
    }
    line = strtok_r (NULL, "\n", &save);
    if (!line || sscanf (line, "shards %zu", &set->shard_count) != 1 || set->shard_count == 0
        || set->shard_count > RL_SHARDS_MAX) {
        goto bad;
    }
    for (size_t i = 0; i < set->shard_count; i++) {
        s_shard_t *s = &set->shards[i];
        char name[64];
        line = strtok_r (NULL, "\n", &save);
        if (!line
            || sscanf (line, "shard %63s %u %" SCNu64 " %" SCNu64 " %" SCNu64, name, &s->backup_id,
                       &s->accounts, &s->transfers, &s->last_timestamp)
                   != 5
            || strlen (name) >= sizeof s->name || !s_name_ok (name) || s->backup_id == 0) {
            goto bad;
        }
        snprintf (s->name, sizeof s->name, "%s", name);
    }
    line = strtok_r (NULL, "\n", &save);
    if (!line || strncmp (line, "ring ", 5) != 0) {
        goto bad;
    }
    const char *hex = line + 5;
    size_t hex_size = strlen (hex);
    if (hex_size == 0 || hex_size % 2 || hex_size / 2 > RL_RING_BLOB_SIZE_MAX) {
        goto bad;
    }
    set->ring_size = hex_size / 2;
    set->ring = malloc (set->ring_size);
    for (size_t i = 0; set->ring && i < set->ring_size; i++) {
        int hi = s_hex (hex[2 * i]), lo = s_hex (hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            goto bad;
        }
        set->ring[i] = (uint8_t) (hi << 4 | lo);
    }
    if (!set->ring) {
        goto bad;
    }
    rc = 0;
    goto done;
bad:
    snprintf (err, err_size, "%.200s does not parse as a backup set", path);
done:
    free (text);
    if (rc) {
        free (set->ring);
        set->ring = NULL;
    }
    return rc;
}

//  The set's shards must be exactly the shards of its ring (what restore
//  needs: a whole cluster), and its ring the one its shards served at the
//  cut (a set taken through a stale ring, before the backup looked for
//  the newest, may lack a shard a newer ring added). 0, or -1 with the
//  reason.
static int
s_set_whole (const s_set_t *set, char *err, size_t err_size)
{
    char why[256];
    ring_t *ring = ring_decode (set->ring, set->ring_size, why, sizeof why);
    if (!ring) {
        snprintf (err, err_size, "the set's ring does not decode: %.200s", why);
        return -1;
    }
    int rc = 0;
    if (ring_epoch (ring) != set->epoch) {
        snprintf (err, err_size,
                  "the set's shards served ring epoch %" PRIu64 " at the cut but its ring is epoch "
                  "%" PRIu64 ": a shard of the newer ring may have no backup in the set",
                  set->epoch, ring_epoch (ring));
        rc = -1;
    }
    if (rc == 0 && ring_shard_count (ring) != set->shard_count) {
        snprintf (err, err_size,
                  "the set holds %zu shard(s) but its ring has %zu: a set restores only as a "
                  "whole cluster (take it with 'rlctl backup DIR --cluster')",
                  set->shard_count, ring_shard_count (ring));
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < set->shard_count; i++) {
        bool found = false;
        for (size_t j = 0; j < set->shard_count; j++) {
            found |= strcmp (ring_shard_name (ring, i), set->shards[j].name) == 0;
        }
        if (!found) {
            snprintf (err, err_size, "the ring's shard %.200s has no backup in the set",
                      ring_shard_name (ring, i));
            rc = -1;
        }
    }
    ring_destroy (&ring);
    return rc;
}

//  The cut ---------------------------------------------------------------------

typedef struct {
    size_t count;
    zsock_t *socks[RL_SHARDS_MAX];
    const char *names[RL_SHARDS_MAX];
    rl_backup_rec_t answers[RL_SHARDS_MAX];
    int rcs[RL_SHARDS_MAX]; //  0, a status (> 0), or RL_CLIENT_TIMEOUT
    uint64_t request_id;
} s_cut_t;

//  Sends op with rec to every shard, then reads every answer until one
//  deadline. Returns the number of shards whose answer is not ok.
static size_t
s_round (s_cut_t *cut, uint16_t op, const rl_backup_rec_t *rec, int timeout_ms)
{
    uint8_t frame[RL_HEADER_SIZE + RL_BACKUP_SIZE];
    uint64_t request_id = ++cut->request_id;
    rl_header_t header = codec_request_header (op, request_id, 1);
    uint8_t body[RL_BACKUP_SIZE];
    codec_encode_backup (rec, body);
    codec_encode_frame (&header, body, sizeof body, frame);
    bool done[RL_SHARDS_MAX] = {false};
    for (size_t i = 0; i < cut->count; i++) {
        cut->rcs[i] = zsock_send (cut->socks[i], "b", frame, sizeof frame) == 0
                          ? RL_CLIENT_TIMEOUT
                          : RL_CLIENT_ERR_SEND;
        done[i] = cut->rcs[i] == RL_CLIENT_ERR_SEND;
    }
    int64_t deadline = zclock_mono () + timeout_ms;
    zpoller_t *poller = zpoller_new (NULL);
    for (size_t i = 0; poller && i < cut->count; i++) {
        zpoller_add (poller, cut->socks[i]);
    }
    size_t open = 0;
    for (size_t i = 0; i < cut->count; i++) {
        open += !done[i];
    }
    while (poller && open > 0 && zclock_mono () < deadline) {
        zsock_t *which = zpoller_wait (poller, (int) (deadline - zclock_mono ()));
        if (!which) {
            continue;
        }
        size_t i = 0;
        while (i < cut->count && cut->socks[i] != which) {
            i++;
        }
        zframe_t *reply = zframe_recv (which);
        if (!reply || i == cut->count) {
            zframe_destroy (&reply);
            continue;
        }
        rl_header_t h;
        const uint8_t *rbody = NULL;
        size_t rsize = 0;
        rl_status_t st = codec_parse_reply (zframe_data (reply), zframe_size (reply), &h, &rbody,
                                            &rsize);
        if (st == RL_STATUS_OK && h.request_id == request_id && h.operation == op && !done[i]) {
            if (h.status != RL_STATUS_OK) {
                cut->rcs[i] = (int) h.status;
            } else if (rsize == RL_BACKUP_SIZE) {
                codec_decode_backup (rbody, &cut->answers[i]);
                cut->rcs[i] = cut->answers[i].result == RL_BACKUP_OK ? 0 : RL_CLIENT_ERR_REPLY;
            } else {
                cut->rcs[i] = RL_CLIENT_ERR_REPLY;
            }
            done[i] = true;
            open--;
        }
        zframe_destroy (&reply);
    }
    zpoller_destroy (&poller);
    size_t failed = 0;
    for (size_t i = 0; i < cut->count; i++) {
        failed += cut->rcs[i] != 0;
    }
    return failed;
}

//  What went wrong with shard i in the last round, in words.
static const char *
s_round_error (const s_cut_t *cut, size_t i, char *out, size_t size)
{
    int rc = cut->rcs[i];
    if (rc == RL_CLIENT_ERR_REPLY && cut->answers[i].result != RL_BACKUP_OK) {
        snprintf (out, size, "%s: %s", cut->names[i], cut->answers[i].message);
    } else if (rc > 0) {
        snprintf (out, size, "%s answered %s: %s", cut->names[i], rl_status_name ((uint32_t) rc),
                  rl_status_hint ((uint32_t) rc));
    } else if (rc == RL_CLIENT_TIMEOUT) {
        snprintf (out, size, "%s: no answer in time", cut->names[i]);
    } else {
        snprintf (out, size, "%s: %s", cut->names[i], rl_client_strerror (rc));
    }
    return out;
}

static const char *
s_first_error (const s_cut_t *cut, char *out, size_t size)
{
    for (size_t i = 0; i < cut->count; i++) {
        if (cut->rcs[i] != 0) {
            return s_round_error (cut, i, out, size);
        }
    }
    snprintf (out, size, "?");
    return out;
}

static void
s_backup_table (const rlctl_ctx_t *ctx, const cJSON *tree)
{
    (void) ctx;
    printf ("backup set %s in %s: %s, ring epoch %s, held %s us (max over shards)\n\n",
            jsonkit_text (tree, "set"), jsonkit_text (tree, "dir"),
            cJSON_IsTrue (jsonkit_get (tree, "cluster")) ? "cluster cut" : "one shard",
            jsonkit_text (tree, "epoch"), jsonkit_text (tree, "held_us_max"));
    printf ("%-12s %9s %10s %12s %10s %12s %12s %9s\n", "shard", "backup_id", "accounts",
            "transfers", "cut_us", "bytes", "new_bytes", "copy_ms");
    const cJSON *item;
    cJSON_ArrayForEach (item, jsonkit_get (tree, "shards"))
    {
        printf ("%-12s %9s %10s %12s %10s %12s %12s %9s\n", jsonkit_text (item, "shard"),
                jsonkit_text (item, "backup_id"), jsonkit_text (item, "accounts"),
                jsonkit_text (item, "transfers"), jsonkit_text (item, "cut_us"),
                jsonkit_text (item, "bytes"), jsonkit_text (item, "new_bytes"),
                jsonkit_text (item, "copy_ms"));
    }
}

//  Holds, cuts and releases; then waits for the copies. 0, or -1 with err.
static int
s_take (s_cut_t *cut, const char *dir, s_set_t *set, char *err, size_t err_size)
{
    rl_backup_rec_t rec = {.token = set->token, .hold_ms = RLCTL_BACKUP_HOLD_MS};
    char why[512];
    //  The connections are up before the hold: a status round trip each.
    for (size_t i = 0; i < cut->count; i++) {
        rl_status_rec_t status;
        (void) status;
        uint8_t frame[RL_HEADER_SIZE];
        rl_header_t header = codec_request_header (RL_OP_STATUS, 0, 0);
        codec_encode_frame (&header, NULL, 0, frame);
        zsock_send (cut->socks[i], "b", frame, sizeof frame);
        zsock_set_rcvtimeo (cut->socks[i], 5000);
        zframe_t *reply = zframe_recv (cut->socks[i]);
        if (!reply) {
            snprintf (err, err_size,
                      "%.200s does not answer status: is it running, and does the ring give its "
                      "key (rlctl ring)?",
                      cut->names[i]);
            return -1;
        }
        zframe_destroy (&reply);
    }
    int round_ms = 5000;
    if (s_round (cut, RL_OP_BACKUP_HOLD, &rec, round_ms) != 0) {
        snprintf (err, err_size, "hold refused: %.200s", s_first_error (cut, why, sizeof why));
        rec.hold_ms = 0;
        s_round (cut, RL_OP_BACKUP_RELEASE, &rec, round_ms);
        return -1;
    }
    //  The set's ring must be the newest any held shard serves (a held
    //  shard takes no ring until its release): a shard a newer ring added
    //  would have no backup in the set, and its accounts would be lost at
    //  a restore. During a ring change a shard may still serve the ring
    //  before; the set's ring names every shard of both.
    uint64_t served = 0;
    for (size_t i = 0; i < cut->count; i++) {
        served = cut->answers[i].epoch > served ? cut->answers[i].epoch : served;
    }
    if (served != set->epoch) {
        snprintf (err, err_size,
                  "the shards serve ring epoch %" PRIu64 ", the ring found was epoch %" PRIu64
                  " (a ring change ran meanwhile): no backup taken; run it again",
                  served, set->epoch);
        rec.hold_ms = 0;
        s_round (cut, RL_OP_BACKUP_RELEASE, &rec, round_ms);
        return -1;
    }
    rl_backup_rec_t cut_rec = {.token = set->token};
    snprintf (cut_rec.dir, sizeof cut_rec.dir, "%s", dir);
    size_t cut_failed = s_round (cut, RL_OP_BACKUP_CUT, &cut_rec, round_ms);
    if (cut_failed) {
        snprintf (err, err_size, "cut refused: %.200s", s_first_error (cut, why, sizeof why));
    }
    for (size_t i = 0; i < cut->count && !cut_failed; i++) {
        set->shards[i].accounts = cut->answers[i].accounts;
        set->shards[i].transfers = cut->answers[i].transfers;
        set->shards[i].last_timestamp = cut->answers[i].last_timestamp;
        set->shards[i].cut_us = cut->answers[i].cut_us;
        if (cut->answers[i].epoch > set->epoch) {
            //  Not expected: a held shard defers every ring.
            snprintf (err, err_size, "%.200s took ring epoch %" PRIu64 " during the hold",
                      cut->names[i], cut->answers[i].epoch);
            cut_failed = 1;
        }
    }
    rec.hold_ms = 0;
    if (s_round (cut, RL_OP_BACKUP_RELEASE, &rec, round_ms) != 0 && !cut_failed) {
        //  A hold that ended by itself before its release: the cut may not
        //  be one instant for every shard.
        snprintf (err, err_size, "release: %.200s (the hold passed its limit: no cut)",
                  s_first_error (cut, why, sizeof why));
        return -1;
    }
    if (cut_failed) {
        return -1;
    }
    for (size_t i = 0; i < cut->count; i++) {
        set->shards[i].held_us = cut->answers[i].held_us;
    }
    //  The copies run on the shards; a set file is written once all are done.
    int64_t deadline = zclock_mono () + RLCTL_BACKUP_COPY_MS_MAX;
    while (true) {
        s_round (cut, RL_OP_BACKUP_STATUS, &rec, round_ms);
        size_t copying = 0;
        for (size_t i = 0; i < cut->count; i++) {
            const rl_backup_rec_t *a = &cut->answers[i];
            if (cut->rcs[i] != 0 || a->state == RL_BACKUP_FAILED) {
                snprintf (err, err_size, "copy: %.200s",
                          cut->rcs[i] != 0 ? s_round_error (cut, i, why, sizeof why) : a->message);
                return -1;
            }
            copying += a->state == RL_BACKUP_COPYING;
        }
        if (copying == 0) {
            break;
        }
        if (zclock_mono () > deadline) {
            snprintf (err, err_size, "the copies did not end within %d ms",
                      RLCTL_BACKUP_COPY_MS_MAX);
            return -1;
        }
        zclock_sleep (RLCTL_BACKUP_POLL_MS);
    }
    for (size_t i = 0; i < cut->count; i++) {
        const rl_backup_rec_t *a = &cut->answers[i];
        set->shards[i].backup_id = a->backup_id;
        set->shards[i].bytes = a->bytes;
        set->shards[i].new_bytes = a->new_bytes;
        set->shards[i].files = a->files;
        set->shards[i].copy_ms = a->copy_ms;
    }
    return 0;
}

//  backup DIR --cluster | --name SHARD
int
rlctl_cmd_backup (rlctl_ctx_t *ctx)
{
    const char *dir = ctx->args[1];
    const char *why = NULL;
    bool cluster = ctx->given & RLCTL_O_CLUSTER;
    if (cluster == !!(ctx->given & RLCTL_O_NAME)) {
        return rlctl_usage_error ("%s", "backup DIR takes --cluster (every shard at one cut) or "
                                        "--name SHARD (one shard), exactly one");
    }
    if (!s_path_ok (dir, true, &why)) {
        return rlctl_usage_error ("bad backup directory: %s", why);
    }
    if (!s_is_dir (dir)) {
        return s_fail (ctx, "backup", "the backup directory does not exist (make it first)");
    }
    rl_client_t *client = rlctl_client (ctx);
    if (!client) {
        return RLCTL_EXIT_FAILED;
    }
    ring_t *ring = NULL;
    char err[2048];
    int rc = rlctl_ring_get (client, ctx->timeout_ms, &ring, err, sizeof err);
    rl_client_destroy (&client);
    if (rc) {
        return err[0] ? s_fail (ctx, "backup", err) : rlctl_call_failed (ctx, "backup", rc, false);
    }
    //  --connect may serve an older ring than the shards (a router adopts
    //  a change at its next refresh): the set takes the newest.
    rlctl_ring_newest (&ring, ctx->timeout_ms < RLCTL_PROBE_TIMEOUT_MS ? ctx->timeout_ms
                                                                       : RLCTL_PROBE_TIMEOUT_MS);
    static s_set_t set;
    static s_cut_t cut;
    memset (&set, 0, sizeof set);
    memset (&cut, 0, sizeof cut);
    set.cluster = cluster;
    set.epoch = ring_epoch (ring);
    for (size_t i = 0; i < ring_shard_count (ring); i++) {
        if (!cluster && strcmp (ring_shard_name (ring, i), ctx->name) != 0) {
            continue;
        }
        cut.names[cut.count] = ring_shard_name (ring, i);
        cut.socks[cut.count] = zsock_new (ZMQ_DEALER);
        if (!cut.socks[cut.count]
            || rl_client_connect (cut.socks[cut.count], ring_shard_endpoint (ring, i)) != 0) {
            snprintf (err, sizeof err, "cannot connect to %.200s", ring_shard_endpoint (ring, i));
            rc = -1;
        }
        zsock_set_linger (cut.socks[cut.count], 0);
        snprintf (set.shards[cut.count].name, sizeof set.shards[0].name, "%s",
                  ring_shard_name (ring, i));
        cut.count++;
    }
    set.shard_count = cut.count;
    if (cut.count == 0) {
        snprintf (err, sizeof err, "the ring has no shard named %.200s",
                  ctx->name ? ctx->name : "");
        rc = -1;
    }
    set.ring_size = ring_encoded_size (ring);
    set.ring = malloc (set.ring_size);
    if (rc == 0 && (!set.ring || ring_encode (ring, set.ring, set.ring_size) != set.ring_size)) {
        snprintf (err, sizeof err, "out of memory");
        rc = -1;
    }
    while (rc == 0 && set.token == 0) {
        if (getrandom (&set.token, sizeof set.token, 0) != (ssize_t) sizeof set.token) {
            set.token = (uint64_t) zclock_usecs () ^ ((uint64_t) getpid () << 40);
        }
    }
    set.created_ns = (uint64_t) zclock_time () * 1000000ull;
    int lock = -1;
    if (rc == 0 && (lock = s_lock (dir, false, err, sizeof err)) == -1) {
        rc = -1;
    }
    if (rc == 0) {
        rc = s_take (&cut, dir, &set, err, sizeof err);
    }
    if (rc == 0) {
        rc = s_set_write (dir, &set, err, sizeof err);
    }
    s_unlock (&lock);
    for (size_t i = 0; i < cut.count; i++) {
        zsock_destroy (&cut.socks[i]);
    }
    ring_destroy (&ring);
    if (rc) {
        free (set.ring);
        return s_fail (ctx, "backup", err);
    }
    cJSON *tree = jsonkit_object ();
    char number[16];
    snprintf (number, sizeof number, "%06u", set.number);
    jsonkit_add_string (tree, "set", number);
    jsonkit_add_string (tree, "dir", dir);
    jsonkit_add_bool (tree, "cluster", set.cluster);
    jsonkit_add_u64 (tree, "epoch", set.epoch);
    char token[20];
    snprintf (token, sizeof token, "%016" PRIx64, set.token);
    jsonkit_add_string (tree, "token", token);
    uint64_t held_max = 0;
    cJSON *list = jsonkit_add_array (tree, "shards");
    for (size_t i = 0; i < set.shard_count; i++) {
        const s_shard_t *s = &set.shards[i];
        held_max = s->held_us > held_max ? s->held_us : held_max;
        cJSON *item = jsonkit_add_object (list, NULL);
        jsonkit_add_string (item, "shard", s->name);
        jsonkit_add_u64 (item, "backup_id", s->backup_id);
        jsonkit_add_u64 (item, "accounts", s->accounts);
        jsonkit_add_u64 (item, "transfers", s->transfers);
        jsonkit_add_u64 (item, "last_timestamp", s->last_timestamp);
        jsonkit_add_u64 (item, "held_us", s->held_us);
        jsonkit_add_u64 (item, "cut_us", s->cut_us);
        jsonkit_add_u64 (item, "copy_ms", s->copy_ms);
        jsonkit_add_u64 (item, "files", s->files);
        jsonkit_add_u64 (item, "bytes", s->bytes);
        jsonkit_add_u64 (item, "new_bytes", s->new_bytes);
    }
    jsonkit_add_u64 (tree, "held_us_max", held_max);
    free (set.ring);
    return rlctl_emit (ctx, &tree, s_backup_table, RLCTL_EXIT_OK);
}

//  Verify and restore (offline) ---------------------------------------------------

//  Restores backup id of DIR/<name> into target (which must not exist).
//  RocksDB checks every file's checksum as it copies. 0, or -1 with err.
static int
s_restore_one (const char *dir, const s_shard_t *s, const char *target, char *err, size_t err_size)
{
    char engine_dir[PATH_MAX];
    snprintf (engine_dir, sizeof engine_dir, "%s/%s", dir, s->name);
    if (!s_is_dir (engine_dir)) {
        snprintf (err, err_size, "%.32s: no backup directory %.200s", s->name, engine_dir);
        return -1;
    }
    char *e = NULL;
    rocksdb_options_t *options = rocksdb_options_create ();
    rocksdb_backup_engine_t *engine = rocksdb_backup_engine_open (options, engine_dir, &e);
    if (!e) {
        rocksdb_backup_engine_verify_backup (engine, s->backup_id, &e);
    }
    if (!e) {
        rocksdb_restore_options_t *restore = rocksdb_restore_options_create ();
        rocksdb_backup_engine_restore_db_from_backup (engine, target, target, restore, s->backup_id,
                                                      &e);
        rocksdb_restore_options_destroy (restore);
    }
    if (engine) {
        rocksdb_backup_engine_close (engine);
    }
    rocksdb_options_destroy (options);
    if (e) {
        snprintf (err, err_size, "%.32s: backup %u: %.200s", s->name, s->backup_id, e);
        rocksdb_free (e);
        return -1;
    }
    return 0;
}

//  The set number of an optional positional argument (0: the last).
static int
s_set_number (const char *text, unsigned *number_p)
{
    uint64_t n = 0;
    *number_p = 0;
    if (!text) {
        return 0;
    }
    if (rlctl_parse_u64 (text, &n) || n == 0 || n > RLCTL_SET_NUMBER_MAX) {
        return rlctl_usage_error ("bad set number '%s': expected 1..999999", text);
    }
    *number_p = (unsigned) n;
    return 0;
}

//  Restores every shard of the set into root/tmp_name/<shard>. 0, or -1.
static int
s_restore_all (const char *dir, const s_set_t *set, const char *work, cJSON *list, char *err,
               size_t err_size)
{
    if (mkdir (work, 0700) != 0) {
        snprintf (err, err_size, "cannot make %.200s: %.200s", work, strerror (errno));
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < set->shard_count; i++) {
        const s_shard_t *s = &set->shards[i];
        char target[PATH_MAX];
        snprintf (target, sizeof target, "%s/%s", work, s->name);
        char why[1024] = "";
        int one = s_restore_one (dir, s, target, why, sizeof why);
        cJSON *item = jsonkit_add_object (list, NULL);
        jsonkit_add_string (item, "shard", s->name);
        jsonkit_add_u64 (item, "backup_id", s->backup_id);
        jsonkit_add_u64 (item, "accounts", s->accounts);
        jsonkit_add_u64 (item, "transfers", s->transfers);
        jsonkit_add_bool (item, "ok", one == 0);
        jsonkit_add_string (item, "message", one == 0 ? "ok" : why);
        if (one != 0 && rc == 0) {
            snprintf (err, err_size, "%.200s", why);
            rc = -1;
        }
    }
    return rc;
}

static void
s_verify_table (const rlctl_ctx_t *ctx, const cJSON *tree)
{
    (void) ctx;
    printf ("backup set %s in %s: %s\n\n", jsonkit_text (tree, "set"), jsonkit_text (tree, "dir"),
            cJSON_IsTrue (jsonkit_get (tree, "ok"))         ? "ok"
            : cJSON_IsTrue (jsonkit_get (tree, "verified")) ? "NOT RESTORABLE"
                                                            : "DAMAGED");
    printf ("%-12s %9s %10s %12s  %s\n", "shard", "backup_id", "accounts", "transfers", "result");
    const cJSON *item;
    cJSON_ArrayForEach (item, jsonkit_get (tree, "shards"))
    {
        printf ("%-12s %9s %10s %12s  %s\n", jsonkit_text (item, "shard"),
                jsonkit_text (item, "backup_id"), jsonkit_text (item, "accounts"),
                jsonkit_text (item, "transfers"), jsonkit_text (item, "message"));
    }
}

//  verify-backup DIR [SET]
int
rlctl_cmd_verify_backup (rlctl_ctx_t *ctx)
{
    const char *dir = ctx->args[1];
    const char *why = NULL;
    unsigned number = 0;
    int rc = s_set_number (ctx->arg_count > 2 ? ctx->args[2] : NULL, &number);
    if (rc) {
        return rc;
    }
    if (!s_path_ok (dir, false, &why)) {
        return rlctl_usage_error ("bad backup directory: %s", why);
    }
    if (!s_is_dir (dir)) {
        return s_fail (ctx, "verify-backup", "the backup directory does not exist");
    }
    static s_set_t set;
    char err[2048];
    int lock = s_lock (dir, false, err, sizeof err);
    if (lock == -1) {
        return s_fail (ctx, "verify-backup", err);
    }
    if (s_set_read (dir, number, &set, err, sizeof err) != 0) {
        s_unlock (&lock);
        return s_fail (ctx, "verify-backup", err);
    }
    char work[PATH_MAX];
    snprintf (work, sizeof work, "%s/.verify-%d", dir, (int) getpid ());
    (void) proc_remove_tree (work);
    cJSON *tree = jsonkit_object ();
    char text[16];
    snprintf (text, sizeof text, "%06u", set.number);
    jsonkit_add_string (tree, "set", text);
    jsonkit_add_string (tree, "dir", dir);
    cJSON *list = jsonkit_add_array (tree, "shards");
    rc = s_restore_all (dir, &set, work, list, err, sizeof err);
    (void) proc_remove_tree (work);
    s_unlock (&lock);
    //  Its backups are sound; restore also needs the set whole.
    char whole[1024] = "";
    bool restorable = s_set_whole (&set, whole, sizeof whole) == 0;
    jsonkit_add_bool (tree, "verified", rc == 0);
    jsonkit_add_bool (tree, "restorable", restorable);
    if (rc == 0 && !restorable) {
        snprintf (err, sizeof err, "the set's backups verify, but restore refuses it: %.900s",
                  whole);
        rc = -1;
    }
    jsonkit_add_bool (tree, "ok", rc == 0);
    free (set.ring);
    if (rc) {
        fprintf (stderr, "rlctl: verify-backup: %s\n", err);
    }
    return rlctl_emit (ctx, &tree, s_verify_table, rc ? RLCTL_EXIT_FAILED : RLCTL_EXIT_OK);
}

static bool
s_dir_empty_or_missing (const char *path)
{
    struct stat st;
    if (lstat (path, &st) != 0) {
        return errno == ENOENT;
    }
    if (!S_ISDIR (st.st_mode)) {
        return false;
    }
    DIR *d = opendir (path);
    struct dirent *e;
    bool empty = d != NULL;
    while (d && (e = readdir (d))) {
        if (strcmp (e->d_name, ".") && strcmp (e->d_name, "..")) {
            empty = false;
        }
    }
    if (d) {
        closedir (d);
    }
    return empty;
}

//  restore DIR ROOT [SET]
int
rlctl_cmd_restore (rlctl_ctx_t *ctx)
{
    const char *dir = ctx->args[1], *root = ctx->args[2];
    const char *why = NULL;
    if (ctx->given & RLCTL_O_NAME) {
        return s_fail (ctx, "restore",
                       "a single shard is never restored into a running cluster: the other "
                       "shards' two-phase state (prepared records, coordinator logs) would "
                       "disagree with it. Restore the whole cluster from one set "
                       "(docs/backup.md), or rebuild the shard from a standby");
    }
    unsigned number = 0;
    int rc = s_set_number (ctx->arg_count > 3 ? ctx->args[3] : NULL, &number);
    if (rc) {
        return rc;
    }
    if (!s_path_ok (dir, false, &why)) {
        return rlctl_usage_error ("bad backup directory: %s", why);
    }
    if (!s_path_ok (root, false, &why)) {
        return rlctl_usage_error ("bad data root: %s", why);
    }
    if (!s_is_dir (dir)) {
        return s_fail (ctx, "restore", "the backup directory does not exist");
    }
    if (!s_is_dir (root)) {
        return s_fail (ctx, "restore", "the data root does not exist (make it first)");
    }
    static s_set_t set;
    char err[2048];
    int lock = s_lock (dir, false, err, sizeof err);
    if (lock == -1) {
        return s_fail (ctx, "restore", err);
    }
    if (s_set_read (dir, number, &set, err, sizeof err) != 0) {
        s_unlock (&lock);
        return s_fail (ctx, "restore", err);
    }
    if (s_set_whole (&set, err, sizeof err) != 0) {
        s_unlock (&lock);
        free (set.ring);
        return s_fail (ctx, "restore", err);
    }
    for (size_t i = 0; i < set.shard_count; i++) {
        char target[PATH_MAX + 64];
        snprintf (target, sizeof target, "%s/%s", root, set.shards[i].name);
        if (!s_dir_empty_or_missing (target)) {
            snprintf (err, sizeof err,
                      "%.200s exists and is not empty: restore writes only into fresh data "
                      "directories (nothing was changed)",
                      target);
            s_unlock (&lock);
            free (set.ring);
            return s_fail (ctx, "restore", err);
        }
    }
    char work[PATH_MAX];
    snprintf (work, sizeof work, "%s/.restore-%d", root, (int) getpid ());
    (void) proc_remove_tree (work);
    cJSON *tree = jsonkit_object ();
    char text[16];
    snprintf (text, sizeof text, "%06u", set.number);
    jsonkit_add_string (tree, "set", text);
    jsonkit_add_string (tree, "dir", dir);
    jsonkit_add_string (tree, "root", root);
    jsonkit_add_u64 (tree, "epoch", set.epoch);
    jsonkit_add_bool (tree, "ok", true);
    cJSON *list = jsonkit_add_array (tree, "shards");
    rc = s_restore_all (dir, &set, work, list, err, sizeof err);
    //  An empty directory at ROOT/<shard> is replaced by the rename (and
    //  made again, with its mode and owner, if the restore is undone).
    static struct stat was[RL_SHARDS_MAX];
    static bool existed[RL_SHARDS_MAX];
    for (size_t i = 0; i < set.shard_count; i++) {
        char to[PATH_MAX + 64];
        snprintf (to, sizeof to, "%s/%s", root, set.shards[i].name);
        existed[i] = lstat (to, &was[i]) == 0;
    }
    size_t moved = 0;
    for (; rc == 0 && moved < set.shard_count; moved++) {
        char from[PATH_MAX + 64], to[PATH_MAX + 64];
        snprintf (from, sizeof from, "%s/%s", work, set.shards[moved].name);
        snprintf (to, sizeof to, "%s/%s", root, set.shards[moved].name);
        errno = 0;
        if (RL_FAILPOINT (BACKUP_RESTORE_MOVE) != 0 || rename (from, to) != 0) {
            snprintf (err, sizeof err, "cannot move %.200s to %.200s: %.200s", from, to,
                      strerror (errno ? errno : EIO));
            rc = -1;
            break;
        }
    }
    //  All or nothing: the shards already moved go back before the work
    //  directory goes, so that ROOT holds no part of a cluster; one that
    //  cannot is named, for the operator to remove before any start.
    for (size_t i = 0; rc != 0 && i < moved; i++) {
        char from[PATH_MAX + 64], to[PATH_MAX + 64];
        snprintf (from, sizeof from, "%s/%s", work, set.shards[i].name);
        snprintf (to, sizeof to, "%s/%s", root, set.shards[i].name);
        if (rename (to, from) != 0 && proc_remove_tree (to) != 0) {
            size_t n = strlen (err);
            snprintf (err + n, sizeof err - n,
                      "; and %.200s, restored, could not be taken back: remove it before "
                      "starting any shard",
                      to);
        } else if (existed[i] && mkdir (to, was[i].st_mode & 07777) == 0) {
            (void) chown (to, was[i].st_uid, was[i].st_gid);
        }
    }
    //  The moves (or their undoing) made durable. A directory that cannot
    //  be opened to sync it (write and search permission only) is said, not
    //  a failure: the restore is complete, only not yet on disk.
    int dfd = open (root, O_RDONLY | O_DIRECTORY);
    if (dfd < 0 || fsync (dfd) != 0) {
        fprintf (stderr,
                 "rlctl: restore: warning: cannot sync %s (%s): run 'sync' before starting the "
                 "shards\n",
                 root, strerror (errno));
    }
    if (dfd >= 0) {
        close (dfd);
    }
    (void) proc_remove_tree (work);
    s_unlock (&lock);
    free (set.ring);
    if (rc) {
        cJSON_Delete (tree);
        return s_fail (ctx, "restore", err);
    }
    return rlctl_emit (ctx, &tree, s_verify_table, RLCTL_EXIT_OK);
}

//  Purge (offline) -------------------------------------------------------------------

//  The bytes of the regular files under path (nftw has no context argument).
static uint64_t s_tree_bytes_sum;
static int
s_tree_bytes_entry (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) path;
    (void) ftw;
    if (flag == FTW_F) {
        s_tree_bytes_sum += (uint64_t) st->st_size;
    }
    return 0;
}

static uint64_t
s_tree_bytes (const char *path)
{
    s_tree_bytes_sum = 0;
    (void) nftw (path, s_tree_bytes_entry, 16, FTW_PHYS);
    return s_tree_bytes_sum;
}

//  The numbers of DIR's set files, ascending, into a new array (NULL when
//  out of memory); *count_p how many.
static unsigned *
s_set_numbers (const char *dir, size_t *count_p)
{
    size_t count = 0, cap = 64;
    unsigned *numbers = malloc (cap * sizeof (*numbers));
    DIR *d = opendir (dir);
    struct dirent *e;
    while (numbers && d && (e = readdir (d))) {
        unsigned n = s_set_number_of (e->d_name);
        if (n == 0) {
            continue;
        }
        if (count == cap) {
            unsigned *more = realloc (numbers, 2 * cap * sizeof (*numbers));
            if (!more) {
                free (numbers);
                numbers = NULL;
                break;
            }
            numbers = more;
            cap *= 2;
        }
        numbers[count++] = n;
    }
    if (d) {
        closedir (d);
    }
    for (size_t i = 1; numbers && i < count; i++) { //  insertion sort: a few hundred at most
        unsigned n = numbers[i];
        size_t j = i;
        while (j > 0 && numbers[j - 1] > n) {
            numbers[j] = numbers[j - 1];
            j--;
        }
        numbers[j] = n;
    }
    *count_p = count;
    return numbers;
}

//  True when a backup engine directory holds a backup being written
//  (RocksDB writes one into private/<id>.tmp and renames it when done).
static bool
s_engine_busy (const char *engine_dir)
{
    char private_dir[PATH_MAX];
    snprintf (private_dir, sizeof private_dir, "%.3500s/private", engine_dir);
    DIR *d = opendir (private_dir);
    bool busy = false;
    struct dirent *e;
    while (d && !busy && (e = readdir (d))) {
        size_t length = strlen (e->d_name);
        busy = length > 4 && strcmp (e->d_name + length - 4, ".tmp") == 0;
    }
    if (d) {
        closedir (d);
    }
    return busy;
}

//  One shard's engine in a purge.
typedef struct {
    char name[RL_SHARD_NAME_SIZE_MAX];
    uint32_t oldest_kept; //  the oldest backup id a kept set names; 0: none
    int before;           //  backups in the engine
    int after;
    uint64_t bytes_before;
    uint64_t bytes_after;
} s_purge_shard_t;

//  What s_engine does with the engine at dir.
typedef enum {
    S_ENGINE_COUNT,  //  how many backups (*all_p), how many with an id >= arg (*from_p)
    S_ENGINE_PURGE,  //  delete every backup but the newest arg (PurgeOldBackups, which
                     //  then removes the table files no backup uses)
    S_ENGINE_VERIFY, //  backup arg verifies (its files are there with their sizes)
} s_engine_op_t;

//  Opens the backup engine at dir, does op, closes it. 0, or -1 with err.
static int
s_engine (const char *dir, s_engine_op_t op, uint32_t arg, int *all_p, int *from_p, char *err,
          size_t err_size)
{
    char *e = NULL;
    rocksdb_options_t *options = rocksdb_options_create ();
    rocksdb_backup_engine_t *engine = rocksdb_backup_engine_open (options, dir, &e);
    if (op == S_ENGINE_COUNT) {
        *all_p = *from_p = 0;
    }
    if (!e && op == S_ENGINE_COUNT) {
        const rocksdb_backup_engine_info_t *info = rocksdb_backup_engine_get_backup_info (engine);
        *all_p = rocksdb_backup_engine_info_count (info);
        for (int i = 0; i < *all_p; i++) {
            *from_p += rocksdb_backup_engine_info_backup_id (info, i) >= arg;
        }
        rocksdb_backup_engine_info_destroy (info);
    } else if (!e && op == S_ENGINE_PURGE) {
        rocksdb_backup_engine_purge_old_backups (engine, arg, &e);
    } else if (!e) {
        rocksdb_backup_engine_verify_backup (engine, arg, &e);
    }
    if (engine) {
        rocksdb_backup_engine_close (engine);
    }
    rocksdb_options_destroy (options);
    if (e) {
        if (op == S_ENGINE_VERIFY) {
            snprintf (err, err_size, "%.200s: backup %u: %.200s", dir, arg, e);
        } else {
            snprintf (err, err_size, "%.200s: %.200s", dir, e);
        }
        rocksdb_free (e);
        return -1;
    }
    return 0;
}

static void
s_purge_table (const rlctl_ctx_t *ctx, const cJSON *tree)
{
    (void) ctx;
    printf ("backups in %s: kept the %s newest set(s) (%s), deleted %s set file(s)\n\n",
            jsonkit_text (tree, "dir"), jsonkit_text (tree, "keep"),
            jsonkit_text (tree, "sets_kept_text"), jsonkit_text (tree, "sets_deleted"));
    printf ("%-12s %8s %8s %14s %14s\n", "shard", "before", "after", "bytes_before", "bytes_after");
    const cJSON *item;
    cJSON_ArrayForEach (item, jsonkit_get (tree, "shards"))
    {
        printf ("%-12s %8s %8s %14s %14s\n", jsonkit_text (item, "shard"),
                jsonkit_text (item, "backups_before"), jsonkit_text (item, "backups_after"),
                jsonkit_text (item, "bytes_before"), jsonkit_text (item, "bytes_after"));
    }
}

//  backup-purge DIR KEEP: keeps the KEEP newest sets and the backups they
//  name; deletes the older set files, then every shard's backups older
//  than the oldest one a kept set names.
//
//  Order (a purge killed at any point leaves no set that names a deleted
//  backup): everything is checked first (every set file parses, every
//  backup of a kept set verifies, no shard is writing a backup into DIR),
//  then the set files of the older sets are removed (and DIR synced), and
//  only then the backup engines purged. DIR's lock, held exclusive,
//  keeps backup, verify-backup and restore out meanwhile.
int
rlctl_cmd_backup_purge (rlctl_ctx_t *ctx)
{
    const char *dir = ctx->args[1];
    const char *why = NULL;
    uint64_t keep = 0;
    if (rlctl_parse_u64 (ctx->args[2], &keep) != 0 || keep == 0 || keep > RLCTL_SET_NUMBER_MAX) {
        return rlctl_usage_error ("bad KEEP '%s': the number of newest sets to keep, 1..999999 "
                                  "(0 would delete every backup)",
                                  ctx->args[2]);
    }
    if (!s_path_ok (dir, false, &why)) {
        return rlctl_usage_error ("bad backup directory: %s", why);
    }
    if (!s_is_dir (dir)) {
        return s_fail (ctx, "backup-purge", "the backup directory does not exist");
    }
    char err[2048];
    int lock = s_lock (dir, true, err, sizeof err);
    if (lock < 0) {
        snprintf (err + strlen (err), sizeof err - strlen (err), " (nothing was deleted)");
        return s_fail (ctx, "backup-purge", err);
    }
    size_t count = 0;
    unsigned *numbers = s_set_numbers (dir, &count);
    static s_set_t set; //  one at a time: a set has room for RL_SHARDS_MAX shards
    static s_purge_shard_t shards[RLCTL_PURGE_SHARDS_MAX];
    memset (shards, 0, sizeof shards);
    size_t shard_count = 0;
    int rc = 0;
    if (!numbers) {
        snprintf (err, sizeof err, "out of memory");
        rc = -1;
    }
    //  KEEP counts the sets that restore: newest first, down to the KEEPth
    //  whole one, every set in between kept too (a --name set of a ring of
    //  several shards is no restorable set, and must not push one out).
    size_t first_kept = count, whole = 0;
    for (size_t i = count; rc == 0 && i > 0 && whole < keep; i--) {
        char why_set[1024];
        if (s_set_read (dir, numbers[i - 1], &set, why_set, sizeof why_set) != 0) {
            break; //  reported by the check below, nothing deleted
        }
        whole += s_set_whole (&set, why_set, sizeof why_set) == 0;
        free (set.ring);
        set.ring = NULL;
        first_kept = i - 1;
    }
    if (whole < keep) {
        first_kept = 0; //  not KEEP whole ones among them all: nothing goes
    }
    //  1. Check, before any backup engine is opened: every set parses ...
    for (size_t i = 0; rc == 0 && i < count; i++) {
        char why_set[1024];
        if (s_set_read (dir, numbers[i], &set, why_set, sizeof why_set) != 0) {
            snprintf (err, sizeof err,
                      "%.600s: nothing was deleted (move a damaged set file out of the "
                      "directory first)",
                      why_set);
            rc = -1;
            break;
        }
        free (set.ring);
        set.ring = NULL;
        for (size_t k = 0; rc == 0 && k < set.shard_count; k++) {
            const s_shard_t *s = &set.shards[k];
            size_t j = 0;
            while (j < shard_count && strcmp (shards[j].name, s->name) != 0) {
                j++;
            }
            if (j == shard_count) {
                if (shard_count == RLCTL_PURGE_SHARDS_MAX) {
                    snprintf (err, sizeof err,
                              "the sets name more than %d shards: nothing was "
                              "deleted",
                              RLCTL_PURGE_SHARDS_MAX);
                    rc = -1;
                    break;
                }
                snprintf (shards[shard_count++].name, sizeof shards[0].name, "%s", s->name);
            }
            if (i >= first_kept
                && (shards[j].oldest_kept == 0 || s->backup_id < shards[j].oldest_kept)) {
                shards[j].oldest_kept = s->backup_id;
            }
        }
    }
    //  ... no shard is writing a backup into the directory (opening its
    //  engine could take that backup's files for garbage) ...
    for (size_t j = 0; rc == 0 && j < shard_count; j++) {
        char engine_dir[PATH_MAX];
        snprintf (engine_dir, sizeof engine_dir, "%.3000s/%.64s", dir, shards[j].name);
        if (s_engine_busy (engine_dir)) {
            snprintf (err, sizeof err,
                      "%.200s: a backup is being written into it (a shard still copies): "
                      "nothing was deleted",
                      engine_dir);
            rc = -1;
        }
    }
    //  ... and every backup a kept set names verifies.
    for (size_t i = first_kept; rc == 0 && i < count; i++) {
        char why_set[1024];
        if (s_set_read (dir, numbers[i], &set, why_set, sizeof why_set) != 0) {
            snprintf (err, sizeof err, "%.600s: nothing was deleted", why_set);
            rc = -1;
            break;
        }
        free (set.ring);
        set.ring = NULL;
        for (size_t k = 0; rc == 0 && k < set.shard_count; k++) {
            const s_shard_t *s = &set.shards[k];
            char engine_dir[PATH_MAX];
            snprintf (engine_dir, sizeof engine_dir, "%s/%s", dir, s->name);
            if (s_engine (engine_dir, S_ENGINE_VERIFY, s->backup_id, NULL, NULL, why_set,
                          sizeof why_set)
                != 0) {
                snprintf (err, sizeof err,
                          "set %06u, which is kept, does not verify: %.600s: nothing was "
                          "deleted",
                          numbers[i], why_set);
                rc = -1;
            }
        }
    }
    for (size_t j = 0; rc == 0 && j < shard_count; j++) {
        char engine_dir[PATH_MAX];
        snprintf (engine_dir, sizeof engine_dir, "%.3000s/%.64s", dir, shards[j].name);
        if (s_is_dir (engine_dir)) {
            //  An engine no kept set names is left as it is (after = before).
            uint32_t from = shards[j].oldest_kept ? shards[j].oldest_kept : 0;
            shards[j].bytes_before = shards[j].bytes_after = s_tree_bytes (engine_dir);
            rc = s_engine (engine_dir, S_ENGINE_COUNT, from, &shards[j].before, &shards[j].after,
                           err, sizeof err);
        }
    }
    //  2. The older sets' files go first (then DIR is synced) ...
    size_t deleted = 0;
    for (size_t i = 0; rc == 0 && i < first_kept; i++) {
        char path[PATH_MAX];
        snprintf (path, sizeof path, "%s/" RLCTL_SET_PREFIX "%06u", dir, numbers[i]);
        if (unlink (path) != 0) {
            snprintf (err, sizeof err, "cannot remove %.200s: %.200s", path, strerror (errno));
            rc = -1;
        }
        deleted += rc == 0;
    }
    if (rc == 0 && deleted > 0) {
        int dfd = open (dir, O_RDONLY | O_DIRECTORY);
        if (dfd < 0 || fsync (dfd) != 0) {
            snprintf (err, sizeof err, "cannot sync %.200s: %.200s", dir, strerror (errno));
            rc = -1;
        }
        if (dfd >= 0) {
            close (dfd);
        }
    }
    //  3. ... then each engine keeps its backups from the oldest a kept set names.
    for (size_t j = 0; rc == 0 && j < shard_count; j++) {
        s_purge_shard_t *p = &shards[j];
        char engine_dir[PATH_MAX];
        snprintf (engine_dir, sizeof engine_dir, "%.3000s/%.64s", dir, p->name);
        if (p->oldest_kept == 0) {
            continue; //  no kept set names this shard: its backups are left as they are
        }
        if (p->after < p->before) {
            rc = s_engine (engine_dir, S_ENGINE_PURGE, (uint32_t) p->after, NULL, NULL, err,
                           sizeof err);
        }
        p->bytes_after = s_tree_bytes (engine_dir);
    }
    s_unlock (&lock);
    cJSON *tree = NULL;
    if (rc == 0) {
        tree = jsonkit_object ();
        jsonkit_add_string (tree, "dir", dir);
        jsonkit_add_u64 (tree, "keep", keep);
        cJSON *kept = jsonkit_add_array (tree, "sets_kept");
        char text[64] = "none";
        for (size_t i = first_kept; i < count; i++) {
            cJSON_AddItemToArray (kept, cJSON_CreateNumber (numbers[i]));
        }
        if (count > first_kept) {
            snprintf (text, sizeof text, "%06u..%06u", numbers[first_kept], numbers[count - 1]);
        }
        jsonkit_add_string (tree, "sets_kept_text", text);
        jsonkit_add_u64 (tree, "sets_deleted", deleted);
        cJSON *list = jsonkit_add_array (tree, "shards");
        for (size_t j = 0; j < shard_count; j++) {
            const s_purge_shard_t *p = &shards[j];
            cJSON *item = jsonkit_add_object (list, NULL);
            jsonkit_add_string (item, "shard", p->name);
            jsonkit_add_bool (item, "kept_by_a_set", p->oldest_kept != 0);
            jsonkit_add_u64 (item, "backups_before", (uint64_t) p->before);
            jsonkit_add_u64 (item, "backups_after", (uint64_t) p->after);
            jsonkit_add_u64 (item, "bytes_before", p->bytes_before);
            jsonkit_add_u64 (item, "bytes_after", p->bytes_after);
        }
    }
    free (numbers);
    if (rc) {
        return s_fail (ctx, "backup-purge", err);
    }
    return rlctl_emit (ctx, &tree, s_purge_table, RLCTL_EXIT_OK);
}
