// Data-parallel training across processes started by mpirun (docs/distributed.md).
//
// Only the gradc driver sees MPI, and only through this file: the library and
// its public headers stay free of it (the host API offers the same through
// Session::grad and Session::apply_gradients). MPI is initialized only when
// the process was started by an MPI launcher (Open MPI's OMPI_COMM_WORLD_SIZE,
// MPICH's PMI_SIZE, PMIx's PMIX_RANK in the environment), so a plain `gradc
// train` never touches it and runs as one rank of one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gradc/tensor.h"

namespace gradc::driver {

class Distributed {
 public:
  // The ranks of this job: MPI_COMM_WORLD when started by an MPI launcher
  // (initializing MPI on the first call), else one rank of one. A launcher
  // seen in a gradc built without MPI is a DataError.
  static Distributed& world();

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool many() const { return size_ > 1; }

  // Sums `n` values in place across all ranks: one MPI_Allreduce. Every rank
  // gets the same bits (the reduction order does not depend on the rank).
  void sum(float* data, int64_t n) const;
  void sum(double* data, int64_t n) const;
  // Rank 0's `n` values, on every rank.
  void broadcast(double* data, int64_t n) const;
  // Whether every rank passed the same value.
  bool same_everywhere(uint64_t value) const;

  // Every rank stops with `status` together (a signal's stop, once rank 0
  // has written its checkpoint): waits for all ranks, and makes finish()
  // finalize MPI rather than abort the job. Returns `status`.
  int end_together(int status);

  // At the end of the command: with MPI, a status of 0 (or one of
  // end_together) finalizes it; any other stops the whole job with that
  // status (MPI_Abort), so that a rank that failed (and printed why) never
  // leaves the others waiting in a collective. Returns `status` (without
  // MPI, or after finalizing).
  static int finish(int status);

 private:
  Distributed() = default;
  int rank_ = 0, size_ = 1;
  bool together_ = false;  // end_together was called
};

// The exchange of one data-parallel step: this rank's gradients ("grad.NAME"
// of Session::grad), its shard's loss and whether it must stop, packed into
// one flat buffer (f32 when every param is f32, else f64), summed across the
// ranks with one MPI_Allreduce and divided by their count.
class GradientExchange {
 public:
  GradientExchange(const Distributed& ranks, const NamedTensors& params);
  struct Result {
    double loss = 0;    // the mean of the ranks' losses: the global batch's loss
    bool stop = false;  // some rank asked to stop
  };
  // Replaces the gradients in `grads` by their mean across ranks. `weight`
  // scales this rank's gradients and loss first: a shard of n of a batch's
  // rows gives n * ranks / rows, so that the mean is the batch's (a last,
  // partial batch split into shards of unequal sizes; 0 for a rank given no
  // rows, whose `grads` are zeros).
  Result average(NamedTensors& grads, double loss, bool stop, double weight = 1);
  int64_t bytes() const;  // of the buffer, per step

 private:
  template <class T>
  Result exchange(std::vector<T>& buffer, NamedTensors& grads, double loss, bool stop, double weight);
  const Distributed& ranks_;
  std::vector<std::string> names_;  // "grad.NAME" per param
  std::vector<int64_t> offsets_;    // in the buffer, per param; then the loss and the stop flag
  bool f64_ = false;
  std::vector<float> f32_buffer_;
  std::vector<double> f64_buffer_;
};

// 64-bit FNV-1a of bytes: a cheap checksum of params that must agree across ranks.
uint64_t fingerprint(const void* data, size_t bytes, uint64_t h = 0xcbf29ce484222325ULL);

}  // namespace gradc::driver
