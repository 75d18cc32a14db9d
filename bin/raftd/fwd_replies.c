/*
 * fwd_replies.c - the leader's replies to forwarded requests, kept for a
 * few seconds so that a reply lost with a dead link still reaches the
 * follower that waits for it: a reply is queued on the link to its
 * follower when there is one, and kept (FWD_KEEP_MS, FWD_KEEP_MAX
 * replies, FWD_KEEP_TEXT bytes each); when that link is started again
 * (link_health.c restarts a silent one within a few election timeouts),
 * every kept reply for it is queued once more, and one that found no link
 * is retried every tick. The follower ignores a reply it no longer waits
 * for (handle_fwd_resp), so a reply sent twice is harmless; request ids
 * start at a random value per raftd start (boot.c), so a kept reply
 * cannot match a request of a restarted follower. Never re-runs a request.
 */
#include "raftd.h"

#include <stdlib.h>
#include <string.h>

static void keep_free(fwd_kept *k)
{
    free(k->text);
    memset(k, 0, sizeof *k);
}

/* Answer a forwarded request: reply text s (n bytes) to node `to`. */
void fwd_reply_send(struct raftd *d, uint64_t to, uint64_t reqid, const char *s, size_t n)
{
    int sent = send_fwd(d, to, PEER_FWD_RESP, reqid, s, n) == 0;
    if (!sent)
        vlog(d, "cannot relay reply to forwarded request now (no link); kept");
    if (n > FWD_KEEP_TEXT)
        return;
    fwd_kept *k = &d->fwd_kept[d->fwd_kept_next];
    d->fwd_kept_next = (d->fwd_kept_next + 1) % FWD_KEEP_MAX;
    keep_free(k);
    if (!(k->text = malloc(n)))
        return;
    memcpy(k->text, s, n);
    k->len = n;
    k->to = to;
    k->reqid = reqid;
    k->at = now_ms();
    k->sent = sent;
}

/* The link to `to` was (re)started: queue its kept replies again. */
void fwd_replies_relink(struct raftd *d, uint64_t to)
{
    uint64_t now = now_ms();
    for (int i = 0; i < FWD_KEEP_MAX; i++) {
        fwd_kept *k = &d->fwd_kept[i];
        if (!k->text || k->to != to)
            continue;
        if (now - k->at > FWD_KEEP_MS) {
            keep_free(k);
            continue;
        }
        k->sent = send_fwd(d, to, PEER_FWD_RESP, k->reqid, k->text, k->len) == 0 || k->sent;
    }
}

/* Every tick: expire old replies, retry those that found no link. */
void fwd_replies_timers(struct raftd *d, uint64_t now)
{
    for (int i = 0; i < FWD_KEEP_MAX; i++) {
        fwd_kept *k = &d->fwd_kept[i];
        if (!k->text)
            continue;
        if (now - k->at > FWD_KEEP_MS)
            keep_free(k);
        else if (!k->sent)
            k->sent = send_fwd(d, k->to, PEER_FWD_RESP, k->reqid, k->text, k->len) == 0;
    }
}

void fwd_replies_free(struct raftd *d)
{
    for (int i = 0; i < FWD_KEEP_MAX; i++)
        keep_free(&d->fwd_kept[i]);
}
