/* A C program on an exported model (gradc export): loads inputs, params and
 * optimizer state from safetensors files, runs forward and train_step, and
 * compares every result byte for byte with what the JIT wrote (gradc run,
 * gradc step). Generic over the model: built with -DPREFIX=xor -DUPREFIX=XOR
 * -DMODEL_HEADER='"xor.h"'. Exit status 0 when everything is identical.
 *
 *   driver INPUTS START RUN_REF STEP_REF STEPS
 *
 * START holds params and optimizer state (opt.step, opt.SLOT.NAME);
 * RUN_REF is `gradc run --params START`'s output; STEP_REF is
 * `gradc step --params START --steps STEPS`'s. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include MODEL_HEADER

#define JOIN2(a, b) a##_##b
#define JOIN(a, b) JOIN2(a, b)
#define N(x) JOIN(PREFIX, x)
#define U(x) JOIN(UPREFIX, x)

typedef struct {
  char *bytes;
  uint64_t header;
  long size;
} file;

static file read_file(const char *path) {
  file f = {0, 0, 0};
  FILE *in = fopen(path, "rb");
  if (!in) {
    fprintf(stderr, "cannot open %s\n", path);
    exit(2);
  }
  fseek(in, 0, SEEK_END);
  f.size = ftell(in);
  fseek(in, 0, SEEK_SET);
  f.bytes = malloc((size_t)f.size + 1);
  if (fread(f.bytes, 1, (size_t)f.size, in) != (size_t)f.size) exit(2);
  fclose(in);
  f.bytes[f.size] = 0;
  for (int i = 0; i < 8; ++i) f.header |= (uint64_t)(unsigned char)f.bytes[i] << (8 * i);
  return f;
}

/* The text after `key` (a quoted JSON key) and its colon in the header, or NULL. */
static const char *after_key(const char *json, const char *key) {
  for (const char *at = strstr(json, key); at; at = strstr(at + 1, key)) {
    const char *p = at + strlen(key);
    while (*p == ' ') ++p;
    if (*p == ':') return p + 1;
  }
  return NULL;
}

/* The data of tensor `name` and its size in bytes, or NULL. */
static const char *find(const file *f, const char *name, size_t *bytes) {
  char key[256];
  snprintf(key, sizeof key, "\"%s\"", name);
  char saved = f->bytes[8 + f->header];
  f->bytes[8 + f->header] = 0;
  const char *at = after_key(f->bytes + 8, key);
  const char *offsets = at ? after_key(at, "\"data_offsets\"") : NULL;
  f->bytes[8 + f->header] = saved;
  if (!offsets) return NULL;
  while (*offsets == ' ' || *offsets == '[') ++offsets;
  char *end;
  long long begin = strtoll(offsets, &end, 10);
  while (*end == ' ' || *end == ',') ++end;
  long long stop = strtoll(end, NULL, 10);
  *bytes = (size_t)(stop - begin);
  return f->bytes + 8 + f->header + begin;
}

/* Fills a struct's fields from the file's tensors of the same names. */
static void load(const file *f, const N(tensor) * ts, int count, void *dst, const char *what) {
  for (int i = 0; i < count; ++i) {
    size_t bytes;
    const char *src = find(f, ts[i].name, &bytes);
    if (!src || bytes != ts[i].bytes) {
      fprintf(stderr, "%s: no tensor '%s' of %zu bytes\n", what, ts[i].name, ts[i].bytes);
      exit(2);
    }
    memcpy((char *)dst + ts[i].offset, src, bytes);
  }
}

static int failures = 0;

static void compare(const file *ref, const char *name, const void *got, size_t bytes) {
  size_t want_bytes;
  const char *want = find(ref, name, &want_bytes);
  if (!want || want_bytes != bytes) {
    fprintf(stderr, "reference has no '%s' of %zu bytes\n", name, bytes);
    ++failures;
  } else if (memcmp(want, got, bytes) != 0) {
    fprintf(stderr, "'%s' differs from the JIT's\n", name);
    ++failures;
  } else {
    printf("%s: identical (%zu bytes)\n", name, bytes);
  }
}

static void *work_area(size_t bytes) {
  void *p = aligned_alloc(U(WORK_ALIGN), (bytes + U(WORK_ALIGN) - 1) / U(WORK_ALIGN) * U(WORK_ALIGN));
  if (!p) exit(2);
  return p;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: driver INPUTS START RUN_REF STEP_REF STEPS\n");
    return 2;
  }
  file inputs_file = read_file(argv[1]), start = read_file(argv[2]), run_ref = read_file(argv[3]),
       step_ref = read_file(argv[4]);
  int steps = atoi(argv[5]);
  N(inputs) *in = calloc(1, sizeof *in);
  N(params) *params = calloc(1, sizeof *params);
  N(state) *state = calloc(1, sizeof *state);
  N(outputs) *out = calloc(1, sizeof *out);
  load(&inputs_file, N(inputs_tensors), U(INPUTS_COUNT), in, argv[1]);
  load(&start, N(params_tensors), U(PARAMS_COUNT), params, argv[2]);
  load(&start, N(state_tensors), U(STATE_COUNT), state, argv[2]);

  void *work = work_area(U(FORWARD_WORK_BYTES)(1));
  int32_t rc = N(forward)(in, params, out, work, NULL);
  if (rc != U(OK)) {
    fprintf(stderr, "forward: %s\n", N(error_message)(rc));
    return 1;
  }
  for (int i = 0; i < U(OUTPUTS_COUNT); ++i)
    compare(&run_ref, N(outputs_tensors)[i].name, (char *)out + N(outputs_tensors)[i].offset,
            N(outputs_tensors)[i].bytes);
  free(work);

  work = work_area(U(TRAIN_STEP_WORK_BYTES)(1));
  size_t loss_bytes;
  if (!find(&step_ref, "loss", &loss_bytes)) return 2;
  loss_bytes /= (size_t)steps;
  char *losses = malloc(loss_bytes * (size_t)steps);
  for (int s = 0; s < steps; ++s) {
    rc = N(train_step)(in, params, state, U(LR), (void *)(losses + loss_bytes * (size_t)s), work, NULL);
    if (rc != U(OK)) {
      fprintf(stderr, "train_step: %s\n", N(error_message)(rc));
      return 1;
    }
  }
  compare(&step_ref, "loss", losses, loss_bytes * (size_t)steps);
  for (int i = 0; i < U(PARAMS_COUNT); ++i)
    compare(&step_ref, N(params_tensors)[i].name, (char *)params + N(params_tensors)[i].offset,
            N(params_tensors)[i].bytes);
  for (int i = 0; i < U(STATE_COUNT); ++i)
    compare(&step_ref, N(state_tensors)[i].name, (char *)state + N(state_tensors)[i].offset,
            N(state_tensors)[i].bytes);
  printf("%s\n", failures ? "DIFFERENT" : "all identical to the JIT");
  return failures ? 1 : 0;
}
