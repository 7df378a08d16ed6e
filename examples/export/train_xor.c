/* Trains examples/xor.grad in a C program that links nothing of gradc: the
 * model's train_step and forward exported by
 *
 *     gradc export examples/xor.grad -o DIR --entry forward,train_step
 *     cc train_xor.c DIR/xor.o -IDIR -lm
 *
 * (the project's CMake does both: build/examples/export/). The params start
 * from a seeded Xavier-uniform draw, as the model's initializers say; then
 * 2000 steps of SGD at the model's learning rate, and the predictions for the
 * four cases. Exit status 0 when all four are right. docs/export.md has the ABI. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "xor.h"

/* Uniform in [-bound, bound) from a 64-bit linear congruential generator. */
static float uniform(uint64_t *state, float bound) {
  *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
  return (float)((double)(*state >> 11) * 0x1.0p-53 * 2 - 1) * bound;
}

int main(void) {
  static xor_inputs in = {{{0, 0}, {0, 1}, {1, 0}, {1, 1}}, {{0}, {1}, {1}, {0}}};
  static xor_params params;  /* biases start at zero */
  static xor_state state;    /* no steps taken yet */
  static xor_outputs out;
  /* One work area serves both entries, one call at a time. */
  enum { kWork = XOR_TRAIN_STEP_WORK_BYTES(1) > XOR_FORWARD_WORK_BYTES(1) ? XOR_TRAIN_STEP_WORK_BYTES(1)
                                                                          : XOR_FORWARD_WORK_BYTES(1) };
  static _Alignas(XOR_WORK_ALIGN) unsigned char work[kWork];

  uint64_t seed = 1;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 8; ++j) params.W1[i][j] = uniform(&seed, sqrtf(6.0f / (2 + 8)));
  for (int i = 0; i < 8; ++i) params.W2[i][0] = uniform(&seed, sqrtf(6.0f / (8 + 1)));

  for (int step = 1; step <= 2000; ++step) {
    float loss;
    int32_t rc = xor_train_step(&in, &params, &state, XOR_LR, &loss, work, NULL);
    if (rc != XOR_OK) {
      fprintf(stderr, "train_step: %s\n", xor_error_message(rc));
      return 1;
    }
    if (step % 500 == 0) printf("step %4d  loss %.6f\n", step, loss);
  }
  int32_t rc = xor_forward(&in, &params, &out, work, NULL);
  if (rc != XOR_OK) {
    fprintf(stderr, "forward: %s\n", xor_error_message(rc));
    return 1;
  }
  int right = 0;
  for (int i = 0; i < XOR_DIM_B; ++i) {
    printf("xor(%g, %g) = %.3f\n", in.x[i][0], in.x[i][1], out.pred[i][0]);
    right += (out.pred[i][0] > 0.5f) == (in.y[i][0] > 0.5f);
  }
  printf("%d of 4 right after %d steps\n", right, state.step);
  return right == 4 ? 0 : 1;
}
