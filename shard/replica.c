/*  replica.c: the primary's side of replication (replica.h).

    THE LOG. The store's tap (any writing thread, under the store's write
    lock) copies each write into the log as the next event: seq = last + 1.
    The loop's group commit is tapped and sent to the streaming standbys
    (replica_ship) before RocksDB writes it, so that the standbys' writes
    run beside the primary's own; a standby may then hold a batch whose
    write failed here, or that a crash cut off: the primary's next start
    is a new stream (its standbys re-seed).
    The loop sends events to each standby in order, at most
    REPLICA_WINDOW_EVENTS_MAX / REPLICA_WINDOW_BYTES_MAX beyond its
    acknowledged position, and drops from the log what every standby holds.
    A log beyond REPLICA_LOG_BYTES_MAX drops its oldest events anyway: a
    standby that needed them re-seeds.

    A LINK per standby (one DEALER, CURVE pinning this shard's own key: a
    standby holds the shard's certificate):

        HELLO ---ack: same stream, position still in the log---> STREAMING
          |  \--ack: another stream, or too far behind---> SEEDING --end acked--> STREAMING
          |                                                  |
          +<-- silence beyond the timeout, out_of_order, wrong_stream, errors
        any --ack fenced--> FENCED (the standby was promoted: it acknowledges nothing more)
        any --ack standby_fenced (another stream's) or unconfirmed--> REFUSED: counts for
            nothing, hello again after the timeout (unconfirmed: after 10 ms, doubling up to
            timeout / REPLICA_PING_DIVISOR; the standby takes only the stream its --standby-of
            ships, and has usually just asked)

    THE LEASE. Besides its messages, each link sends a PING every
    timeout / REPLICA_PING_DIVISOR (a new one when one goes unanswered for
    the timeout). A ping answered ok renews the link's lease from the
    moment the ping was SENT. In semi mode nothing that reports ledger
    state leaves while a lease is older than the timeout (replica_lease_ok;
    the server holds it, and answers new reads and writes busy once that
    lasts: replica_stalled). A standby that is promoted waits, before it
    serves, until the timeout (the primary tells it in every HELLO and
    PING) has passed since its last ok answer, plus a margin: so an old
    primary that did not hear "fenced" (a partition, SIGSTOP) has stopped
    answering before the new one starts (docs/replication.md, "The
    fence").

    Each HELLO opens a new session; acknowledgements of older sessions are
    ignored, so a late answer never moves a position.

    THE RELEASE (semi-synchronous mode). The server calls replica_written
    with the outq sequence of each group commit it wrote; that commit is
    replicated once a quorum of standbys (--repl-quorum, by default all of
    them) reached the last event tapped at that moment (the commit's batch,
    and every write before it): the quorum-th highest position
    acknowledged (s_quorum_position). The lease, too, needs a quorum of
    links with a live lease (replica_lease_ok, replica_stalled).
    replica_released is the last such outq sequence; the server sends a
    reply or a peer message only when its group commit is both synced and
    released (outq.h: sent <= min(synced, replicated)). A link that is not
    STREAMING has no position: nothing is released until it is.

    THE OLDER COPY. A standby may hold a copy this primary's data does not
    descend from (this data directory lost, replaced or restored): it may
    hold the only record of acknowledged transfers. While one does (s_older), this primary serves
    nothing, in either mode: it is stalled, holds no lease and releases
    nothing, whatever the other standbys acknowledge. Otherwise, with
    --repl-quorum below the standbys, an empty second standby that took
    the seed would give an empty primary its quorum, and the writes it
    acknowledged would be lost when the copy's standby is promoted. An
    operator promotes that standby, or wipes it (it then takes a seed).
    A standby's copy tells its incarnation in every answer to a HELLO,
    confirmed or not (replica_standby.c s_ack), and this primary checks
    at once that its history holds it (s_on_ack): an older copy is found
    before any seed, and the standby checks again at the seed's end. At
    start nothing is released and no lease holds until every standby has
    decided (answered a hello ok, refused as older, withdrawn, fenced) or
    the timeout has passed since the start (s_start_settled): an empty
    standby's quick seed opens no window before the copy's answer. A
    standby that is silent delays a start by the timeout.

    THE ROLLED-BACK PRIMARY. The same holds for a copy of this primary's
    own history when its data was rolled back within the copy's
    incarnation (restored from a snapshot or a backup taken while the copy
    streamed, then started): the history holds the copy's incarnation, but
    ends it before writes acknowledged in it. So the server tells the head
    it acknowledged (replica_acked_head: the last timestamp every write it
    answered covers, synced here and released) and every HELLO, PING (seq)
    and BATCH (count) carries it; the standby keeps the highest of its
    copy's stream with its position and tells it in its answer to a
    HELLO (the data), capped by the last timestamp its copy stored (a
    standby behind the quorum, or in async mode, holds less). A copy whose
    incarnation this history ends before that (events_history_end: the
    next start began after a lower last timestamp) is older. Timestamps
    only grow and every group commit stores the last one (journal.c
    invariant 2), so a history that kept every acknowledged write ends
    each incarnation at or after its head. An async primary tells none
    (replica_acked_head): a fail-over may lose what it acknowledged.

    INVARIANTS
    1. Events are numbered in the order RocksDB applied the writes (the tap
       runs under the store's write lock), without gaps; only the last
       event may be one RocksDB did not apply (its write failed, and the
       store with it: no write follows).
    2. A standby's acknowledged position never exceeds what was sent to it
       in this session, and only grows within a session.
    3. released (an outq sequence) only grows, and pending holds (outq,
       event) pairs with both increasing.
    4. An event leaves the log only when no STREAMING or SEEDING link, nor
       a link silent since it streamed (HELLO with its last position,
       resume), needs it, or when the log is over its byte bound (then the links that
       needed it are sent back to HELLO, and re-seed).

    LIMITS: REPLICA_STANDBYS_MAX links; the log's bytes; the window; one
    seed chunk in flight per link.
*/
#include "replica.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codec.h"
#include "events.h"
#include "failpoint.h"
#include "log.h"

typedef struct {
    uint64_t seq;
    uint16_t kind; //  REPLICA_BATCH or REPLICA_INGEST
    uint32_t cf;
    uint32_t key_size;
    uint64_t entry_size;
    uint64_t count;
    uint8_t *data;
    size_t size;
} s_event_t;

typedef enum { L_HELLO, L_SEEDING, L_STREAMING, L_FENCED, L_REFUSED } s_link_state_t;

typedef struct {
    replica_t *owner;
    char endpoint[256];
    zsock_t *sock;
    s_link_state_t state;
    uint32_t session;
    bool waiting;     //  HELLO, SEEDING: a message awaits its acknowledgement
    int64_t asked_ms; //  when the oldest unanswered message went (0: none)
    uint64_t acked;   //  STREAMING: the standby's position
    uint64_t sent;    //  STREAMING: the last event sent
    //  SEEDING
    uint64_t seed_pos;
    char seed_dir[4096];
    char **seed_files;
    size_t seed_file_count;
    size_t seed_file_index;
    uint64_t seed_offset;
    uint64_t seed_chunk; //  bytes of the chunk in flight
    bool seed_begun;     //  SEED_BEGIN acknowledged
    bool seed_ending;    //  SEED_END sent
    //  THE LEASE
    uint64_t ping_id;     //  the last ping sent (0: none yet)
    bool ping_inflight;   //  it awaits its answer
    int64_t ping_sent_ms; //  when it went
    int64_t lease_ms;     //  when the last ping answered ok went (0: none yet)
    bool answered;        //  an ok answer came since start (async's start gate)
    bool streamed;        //  it streamed in this stream: it holds the database as opened
    bool refused;         //  it answered standby_fenced (logged once)
    bool older;           //  its copy is not of this history (found at a hello, or a seed
                          //  refused): logged once; until a hello finds it gone or it seeds
    bool unconfirmed;     //  it answered unconfirmed (logged once until it takes the stream)
    bool hello_checked;   //  it answered a HELLO, its copy's incarnation checked (or none held):
                          //  it is decided for the start (s_start_settled)
    long retry_ms;        //  and asks again after this: 10 ms, doubling up to timeout / 4
    uint64_t refused_at;  //  the position at the last refusal (UINT64_MAX: none, or seeding)
    long refused_ms;      //  an event or the seed refused: the pause before the next hello,
                          //  10 ms doubling up to timeout / 4; 0 again when an event is taken
    uint64_t resume;      //  HELLO after streaming: its last position (the log keeps the rest)
    uint64_t told_head;   //  the acknowledged head the last HELLO, PING or BATCH told
    int64_t shipped_ms;   //  when the last BATCH or INGEST went
} s_link_t;

typedef struct {
    uint64_t outq; //  a group commit written
    uint64_t seq;  //  the last event tapped when it was written
    uint64_t head; //  memory's last timestamp then
} s_pending_t;

struct replica_t {
    replica_options_t options;
    store_t *store;
    rl_auth_t *auth;
    zloop_t *loop;
    replica_wake_fn *wake;
    void *wake_arg;
    uint64_t stream;
    char own_key[RL_KEY_TEXT_SIZE]; //  the shard's public key, pinned by the links

    pthread_mutex_t lock; //  guards the log: the tap comes from any writing thread
    s_event_t *events;    //  a ring of cap slots
    size_t head;
    size_t count;
    size_t cap;
    uint64_t last_seq;  //  the last event tapped
    uint64_t log_bytes; //  data bytes in the log
    uint64_t lost_seq;  //  the last event lost to out of memory (0: none): only a seed passes it

    //  The loop's alone
    s_link_t links[REPLICA_STANDBYS_MAX];
    size_t link_count;
    s_pending_t *pending; //  a FIFO of (outq, seq), both increasing
    size_t pending_head;
    size_t pending_count;
    size_t pending_cap;
    int64_t started_ms;
    bool fenced;            //  a standby answered fenced: final
    uint64_t released;      //  the last outq sequence replicated
    uint64_t released_head; //  and its last timestamp
    uint64_t acked_head;    //  THE ROLLED-BACK PRIMARY: told to the standbys
    int64_t waiting_ms;     //  since when a write waits (pending not empty), or progress
    replica_mode_t mode;    //  SEMI or ASYNC (degrade switches)
    uint64_t seeds;         //  seeds begun (names of their directories)
    uint64_t written_seq;   //  the last event replica_written saw (its failpoint)
    bool stalled_logged;    //  the last stall state logged (replica_tick)
    bool lease_was_ok;      //  replica_lease_ok held once: the stall counts as it does
};

static int64_t
s_now_ms (void)
{
    return zclock_mono ();
}

//  The log ------------------------------------------------------------------

static s_event_t *
s_event_at (replica_t *self, size_t i)
{
    assert (i < self->count);
    return &self->events[(self->head + i) % self->cap];
}

//  The seq of the oldest event in the log (last + 1 when empty).
static uint64_t
s_first_seq (replica_t *self)
{
    return self->count ? s_event_at (self, 0)->seq : self->last_seq + 1;
}

static void
s_tap (void *arg, const store_tap_event_t *ev)
{
    replica_t *self = arg;
    assert (self && ev && (ev->data || ev->size == 0));
    pthread_mutex_lock (&self->lock);
    if (self->count == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 256;
        s_event_t *events = malloc (cap * sizeof (*events));
        if (events) {
            for (size_t i = 0; i < self->count; i++) {
                events[i] = *s_event_at (self, i);
            }
            free (self->events);
            self->events = events;
            self->head = 0;
            self->cap = cap;
        }
    }
    uint8_t *copy = ev->size ? malloc (ev->size) : NULL;
    if (self->count == self->cap || (ev->size && !copy) || ev->size > REPLICA_EVENT_BYTES_MAX) {
        //  The stream cannot go on without this event: every standby re-seeds.
        free (copy);
        self->lost_seq = ++self->last_seq;
        //  Nobody can stream across the lost event: the log restarts
        //  after it (events stay contiguous), every standby re-seeds.
        while (self->count) {
            s_event_t *e = s_event_at (self, 0);
            self->log_bytes -= e->size;
            free (e->data);
            self->head = (self->head + 1) % self->cap;
            self->count--;
        }
        pthread_mutex_unlock (&self->lock);
        return;
    }
    if (ev->size) {
        memcpy (copy, ev->data, ev->size);
    }
    s_event_t *e = &self->events[(self->head + self->count) % self->cap];
    *e = (s_event_t){.seq = ++self->last_seq,
                     .kind = ev->kind == STORE_TAP_BATCH ? REPLICA_BATCH : REPLICA_INGEST,
                     .cf = (uint32_t) ev->cf,
                     .key_size = (uint32_t) ev->key_size,
                     .entry_size = ev->entry_size,
                     .count = ev->count,
                     .data = copy,
                     .size = ev->size};
    self->count++;
    self->log_bytes += ev->size;
    pthread_mutex_unlock (&self->lock);
}

//  Drops events up to `upto`, and the oldest beyond the byte bound.
static void
s_trim (replica_t *self, uint64_t upto)
{
    pthread_mutex_lock (&self->lock);
    while (self->count
           && (s_event_at (self, 0)->seq <= upto || self->log_bytes > REPLICA_LOG_BYTES_MAX)) {
        s_event_t *e = s_event_at (self, 0);
        self->log_bytes -= e->size;
        free (e->data);
        self->head = (self->head + 1) % self->cap;
        self->count--;
    }
    pthread_mutex_unlock (&self->lock);
}

//  Links ----------------------------------------------------------------------

static void s_pump (s_link_t *link);

static void
s_seed_remove (s_link_t *link)
{
    if (link->seed_dir[0]) {
        for (size_t i = 0; i < link->seed_file_count; i++) {
            char path[4200];
            snprintf (path, sizeof path, "%s/%s", link->seed_dir, link->seed_files[i]);
            unlink (path);
        }
        //  Files the listing did not see (it failed): removed by name below.
        DIR *dir = opendir (link->seed_dir);
        struct dirent *de;
        while (dir && (de = readdir (dir))) {
            if (de->d_name[0] != '.') {
                char path[4400];
                snprintf (path, sizeof path, "%s/%s", link->seed_dir, de->d_name);
                unlink (path);
            }
        }
        if (dir) {
            closedir (dir);
        }
        rmdir (link->seed_dir);
        link->seed_dir[0] = '\0';
    }
    for (size_t i = 0; i < link->seed_file_count; i++) {
        free (link->seed_files[i]);
    }
    free (link->seed_files);
    link->seed_files = NULL;
    link->seed_file_count = link->seed_file_index = 0;
    link->seed_offset = link->seed_chunk = 0;
    link->seed_begun = link->seed_ending = false;
}

//  Back to HELLO in a new session (what was in flight is forgotten).
static void
s_rehello (s_link_t *link, const char *why)
{
    if (link->state == L_FENCED) {
        return;
    }
    if (link->state != L_REFUSED) {
        rl_warn ("replication to %s: %s; asking its position again", link->endpoint, why);
    }
    s_seed_remove (link);
    if (link->state == L_STREAMING) {
        link->resume = link->acked; //  the log keeps what follows, within its bound
    }
    link->state = L_HELLO;
    link->session++;
    link->ping_inflight = false; //  its answer is of the old session: dropped
    link->waiting = false;
    link->asked_ms = 0;
    link->acked = link->sent = 0;
}

//  The standby refused an event or the seed (malformed, out_of_order,
//  oversize, ...): its position is asked again after a pause that doubles
//  while it goes on refusing. What it refuses once it may take at the next
//  hello (from the log, or a seed); what it will never take costs a hello every
//  timeout / REPLICA_PING_DIVISOR, not a loop of hellos and refusals as
//  fast as both can turn.
static void
s_rehello_later (s_link_t *link, const char *why)
{
    replica_t *self = link->owner;
    //  Refused once (a standby restarted under load answers out_of_order),
    //  it catches up from the log, which keeps what follows its position.
    //  The same position refused again: the log is not kept for it (a
    //  seed, once the other standbys' progress trims it, may cure it).
    uint64_t at = link->state == L_STREAMING ? link->acked : UINT64_MAX;
    bool again = at != UINT64_MAX && at == link->refused_at;
    link->refused_at = at;
    s_rehello (link, why);
    if (again) {
        link->resume = 0;
    }
    long max = self->options.timeout_ms / REPLICA_PING_DIVISOR;
    link->refused_ms = link->refused_ms ? link->refused_ms * 2 : REPLICA_REFUSED_RETRY_MS;
    link->refused_ms = link->refused_ms < max ? link->refused_ms : max;
    link->state = L_REFUSED; //  counts for nothing meanwhile; the tick says hello (quietly)
    link->waiting = true;
    link->asked_ms = s_now_ms () - self->options.timeout_ms + link->refused_ms;
}

static int
s_send (s_link_t *link, const replica_header_t *h, const void *prefix, size_t prefix_size,
        const void *data, size_t size)
{
    uint8_t raw[REPLICA_HEADER_SIZE];
    replica_header_encode (h, raw);
    zmsg_t *msg = zmsg_new ();
    zframe_t *body = zframe_new (NULL, prefix_size + size);
    if (!msg || !body) {
        zmsg_destroy (&msg);
        zframe_destroy (&body);
        return -1;
    }
    if (prefix_size) {
        memcpy (zframe_data (body), prefix, prefix_size);
    }
    if (size) {
        memcpy (zframe_data (body) + prefix_size, data, size);
    }
    zmsg_addmem (msg, raw, sizeof raw);
    zmsg_append (msg, &body);
    if (zmsg_send (&msg, link->sock) != 0) {
        zmsg_destroy (&msg); //  the high-water mark: the timeout sends again
        return -1;
    }
    if (!link->asked_ms) {
        link->asked_ms = s_now_ms ();
    }
    return 0;
}

static replica_header_t
s_header (s_link_t *link, replica_kind_t kind, uint64_t seq)
{
    return (replica_header_t){.magic = REPLICA_MAGIC,
                              .version = REPLICA_VERSION,
                              .kind = (uint16_t) kind,
                              .stream = link->owner->stream,
                              .seq = seq,
                              .session = link->session};
}

static int
s_name_cmp (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

static void
s_seed_at (void *arg)
{
    replica_t *self = ((s_link_t *) arg)->owner;
    pthread_mutex_lock (&self->lock);
    ((s_link_t *) arg)->seed_pos = self->last_seq;
    pthread_mutex_unlock (&self->lock);
}

//  A checkpoint of the database at an exact position, listed for sending.
static int
s_seed_start (s_link_t *link)
{
    replica_t *self = link->owner;
    assert (link->state == L_HELLO && !link->seed_dir[0]);
    snprintf (link->seed_dir, sizeof link->seed_dir, "%s.repl-seed-%016" PRIx64 "-%" PRIu64,
              self->options.data_dir, self->stream, ++self->seeds);
    char err[512];
    if (store_checkpoint_at (self->store, link->seed_dir, s_seed_at, link, err, sizeof err) != 0) {
        rl_error ("replication to %s: cannot make the seed: %s", link->endpoint, err);
        s_seed_remove (link);
        return -1;
    }
    DIR *dir = opendir (link->seed_dir);
    if (!dir) {
        rl_error ("replication to %s: cannot list the seed %s", link->endpoint, link->seed_dir);
        s_seed_remove (link);
        return -1;
    }
    struct dirent *de;
    size_t cap = 0;
    int rc = 0;
    while (rc == 0 && (de = readdir (dir))) {
        if (de->d_name[0] == '.') {
            continue;
        }
        if (!replica_seed_name_valid (de->d_name, strlen (de->d_name))
            || link->seed_file_count >= REPLICA_SEED_FILES_MAX) {
            rl_error ("replication to %s: seed file %s cannot be sent", link->endpoint, de->d_name);
            rc = -1;
            break;
        }
        if (link->seed_file_count == cap) {
            cap = cap ? cap * 2 : 64;
            char **files = realloc (link->seed_files, cap * sizeof (char *));
            if (!files) {
                rc = -1;
                break;
            }
            link->seed_files = files;
        }
        link->seed_files[link->seed_file_count] = strdup (de->d_name);
        rc = link->seed_files[link->seed_file_count] ? 0 : -1;
        link->seed_file_count += rc == 0;
    }
    closedir (dir);
    if (rc != 0) {
        s_seed_remove (link);
        return -1;
    }
    qsort (link->seed_files, link->seed_file_count, sizeof (char *), s_name_cmp);
    link->state = L_SEEDING;
    link->resume = 0; //  the seed's position governs the log now
    link->waiting = false;
    rl_info ("replication to %s: seeding at position %" PRIu64 " (%zu files)", link->endpoint,
             link->seed_pos, link->seed_file_count);
    return 0;
}

//  Sends the seed's next message: SEED_BEGIN, a chunk, or SEED_END.
static void
s_seed_next (s_link_t *link)
{
    assert (link->state == L_SEEDING && !link->waiting);
    replica_header_t h = s_header (link, REPLICA_SEED_BEGIN, link->seed_pos);
    if (!link->seed_begun) {
        link->waiting = s_send (link, &h, NULL, 0, NULL, 0) == 0;
        return;
    }
    if (link->seed_file_index >= link->seed_file_count) {
        h.kind = REPLICA_SEED_END;
        h.count = link->seed_file_count;
        link->waiting = s_send (link, &h, NULL, 0, NULL, 0) == 0;
        link->seed_ending = link->waiting;
        return;
    }
    const char *name = link->seed_files[link->seed_file_index];
    char path[4200];
    snprintf (path, sizeof path, "%s/%s", link->seed_dir, name);
    static uint8_t chunk[REPLICA_SEED_CHUNK_BYTES];
    int fd = open (path, O_RDONLY);
    ssize_t n = fd >= 0 ? pread (fd, chunk, sizeof chunk, (off_t) link->seed_offset) : -1;
    if (fd >= 0) {
        close (fd);
    }
    if (n < 0) {
        rl_error ("replication to %s: cannot read the seed file %s: %s", link->endpoint, path,
                  strerror (errno));
        s_rehello (link, "the seed failed");
        return;
    }
    h.kind = REPLICA_SEED_FILE;
    h.cf = (uint32_t) strlen (name);
    h.count = link->seed_offset;
    h.data_size = h.cf + (uint64_t) n;
    link->seed_chunk = (uint64_t) n;
    link->waiting = s_send (link, &h, name, h.cf, chunk, (size_t) n) == 0;
}

//  A seed chunk was acknowledged: the next one, or the next file.
static void
s_seed_acked (s_link_t *link)
{
    if (!link->seed_begun) {
        link->seed_begun = true;
        return;
    }
    if (link->seed_ending) {
        rl_info ("replication to %s: seeded at position %" PRIu64 ", streaming", link->endpoint,
                 link->seed_pos);
        uint64_t pos = link->seed_pos;
        s_seed_remove (link);
        link->state = L_STREAMING;
        link->streamed = true;
        link->older = false;
        link->resume = 0;
        link->told_head = 0; //  a new copy holds none: told at the next quiet tick
        link->acked = link->sent = pos;
        return;
    }
    link->seed_offset += link->seed_chunk;
    if (link->seed_chunk < REPLICA_SEED_CHUNK_BYTES) {
        link->seed_file_index++; //  a short chunk ends its file
        link->seed_offset = 0;
    }
}

//  Sends events within the window.
static void
s_stream (s_link_t *link)
{
    replica_t *self = link->owner;
    assert (link->state == L_STREAMING);
    while (true) {
        pthread_mutex_lock (&self->lock);
        if (link->sent >= self->last_seq || link->sent - link->acked >= REPLICA_WINDOW_EVENTS_MAX) {
            pthread_mutex_unlock (&self->lock);
            return;
        }
        uint64_t first = s_first_seq (self);
        if (link->sent + 1 < first || link->sent < self->lost_seq) {
            pthread_mutex_unlock (&self->lock);
            s_rehello (link, "the events it needs left the log");
            return;
        }
        //  Bytes in flight: the events after acked (one large event goes alone).
        uint64_t in_flight = 0;
        for (uint64_t s = link->acked + 1; s <= link->sent && s >= first; s++) {
            in_flight += s_event_at (self, (size_t) (s - first))->size;
        }
        s_event_t e = *s_event_at (self, (size_t) (link->sent + 1 - first));
        if (in_flight > 0 && in_flight + e.size > REPLICA_WINDOW_BYTES_MAX) {
            pthread_mutex_unlock (&self->lock);
            return;
        }
        replica_header_t h = s_header (link, (replica_kind_t) e.kind, e.seq);
        h.cf = e.cf;
        h.key_size = e.key_size;
        h.entry_size = e.entry_size;
        h.count = e.kind == REPLICA_BATCH ? self->acked_head : e.count;
        h.data_size = e.size;
        //  Copied into the message under the lock: a lost event (the tap,
        //  out of memory) empties the log from another thread.
        int rc = s_send (link, &h, NULL, 0, e.data, e.size);
        pthread_mutex_unlock (&self->lock);
        if (rc != 0) {
            return;
        }
        link->sent = e.seq;
        link->told_head = e.kind == REPLICA_BATCH ? h.count : link->told_head;
        link->shipped_ms = s_now_ms ();
    }
}

//  The lease's ping (THE LEASE above): every timeout / REPLICA_PING_DIVISOR,
//  or again when one went unanswered for the timeout (a reconnect lost it).
static void
s_ping (s_link_t *link)
{
    replica_t *self = link->owner;
    int64_t now = s_now_ms ();
    long period = self->options.timeout_ms / REPLICA_PING_DIVISOR;
    //  A streaming standby with nothing in flight, and no event for
    //  REPLICA_HEAD_QUIET_MS, is told a head that moved (THE ROLLED-BACK
    //  PRIMARY): the acknowledgements before a quiet spell are not left to
    //  the next period. Under load, the next batch tells it (and no ping
    //  follows each request).
    bool news = link->state == L_STREAMING && !link->ping_inflight && link->sent == link->acked
                && link->told_head < self->acked_head
                && now - link->shipped_ms >= REPLICA_HEAD_QUIET_MS;
    if (link->state == L_FENCED
        || (!news
            && now - link->ping_sent_ms
                   < (link->ping_inflight ? self->options.timeout_ms : period))) {
        return;
    }
    replica_header_t h = s_header (link, REPLICA_PING, self->acked_head);
    h.count = ++link->ping_id;
    h.key_size = (uint32_t) self->options.timeout_ms;
    h.entry_size = ((uint64_t) self->link_count << 32) | self->options.quorum;
    int64_t asked = link->asked_ms; //  a ping is not what the timeout's hello waits for
    if (s_send (link, &h, NULL, 0, NULL, 0) == 0) {
        link->ping_inflight = true;
        link->ping_sent_ms = now;
        link->told_head = h.seq;
    }
    link->asked_ms = asked;
}

static void
s_pump (s_link_t *link)
{
    if (link->owner->fenced) {
        //  The old primary ships nothing more: its own fence marker (the
        //  server writes it next) must not reach a standby that may be the
        //  one promoted, nor any write after it.
        return;
    }
    s_ping (link);
    switch (link->state) {
        case L_HELLO:
            if (!link->waiting) {
                replica_header_t h = s_header (link, REPLICA_HELLO, link->owner->acked_head);
                h.key_size = (uint32_t) link->owner->options.timeout_ms;
                h.entry_size = ((uint64_t) link->owner->link_count << 32)
                               | link->owner->options.quorum;
                link->waiting = s_send (link, &h, NULL, 0, NULL, 0) == 0;
                link->told_head = link->waiting ? h.seq : link->told_head;
            }
            break;
        case L_SEEDING:
            if (!link->waiting) {
                s_seed_next (link);
            }
            break;
        case L_STREAMING:
            s_stream (link);
            break;
        case L_FENCED:
        case L_REFUSED:
            break;
    }
}

//  The release --------------------------------------------------------------

//  Does a standby hold a copy this primary's data does not descend from
//  (found at its hello, or its seed refused as older)? See "THE OLDER
//  COPY".
static bool
s_older (const replica_t *self)
{
    for (size_t i = 0; i < self->link_count; i++) {
        if (self->links[i].older) {
            return true;
        }
    }
    return false;
}

//  Has the start settled: the lease held once, the timeout passed since
//  the start, or every standby decided (its hello checked, found older,
//  withdrawn, fenced, or it streams in this stream)? See "THE OLDER COPY".
static bool
s_start_settled (const replica_t *self, int64_t now)
{
    if (self->lease_was_ok) {
        return true;
    }
    if (now - self->started_ms > self->options.timeout_ms) {
        return true;
    }
    for (size_t i = 0; i < self->link_count; i++) {
        const s_link_t *link = &self->links[i];
        //  Decided: a hello answered with its copy's incarnation checked
        //  (or no copy), found older, withdrawn, fenced. Not a ping's
        //  answer (it tells no incarnation), nor L_REFUSED alone, which
        //  "unconfirmed" sets too.
        bool decided = link->hello_checked || link->streamed || link->older || link->refused
                       || link->state == L_FENCED;
        if (!decided) {
            return false;
        }
    }
    return true;
}

//  The quorum's position: the quorum-th highest position acknowledged by a
//  STREAMING link (-1 when fewer than quorum links stream). Every event up
//  to it is on the disks of at least quorum standbys. O(links^2), links <=
//  REPLICA_STANDBYS_MAX.
static int64_t
s_quorum_position (const replica_t *self)
{
    assert (self->options.quorum >= 1 && self->options.quorum <= self->link_count);
    assert (self->link_count <= REPLICA_STANDBYS_MAX);
    if (s_older (self) || !s_start_settled (self, s_now_ms ())) {
        return -1; //  nothing is released (THE OLDER COPY)
    }
    int64_t pos[REPLICA_STANDBYS_MAX] = {0}; //  zeroed: -O3 cannot see quorum <= link_count
    for (size_t i = 0; i < self->link_count; i++) {
        const s_link_t *link = &self->links[i];
        pos[i] = link->state == L_STREAMING ? (int64_t) link->acked : -1;
    }
    //  The quorum-th highest: a selection over at most 4 values.
    for (size_t i = 0; i < self->options.quorum; i++) {
        size_t best = i;
        for (size_t j = i + 1; j < self->link_count; j++) {
            best = pos[j] > pos[best] ? j : best;
        }
        int64_t t = pos[i];
        pos[i] = pos[best];
        pos[best] = t;
    }
    return self->link_count ? pos[self->options.quorum - 1] : -1;
}

//  Moves the release over what the links acknowledged; trims the log.
//  wake: tell the server when the release moved (not from within its turn).
static void
s_update (replica_t *self, bool wake)
{
    int64_t quorum = s_quorum_position (self);
    bool moved = false;
    while (self->pending_count) {
        s_pending_t *p = &self->pending[self->pending_head];
        if ((int64_t) p->seq > quorum) {
            break;
        }
        assert (p->outq >= self->released); //  invariant 3
        self->released = p->outq;
        self->released_head = p->head > self->released_head ? p->head : self->released_head;
        self->pending_head = (self->pending_head + 1) % self->pending_cap;
        self->pending_count--;
        moved = true;
    }
    if (moved) {
        self->waiting_ms = s_now_ms ();
    }
    uint64_t keep_from = UINT64_MAX; //  the log keeps events after this
    for (size_t i = 0; i < self->link_count; i++) {
        s_link_t *link = &self->links[i];
        if (link->state == L_STREAMING && link->acked < keep_from) {
            keep_from = link->acked;
        } else if (link->state == L_SEEDING && link->seed_pos < keep_from) {
            keep_from = link->seed_pos;
        } else if ((link->state == L_HELLO || link->state == L_REFUSED) && link->resume
                   && link->resume < keep_from) {
            //  Silent (a pause, a cut), or pausing after a refusal: with a
            //  quorum below all standbys the others go on, and it catches
            //  up from the log when it is back rather than re-seeding (the
            //  byte bound still applies).
            keep_from = link->resume;
        }
    }
    if (keep_from == UINT64_MAX) {
        keep_from = 0; //  nobody streams: the log keeps what its byte bound allows
    }
    s_trim (self, keep_from);
    if (moved && wake && self->wake) {
        self->wake (self->wake_arg);
        RL_FAILPOINT (REPL_PRIMARY_RELEASED); //  crash: replies released, maybe not received
    }
}

//  An acknowledgement from the standby ----------------------------------------

//  This primary is the old one: it stops for good (the server enters
//  FENCED at the wake and writes its mark).
static void
s_fenced (s_link_t *link, const char *why)
{
    replica_t *self = link->owner;
    if (link->state != L_FENCED) {
        rl_error ("replication to %s: %s: nothing this primary writes can be acknowledged any "
                  "more",
                  link->endpoint, why);
    }
    s_seed_remove (link);
    link->state = L_FENCED;
    if (!self->fenced) {
        self->fenced = true;
        if (self->wake) {
            self->wake (self->wake_arg); //  the server stops serving (replica_fenced)
        }
    }
}

//  acked_head: what the standby's answer to a HELLO told (0: nothing).
static void
s_on_ack (s_link_t *link, const replica_header_t *h, uint64_t acked_head)
{
    replica_t *self = link->owner;
    if (h->status == REPLICA_ST_FENCED) {
        s_fenced (link, "the standby was promoted and fences this primary");
        return;
    }
    pthread_mutex_lock (&self->lock);
    bool own_stream = h->stream == self->stream;
    pthread_mutex_unlock (&self->lock);
    if (h->status == REPLICA_ST_STANDBY_FENCED && own_stream) {
        //  Withdrawn from this primary's own stream: a promotion among
        //  several standbys is under way and this is the old primary. It
        //  stops now: once that standby is wiped and seeded again it would
        //  answer this primary like any empty standby, and its
        //  acknowledgements would count for two primaries.
        s_fenced (link, "the standby was withdrawn from this primary's stream by a promotion "
                        "(standby_fenced)");
        return;
    }
    //  A standby's copy tells its incarnation in every answer to a HELLO,
    //  confirmed or not (replica_standby.c s_ack): this primary's data must
    //  descend from it (its history holds that incarnation) before any seed
    //  is shipped; the standby checks again at the seed's end (an answer
    //  `older`). A standby that holds no copy (stream 0) or one of this
    //  history is no longer older: it was wiped, or took a seed.
    bool older = h->status == REPLICA_ST_OLDER;
    bool hello = h->cf == REPLICA_HELLO
                 && (h->status == REPLICA_ST_OK || h->status == REPLICA_ST_UNCONFIRMED);
    if (hello && h->entry_size != 0) {
        //  1 held, 2 cannot tell (past what the table remembers), -1 a
        //  read failed: the seed's end decides then.
        int held = events_history_has (self->store, h->entry_size, h->count);
        older = held == 0;
        if (older && !link->older) { //  once, with the error below
            rl_warn ("replication to %s: the standby's copy is of incarnation %" PRIu64
                     " (nonce %016" PRIx64 "), which this primary's history does not hold",
                     link->endpoint, h->entry_size, h->count);
        }
        uint64_t end = UINT64_MAX;
        if (held == 1 && acked_head != 0
            && events_history_end (self->store, h->entry_size, &end) == 0 && end < acked_head) {
            if (!link->older) { //  once, with the error below
                rl_warn (
                    "replication to %s: this primary's history ends the copy's incarnation "
                    "%" PRIu64 " at ts %" PRIu64 ", before ts %" PRIu64
                    ", up to which the copy holds writes this primary acknowledged: its data was "
                    "rolled back",
                    link->endpoint, h->entry_size, end, acked_head);
            }
            older = true;
        }
    }
    if (hello && !older && (h->entry_size != 0 || h->stream == 0)) {
        if (link->older) {
            rl_log_event (RL_LOG_WARN, "replication",
                          "replication to %s: the standby no longer holds an older copy "
                          "(wiped, or promoted elsewhere and replaced)",
                          link->endpoint);
        }
        link->older = false;
        link->hello_checked = true;
    }
    if (h->status == REPLICA_ST_UNCONFIRMED && !older) {
        //  The standby takes only the stream of the primary its
        //  --standby-of names, and that one did not confirm ours (yet: the
        //  standby has just asked it; or for good: it follows another
        //  primary). It counts for nothing; asked again soon, quietly.
        if (link->state == L_REFUSED) {
            return; //  already waiting to ask again (a ping's answer)
        }
        //  The standby has usually just asked, and its primary answers at
        //  once: asked again soon, then less and less often.
        long max = self->options.timeout_ms / REPLICA_PING_DIVISOR;
        link->retry_ms = link->retry_ms ? link->retry_ms * 2 : REPLICA_UNCONFIRMED_RETRY_MS;
        link->retry_ms = link->retry_ms < max ? link->retry_ms : max;
        if (!link->unconfirmed && link->retry_ms >= max) {
            link->unconfirmed = true; //  not a standby's first query: logged once
            rl_log_event (RL_LOG_WARN, "replication",
                          "replication to %s: the standby does not take this primary's stream "
                          "(unconfirmed): the primary its --standby-of names has not confirmed "
                          "it; asking again every %ld ms (its log says why)",
                          link->endpoint, max);
        }
        if (link->state == L_SEEDING || link->state == L_STREAMING) {
            s_rehello (link, "the standby did not confirm this primary's stream");
        }
        link->resume = 0; //  it may never take this stream again: the log is not kept for it
        link->state = L_REFUSED;
        link->waiting = true;
        //  hello again after retry_ms (replica_tick)
        link->asked_ms = s_now_ms () - self->options.timeout_ms + link->retry_ms;
        s_update (self, true);
        return;
    }
    if (older) {
        //  This primary's data does not descend from the standby's copy
        //  (its directory lost, replaced or restored):
        //  the standby keeps its copy, which may hold the only record of
        //  acknowledged transfers. Counted for nothing. Found at a hello,
        //  it is asked again after the timeout (a hello costs nothing, and
        //  a wiped standby is seen at once); refused at a seed's end (a
        //  standby that tells no incarnation), rarely: each try ships a seed.
        if (!link->older && self->lease_was_ok) {
            //  This primary served before the refusal (a standby that was
            //  away at the start): both copies may hold acknowledged writes.
            rl_log_event (RL_LOG_ERROR, "replication",
                          "replication to %s: the standby holds a copy this primary's data "
                          "does not descend from (older), and this primary served before it "
                          "answered, so both may hold acknowledged transfers: stalled; neither "
                          "promoting that standby nor wiping it keeps both: reconcile the two "
                          "histories (rlctl history, events) before either",
                          link->endpoint);
        } else if (!link->older) {
            rl_log_event (RL_LOG_ERROR, "replication",
                          "replication to %s: the standby holds a copy this primary's data "
                          "does not descend from (older): this data directory lost, replaced "
                          "or restored, or the standby is a former primary's, to be wiped. "
                          "Stalled: promote that standby (rlctl promote), or wipe it to take "
                          "this primary's data (it is asked again)",
                          link->endpoint);
        }
        link->older = true;
        s_seed_remove (link);
        link->resume = 0;
        link->state = L_REFUSED;
        link->waiting = true;
        link->asked_ms = s_now_ms ()
                         + (h->status == REPLICA_ST_OLDER
                                ? REPLICA_OLDER_RETRY_MS - self->options.timeout_ms
                                : 0);
        s_update (self, true);
        return;
    }
    if (h->status == REPLICA_ST_STANDBY_FENCED) {
        //  A standby withdrawn from another primary's stream (a leftover in
        //  a new primary's --standby): it counts for no quorum until it is
        //  wiped, and it fences nobody.
        if (!link->refused) {
            link->refused = true;
            rl_log_event (RL_LOG_ERROR, "replication",
                          "replication to %s: that standby was withdrawn by a promotion "
                          "(standby_fenced): it acknowledges nothing; wipe its data directory "
                          "and start it again with --standby-of the primary",
                          link->endpoint);
        }
        s_seed_remove (link);
        link->resume = 0;
        link->state = L_REFUSED;
        link->waiting = true;
        link->asked_ms = s_now_ms (); //  hello again after the timeout
        s_update (self, true);
        return;
    }
    link->asked_ms = 0;
    switch (link->state) {
        case L_HELLO:
            link->waiting = false;
            if (h->status != REPLICA_ST_OK) {
                rl_warn ("replication to %s: hello answered %s", link->endpoint,
                         replica_status_name (h->status));
                link->asked_ms = s_now_ms (); //  asked again after the timeout
                link->waiting = true;
                return;
            }
            link->answered = true;
            link->refused = false;
            if (link->unconfirmed) {
                rl_info ("replication to %s: the standby confirmed this primary's stream",
                         link->endpoint);
            }
            link->unconfirmed = false;
            link->retry_ms = 0;
            pthread_mutex_lock (&self->lock);
            bool from_log = h->stream == self->stream && h->seq + 1 >= s_first_seq (self)
                            && h->seq <= self->last_seq && h->seq >= self->lost_seq;
            pthread_mutex_unlock (&self->lock);
            if (from_log) {
                rl_info ("replication to %s: streaming from position %" PRIu64, link->endpoint,
                         h->seq);
                link->state = L_STREAMING;
                link->streamed = true;
                link->resume = 0;
                link->acked = link->sent = h->seq;
            } else if (s_seed_start (link) != 0) {
                link->waiting = true; //  hello again after the timeout
                link->asked_ms = s_now_ms ();
            }
            return;
        case L_SEEDING:
            if (h->status != REPLICA_ST_OK) {
                rl_error ("replication to %s: the seed was refused: %s", link->endpoint,
                          replica_status_name (h->status));
                s_rehello_later (link, "seed refused");
                return;
            }
            link->waiting = false;
            s_seed_acked (link);
            if (link->state == L_STREAMING) {
                s_update (self, true);
            }
            return;
        case L_STREAMING:
            if (h->status != REPLICA_ST_OK) {
                char why[96];
                snprintf (why, sizeof why, "an event was answered %s",
                          replica_status_name (h->status));
                s_rehello_later (link, why);
                return;
            }
            if (h->stream != self->stream || h->seq > link->sent || h->seq < link->acked) {
                s_rehello (link, "an acknowledgement beyond what was sent");
                return;
            }
            RL_FAILPOINT (REPL_PRIMARY_SHIPPED); //  crash: the standby holds what nobody heard of
            if (h->seq > link->acked) {
                link->refused_ms = 0; //  the standby takes this stream's events again
                link->refused_at = UINT64_MAX;
            }
            link->acked = h->seq; //  invariant 2
            link->asked_ms = link->sent > link->acked ? s_now_ms () : 0;
            s_update (self, true);
            return;
        case L_FENCED:
        case L_REFUSED:
            return;
    }
}

//  The answer to a ping: an ok one renews the lease (from when it went).
static void
s_on_ping_ack (s_link_t *link, const replica_header_t *h)
{
    replica_t *self = link->owner;
    if (!link->ping_inflight || h->count != link->ping_id) {
        return; //  an older ping's: the newer one decides
    }
    link->ping_inflight = false;
    if (h->status == REPLICA_ST_STANDBY_FENCED || h->status == REPLICA_ST_UNCONFIRMED) {
        s_on_ack (link, h, 0); //  no lease; the link says why, once
        return;
    }
    if (h->status != REPLICA_ST_OK) {
        rl_warn ("replication to %s: a ping was answered %s: no lease", link->endpoint,
                 replica_status_name (h->status));
        return;
    }
    bool before = replica_lease_ok (self);
    link->lease_ms = link->ping_sent_ms;
    link->answered = true;
    if (!before && replica_lease_ok (self)) {
        self->lease_was_ok = true;
        if (self->wake) {
            self->wake (self->wake_arg); //  what the lapse held goes now
        }
    }
}

static int
s_on_readable (zloop_t *loop, zsock_t *sock, void *arg)
{
    (void) loop;
    s_link_t *link = arg;
    assert (link && sock == link->sock);
    for (size_t n = 0; n < 4 * REPLICA_WINDOW_EVENTS_MAX; n++) {
        zmsg_t *msg = zmsg_recv (sock); //  rcvtimeo 0
        if (!msg) {
            break;
        }
        zframe_t *head = zmsg_first (msg);
        replica_header_t h;
        if (zmsg_size (msg) != 2 || !head
            || replica_header_decode (zframe_data (head), zframe_size (head), &h) != REPLICA_ST_OK
            || h.kind != REPLICA_ACK) {
            rl_warn ("replication to %s: a reply that is not an acknowledgement: dropped",
                     link->endpoint);
        } else if (h.session == link->session && h.cf == REPLICA_PING
                   && h.status != REPLICA_ST_FENCED) {
            s_on_ping_ack (link, &h);
        } else if (h.session == link->session) {
            zframe_t *data = zmsg_next (msg);
            uint64_t acked_head = h.cf == REPLICA_HELLO && data && zframe_size (data) == 8
                                      ? codec_get_u64 (zframe_data (data))
                                      : 0;
            s_on_ack (link, &h, acked_head);
        }
        zmsg_destroy (&msg);
    }
    s_pump (link);
    return 0;
}

//  Life cycle -----------------------------------------------------------------

//  Seeds left by a primary that stopped while seeding: hard links that
//  keep old table files alive.
static void
s_remove_old_seeds (const char *data_dir)
{
    char copy[4096];
    snprintf (copy, sizeof copy, "%s", data_dir);
    char base[4096];
    snprintf (base, sizeof base, "%s.repl-seed-", basename (copy));
    snprintf (copy, sizeof copy, "%s", data_dir);
    const char *parent = dirname (copy);
    DIR *dir = opendir (parent);
    struct dirent *de;
    while (dir && (de = readdir (dir))) {
        if (strncmp (de->d_name, base, strlen (base)) == 0) {
            s_link_t tmp = {0};
            snprintf (tmp.seed_dir, sizeof tmp.seed_dir, "%s/%s", parent, de->d_name);
            s_seed_remove (&tmp);
            rl_info ("replication: removed an old seed %s/%s", parent, de->d_name);
        }
    }
    if (dir) {
        closedir (dir);
    }
}

replica_t *
replica_new (const replica_options_t *options, store_t *store, rl_auth_t *auth, zloop_t *loop,
             uint64_t head, replica_wake_fn *wake, void *wake_arg)
{
    assert (options && store && auth && loop);
    assert (options->standby_count > 0 && options->standby_count <= REPLICA_STANDBYS_MAX);
    assert (options->mode == REPLICA_MODE_SEMI || options->mode == REPLICA_MODE_ASYNC);
    assert (options->quorum >= 1 && options->quorum <= options->standby_count);
    replica_t *self = calloc (1, sizeof (*self));
    if (!self) {
        rl_error ("replication: out of memory");
        return NULL;
    }
    self->options = *options;
    self->store = store;
    self->auth = auth;
    self->loop = loop;
    self->wake = wake;
    self->wake_arg = wake_arg;
    self->mode = options->mode;
    self->released_head = head;
    self->started_ms = s_now_ms ();
    pthread_mutex_init (&self->lock, NULL);
    if (getrandom (&self->stream, sizeof self->stream, 0) != (ssize_t) sizeof self->stream) {
        rl_error ("replication: cannot draw a stream id");
        free (self);
        return NULL;
    }
    self->stream |= 1; //  0 names no stream (an empty standby)
    zcert_t *cert = rl_auth_cert (auth);
    snprintf (self->own_key, sizeof self->own_key, "%s", cert ? zcert_public_txt (cert) : "");
    s_remove_old_seeds (options->data_dir);
    self->waiting_ms = s_now_ms ();
    for (size_t i = 0; i < options->standby_count; i++) {
        s_link_t *link = &self->links[self->link_count++];
        link->owner = self;
        snprintf (link->endpoint, sizeof link->endpoint, "%s", options->standbys[i]);
        link->sock = zsock_new (ZMQ_DEALER);
        if (!link->sock || rl_auth_client (auth, link->sock, self->own_key) != 0) {
            rl_error ("replication to %s: no socket", link->endpoint);
            replica_destroy (&self);
            return NULL;
        }
        zsock_set_rcvtimeo (link->sock, 0);
        zsock_set_sndtimeo (link->sock, 0);
        zsock_set_sndhwm (link->sock, 4 * REPLICA_WINDOW_EVENTS_MAX);
        zsock_set_rcvhwm (link->sock, 4 * REPLICA_WINDOW_EVENTS_MAX);
        zsock_set_linger (link->sock, 0);
        if (zsock_connect (link->sock, "%s", link->endpoint) != 0
            || zloop_reader (loop, link->sock, s_on_readable, link) != 0) {
            rl_error ("replication to %s: cannot connect", link->endpoint);
            replica_destroy (&self);
            return NULL;
        }
    }
    store_set_tap (store, s_tap, self);
    rl_info ("replication: %zu standby(s), quorum %zu, %s mode, stream %016" PRIx64,
             self->link_count, self->options.quorum, replica_mode_name (self->mode), self->stream);
    for (size_t i = 0; i < self->link_count; i++) {
        s_pump (&self->links[i]);
    }
    return self;
}

void
replica_destroy (replica_t **self_p)
{
    assert (self_p);
    replica_t *self = *self_p;
    if (!self) {
        return;
    }
    store_set_tap (self->store, NULL, NULL);
    for (size_t i = 0; i < self->link_count; i++) {
        s_link_t *link = &self->links[i];
        if (link->sock) {
            zloop_reader_end (self->loop, link->sock);
        }
        zsock_destroy (&link->sock);
        s_seed_remove (link);
    }
    s_trim (self, UINT64_MAX);
    free (self->events);
    free (self->pending);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

void
replica_written (replica_t *self, uint64_t outq_seq, uint64_t head)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    uint64_t seq = self->last_seq;
    pthread_mutex_unlock (&self->lock);
    assert (outq_seq >= self->released);
    if (self->pending_count) {
        size_t back = (self->pending_head + self->pending_count - 1) % self->pending_cap;
        assert (self->pending[back].outq <= outq_seq && self->pending[back].seq <= seq);
        if (self->pending[back].seq == seq) {
            self->pending[back].outq = outq_seq; //  nothing new to wait for
            self->pending[back].head = head;
            goto pump;
        }
    }
    if (self->pending_count == self->pending_cap) {
        size_t cap = self->pending_cap ? self->pending_cap * 2 : 64;
        s_pending_t *p = malloc (cap * sizeof (*p));
        if (!p) {
            //  Cannot wait for this one separately: it joins the last (a
            //  later event: it waits longer, never shorter).
            assert (self->pending_count > 0);
            size_t back = (self->pending_head + self->pending_count - 1) % self->pending_cap;
            self->pending[back].outq = outq_seq;
            self->pending[back].seq = seq;
            self->pending[back].head = head;
            goto pump;
        }
        for (size_t i = 0; i < self->pending_count; i++) {
            p[i] = self->pending[(self->pending_head + i) % self->pending_cap];
        }
        free (self->pending);
        self->pending = p;
        self->pending_head = 0;
        self->pending_cap = cap;
    }
    if (self->pending_count == 0) {
        self->waiting_ms = s_now_ms (); //  a write begins to wait
    }
    self->pending[(self->pending_head + self->pending_count) % self->pending_cap] = (s_pending_t){
        outq_seq, seq, head};
    self->pending_count++;
pump:
    if (seq > self->written_seq) { //  a write since the last call (most turns write nothing)
        self->written_seq = seq;
        RL_FAILPOINT (REPL_PRIMARY_WRITTEN); //  crash: written here only, maybe not synced
    }
    s_update (self, false);
    for (size_t i = 0; i < self->link_count; i++) {
        s_pump (&self->links[i]);
    }
}

void
replica_ship (replica_t *self)
{
    assert (self);
    if (self->fenced) {
        return; //  as s_pump
    }
    for (size_t i = 0; i < self->link_count; i++) {
        if (self->links[i].state == L_STREAMING) {
            s_stream (&self->links[i]);
        }
    }
}

uint64_t
replica_released (const replica_t *self)
{
    assert (self);
    return self->mode == REPLICA_MODE_SEMI ? self->released : UINT64_MAX;
}

void
replica_acked_head (replica_t *self, uint64_t head)
{
    assert (self);
    if (self->mode != REPLICA_MODE_SEMI) {
        return; //  async acknowledges what no standby may hold: nothing to guard
    }
    self->acked_head = head > self->acked_head ? head : self->acked_head;
}

uint64_t
replica_released_head (const replica_t *self)
{
    assert (self);
    return self->mode == REPLICA_MODE_SEMI ? self->released_head : UINT64_MAX;
}

bool
replica_older (const replica_t *self)
{
    assert (self);
    return s_older (self);
}

bool
replica_stalled (const replica_t *self)
{
    assert (self);
    if (s_older (self)) {
        return true; //  either mode (THE OLDER COPY)
    }
    if (self->mode != REPLICA_MODE_SEMI) {
        return false;
    }
    int64_t now = s_now_ms ();
    if (self->fenced
        || (self->pending_count > 0 && now - self->waiting_ms > self->options.timeout_ms)) {
        return true;
    }
    //  Once the lease held, it is counted as replica_lease_ok counts it: a
    //  link that has not streamed in this stream (a standby on its first
    //  seed) holds none, however fresh its pings, so a primary that may
    //  not answer says so and answers busy rather than holding reads for
    //  ever while its status says serving. Before (the start), a link
    //  whose pings are answered counts: the first writes wait for the
    //  seeds (docs/replication.md, "Semi-synchronous mode").
    size_t leases = 0;
    for (size_t i = 0; i < self->link_count; i++) {
        const s_link_t *link = &self->links[i];
        int64_t since = link->lease_ms ? link->lease_ms : self->started_ms;
        leases += now - since <= self->options.timeout_ms
                  && (link->streamed || !self->lease_was_ok);
    }
    //  Fewer than the quorum: the lease ran out (at start: too few answered
    //  within the timeout).
    return leases < self->options.quorum;
}

bool
replica_lease_ok (const replica_t *self)
{
    assert (self);
    if (self->fenced || s_older (self)) {
        return false;
    }
    int64_t now = s_now_ms ();
    bool all_answered = true;
    size_t leases = 0;
    for (size_t i = 0; i < self->link_count; i++) {
        const s_link_t *link = &self->links[i];
        //  Semi: nothing goes before a quorum of standbys holds this
        //  incarnation (a PREPARE or a DECIDE carries it; one promoted in
        //  the middle of its re-seed after a restart holds an older copy,
        //  and a promotion picks the copy of the newest incarnation among
        //  standbys - docs/replication.md) with a live lease.
        leases += link->streamed && link->lease_ms != 0
                  && now - link->lease_ms <= self->options.timeout_ms;
        all_answered &= link->answered;
    }
    if (!s_start_settled (self, now)) {
        return false; //  THE OLDER COPY: a slower standby may still refuse the seed
    }
    if (self->mode == REPLICA_MODE_SEMI) {
        return leases >= self->options.quorum;
    }
    //  Async: a restarted old primary hears "fenced" before it answers,
    //  unless its standby stays silent for the timeout.
    return all_answered || now - self->started_ms > self->options.timeout_ms;
}

bool
replica_fenced (const replica_t *self)
{
    assert (self);
    return self->fenced;
}

void
replica_fence (replica_t *self)
{
    assert (self);
    self->fenced = true; //  s_pump and replica_ship send nothing more
}

bool
replica_answer_as_primary (zmsg_t **msg_p, zsock_t *router, rl_auth_t *auth, bool promoted,
                           const replica_t *replica)
{
    assert (msg_p && *msg_p && router && auth);
    zmsg_t *msg = *msg_p;
    size_t frames = zmsg_size (msg);
    if (frames < 3) {
        return false;
    }
    zframe_t *head = NULL;
    zframe_t *frame = zmsg_first (msg);
    for (size_t i = 0; i + 2 < frames; i++) {
        frame = zmsg_next (msg);
    }
    head = frame; //  the frame before the last
    replica_header_t h = {0};
    uint64_t stream = 0; //  the answer to a QUERY
    if (!head || zframe_size (head) != REPLICA_HEADER_SIZE
        || codec_get_u32 (zframe_data (head)) != REPLICA_MAGIC) {
        return false;
    }
    replica_status_t st = replica_header_decode (zframe_data (head), zframe_size (head), &h);
    const char *key = "";
    unsigned roles = rl_auth_roles (auth, head, &key);
    zcert_t *cert = rl_auth_cert (auth);
    bool own = rl_auth_insecure (auth) || (cert && strcmp (key, zcert_public_txt (cert)) == 0);
    if (!(roles & RL_ROLE_SHARD) || !own) {
        rl_warn ("a replication message from key %s, not this shard's: refused", key);
        st = REPLICA_ST_UNAUTHORIZED;
    } else if (st == REPLICA_ST_OK && (h.kind == REPLICA_ACK || h.status != 0)) {
        st = REPLICA_ST_MALFORMED;
    } else if (st == REPLICA_ST_OK && h.kind == REPLICA_QUERY
               && (h.data_size != 0 || zframe_size (zmsg_last (msg)) != 0)) {
        st = REPLICA_ST_MALFORMED; //  a query carries no data
    } else if (st == REPLICA_ST_OK && h.kind == REPLICA_QUERY) {
        //  A standby asks which stream this primary ships before it takes
        //  one (docs/replication.md, "A standby takes only its primary's
        //  stream"): answered at once, stalled or not, so that a restarted
        //  semi-synchronous primary's standbys can confirm its new stream.
        stream = replica && !replica->fenced ? replica->stream : 0;
        st = stream ? REPLICA_ST_OK : REPLICA_ST_NO_STREAM;
        rl_debug ("a standby asked this primary's stream: answered %s %016" PRIx64,
                  replica_status_name (st), stream);
    } else if (st == REPLICA_ST_OK) {
        st = promoted ? REPLICA_ST_FENCED : REPLICA_ST_NOT_STANDBY;
        rl_log_event (RL_LOG_WARN, "fence",
                      "a replication message from a primary of this shard (stream %016" PRIx64
                      "): answered %s%s",
                      h.stream, replica_status_name (st),
                      promoted ? ": this shard was promoted, that primary is fenced"
                               : ": this is a primary, not a standby");
    }
    replica_header_t ack = {.magic = REPLICA_MAGIC,
                            .version = REPLICA_VERSION,
                            .kind = REPLICA_ACK,
                            .stream = stream,
                            .status = st,
                            .session = h.session,
                            .cf = h.kind,
                            .count = h.kind == REPLICA_PING || h.kind == REPLICA_QUERY ? h.count
                                                                                       : 0};
    uint8_t raw[REPLICA_HEADER_SIZE];
    replica_header_encode (&ack, raw);
    zmsg_t *reply = zmsg_new ();
    zframe_t *route = zmsg_first (msg);
    for (size_t i = 0; reply && i + 2 < frames; i++, route = zmsg_next (msg)) {
        zmsg_addmem (reply, zframe_data (route), zframe_size (route));
    }
    if (reply) {
        zmsg_addmem (reply, raw, sizeof raw);
        zmsg_addmem (reply, NULL, 0);
        if (zmsg_send (&reply, router) != 0) {
            zmsg_destroy (&reply); //  gone or full: the primary asks again
        }
    }
    zmsg_destroy (msg_p);
    return true;
}

void
replica_tick (replica_t *self)
{
    assert (self);
    int64_t now = s_now_ms ();
    for (size_t i = 0; i < self->link_count; i++) {
        s_link_t *link = &self->links[i];
        if (link->asked_ms && now - link->asked_ms > self->options.timeout_ms) {
            s_rehello (link, "no answer within the timeout");
        }
        s_pump (link);
    }
    s_update (self, true);
    self->lease_was_ok |= replica_lease_ok (self);
    //  The alarm: a stall is logged when it begins and when it ends.
    bool stalled = replica_stalled (self);
    if (stalled != self->stalled_logged && !self->fenced) {
        self->stalled_logged = stalled;
        size_t streaming = 0;
        for (size_t i = 0; i < self->link_count; i++) {
            streaming += self->links[i].state == L_STREAMING;
        }
        if (stalled && s_older (self)) {
            rl_log_event (RL_LOG_ERROR, "replication",
                          "STALLED: a standby holds a copy this primary's data does not "
                          "descend from (found at its hello, or its seed refused as older): "
                          "writes and reads are "
                          "answered busy, whatever the other standbys acknowledge, until it "
                          "is promoted (rlctl promote) or wiped");
        } else if (stalled) {
            rl_log_event (RL_LOG_ERROR, "replication",
                          "STALLED: fewer than %zu of %zu standbys acknowledged within %ld ms "
                          "(%zu streaming): writes and reads are answered busy until a quorum "
                          "answers again",
                          self->options.quorum, self->link_count, self->options.timeout_ms,
                          streaming);
        } else {
            rl_log_event (RL_LOG_WARN, "replication",
                          "no longer stalled: a quorum of %zu of %zu standbys acknowledges",
                          self->options.quorum, self->link_count);
        }
    }
}

replica_mode_t
replica_mode (const replica_t *self)
{
    assert (self);
    return self->mode;
}

void
replica_degrade (replica_t *self)
{
    assert (self);
    if (self->mode == REPLICA_MODE_SEMI) {
        rl_warn ("replication: DEGRADED to async by the operator: replies no longer wait for "
                 "the standby (invariant 9 suspended)");
    }
    self->mode = REPLICA_MODE_ASYNC;
    if (self->wake) {
        self->wake (self->wake_arg);
    }
}

void
replica_positions (const replica_t *self, uint64_t *tapped_p, uint64_t *acked_p)
{
    assert (self && tapped_p && acked_p);
    pthread_mutex_lock ((pthread_mutex_t *) &self->lock);
    *tapped_p = self->last_seq;
    pthread_mutex_unlock ((pthread_mutex_t *) &self->lock);
    int64_t q = s_quorum_position (self);
    *acked_p = q < 0 ? 0 : (uint64_t) q;
}

size_t
replica_describe (const replica_t *self, rl_repl_rec_t *recs, size_t recs_max)
{
    assert (self && recs && recs_max >= 1 + self->link_count);
    rl_repl_rec_t *p = &recs[0];
    *p = (rl_repl_rec_t){.role = RL_REPL_PRIMARY,
                         .stream = self->stream,
                         .quorum = (uint32_t) self->options.quorum,
                         .standbys = (uint32_t) self->link_count,
                         .mode = self->mode,
                         .timeout_ms = (uint64_t) self->options.timeout_ms};
    replica_positions (self, &p->position, &p->quorum_position);
    p->flags = replica_stalled (self) ? RL_REPL_FLAG_STALLED : 0;
    int64_t now = s_now_ms ();
    for (size_t i = 0; i < self->link_count; i++) {
        const s_link_t *link = &self->links[i];
        rl_repl_rec_t *r = &recs[1 + i];
        static const uint32_t states[] = {[L_HELLO] = RL_REPL_HELLO,
                                          [L_SEEDING] = RL_REPL_SEEDING,
                                          [L_STREAMING] = RL_REPL_STREAMING,
                                          [L_FENCED] = RL_REPL_FENCED,
                                          [L_REFUSED] = RL_REPL_REFUSING};
        *r = (rl_repl_rec_t){.role = RL_REPL_LINK,
                             .state = states[link->state],
                             .stream = self->stream,
                             .position = link->state == L_STREAMING ? link->acked : 0,
                             .lease_ms = link->lease_ms ? (uint64_t) (now - link->lease_ms)
                                                        : UINT64_MAX};
        snprintf (r->endpoint, sizeof r->endpoint, "%s", link->endpoint);
    }
    return 1 + self->link_count;
}
