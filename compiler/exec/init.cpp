// Initializers: zeros, ones, constant, uniform, normal, and the fan-based
// xavier/he schemes of torch.nn.init, with gradc's [in, out] weight layout.
#include "compiler/exec/init.h"

#include "runtime/random.h"

#include <fmt/format.h>

#include <cmath>

namespace gradc {

Tensor init_param(const ParamDecl& p, const Node& node, uint64_t seed) {
  Tensor t(node.dtype, sizes(node.shape));
  RandomStream rng(seed, p.name);
  using K = InitSpec::Kind;
  const InitSpec& init = p.init;
  // fan_in and fan_out of an [..., in, out] weight, or of a convolution's
  // [O, C/groups, k..] weight as PyTorch computes them: C/groups * prod(k)
  // and O * prod(k).
  double fan_in = node.rank() >= 2 ? static_cast<double>(node.shape[node.rank() - 2].size) : 1;
  double fan_out = node.rank() >= 2 ? static_cast<double>(node.shape[node.rank() - 1].size) : 1;
  if (p.conv_weight) {
    double field = 1;
    for (int a = 2; a < node.rank(); ++a) field *= static_cast<double>(node.shape[a].size);
    fan_in = static_cast<double>(node.shape[1].size) * field;
    fan_out = static_cast<double>(node.shape[0].size) * field;
  }
  // Each element is the double a draw gives, rounded to the tensor's dtype
  // (written through a typed pointer: a session of W3 initializes 200,000
  // params, and Tensor::set per element was most of its construction).
  auto fill = [&t](auto draw) {
    int64_t n = t.numel();
    switch (t.dtype()) {
      case DType::F32: {
        float* p = static_cast<float*>(t.raw());
        for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(draw());
        break;
      }
      case DType::F64: {
        double* p = static_cast<double*>(t.raw());
        for (int64_t i = 0; i < n; ++i) p[i] = draw();
        break;
      }
      case DType::I32:
        for (int64_t i = 0; i < n; ++i) t.set(i, draw());
        break;
    }
  };
  switch (init.kind) {
    case K::Zeros: break;  // a new tensor is zeros
    case K::Ones: fill([] { return 1.0; }); break;
    case K::Constant: fill([&] { return init.a; }); break;
    case K::Uniform: fill([&] { return init.a + (init.b - init.a) * rng.uniform(); }); break;
    case K::Normal: fill([&] { return init.a + init.b * rng.normal(); }); break;
    case K::XavierUniform: {  // U(-a, a), a = sqrt(6 / (fan_in + fan_out))
      double a = std::sqrt(6.0 / (fan_in + fan_out));
      fill([&] { return a * (2 * rng.uniform() - 1); });
      break;
    }
    case K::XavierNormal: {  // N(0, 2 / (fan_in + fan_out))
      double sd = std::sqrt(2.0 / (fan_in + fan_out));
      fill([&] { return sd * rng.normal(); });
      break;
    }
    case K::HeUniform: {  // kaiming_uniform, relu gain, fan_in mode: U(-b, b), b = sqrt(6 / fan_in)
      double b = std::sqrt(6.0 / fan_in);
      fill([&] { return b * (2 * rng.uniform() - 1); });
      break;
    }
    case K::HeNormal: {  // N(0, 2 / fan_in)
      double sd = std::sqrt(2.0 / fan_in);
      fill([&] { return sd * rng.normal(); });
      break;
    }
  }
  return t;
}

NamedTensors init_params(const ModelIR& m, uint64_t seed) { return init_decls(m, m.params, "params", seed); }
NamedTensors init_buffers(const ModelIR& m, uint64_t seed) { return init_decls(m, m.buffers, "buffers", seed); }

NamedTensors init_decls(const ModelIR& m, const std::vector<ParamDecl>& decls, std::string_view what, uint64_t seed) {
  double bytes = 0;
  for (const ParamDecl& p : decls)
    bytes += static_cast<double>(numel(m.graph[p.node].shape)) * static_cast<double>(dtype_size(m.graph[p.node].dtype));
  if (bytes > kMaxParamBytes)
    throw DataError(fmt::format("the model's {} need {:.1f} GiB; the limit is {:.0f} GiB", what, bytes / (1 << 30),
                                kMaxParamBytes / (1 << 30)));
  NamedTensors out;
  for (const ParamDecl& p : decls) out.emplace_back(p.name, init_param(p, m.graph[p.node], seed));
  return out;
}

}  // namespace gradc
