/* A C program on an exported model (gradc export): loads inputs, params and
 * optimizer state from safetensors files, runs forward and train_step, and
 * compares every result byte for byte with what the JIT wrote (gradc run,
 * gradc grad, gradc step). Generic over the model: built with -DPREFIX=xor
 * -DUPREFIX=XOR -DMODEL_HEADER='"xor.h"', and -DHAS_GRAD when the model was
 * exported with grad. Exit status 0 when everything is identical.
 *
 *   driver INPUTS START RUN_REF GRAD_REF STEP_REF STEPS THREADS
 *
 * START holds params and optimizer state (opt.step, opt.SLOT.NAME);
 * RUN_REF is `gradc run --params START`'s output, GRAD_REF `gradc grad`'s
 * (ignored without HAS_GRAD), STEP_REF `gradc step --params START --steps
 * STEPS`'s. THREADS 0 passes no runtime; N > 0 a runtime of N slots whose
 * parallel_for runs the iterations backwards on this thread, slot i % N;
 * pN a runtime whose parallel_for runs them on N POSIX threads at once (the
 * caller and N - 1 more; built with -pthread -DPTHREADS).
 *
 *   driver INPUTS START bad-class-id
 *
 * sets the first element of the first i32 input to 1000000 and expects
 * train_step to refuse it: a return code whose message names the model
 * line, and params and state unchanged.
 *
 * A model exported with dynamic dims (--max D=N) is built with
 * -DDYN_ARGS=",11" (the sizes every entry is given) and -DDYN_BAD_ARGS=",17"
 * (sizes out of range, which forward must refuse first). INPUTS then holds
 * the inputs at the largest sizes, rows past the given size of any value
 * (the entries must not read them); the references, written by the JIT on
 * the given sizes, have fewer rows of each output than the struct: the
 * first ones are compared. */
#include <stdint.h>
#include <stdio.h>
#ifdef PTHREADS
#include <pthread.h>
#include <stdatomic.h>
#endif
#include <stdlib.h>
#include <string.h>

#include MODEL_HEADER

#ifndef DYN_ARGS
#define DYN_ARGS
#endif

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

/* Fills a struct's fields from the file's tensors of the same names (those
   named "@..." are not checkpoint tensors: the random seed, left at 0 as
   gradc's default --seed). */
static void load(const file *f, const N(tensor) * ts, int count, void *dst, const char *what) {
  for (int i = 0; i < count; ++i) {
    size_t bytes;
    if (ts[i].name[0] == '@') continue;
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
#ifdef DYN_BAD_ARGS
  if (want && want_bytes < bytes) bytes = want_bytes; /* the first rows: the JIT's output has the given size */
#endif
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

/* A runtime whose parallel_for runs the iterations backwards, on slot i % threads. */
static void backwards_for(const N(runtime) * rt, void (*body)(void *ctx, int64_t i, int64_t slot), void *ctx,
                          int64_t n) {
  for (int64_t i = n - 1; i >= 0; --i) body(ctx, i, i % rt->threads);
}

#ifdef PTHREADS
/* A runtime on POSIX threads: each thread takes the next iteration until none is left. */
typedef struct {
  void (*body)(void *ctx, int64_t i, int64_t slot);
  void *ctx;
  int64_t n, slot;
  atomic_llong *next;
} worker;

static void *work_on(void *arg) {
  worker *w = arg;
  for (int64_t i; (i = atomic_fetch_add(w->next, 1)) < w->n;) w->body(w->ctx, i, w->slot);
  return NULL;
}

static void threads_for(const N(runtime) * rt, void (*body)(void *ctx, int64_t i, int64_t slot), void *ctx,
                        int64_t n) {
  atomic_llong next = 0;
  worker ws[64];
  pthread_t ts[64];
  int count = rt->threads < 64 ? rt->threads : 64;
  for (int t = 0; t < count; ++t) ws[t] = (worker){body, ctx, n, t, &next};
  for (int t = 1; t < count; ++t) pthread_create(&ts[t], NULL, work_on, &ws[t]);
  work_on(&ws[0]);
  for (int t = 1; t < count; ++t) pthread_join(ts[t], NULL);
}
#endif

/* train_step on a class id out of range: refused, nothing changed. */
static int bad_class_id(N(inputs) * in, N(params) * params, N(state) * state) {
  int i = 0;
  while (i < U(INPUTS_COUNT) && strcmp(N(inputs_tensors)[i].dtype, "i32") != 0) ++i;
  if (i == U(INPUTS_COUNT)) return 2;
  *(int32_t *)((char *)in + N(inputs_tensors)[i].offset) = 1000000;
  N(params) before_params = *params;
  N(state) before_state = *state;
  void *work = work_area(U(TRAIN_STEP_WORK_BYTES)(1));
  double loss[1];
  int32_t rc = N(train_step)(in, params, state, U(LR), (void *)loss DYN_ARGS, work, NULL);
  printf("train_step returned %d: %s\n", rc, N(error_message)(rc));
  if (rc <= U(OK) || rc >= U(ERROR_CODES)) return 1;
  if (memcmp(&before_params, params, sizeof *params) != 0 || memcmp(&before_state, state, sizeof *state) != 0) {
    printf("the refused step changed params or state\n");
    return 1;
  }
  printf("unknown code: %s\n", N(error_message)(U(ERROR_CODES)));
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 8 && !(argc == 4 && strcmp(argv[3], "bad-class-id") == 0)) {
    fprintf(stderr, "usage: driver INPUTS START RUN_REF GRAD_REF STEP_REF STEPS THREADS\n"
                    "       driver INPUTS START bad-class-id\n");
    return 2;
  }
  file inputs_file = read_file(argv[1]), start = read_file(argv[2]);
  N(inputs) *in = calloc(1, sizeof *in);
  N(params) *params = calloc(1, sizeof *params);
  N(state) *state = calloc(1, sizeof *state);
  N(outputs) *out = calloc(1, sizeof *out);
  load(&inputs_file, N(inputs_tensors), U(INPUTS_COUNT), in, argv[1]);
  load(&start, N(params_tensors), U(PARAMS_COUNT), params, argv[2]);
  load(&start, N(state_tensors), U(STATE_COUNT), state, argv[2]);
  if (argc == 4) return bad_class_id(in, params, state);

  file run_ref = read_file(argv[3]), step_ref = read_file(argv[5]);
  int steps = atoi(argv[6]), threads = atoi(argv[7] + (argv[7][0] == 'p'));
  N(runtime) backwards = {backwards_for, NULL, threads};
  const N(runtime) *rt = threads > 0 ? &backwards : NULL;
#ifdef PTHREADS
  N(runtime) posix = {threads_for, NULL, threads};
  if (argv[7][0] == 'p') rt = &posix;
#endif
  int slots = threads > 0 ? threads : 1;

  void *work = work_area(U(FORWARD_WORK_BYTES)(slots));
#ifdef DYN_BAD_ARGS
  {
    int32_t bad = N(forward)(in, params, out DYN_BAD_ARGS, work, rt);
    printf("bad size: %d: %s\n", bad, N(error_message)(bad));
    if (bad == U(OK)) return 1;
  }
#endif
  int32_t rc = N(forward)(in, params, out DYN_ARGS, work, rt);
  if (rc != U(OK)) {
    fprintf(stderr, "forward: %s\n", N(error_message)(rc));
    return 1;
  }
  for (int i = 0; i < U(OUTPUTS_COUNT); ++i)
    compare(&run_ref, N(outputs_tensors)[i].name, (char *)out + N(outputs_tensors)[i].offset,
            N(outputs_tensors)[i].bytes);
  free(work);

#ifdef HAS_GRAD
  file grad_ref = read_file(argv[4]);
  N(grads) *grads = calloc(1, sizeof *grads);
  double grad_loss[1];
  work = work_area(U(GRAD_WORK_BYTES)(slots));
  rc = N(grad)(in, params, (void *)grad_loss, grads, out DYN_ARGS, work, rt);
  if (rc != U(OK)) {
    fprintf(stderr, "grad: %s\n", N(error_message)(rc));
    return 1;
  }
  size_t grad_loss_bytes;
  if (!find(&grad_ref, "loss", &grad_loss_bytes)) return 2;
  compare(&grad_ref, "loss", grad_loss, grad_loss_bytes);
  for (int i = 0; i < U(GRADS_COUNT); ++i)
    compare(&grad_ref, N(grads_tensors)[i].name, (char *)grads + N(grads_tensors)[i].offset,
            N(grads_tensors)[i].bytes);
  for (int i = 0; i < U(OUTPUTS_COUNT); ++i)
    compare(&grad_ref, N(outputs_tensors)[i].name, (char *)out + N(outputs_tensors)[i].offset,
            N(outputs_tensors)[i].bytes);
  free(work);
#endif

  work = work_area(U(TRAIN_STEP_WORK_BYTES)(slots));
  size_t loss_bytes;
  if (!find(&step_ref, "loss", &loss_bytes)) return 2;
  loss_bytes /= (size_t)steps;
  char *losses = malloc(loss_bytes * (size_t)steps);
  for (int s = 0; s < steps; ++s) {
    rc = N(train_step)(in, params, state, U(LR), (void *)(losses + loss_bytes * (size_t)s) DYN_ARGS, work, rt);
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
    if (N(state_tensors)[i].name[0] != '@')
      compare(&step_ref, N(state_tensors)[i].name, (char *)state + N(state_tensors)[i].offset,
            N(state_tensors)[i].bytes);
  printf("%s\n", failures ? "DIFFERENT" : "all identical to the JIT");
  return failures ? 1 : 0;
}
