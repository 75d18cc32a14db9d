/*
 * raft_config.c - cluster membership: the configuration's encoding and
 * validation, which configuration is in force (the latest CONFIG entry),
 * and membership changes one server at a time, learners first (4.1).
 * No I/O, no clock, no file-scope state (like all of lib/raft*.c).
 */
#include "raft_impl.h"

const raft_node *raft_config_find(const raft_config *c, uint64_t id)
{
    if (!c || id == 0)
        return NULL;
    for (uint32_t i = 0; i < c->n && i < RAFT_MAX_NODES; i++)
        if (c->nodes[i].id == id)
            return &c->nodes[i];
    return NULL;
}

int raft_conf_valid(const raft_config *c)
{
    if (!c || c->n == 0 || c->n > RAFT_MAX_NODES)
        return 0;
    int voters = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        const raft_node *n = &c->nodes[i];
        if (n->id == 0 || n->voter > 1)
            return 0;
        if (memchr(n->meta, 0, RAFT_META_MAX) == NULL)
            return 0;
        for (uint32_t j = 0; j < i; j++)
            if (c->nodes[j].id == n->id)
                return 0;
        voters += n->voter;
    }
    return voters > 0;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Format: n:u32, then per node id:u64 voter:u8 meta_len:u16 meta. */
size_t raft_config_encode(const raft_config *c, uint8_t *buf, size_t cap)
{
    if (!c || c->n > RAFT_MAX_NODES)
        return 0;
    size_t need = 4;
    for (uint32_t i = 0; i < c->n; i++)
        need += 11 + strnlen(c->nodes[i].meta, RAFT_META_MAX - 1);
    if (!buf || cap < need)
        return 0;
    uint8_t *p = buf;
    p[0] = (uint8_t)(c->n >> 24);
    p[1] = (uint8_t)(c->n >> 16);
    p[2] = (uint8_t)(c->n >> 8);
    p[3] = (uint8_t)c->n;
    p += 4;
    for (uint32_t i = 0; i < c->n; i++) {
        size_t ml = strnlen(c->nodes[i].meta, RAFT_META_MAX - 1);
        put_u64(p, c->nodes[i].id);
        p[8] = c->nodes[i].voter;
        p[9] = (uint8_t)(ml >> 8);
        p[10] = (uint8_t)ml;
        memcpy(p + 11, c->nodes[i].meta, ml);
        p += 11 + ml;
    }
    return need;
}

int raft_config_decode(raft_config *c, const uint8_t *buf, size_t len)
{
    if (!c || !buf || len < 4)
        return RAFT_EINVAL;
    raft_config t;
    memset(&t, 0, sizeof t);
    uint32_t n = ((uint32_t)buf[0] << 24) | ((uint32_t)buf[1] << 16) | ((uint32_t)buf[2] << 8) |
                 buf[3];
    if (n == 0 || n > RAFT_MAX_NODES)
        return RAFT_EINVAL;
    size_t off = 4;
    for (uint32_t i = 0; i < n; i++) {
        if (len - off < 11)
            return RAFT_EINVAL;
        const uint8_t *p = buf + off;
        size_t ml = ((size_t)p[9] << 8) | p[10];
        if (ml >= RAFT_META_MAX || len - off - 11 < ml)
            return RAFT_EINVAL;
        t.nodes[i].id = get_u64(p);
        t.nodes[i].voter = p[8];
        memcpy(t.nodes[i].meta, p + 11, ml);
        if (memchr(t.nodes[i].meta, 0, ml))
            return RAFT_EINVAL;
        off += 11 + ml;
    }
    if (off != len)
        return RAFT_EINVAL;
    t.n = n;
    if (!raft_conf_valid(&t))
        return RAFT_EINVAL;
    *c = t;
    return RAFT_OK;
}

/* The configuration is that of the last CONFIG entry in the log (held in
 * memory, else in storage only), else the snapshot's (entries <=
 * snap.index are covered by snap.conf). */
void raft_conf_recompute(raft_t *r)
{
    for (uint64_t i = last_index(r); i > r->snap.index && i > r->base_index; i--) {
        const raft_entry *e = entry_at(r, i);
        raft_config c;
        if (e->type == RAFT_ENTRY_CONFIG && raft_config_decode(&c, e->data, e->len) == RAFT_OK) {
            r->conf = c;
            r->conf_index = i;
            raft_progress_rebuild(r);
            return;
        }
    }
    uint64_t at;
    const raft_config *ev = raft_ev_conf_at(r, r->base_index, &at);
    r->conf = ev ? *ev : r->snap.conf;
    r->conf_index = ev ? at : r->snap.index;
    raft_progress_rebuild(r);
}

/* Configuration as of index i (for snapshot metadata). */
void raft_conf_at(const raft_t *r, uint64_t i, raft_config *out)
{
    for (uint64_t k = i; k > r->snap.index && k > r->base_index; k--) {
        const raft_entry *e = entry_at(r, k);
        if (e && e->type == RAFT_ENTRY_CONFIG &&
            raft_config_decode(out, e->data, e->len) == RAFT_OK)
            return;
    }
    uint64_t at;
    const raft_config *ev = raft_ev_conf_at(r, i < r->base_index ? i : r->base_index, &at);
    *out = ev ? *ev : r->snap.conf;
}

/* A leader removed from the configuration leads until the removal is
 * committed, then steps down (4.2.2). */
void raft_maybe_step_down_removed(raft_t *r)
{
    if (r->role == RAFT_LEADER && r->conf_index <= r->commit && !is_voter(&r->conf, r->id))
        raft_become_follower(r, r->term, 0);
}

/* Membership changes one server at a time (4.1): only one uncommitted
 * CONFIG entry, and none before the leader committed an entry of its term
 * (the fix for the single-server change bug, see raft-dev 2015). */
static int conf_change_allowed(const raft_t *r)
{
    if (!leader_ready(r))
        return RAFT_ENOTLEADER;
    if (r->transferee)
        return RAFT_EBUSY;
    if (r->conf_index > r->commit || !committed_in_term(r))
        return RAFT_EBUSY;
    return RAFT_OK;
}

static int propose_conf(raft_t *r, const raft_config *c, uint64_t *index)
{
    uint8_t buf[4 + RAFT_MAX_NODES * (11 + RAFT_META_MAX)];
    size_t n = raft_config_encode(c, buf, sizeof buf);
    if (n == 0 || !raft_conf_valid(c))
        return RAFT_EINVAL;
    int rc = raft_log_append(r, r->term, RAFT_ENTRY_CONFIG, buf, (uint32_t)n);
    if (rc != RAFT_OK)
        return rc;
    r->bcast_pending = 1;
    if (index)
        *index = last_index(r);
    return RAFT_OK;
}

int raft_add_node(raft_t *r, uint64_t id, const char *meta, uint64_t *index)
{
    if (!r || id == 0 || !meta || strnlen(meta, RAFT_META_MAX) >= RAFT_META_MAX)
        return RAFT_EINVAL;
    int rc = conf_change_allowed(r);
    if (rc != RAFT_OK)
        return rc;
    raft_config c = r->conf;
    raft_node *n = NULL;
    for (uint32_t i = 0; i < c.n; i++)
        if (c.nodes[i].id == id)
            n = &c.nodes[i];
    if (n) {
        if (strcmp(n->meta, meta) == 0) {
            if (index)
                *index = 0;
            return RAFT_OK;
        }
        memset(n->meta, 0, RAFT_META_MAX);
        strcpy(n->meta, meta);
    } else {
        if (c.n >= RAFT_MAX_NODES)
            return RAFT_EINVAL;
        n = &c.nodes[c.n++];
        memset(n, 0, sizeof *n);
        n->id = id;
        n->voter = 0; /* joins as a learner, promoted once caught up */
        strcpy(n->meta, meta);
    }
    return propose_conf(r, &c, index);
}

int raft_remove_node(raft_t *r, uint64_t id, uint64_t *index)
{
    if (!r || id == 0)
        return RAFT_EINVAL;
    int rc = conf_change_allowed(r);
    if (rc != RAFT_OK)
        return rc;
    raft_config c = r->conf;
    uint32_t k;
    for (k = 0; k < c.n; k++)
        if (c.nodes[k].id == id)
            break;
    if (k == c.n)
        return RAFT_EINVAL;
    if (c.nodes[k].voter && n_voters(&c) == 1)
        return RAFT_ENOQUORUM;
    c.nodes[k] = c.nodes[c.n - 1];
    c.n--;
    return propose_conf(r, &c, index);
}

int raft_promote_node(raft_t *r, uint64_t id, uint64_t *index)
{
    if (!r || id == 0)
        return RAFT_EINVAL;
    int rc = conf_change_allowed(r);
    if (rc != RAFT_OK)
        return rc;
    raft_config c = r->conf;
    for (uint32_t k = 0; k < c.n; k++) {
        if (c.nodes[k].id != id)
            continue;
        if (c.nodes[k].voter)
            return RAFT_EINVAL;
        c.nodes[k].voter = 1;
        return propose_conf(r, &c, index);
    }
    return RAFT_EINVAL;
}

/* A learner is promoted once it has everything committed so far. */
void raft_maybe_auto_promote(raft_t *r)
{
    if (!r->o.auto_promote || r->role != RAFT_LEADER || conf_change_allowed(r) != RAFT_OK)
        return;
    for (size_t i = 0; i < r->n_prs; i++) {
        progress *p = &r->prs[i];
        const raft_node *n = raft_config_find(&r->conf, p->id);
        if (n && !n->voter && p->match >= r->commit && p->recent_active) {
            raft_promote_node(r, p->id, NULL);
            return;
        }
    }
}
