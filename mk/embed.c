/* mk/embed.c - turns the dashboard's files (web/) into a C file, at build time.
 *
 *   embed OUT.c web/index.html web/app.js ...
 *
 * writes OUT.c: each file's bytes as an array, and the table http/static.c
 * serves from (struct http_asset in http/http.h): name, content type, bytes,
 * size and a strong ETag. The binary then carries the dashboard, so nothing is
 * read from the file system at run time and no request can name a path there
 * (DESIGN.md, "Admin API").
 *
 * Decided here, once, so a mistake fails the build rather than a request:
 *   - the content type, from the extension: a file the server could not label
 *     (a .png nobody thought about) is refused, not served as bytes;
 *   - the name: web/ is flat, and a name is one URL segment of plain
 *     characters ([A-Za-z0-9._-], not starting with a dot), so /ui/<name>
 *     needs no escaping and no name can mean "..";
 *   - the ETag: FNV-1a 64 of the bytes with the size, as "<16 hex>-<size hex>".
 *     Not a cryptographic hash: it only has to change when the file does.
 *
 * The output is written to OUT.c.tmp and renamed, so an interrupted build never
 * leaves half a file that looks up to date. It is a host program: plain C11 and
 * stdio, no arbor, built with the build machine's compiler.
 * Exit: 0, 1 on a refused file or an I/O error (with a message), 2 on usage.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the server may send, by extension. Text is UTF-8 (the files are ours). */
static const struct {
  const char *ext;
  const char *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".svg", "image/svg+xml"},
};

static const char *content_type(const char *name) {
  const char *dot = strrchr(name, '.');
  for (size_t i = 0; dot != NULL && i < sizeof types / sizeof types[0]; i++)
    if (strcmp(dot, types[i].ext) == 0)
      return types[i].type;
  return NULL;
}

/* The part after the last '/'. */
static const char *base_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash != NULL ? slash + 1 : path;
}

static int name_ok(const char *name) {
  if (name[0] == '\0' || name[0] == '.')
    return 0;
  for (const char *p = name; *p != '\0'; p++) {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '.' || c == '_' || c == '-'))
      return 0;
  }
  return 1;
}

/* The whole file in a malloc'd buffer. NULL (errno set) on failure. */
static unsigned char *slurp(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  unsigned char *buf = NULL;
  size_t len = 0, cap = 0, n;
  do {
    if (len == cap) {
      cap = cap ? cap * 2 : 65536;
      unsigned char *b = realloc(buf, cap);
      if (b == NULL) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = b;
    }
    n = fread(buf + len, 1, cap - len, f);
    len += n;
  } while (n > 0);
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return NULL;
  }
  *size = len;
  return buf != NULL ? buf : malloc(1);
}

static uint64_t fnv1a64(const unsigned char *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

/* One file's array: 16 bytes a line, and a NUL after the last (not counted in
 * the size) so text files are C strings too. */
static void write_bytes(FILE *out, int index, const unsigned char *p, size_t n) {
  fprintf(out, "static const unsigned char file%d[] = {", index);
  for (size_t i = 0; i < n; i++)
    fprintf(out, "%s0x%02x,", i % 16 == 0 ? "\n  " : " ", p[i]);
  fprintf(out, "\n  0x00\n};\n\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: embed OUT.c FILE...\n");
    return 2;
  }
  const char *out_path = argv[1];
  int nfiles = argc - 2;
  char tmp_path[4096];
  if (snprintf(tmp_path, sizeof tmp_path, "%s.tmp", out_path) >= (int)sizeof tmp_path) {
    fprintf(stderr, "embed: %s: path too long\n", out_path);
    return 2;
  }

  /* Every name is checked before anything is written. */
  for (int i = 0; i < nfiles; i++) {
    const char *path = argv[2 + i], *name = base_name(path);
    if (!name_ok(name)) {
      fprintf(stderr, "embed: %s: a dashboard file's name is [A-Za-z0-9._-]+, not starting with '.'\n",
              path);
      return 1;
    }
    if (content_type(name) == NULL) {
      fprintf(stderr, "embed: %s: no content type for this extension (served: .html .css .js .svg; "
                      "add one in mk/embed.c)\n", path);
      return 1;
    }
    for (int j = 0; j < i; j++)
      if (strcmp(base_name(argv[2 + j]), name) == 0) {
        fprintf(stderr, "embed: %s and %s have the same name\n", argv[2 + j], path);
        return 1;
      }
  }

  FILE *out = fopen(tmp_path, "w");
  if (out == NULL) {
    perror(tmp_path);
    return 1;
  }
  fprintf(out, "/* Generated by mk/embed.c from web/ (the Makefile): do not edit. */\n"
               "#include \"http.h\"\n\n");
  struct entry {
    const char *name;
    size_t size;
    uint64_t hash;
  } *entries = calloc(nfiles > 0 ? (size_t)nfiles : 1, sizeof *entries);
  if (entries == NULL) {
    perror("embed");
    fclose(out);
    remove(tmp_path);
    return 1;
  }
  for (int i = 0; i < nfiles; i++) {
    const char *path = argv[2 + i];
    size_t size = 0;
    unsigned char *data = slurp(path, &size);
    if (data == NULL) {
      perror(path);
      free(entries);
      fclose(out);
      remove(tmp_path);
      return 1;
    }
    entries[i] = (struct entry){base_name(path), size, fnv1a64(data, size)};
    write_bytes(out, i, data, size);
    free(data);
  }

  /* C has no empty arrays: an empty web/ still gets one (unused) element. */
  fprintf(out, "const struct http_asset http_assets[] = {\n");
  for (int i = 0; i < nfiles; i++)
    fprintf(out, "    {\"%s\", \"%s\", file%d, %zu, \"\\\"%016llx-%zx\\\"\"},\n",
            entries[i].name, content_type(entries[i].name), i, entries[i].size,
            (unsigned long long)entries[i].hash, entries[i].size);
  if (nfiles == 0)
    fprintf(out, "    {0},\n");
  fprintf(out, "};\n\nconst size_t http_nassets = %d;\n", nfiles);
  free(entries);

  if (ferror(out) | (fclose(out) != 0)) {
    perror(tmp_path);
    remove(tmp_path);
    return 1;
  }
  if (rename(tmp_path, out_path) != 0) {
    perror(out_path);
    remove(tmp_path);
    return 1;
  }
  return 0;
}
