/* Predicts handwritten digits in a C program that links nothing of gradc: the
 * forward entry of examples/digits_mlp.grad exported by
 *
 *     gradc export examples/digits_mlp.grad -o DIR --entry forward
 *     cc predict_digits.c DIR/digits_mlp.o -IDIR -lm
 *
 * (the project's CMake does both: build/examples/export/), with the params of
 * a checkpoint that `gradc train` wrote:
 *
 *     gradc train examples/digits_mlp.grad --data x=examples/data/digits_train.csv \
 *       --data label=examples/data/digits_train.csv --epochs 5 -o digits.safetensors
 *     predict_digits digits.safetensors examples/data/digits_test.csv [CLASSES.csv]
 *
 * It reads the CSV (a header row, then 64 pixels and the label per row), runs
 * forward on batches of DIGITS_MLP_DIM_B rows, takes the argmax of each row's
 * logits, and prints the accuracy. CLASSES.csv, if given, gets the predicted
 * class of every row. The model scales the pixels itself, so the checkpoint
 * has no preprocessing to apply (a model trained with --standardize would need
 * its pre.standardize.* statistics applied to the inputs first). Exit status 0
 * on success. docs/export.md has the ABI. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digits_mlp.h"

static void fail(const char *what, const char *path) {
  fprintf(stderr, "predict_digits: %s: %s\n", path, what);
  exit(1);
}

/* The whole file, with a 0 byte after its end so that text can be scanned. */
static char *read_whole_file(const char *path, size_t *size) {
  FILE *in = fopen(path, "rb");
  if (!in) fail("cannot open", path);
  fseek(in, 0, SEEK_END);
  *size = (size_t)ftell(in);
  fseek(in, 0, SEEK_SET);
  char *bytes = malloc(*size + 1);
  if (!bytes || fread(bytes, 1, *size, in) != *size) fail("cannot read", path);
  fclose(in);
  bytes[*size] = 0;
  return bytes;
}

/* A safetensors file is an 8-byte little-endian length N, N bytes of JSON, and
 * the tensors' data. The JSON maps each tensor's name to its dtype, shape and
 * data offsets, counted from the end of the JSON:
 *
 *     {"W1": {"dtype": "F32", "shape": [64, 128], "data_offsets": [0, 32768]}, ...}
 *
 * The data is row-major and little-endian, as the exported structs hold it.
 * Returns the data of tensor `name` and its size in bytes, or NULL when the
 * file has no such tensor. This reads the files gradc writes; it is no general
 * JSON parser. */
static const char *find_tensor(const char *file, size_t size, const char *name, size_t *bytes) {
  if (size < 8) return NULL;
  uint64_t json_size = 0;
  for (int i = 0; i < 8; ++i) json_size |= (uint64_t)(unsigned char)file[i] << (8 * i);
  if (json_size > size - 8) return NULL;
  const char *json = file + 8, *data = json + json_size;
  char key[256];
  snprintf(key, sizeof key, "\"%s\"", name);
  for (const char *at = strstr(json, key); at && at < data; at = strstr(at + 1, key)) {
    const char *p = at + strlen(key);
    while (*p == ' ') ++p;
    if (*p != ':') continue; /* the name appeared as a value, not as a key */
    const char *offsets = strstr(p, "\"data_offsets\"");
    const char *object_end = strchr(p, '}');
    if (!offsets || !object_end || offsets > object_end) return NULL;
    offsets = strchr(offsets, '[');
    char *end;
    unsigned long long begin = strtoull(offsets + 1, &end, 10);
    unsigned long long stop = strtoull(end + 1, NULL, 10);
    if (stop < begin || stop > size - 8 - json_size) return NULL;
    *bytes = (size_t)(stop - begin);
    return data + begin;
  }
  return NULL;
}

/* Fills the params from a checkpoint: the header's table names each param,
 * with its field's offset and size, so one loop loads them all. */
static void load_params(const char *path, digits_mlp_params *params) {
  size_t size;
  char *file = read_whole_file(path, &size);
  for (int i = 0; i < DIGITS_MLP_PARAMS_COUNT; ++i) {
    const digits_mlp_tensor *t = &digits_mlp_params_tensors[i];
    size_t bytes;
    const char *data = find_tensor(file, size, t->name, &bytes);
    if (!data || bytes != t->bytes) {
      fprintf(stderr, "predict_digits: %s: no tensor '%s' of %zu bytes\n", path, t->name, t->bytes);
      exit(1);
    }
    memcpy((char *)params + t->offset, data, bytes);
  }
  free(file);
}

enum { kPixels = 64 };

typedef struct {
  float (*pixels)[kPixels];
  int32_t *labels;
  int rows;
} digits;

/* Reads a CSV of a header row and rows of 64 pixels and a label. */
static digits read_digits(const char *path) {
  size_t size;
  char *text = read_whole_file(path, &size);
  digits d = {NULL, NULL, 0};
  int capacity = 0;
  char *line = strchr(text, '\n'); /* skip the header row */
  while (line && *++line) {
    if (d.rows == capacity) {
      capacity = capacity ? 2 * capacity : 256;
      d.pixels = realloc(d.pixels, (size_t)capacity * sizeof *d.pixels);
      d.labels = realloc(d.labels, (size_t)capacity * sizeof *d.labels);
      if (!d.pixels || !d.labels) fail("out of memory", path);
    }
    char *end = line;
    for (int j = 0; j <= kPixels; ++j) {
      char *start = end + (j > 0); /* past the comma */
      double value = strtod(start, &end);
      if (end == start || (j < kPixels && *end != ',')) fail("a row is not 64 pixels and a label", path);
      if (j < kPixels) d.pixels[d.rows][j] = (float)value;
      else d.labels[d.rows] = (int32_t)value;
    }
    ++d.rows;
    line = strchr(end, '\n');
  }
  free(text);
  if (d.rows == 0) fail("no rows", path);
  return d;
}

/* The index of the largest of n scores (the first one on a tie). */
static int argmax(const float *scores, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (scores[i] > scores[best]) best = i;
  return best;
}

int main(int argc, char **argv) {
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: predict_digits CHECKPOINT DIGITS.csv [CLASSES.csv]\n");
    return 2;
  }
  static digits_mlp_params params;
  static digits_mlp_inputs in;
  static digits_mlp_outputs out;
  static _Alignas(DIGITS_MLP_WORK_ALIGN) unsigned char work[DIGITS_MLP_FORWARD_WORK_BYTES(1)];
  load_params(argv[1], &params);
  digits data = read_digits(argv[2]);
  FILE *classes = argc == 4 ? fopen(argv[3], "w") : NULL;
  if (argc == 4 && !classes) fail("cannot write", argv[3]);
  if (classes) fprintf(classes, "class\n");

  /* The code is compiled for batches of DIGITS_MLP_DIM_B rows. Each row's
   * logits depend on that row alone, so the last, partial batch is padded
   * with zero rows whose results are ignored. */
  int right = 0;
  for (int first = 0; first < data.rows; first += DIGITS_MLP_DIM_B) {
    int rows = data.rows - first < DIGITS_MLP_DIM_B ? data.rows - first : DIGITS_MLP_DIM_B;
    memset(&in, 0, sizeof in);
    memcpy(in.x, data.pixels[first], (size_t)rows * sizeof in.x[0]);
    int32_t rc = digits_mlp_forward(&in, &params, &out, work, NULL);
    if (rc != DIGITS_MLP_OK) {
      fprintf(stderr, "predict_digits: forward: %s\n", digits_mlp_error_message(rc));
      return 1;
    }
    for (int i = 0; i < rows; ++i) {
      int predicted = argmax(out.logits[i], DIGITS_MLP_DIM_C);
      right += predicted == data.labels[first + i];
      if (classes) fprintf(classes, "%d\n", predicted);
    }
  }
  if (classes) fclose(classes);
  printf("predicted %d rows, accuracy %.6g (%d right)\n", data.rows, (double)right / data.rows, right);
  free(data.pixels);
  free(data.labels);
  return 0;
}
