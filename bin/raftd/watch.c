/*
 * watch.c - blocking queries and watch streams (docs/coordination.md).
 *
 * Both are woken by the apply step, never polled: after a Ready applied
 * entries, watch_applied reads the change rows just written (once, by
 * seq, from lib/storage's history) and hands each to the watchers and
 * held queries it matches. A held query (a get/list with "index") leaves
 * d->pending for d->waiters and costs nothing until a matching change or
 * its wait_ms; a watcher is a client connection that carries events.
 *
 * A watcher is "live" while it has everything up to the last row
 * dispatched: new rows are queued to it as they apply. Its output is
 * bounded (WATCH_BUF): when a row does not fit it stops being live and
 * catches up from storage in chunks, as the client drains (the write
 * callback, watch_drained), so a slow reader costs a bounded buffer; if
 * the history it still needs is trimmed meanwhile, it is cut with a last
 * line saying why.
 */
#include "raftd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WATCH_BUF (256u * 1024u) /* queued bytes per watcher, beyond one event */
#define WATCH_CHUNK 256          /* history rows per read */
#define WATCH_CUT_GRACE_MS 5000  /* a cut watcher's last line gets this long to go */

typedef struct watcher {
    client *cl;
    char *key; /* the key or prefix */
    size_t klen;
    int prefix;
    uint64_t from;       /* the watch's M: changes with index > M */
    uint64_t seq;        /* every row <= seq is delivered or not its */
    uint64_t last_index; /* index of the last event delivered (M at first) */
    int live;
    uint64_t cut_at; /* cut: when (0: not cut) */
    struct watcher *next, *prev;
} watcher;

static int matches(const char *k, size_t kl, const char *key, size_t klen, int prefix)
{
    if (prefix)
        return kl >= klen && !memcmp(k, key, klen);
    return kl == klen && !memcmp(k, key, klen);
}

/* What a get or list covers: its key, or its prefix. */
static void query_span(pending *p, const char **k, size_t *kl, int *prefix)
{
    json_t *v = json_object_get(p->req, p->op == OP_GET ? "key" : "prefix");
    *k = v ? json_string_value(v) : "";
    *kl = v ? json_string_length(v) : 0;
    *prefix = p->op != OP_GET;
}

void watch_init(struct raftd *d)
{
    store_set_history_keep(d->st, d->history_keep);
    d->seen_seq = store_history_last_seq(d->st);
    d->waiters_due = UINT64_MAX;
}

/* ------------------------------------------------------- blocking queries */

static int watch_full(struct raftd *d)
{
    return d->n_watchers + d->n_waiters >= d->max_watchers;
}

static json_t *too_many(void)
{
    return err_reply(503, "too many watchers");
}

/* A blocking get/list whose read index is applied: 1 if it is held (or
 * answered 503), 0 when it is to be answered now (changed after M, or
 * its wait is over). */
int watch_hold(struct raftd *d, pending *p)
{
    const char *k;
    size_t kl;
    int prefix;
    if (now_ms() >= p->wait_until)
        return 0;
    query_span(p, &k, &kl, &prefix);
    int ch = store_changed_after(d->st, k, kl, prefix, p->wait_index);
    if (ch < 0)
        store_fatal(d, "read history");
    if (ch)
        return 0;
    if (watch_full(d)) {
        finish(d, p, too_many());
        return 1;
    }
    pending_unlink(d, p);
    p->waiting = 1;
    p->next = d->waiters;
    if (d->waiters)
        d->waiters->prev = p;
    d->waiters = p;
    d->n_waiters++;
    if (p->wait_until < d->waiters_due)
        d->waiters_due = p->wait_until;
    return 1;
}

/* Back to d->pending, then answered from the table (or dropped when its
 * client is gone). */
static void waiter_answer(struct raftd *d, pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        d->waiters = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->waiting = 0;
    d->n_waiters--;
    pending_link(d, p);
    finish(d, p, p->cl ? do_read(d, p) : NULL);
}

static void waiters_recompute_due(struct raftd *d)
{
    d->waiters_due = UINT64_MAX;
    for (pending *p = d->waiters; p; p = p->next)
        if (p->wait_until < d->waiters_due)
            d->waiters_due = p->wait_until;
}

/* ---------------------------------------------------------- watch streams */

/* Queue one event line to w (no bound check here). */
static void emit(watcher *w, const store_change *ch)
{
    json_t *e = ch->del ? json_pack("{s:I,s:s,s:s%}", "index", (json_int_t)ch->index, "op", "del",
                                    "key", ch->key, ch->klen)
                        : json_pack("{s:I,s:s,s:s%,s:s%}", "index", (json_int_t)ch->index, "op",
                                    "set", "key", ch->key, ch->klen, "value", ch->value, ch->vlen);
    if (e && ch->expired)
        json_object_set_new(e, "expired", json_true());
    char buf[1024], *heap = NULL;
    size_t n;
    const char *s = e ? dump_json(e, buf, sizeof buf, &n, &heap) : NULL;
    json_decref(e);
    if (s)
        client_stream_line(w->cl, s, n);
    else
        w->cl->dead = 1; /* out of memory: a gap would be worse */
    free(heap);
    w->seq = ch->seq;
    w->last_index = ch->index;
}

/* End w with a last line saying why; the client is closed once it is out
 * (or after WATCH_CUT_GRACE_MS). */
static void cut(struct raftd *d, watcher *w, const char *why)
{
    char line[300];
    int n = snprintf(line, sizeof line, "{\"error\":\"%s\",\"oldest\":%llu,\"last\":%llu}", why,
                     (unsigned long long)store_history_floor(d->st),
                     (unsigned long long)w->last_index);
    client_stream_line(w->cl, line, (size_t)n);
    client_flush(w->cl);
    w->cl->eof = 1;
    w->live = 0;
    w->cut_at = now_ms();
    d->m_watchers_cut++;
    logf_(d, "watch cut at index %llu: %s", (unsigned long long)w->last_index, why);
}

typedef struct fill_ctx {
    watcher *w;
    int full;
} fill_ctx;

static int fill_cb(void *arg, const store_change *ch)
{
    fill_ctx *f = arg;
    if (client_unsent(f->w->cl) >= WATCH_BUF) {
        f->full = 1;
        return 1;
    }
    emit(f->w, ch);
    return 0;
}

/* A watcher that is not live reads history until its buffer is full or it
 * has caught up (then it is live). */
static void fill(struct raftd *d, watcher *w)
{
    while (!w->live && !w->cut_at && !w->cl->dead) {
        if (store_history_floor(d->st) > w->last_index) {
            cut(d, w, "slow watcher");
            return;
        }
        fill_ctx f = {w, 0};
        int n = store_changes(d->st, w->from, w->seq, w->key, w->klen, w->prefix, WATCH_CHUNK,
                              fill_cb, &f);
        if (n < 0)
            store_fatal(d, "read history");
        if (f.full)
            break;
        if (n < WATCH_CHUNK) {
            uint64_t last = store_history_last_seq(d->st);
            if (last > w->seq)
                w->seq = last;
            w->live = 1;
        }
    }
    client_flush(w->cl);
}

/* {"op":"watch",...}: the first line, then the client is a watcher. */
void watch_start(struct raftd *d, pending *p)
{
    client *c = p->cl;
    uint64_t floor = store_history_floor(d->st), applied = store_applied(d->st);
    uint64_t from = p->blocking ? p->wait_index : applied;
    if (!c) { /* its client went away (a watch is never forwarded) */
        finish(d, p, NULL);
        return;
    }
    if (watch_full(d)) {
        finish(d, p, too_many());
        return;
    }
    if (from < floor) {
        finish(d, p,
               json_pack("{s:i,s:s,s:I}", "code", 410, "error", "compacted", "oldest",
                         (json_int_t)floor));
        return;
    }
    json_t *k = json_object_get(p->req, "key"), *pre = json_object_get(p->req, "prefix");
    json_t *kj = k ? k : pre;
    watcher *w = calloc(1, sizeof *w);
    size_t kl = kj ? json_string_length(kj) : 0;
    if (!w || !(w->key = malloc(kl + 1))) {
        free(w);
        finish(d, p, err_reply(500, "out of memory"));
        return;
    }
    memcpy(w->key, kj ? json_string_value(kj) : "", kl + 1);
    w->klen = kl;
    w->prefix = !k;
    w->from = w->last_index = from;
    w->cl = c;
    finish(d, p, json_pack("{s:i,s:I}", "code", 200, "index", (json_int_t)applied));
    c->watch = w;
    w->next = d->watchers;
    if (d->watchers)
        d->watchers->prev = w;
    d->watchers = w;
    d->n_watchers++;
    vlog(d, "watch from %llu of %s%.*s", (unsigned long long)from, w->prefix ? "prefix " : "",
         (int)(kl > 100 ? 100 : kl), w->key);
    fill(d, w);
}

void watch_drained(struct raftd *d, client *c)
{
    watcher *w = c->watch;
    if (w && !w->live && client_unsent(c) < WATCH_BUF / 2)
        fill(d, w);
}

/* ------------------------------------------------------------ the wake-up */

static int dispatch_cb(void *arg, const store_change *ch)
{
    struct raftd *d = arg;
    for (watcher *w = d->watchers; w; w = w->next) {
        if (!w->live || ch->seq <= w->seq ||
            !matches(ch->key, ch->klen, w->key, w->klen, w->prefix))
            continue;
        if (client_unsent(w->cl) >= WATCH_BUF)
            w->live = 0; /* catches up from storage as its client drains */
        else
            emit(w, ch);
    }
    for (pending *p = d->waiters; p; p = p->next) {
        const char *k;
        size_t kl;
        int prefix;
        query_span(p, &k, &kl, &prefix);
        if (p->wait_until && matches(ch->key, ch->klen, k, kl, prefix))
            p->wait_until = 0; /* woken: answered after the scan */
    }
    return 0;
}

/* After a Ready applied entries (or installed a snapshot): hand the new
 * change rows to the live watchers and wake the queries they match. */
void watch_applied(struct raftd *d, int installed)
{
    uint64_t last = store_history_last_seq(d->st);
    if (installed) { /* the history before the snapshot is gone */
        for (watcher *w = d->watchers; w; w = w->next)
            if (!w->cut_at)
                cut(d, w, "history replaced by a snapshot");
        for (pending *p = d->waiters; p; p = p->next)
            p->wait_until = 0;
    } else if (last != d->seen_seq && (d->watchers || d->waiters)) {
        if (store_changes(d->st, 0, d->seen_seq, NULL, 0, 1, (size_t)-1, dispatch_cb, d) < 0)
            store_fatal(d, "read history");
        for (watcher *w = d->watchers; w; w = w->next) {
            if (w->live && last > w->seq)
                w->seq = last; /* the rest were not its */
            else if (!w->live && !w->cut_at && store_history_floor(d->st) > w->last_index)
                cut(d, w, "slow watcher");
            client_flush(w->cl);
        }
    }
    d->seen_seq = last;
    pending *next;
    int woke = 0;
    for (pending *p = d->waiters; p; p = next) {
        next = p->next;
        if (!p->wait_until) {
            d->m_wakeups++;
            waiter_answer(d, p);
            woke = 1;
        }
    }
    if (woke)
        waiters_recompute_due(d);
}

/* Every turn: the held queries whose wait is over, cut watchers whose
 * last line did not go. Only a due time is compared unless one is due. */
void watch_timers(struct raftd *d, uint64_t now)
{
    if (now >= d->waiters_due) {
        pending *next;
        for (pending *p = d->waiters; p; p = next) {
            next = p->next;
            if (now >= p->wait_until)
                waiter_answer(d, p);
        }
        waiters_recompute_due(d);
    }
    for (watcher *w = d->watchers; w; w = w->next)
        if (w->cut_at && now - w->cut_at > WATCH_CUT_GRACE_MS)
            w->cl->dead = 1;
}

/* A client is going: its held queries are dropped, its watch ends. */
void watch_client_gone(struct raftd *d, client *c)
{
    pending *next;
    for (pending *p = d->waiters; p; p = next) {
        next = p->next;
        if (p->cl == c) {
            p->cl = NULL;
            waiter_answer(d, p);
        }
    }
    watcher *w = c->watch;
    if (!w)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        d->watchers = w->next;
    if (w->next)
        w->next->prev = w->prev;
    d->n_watchers--;
    c->watch = NULL;
    free(w->key);
    free(w);
}

/* Shutting down: the held queries go back to d->pending (answered 503
 * there). */
void watch_shutdown(struct raftd *d)
{
    while (d->waiters) {
        pending *p = d->waiters;
        d->waiters = p->next;
        if (d->waiters)
            d->waiters->prev = NULL;
        p->waiting = 0;
        d->n_waiters--;
        pending_link(d, p);
    }
}
