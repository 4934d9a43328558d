/* supervisor/idmap.c - node id -> node, for arbor_node_find.
 *
 * Open addressing with linear probing over node pointers (the key is the node's own
 * id, so a slot is 8 bytes). Ids are handed out sequentially and never reused, so
 * the identity hash (id mod capacity) puts nodes made one after another in
 * neighbouring slots: inserts and deletes walk memory in order instead of missing
 * the cache on every call, and ids alive at once rarely collide. Deletion shifts
 * later entries back (no tombstones), so lookups stay short however long the
 * runtime lives.
 */
#include "internal.h"

#define IDMAP_MIN 64

static size_t slot_of(const struct arbor__idmap *m, uint64_t id) {
  return (size_t)id & m->mask;
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
  size_t i = slot_of(m, node->id);
  while (m->slots[i] != NULL)
    i = (i + 1) & m->mask;
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

arbor_node_t *arbor__idmap_get(const struct arbor__idmap *m, uint64_t id) {
  size_t i = slot_of(m, id);
  for (;;) {
    arbor_node_t *n = m->slots[i];
    if (n == NULL || n->id == id)
      return n;
    i = (i + 1) & m->mask;
  }
}

void arbor__idmap_del(struct arbor__idmap *m, uint64_t id) {
  size_t i = slot_of(m, id);
  while (m->slots[i] != NULL && m->slots[i]->id != id)
    i = (i + 1) & m->mask;
  if (m->slots[i] == NULL)
    return;
  m->slots[i] = NULL;
  m->count--;
  /* Backward-shift: move up every entry of the run after i that may sit in the hole
   * (its home slot is not cyclically within (i, j]). */
  size_t j = i;
  for (;;) {
    j = (j + 1) & m->mask;
    arbor_node_t *n = m->slots[j];
    if (n == NULL)
      break;
    size_t home = slot_of(m, n->id);
    int in_range = i <= j ? (i < home && home <= j) : (i < home || home <= j);
    if (in_range)
      continue;
    m->slots[i] = n;
    m->slots[j] = NULL;
    i = j;
  }
  /* Shrink when mostly empty, so a burst of nodes does not pin memory forever. */
  if (m->mask + 1 > IDMAP_MIN && m->count * 16 < m->mask + 1)
    (void)resize(m, (m->mask + 1) / 2);   /* failure keeps the larger table: fine */
}
