/*  syncer.c: one thread, one sync at a time (syncer.h).

    STATES (under lock)
        IDLE --syncer_start--> SYNCING --store_sync returns--> DONE
          ^                                                     |
          +----------------- syncer_take (loop) ----------------+
    and STOPPING, set by syncer_destroy: the thread ends once no sync is
    in flight.

    INVARIANTS
    1. At most one sync in flight: syncer_start requires IDLE.
    2. The pipe holds one byte exactly while the state is DONE (the thread
       writes it on entering DONE, syncer_take reads it on leaving).
    3. The thread touches the store only through store_sync, which is safe
       beside the loop's writes (store.h).

    LIMITS: one pipe, one thread; a sync takes as long as the disk does
    (nothing here times out: a failed sync fails the store).
*/
#include "syncer.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "failpoint.h"
#include "log.h"

typedef enum { S_IDLE, S_SYNCING, S_DONE } s_state_t;

struct syncer_t {
    store_t *store;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    s_state_t state;
    bool stopping;
    uint64_t seq;    //  the last batch written when the sync began
    int rc;          //  DONE: store_sync's result
    int64_t sync_us; //  DONE: its duration
    int pipe[2];     //  [0] polled by the loop, [1] written by the thread
};

static int64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *
s_run (void *arg)
{
    syncer_t *self = arg;
    pthread_mutex_lock (&self->lock);
    while (true) {
        while (self->state != S_SYNCING && !self->stopping) {
            pthread_cond_wait (&self->wake, &self->lock);
        }
        if (self->state != S_SYNCING) {
            break; //  stopping, nothing in flight
        }
        pthread_mutex_unlock (&self->lock);
        int64_t began = s_now_us ();
        RL_FAILPOINT (SHARD_SYNC_IN_FLIGHT); //  the loop serves meanwhile
        int rc = store_sync (self->store);
        int64_t took = s_now_us () - began;
        pthread_mutex_lock (&self->lock);
        self->rc = rc;
        self->sync_us = took;
        self->state = S_DONE;
        char byte = 1;
        while (write (self->pipe[1], &byte, 1) < 0 && errno == EINTR) {
        }
    }
    pthread_mutex_unlock (&self->lock);
    return NULL;
}

syncer_t *
syncer_new (store_t *store)
{
    assert (store);
    syncer_t *self = calloc (1, sizeof (*self));
    if (!self) {
        return NULL;
    }
    self->store = store;
    self->state = S_IDLE;
    if (pipe (self->pipe) != 0) {
        rl_error ("syncer: no pipe");
        free (self);
        return NULL;
    }
    fcntl (self->pipe[0], F_SETFL, O_NONBLOCK);
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->wake, NULL);
    if (pthread_create (&self->thread, NULL, s_run, self) != 0) {
        rl_error ("syncer: no thread");
        close (self->pipe[0]);
        close (self->pipe[1]);
        pthread_cond_destroy (&self->wake);
        pthread_mutex_destroy (&self->lock);
        free (self);
        return NULL;
    }
    return self;
}

void
syncer_destroy (syncer_t **self_p)
{
    assert (self_p);
    syncer_t *self = *self_p;
    if (!self) {
        return;
    }
    pthread_mutex_lock (&self->lock);
    self->stopping = true;
    pthread_cond_signal (&self->wake);
    pthread_mutex_unlock (&self->lock);
    pthread_join (self->thread, NULL);
    close (self->pipe[0]);
    close (self->pipe[1]);
    pthread_cond_destroy (&self->wake);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

void
syncer_start (syncer_t *self, uint64_t seq)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    assert (self->state == S_IDLE && !self->stopping); //  invariant 1
    self->state = S_SYNCING;
    self->seq = seq;
    pthread_cond_signal (&self->wake);
    pthread_mutex_unlock (&self->lock);
}

bool
syncer_busy (const syncer_t *self)
{
    assert (self);
    pthread_mutex_lock ((pthread_mutex_t *) &self->lock);
    bool busy = self->state != S_IDLE;
    pthread_mutex_unlock ((pthread_mutex_t *) &self->lock);
    return busy;
}

int
syncer_fd (const syncer_t *self)
{
    assert (self);
    return self->pipe[0];
}

bool
syncer_take (syncer_t *self, uint64_t *seq_p, int *rc_p, int64_t *sync_us_p)
{
    assert (self && seq_p && rc_p && sync_us_p);
    pthread_mutex_lock (&self->lock);
    bool done = self->state == S_DONE;
    if (done) {
        char byte;
        ssize_t n;
        while ((n = read (self->pipe[0], &byte, 1)) < 0 && errno == EINTR) {
        }
        assert (n == 1); //  invariant 2
        *seq_p = self->seq;
        *rc_p = self->rc;
        *sync_us_p = self->sync_us;
        self->state = S_IDLE;
    }
    pthread_mutex_unlock (&self->lock);
    return done;
}
