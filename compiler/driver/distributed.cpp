// The ranks of a data-parallel run: MPI when an MPI launcher started gradc.
#include "compiler/driver/distributed.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "gradc/tensor.h"

#if GRADC_HAVE_MPI
#include <mpi.h>
#endif

namespace gradc::driver {
namespace {

// The variables an MPI launcher sets for the processes it starts.
const char* launcher_variable() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(v)) return v;
  return nullptr;
}

bool mpi_started = false;  // by world(): a launcher started this process

#if GRADC_HAVE_MPI
// A collective that failed (a rank died or the network broke): say so, then
// stop the job rather than leave it waiting.
void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::cerr << "gradc train: error: rank " << rank << ": " << what << " failed: " << std::string(text, len)
            << "; stopping every rank\n";
  MPI_Abort(MPI_COMM_WORLD, 1);
}
#endif

// A float tensor's values into the buffer, converted to its type, and back.
template <class T>
void pack(const Tensor& t, T* to) {
  if (t.dtype() == DType::F32) std::copy(t.data<float>(), t.data<float>() + t.numel(), to);
  else std::copy(t.data<double>(), t.data<double>() + t.numel(), to);
}

template <class T>
void unpack(const T* from, Tensor& t) {
  if (t.dtype() == DType::F32) std::copy(from, from + t.numel(), t.data<float>());
  else std::copy(from, from + t.numel(), t.data<double>());
}

}  // namespace

Distributed& Distributed::world() {
  static Distributed* d = [] {
    auto* w = new Distributed();
    const char* var = launcher_variable();
    if (!var) return w;
#if GRADC_HAVE_MPI
    MPI_Init(nullptr, nullptr);
    mpi_started = true;
    // Errors come back to check(), which names the call before stopping the job.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &w->rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &w->size_);
#else
    throw DataError(std::string("started by an MPI launcher (") + var +
                    " is set), but this gradc was built without MPI; install libopenmpi-dev and rebuild");
#endif
    return w;
  }();
  return *d;
}

#if GRADC_HAVE_MPI
void Distributed::sum(float* data, int64_t n) const {
  if (mpi_started)
    check(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
}

void Distributed::sum(double* data, int64_t n) const {
  if (mpi_started)
    check(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(n), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
}

void Distributed::broadcast(double* data, int64_t n) const {
  if (mpi_started) check(MPI_Bcast(data, static_cast<int>(n), MPI_DOUBLE, 0, MPI_COMM_WORLD), "MPI_Bcast");
}

bool Distributed::same_everywhere(uint64_t value) const {
  if (!mpi_started) return true;
  // The largest value and the largest complement (the smallest value) in one call.
  uint64_t v[2] = {value, ~value};
  check(MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
  return v[0] == ~v[1];
}

int Distributed::end_together(int status) {
  if (mpi_started) check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
  together_ = true;
  return status;
}

int Distributed::finish(int status) {
  if (!mpi_started) return status;
  if (status != 0 && !world().together_) {
    std::fflush(stdout);
    std::cerr.flush();
    MPI_Abort(MPI_COMM_WORLD, status);
  }
  MPI_Finalize();
  return status;
}
#else
void Distributed::sum(float*, int64_t) const {}
void Distributed::sum(double*, int64_t) const {}
void Distributed::broadcast(double*, int64_t) const {}
bool Distributed::same_everywhere(uint64_t) const { return true; }
int Distributed::end_together(int status) { return status; }
int Distributed::finish(int status) { return status; }
#endif

GradientExchange::GradientExchange(const Distributed& ranks, const NamedTensors& params) : ranks_(ranks) {
  int64_t n = 0;
  for (const auto& [name, t] : params) {
    names_.push_back("grad." + name);
    offsets_.push_back(n);
    n += t.numel();
    f64_ = f64_ || t.dtype() != DType::F32;
  }
  offsets_.push_back(n);
  // MPI counts are ints.
  if (n + 2 > INT32_MAX)
    throw DataError("the model has " + std::to_string(n) + " gradient values, more than one MPI_Allreduce can sum");
  if (f64_) f64_buffer_.resize(static_cast<size_t>(n) + 2);
  else f32_buffer_.resize(static_cast<size_t>(n) + 2);
}

int64_t GradientExchange::bytes() const {
  return f64_ ? static_cast<int64_t>(f64_buffer_.size() * sizeof(double))
              : static_cast<int64_t>(f32_buffer_.size() * sizeof(float));
}

GradientExchange::Result GradientExchange::average(NamedTensors& grads, double loss, bool stop, double weight) {
  return f64_ ? exchange(f64_buffer_, grads, loss, stop, weight) : exchange(f32_buffer_, grads, loss, stop, weight);
}

template <class T>
GradientExchange::Result GradientExchange::exchange(std::vector<T>& buffer, NamedTensors& grads, double loss,
                                                    bool stop, double weight) {
  std::vector<Tensor*> ts;
  for (const std::string& name : names_) {
    Tensor* t = nullptr;
    for (auto& [n, g] : grads)
      if (n == name) t = &g;
    if (!t) throw DataError("the gradients have no tensor '" + name + "'");
    ts.push_back(t);
  }
  for (size_t k = 0; k < ts.size(); ++k) pack(*ts[k], buffer.data() + offsets_[k]);
  size_t n = static_cast<size_t>(offsets_.back());
  if (weight != 1) {  // a shard of its own size: its share of the weighted mean
    for (size_t i = 0; i < n; ++i) buffer[i] *= static_cast<T>(weight);
    loss *= weight;
  }
  buffer[n] = static_cast<T>(loss);
  buffer[n + 1] = stop ? 1 : 0;
  ranks_.sum(buffer.data(), static_cast<int64_t>(buffer.size()));
  // The mean: a multiplication by 1/K, the same on every rank.
  T scale = static_cast<T>(1.0 / ranks_.size());
  for (size_t i = 0; i < n; ++i) buffer[i] *= scale;
  for (size_t k = 0; k < ts.size(); ++k) unpack(buffer.data() + offsets_[k], *ts[k]);
  return {static_cast<double>(buffer[n]) / ranks_.size(), buffer[n + 1] > 0};
}

uint64_t fingerprint(const void* data, size_t bytes, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

}  // namespace gradc::driver
