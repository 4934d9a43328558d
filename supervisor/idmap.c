/* supervisor/idmap.c - node id -> node, for arbor_node_find.
 *
 * Open addressing over node pointers (the key is the node's own id, so a slot is 8
 * bytes), with Robin Hood linear probing. Ids are handed out sequentially and never
 * reused, so the identity hash (id mod capacity) puts nodes made one after another
 * in neighbouring slots: inserts and deletes walk memory in order instead of missing
 * the cache on every call.
 *
 * Why Robin Hood: with the identity hash the live ids form one long run of occupied
 * slots. Plain linear probing's backward-shift delete must scan to the end of the
 * run (an entry there might have been displaced from before the hole), which made
 * deleting n nodes O(n^2). Robin Hood keeps entries ordered by displacement, so a
 * delete stops at the first entry sitting in its home slot, and a lookup stops as
 * soon as it has probed further than the entry in the slot was displaced.
 */
#include "internal.h"

#define IDMAP_MIN 64

static size_t home_of(const struct arbor__idmap *m, uint64_t id) { return (size_t)id & m->mask; }

/* How far slot i is from the home slot of the node it holds. */
static size_t displacement(const struct arbor__idmap *m, size_t i) {
  return (i - home_of(m, m->slots[i]->id)) & m->mask;
}

int arbor__idmap_init(struct arbor__idmap *m) {
  m->slots = calloc(IDMAP_MIN, sizeof *m->slots);
  if (m->slots == NULL)
    return ARBOR_ENOMEM;
  m->mask = IDMAP_MIN - 1;
  m->count = 0;
  return 0;
}

void arbor__idmap_free(struct arbor__idmap *m) {
  free(m->slots);
  m->slots = NULL;
}

static void insert_slot(struct arbor__idmap *m, arbor_node_t *node) {
  size_t i = home_of(m, node->id), d = 0;
  while (m->slots[i] != NULL) {
    size_t their = displacement(m, i);
    if (their < d) {             /* take from the rich: the incumbent moves on */
      arbor_node_t *t = m->slots[i];
      m->slots[i] = node;
      node = t;
      d = their;
    }
    i = (i + 1) & m->mask;
    d++;
  }
  m->slots[i] = node;
}

static int resize(struct arbor__idmap *m, size_t cap) {
  arbor_node_t **old = m->slots;
  size_t old_cap = m->mask + 1;
  arbor_node_t **slots = calloc(cap, sizeof *slots);
  if (slots == NULL)
    return ARBOR_ENOMEM;
  m->slots = slots;
  m->mask = cap - 1;
  for (size_t i = 0; i < old_cap; i++)
    if (old[i] != NULL)
      insert_slot(m, old[i]);
  free(old);
  return 0;
}

/* Adds node under node->id. Returns 0 or ARBOR_ENOMEM (nothing changed). */
int arbor__idmap_put(struct arbor__idmap *m, arbor_node_t *node) {
  if ((m->count + 1) * 4 > (m->mask + 1) * 3) {   /* keep the load under 3/4 */
    int rc = resize(m, (m->mask + 1) * 2);
    if (rc < 0)
      return rc;
  }
  insert_slot(m, node);
  m->count++;
  return 0;
}

static size_t find_slot(const struct arbor__idmap *m, uint64_t id) {
  size_t i = home_of(m, id);
  for (size_t d = 0;; d++, i = (i + 1) & m->mask) {
    arbor_node_t *n = m->slots[i];
    if (n == NULL || displacement(m, i) < d)
      return SIZE_MAX;
    if (n->id == id)
      return i;
  }
}

arbor_node_t *arbor__idmap_get(const struct arbor__idmap *m, uint64_t id) {
  size_t i = find_slot(m, id);
  return i == SIZE_MAX ? NULL : m->slots[i];
}

void arbor__idmap_del(struct arbor__idmap *m, uint64_t id) {
  size_t i = find_slot(m, id);
  if (i == SIZE_MAX)
    return;
  /* Backward shift: pull each displaced follower one slot closer to home. */
  for (;;) {
    size_t j = (i + 1) & m->mask;
    if (m->slots[j] == NULL || displacement(m, j) == 0)
      break;
    m->slots[i] = m->slots[j];
    i = j;
  }
  m->slots[i] = NULL;
  m->count--;
  /* Shrink when mostly empty, so a burst of nodes does not pin memory forever. */
  if (m->mask + 1 > IDMAP_MIN && m->count * 16 < m->mask + 1)
    (void)resize(m, (m->mask + 1) / 2);   /* failure keeps the larger table: fine */
}
