// C++ twins of every example model (examples/*.grad), written with the
// embedded front end statement for statement, in the order of the files, so
// that their graphs are numbered the same way.
#include "tests/embedded/twins.h"

namespace gradc::embed::twins {

// examples/xor.grad
void xor_model(ModelBuilder& m) {
  Dim B = m.dim("B", 4);
  Tensor<2> x = m.input("x", shape(B, 2));
  Tensor<2> y = m.input("y", shape(B, 1));
  auto W1 = m.param("W1", shape(2, 8), init::xavier_uniform);
  auto b1 = m.param("b1", shape(8));
  auto W2 = m.param("W2", shape(8, 1), init::xavier_uniform);
  auto b2 = m.param("b2", shape(1));
  auto h = m.let("h", tanh(x % W1 + b1));
  auto pred = m.let("pred", sigmoid(h % W2 + b2));
  m.loss(mse(pred, y));
  m.output(pred);
  m.optimizer("sgd", {{"lr", 0.5}});
}

// examples/digits_mlp.grad
void digits_mlp(ModelBuilder& m) {
  Dim B = m.dim("B", 64), H = m.dim("H", 128), C = m.dim("C", 10);
  auto x = m.input("x", shape(B, 64));
  auto label = m.input("label", i32(B));
  auto W1 = m.param("W1", shape(64, H), init::he_uniform);
  auto b1 = m.param("b1", shape(H));
  auto W2 = m.param("W2", shape(H, C), init::xavier_uniform);
  auto b2 = m.param("b2", shape(C));
  auto pixels = m.let("pixels", x / 16);
  auto h = m.let("h", relu(pixels % W1 + b1));
  auto logits = m.let("logits", h % W2 + b2);
  m.loss(cross_entropy(logits, label));
  m.metric("accuracy", mean(argmax(logits, axis(1)) == label));
  m.output(logits);
  m.optimizer("sgd", {{"lr", 0.05}, {"momentum", 0.9}});
}

// examples/digits_cnn.grad
void digits_cnn(ModelBuilder& m) {
  Dim B = m.dim("B"), C = m.dim("C", 10);  // B dynamic
  auto x = m.input("x", shape(B, 1, 8, 8));
  auto label = m.input("label", i32(B));
  auto k1 = m.param("k1", shape(16, 1, 3, 3), init::he_uniform);
  auto b1 = m.param("b1", shape(16));
  auto k2 = m.param("k2", shape(32, 16, 3, 3), init::he_uniform);
  auto b2 = m.param("b2", shape(32));
  auto W = m.param("W", shape(288, C), init::xavier_uniform);
  auto b = m.param("b", shape(C));
  auto pixels = m.let("pixels", x / 16);
  auto h1 = m.let("h1", silu(conv2d(pixels, k1, {.padding = 1}) + reshape(b1, shape(16, 1, 1))));
  auto h2 = m.let("h2", relu(conv2d(h1, k2) + reshape(b2, shape(32, 1, 1))));
  auto p = m.let("p", max_pool2d(h2, 2));
  auto logits = m.let("logits", flatten(p) % W + b);
  m.loss(cross_entropy(logits, label));
  m.metric("accuracy", mean(argmax(logits, axis(1)) == label));
  m.output(logits);
  m.optimizer("adam", {{"lr", 0.003}});
}

// examples/fashion_cnn.grad
void fashion_cnn(ModelBuilder& m) {
  Dim B = m.dim("B"), C1 = m.dim("C1", 16), C2 = m.dim("C2", 32), F = m.dim("F", 1568), H = m.dim("H", 128),
      N = m.dim("N", 10);
  auto x = m.input("x", shape(B, 1, 28, 28));
  auto label = m.input("label", i32(B));
  auto K1 = m.param("K1", shape(C1, 1, 5, 5), init::he_uniform);
  auto c1 = m.param("c1", shape(C1));
  auto K2 = m.param("K2", shape(C2, C1, 5, 5), init::he_uniform);
  auto c2 = m.param("c2", shape(C2));
  auto W3 = m.param("W3", shape(F, H), init::he_uniform);
  auto b3 = m.param("b3", shape(H));
  auto W4 = m.param("W4", shape(H, N), init::xavier_uniform);
  auto b4 = m.param("b4", shape(N));
  auto pixels = m.let("pixels", x / 255);
  auto a1 = m.let("a1", max_pool2d(relu(conv2d(pixels, K1, {.padding = 2}) + reshape(c1, shape(C1, 1, 1))), 2));
  auto a2 = m.let("a2", max_pool2d(relu(conv2d(a1, K2, {.padding = 2}) + reshape(c2, shape(C2, 1, 1))), 2));
  auto h = m.let("h", relu(flatten(a2) % W3 + b3));
  auto logits = m.let("logits", h % W4 + b4);
  m.loss(cross_entropy(logits, label));
  m.metric("accuracy", mean(argmax(logits, axis(1)) == label));
  m.output(logits);
  m.optimizer("adam", {{"lr", 0.001}});
}

// examples/fashion_mlp.grad
void fashion_mlp(ModelBuilder& m) {
  Dim B = m.dim("B"), H1 = m.dim("H1", 256), H2 = m.dim("H2", 128), C = m.dim("C", 10);
  auto x = m.input("x", shape(B, 784));
  auto label = m.input("label", i32(B));
  auto W1 = m.param("W1", shape(784, H1), init::he_uniform);
  auto b1 = m.param("b1", shape(H1));
  auto W2 = m.param("W2", shape(H1, H2), init::he_uniform);
  auto b2 = m.param("b2", shape(H2));
  auto W3 = m.param("W3", shape(H2, C), init::xavier_uniform);
  auto b3 = m.param("b3", shape(C));
  auto pixels = m.let("pixels", x / 255);
  auto h1 = m.let("h1", relu(pixels % W1 + b1));
  auto h2 = m.let("h2", relu(h1 % W2 + b2));
  auto logits = m.let("logits", h2 % W3 + b3);
  m.loss(cross_entropy(logits, label));
  m.metric("accuracy", mean(argmax(logits, axis(1)) == label));
  m.output(logits);
  m.optimizer("adam", {{"lr", 0.001}});
}

// examples/iris_mlp.grad
void iris_mlp(ModelBuilder& m) {
  Dim B = m.dim("B");  // dynamic
  auto x = m.input("x", shape(B, 4));
  auto label = m.input("label", i32(B));
  auto W1 = m.param("W1", shape(4, 16), init::he_uniform);
  auto b1 = m.param("b1", shape(16));
  auto W2 = m.param("W2", shape(16, 3), init::xavier_uniform);
  auto b2 = m.param("b2", shape(3));
  auto h = m.let("h", relu(x % W1 + b1));
  auto logits = m.let("logits", h % W2 + b2);
  m.loss(cross_entropy(logits, label));
  m.metric("accuracy", mean(argmax(logits, axis(1)) == label));
  m.output(logits);
  m.optimizer("adam", {{"lr", 0.01}});
}

// examples/logreg.grad
void logreg(ModelBuilder& m) {
  Dim B = m.dim("B");  // dynamic
  auto x = m.input("x", f32(B, 30));
  auto y = m.input("y", shape(B));
  auto w = m.param("w", shape(30));
  auto b = m.param("b", shape());
  auto logits = m.let("logits", x % w + b);
  m.loss(bce_with_logits(logits, y));
  m.metric("accuracy", mean((logits > 0) == y));
  m.output(logits);
  m.optimizer("sgd", {{"lr", 0.1}});
}

// examples/regression_f64.grad
void regression_f64(ModelBuilder& m) {
  Dim B = m.dim("B"), F = m.dim("F", 8), H = m.dim("H", 16);  // B dynamic
  auto x = m.input("x", f64(B, F));
  auto y = m.input("y", f64(B, 1));
  auto W1 = m.param("W1", f64(F, H), init::xavier_uniform);
  auto b1 = m.param("b1", f64(H));
  auto W2 = m.param("W2", f64(H, 1), init::xavier_normal);
  auto b2 = m.param("b2", f64(1));
  auto h = m.let("h", silu(x % W1 + b1));
  auto pred = m.let("pred", h % W2 + b2);
  m.loss(mse(pred, y));
  m.metric("rmse", sqrt(mean(square(pred - y))));
  m.metric("within_10pct", mean(abs(pred - y) <= 0.1 * abs(y)));
  m.output(pred);
  m.optimizer("adamw", {{"lr", 0.001}, {"weight_decay", 0.01}, {"clip_grad_norm", 1.0}});
}

// examples/fn_grad.grad
void fn_grad(ModelBuilder& m) {
  Dim B = m.dim("B", 8);
  auto x = m.input("x", shape(B, 4));
  auto label = m.input("label", i32(B));
  auto W1 = m.param("W1", shape(16, 4), init::he_uniform);
  auto b1 = m.param("b1", shape(16));
  auto P = m.param("P", shape(3, 12), init::normal(0, 0.5));

  auto dense = m.fn("dense", {"v", "W", "b"}, [](auto v, auto W, auto b) { return v % W.T() + b; });
  auto leaky = m.fn("leaky", {"v"}, [](auto v) { return where(v > 0, v, 0.1 * v); });
  auto maxout = m.fn("maxout", {"z"}, [](FnScope& s, auto z) {
    auto lo = s.let("lo", slice(z, axis(1), stop(8)));
    auto hi = s.let("hi", slice(z, axis(1), start(-8)));
    return maximum(lo, hi);
  });
  auto encode = m.fn("encode", {"v"}, [&](FnScope& s, auto v) {
    auto z = s.let("z", dense(v, W1, b1));
    return maxout(z);
  });
  auto nll = m.fn("nll", {"logp", "y"},
                  [](auto logp, auto y) { return -mean(sum(one_hot(y, 3) * logp, axis(1))); });

  auto mu = m.let("mu", stop_gradient(mean(x, axis(0), keepdims<true>)));
  auto var = m.let("var", stop_gradient(mean(square(x - mu), axis(0), keepdims<true>)));
  auto xn = m.let("xn", (x - broadcast_to(mu, shape(B, 4))) * rsqrt(var + 1e-5));

  auto h = m.let("h", encode(xn));
  auto feat = m.let("feat", leaky(concat(list(h, xn), axis(1))));

  auto f2 = m.let("f2", sum(square(feat), axis(1), keepdims<true>));
  auto p2 = m.let("p2", reshape(sum(square(P), axis(1)), shape(1, 3)));
  auto logits = m.let("logits", 2 * (feat % transpose(P)) - f2 - p2);

  auto logp = m.let("logp", log_softmax(logits, axis(1)));
  auto probs = m.let("probs", softmax(logits));
  auto data_loss = m.let("data_loss", nll(logp, label));

  auto gx = m.let("gx", grad(data_loss, x));

  m.loss(data_loss + 0.01 * sum(square(gx)));

  m.metric("accuracy", mean(argmax(logits, axis(1)) == label));
  m.output(probs);

  m.optimizer("adam", {{"lr", 0.01}});
}

// examples/all_builtins.grad
void all_builtins(ModelBuilder& m) {
  Dim B = m.dim("B", 3), N = m.dim("N", 4);

  auto x = m.input("x", shape(B, N));
  auto t = m.input("t", shape(B, N));
  auto label = m.input("label", i32(B));

  auto W = m.param("W", shape(N, N), init::xavier_uniform);
  auto V = m.param("V", shape(N, N), init::xavier_normal);
  auto Hu = m.param("Hu", shape(N, N), init::he_uniform);
  auto Hn = m.param("Hn", shape(N, N), init::he_normal);
  auto v = m.param("v", shape(N), init::normal(0, 0.1));
  auto u = m.param("u", shape(N), init::uniform(0, 0.1));
  auto s = m.param("s", shape(N), init::ones);
  auto z = m.param("z", shape(N), init::zeros);
  auto c = m.param("c", shape(), init::constant(0.5));
  auto rm = m.buffer("rm", shape(N));
  auto rv = m.buffer("rv", shape(N), init::ones);

  // ---- matrix products ----
  auto a = m.let("a", x % W + v);
  auto a2 = m.let("a2", (x % V) * s + z * c);
  auto vw = m.let("vw", v % Hu);
  auto xu = m.let("xu", x % u);
  auto q = m.let("q", reshape(a, shape(B, 2, 2)));
  auto m22 = m.let("m22", reshape(slice(Hn, axis(0), stop(1)), shape(2, 2)));
  auto bmm = m.let("bmm", q % q.T() + q % m22);
  auto mm = m.let("mm", a + a2 + vw + reshape(xu, shape(B, 1)) + reshape(bmm, shape(B, N)));

  // ---- unary builtins ----
  auto pos = m.let("pos", softplus(a) + 0.5);
  auto un = m.let("un", (exp(-square(a)) + log(pos) + log1p(pos) + sqrt(pos) + rsqrt(pos) + abs(a) + sign(a) +
                         sin(a) + cos(a) + tanh(a) + sigmoid(a) + relu(a) + silu(a) + gelu(a) +
                         leaky_relu(a, slope(0.2)) + elu(a, alpha(0.5))));
  auto neg = m.let("neg", -pow(a, 2));

  // ---- binary builtins and comparisons ----
  auto bin = m.let("bin", (a + x - a * x / (pos + 1) + pow(pos, 1.5) + pow(pos, x) + maximum(a, x) + minimum(a, x) +
                           where(a > x, a, x)));
  auto cmp = m.let("cmp", (a < x) + (a <= x) + (a > x) + (a >= x) + (a == x) + (a != x));
  auto y = m.let("y", un + neg + bin * cmp);

  // ---- reductions ----
  auto r_all = m.let("r_all", sum(y) + mean(y) + max(y) + min(y) + logsumexp(y));
  auto r_ax = m.let("r_ax", (sum(y, axis(0)) + mean(y, axis(0)) + max(y, axis(0)) + min(y, axis(0)) +
                             logsumexp(y, axis(0), keepdims<false>)));
  auto r_keep = m.let("r_keep", (sum(y, axis(1), keepdims<true>) + mean(y, axis(-1), keepdims<true>) +
                                 max(y, axis(1), keepdims<true>) + min(y, axis(1), keepdims<true>) +
                                 logsumexp(y, axis(-1), keepdims<true>)));
  auto pred = m.let("pred", argmax(y, axis(1)));
  auto hit = m.let("hit", pred == label);
  auto red = m.let("red", r_all + r_ax + r_keep + reshape(hit, shape(B, 1)));

  // ---- shape builtins ----
  auto rs = m.let("rs", reshape(a, shape(N, -1)));
  auto tr = m.let("tr", transpose(rs));
  auto tt = m.let("tt", rs.T());
  auto tp = m.let("tp", transpose(q, perm(0, 2, 1)));
  auto cc = m.let("cc", concat(list(a, tr, tt), axis(1)));
  auto head = m.let("head", slice(cc, axis(1), start(2), stop(6)));
  auto tail = m.let("tail", slice(cc, axis(-1), start(-4)));
  auto rows = m.let("rows", slice(concat(list(a, x), axis(0)), axis(0), start(1), stop(-2)));
  auto bc = m.let("bc", broadcast_to(v, shape(B, N)));
  auto bc1 = m.let("bc1", broadcast_to(c, shape(B, 1)));
  auto shp = m.let("shp", head + tail + rows + bc + bc1 + reshape(tp, shape(B, -1)));

  // ---- casts ----
  auto a64 = m.let("a64", cast(a, f64));
  auto e64 = m.let("e64", mean(0.5 * square(a64) + a64));
  auto back = m.let("back", cast(e64, f32));
  auto lab = m.let("lab", cast(label, f32));

  // ---- nn builtins ----
  auto sm = m.let("sm", softmax(a));
  auto sm0 = m.let("sm0", softmax(a, axis(0)));
  auto lsm = m.let("lsm", log_softmax(a, axis(1)));
  auto oh = m.let("oh", one_hot(label, N));
  auto nn = m.let("nn", sm + sm0 + lsm * oh);

  // ---- images ----
  auto img = m.let("img", reshape(a, shape(B, 1, 2, 2)));
  auto cv = m.let("cv", conv2d(img, reshape(W, shape(4, 1, 2, 2)), {.stride = {1, 2}, .padding = 1}));
  auto mp = m.let("mp", max_pool2d(cv, 2, {.stride = 1}));
  auto ap = m.let("ap", avg_pool2d(cv, {3, 2}, {.stride = {}, .padding = {1, 0}}));
  auto c1 = m.let("c1", conv1d(q, reshape(V, shape(8, 1, 2)), {.padding = 1, .dilation = 2, .groups = 2}));
  auto mp1 = m.let("mp1", max_pool1d(c1, 2));
  auto ap1 = m.let("ap1", avg_pool1d(c1, 2, {.stride = 1, .padding = 1}));
  auto im = m.let("im", mean(flatten(mp)) + mean(flatten(ap, start(2))) + mean(mp1) + mean(ap1));

  // ---- normalization, lookup, dropout ----
  auto bn = m.let("bn", batch_norm(a, rm, rv, s, z, momentum(0.2)));
  auto ln = m.let("ln", layer_norm(a, s, z, eps(1e-4)));
  auto emb = m.let("emb", embedding(label, Hu));
  auto dr = m.let("dr", dropout(a, 0.25));
  auto nrm = m.let("nrm", mean(bn * ln) + mean(emb) + mean(dr));

  // ---- losses ----
  auto p = m.let("p", sigmoid(a));
  auto l_mse = m.let("l_mse", mse(p, t));
  auto l_bce = m.let("l_bce", bce(p, t));
  auto l_bcel = m.let("l_bcel", bce_with_logits(a, t));
  auto l_ce = m.let("l_ce", cross_entropy(a, label));
  auto l_ces = m.let("l_ces", cross_entropy(a, softmax(x)));

  // ---- autodiff ----
  auto ga = m.let("ga", grad(l_mse, a));
  auto gW = m.let("gW", grad(l_ce, W));
  auto gx = m.let("gx", grad(l_bcel, x));
  auto ggx = m.let("ggx", grad(sum(grad(l_bcel, x)), x));
  auto jW = m.let("jW", jvp(l_ce, W, gW));
  auto jac = m.let("jac", jacobian(xu, u));
  auto hvp = m.let("hvp", jvp(grad(l_mse, a), a, ga));
  auto sg = m.let("sg", stop_gradient(max(a, axis(1), keepdims<true>)));
  auto lse = m.let("lse", log(sum(exp(a - sg), axis(1))) + reshape(sg, shape(B)));

  m.loss(l_mse + l_bce + l_bcel + l_ce + l_ces + back +
         0.001 * (mean(mm) + mean(y) + mean(red) + mean(shp) + mean(nn) + mean(lab) + im + nrm + mean(jac)) +
         0.01 * (sum(square(ga)) + sum(square(gW)) + sum(square(gx)) + mean(ggx) + jW + mean(hvp)) + mean(lse));

  m.metric("hit_rate", mean(hit));
  m.output({sm, ga});

  m.optimizer("rmsprop", {{"lr", 0.001}, {"momentum", 0.9}, {"centered", true}});
}

const std::vector<Twin>& all() {
  static const std::vector<Twin> twins = {
      {"all_builtins", "all_builtins", all_builtins},
      {"digits_cnn", "digits_cnn", digits_cnn},
      {"digits_mlp", "digits_mlp", digits_mlp},
      {"fashion_cnn", "fashion_cnn", fashion_cnn},
      {"fashion_mlp", "fashion_mlp", fashion_mlp},
      {"fn_grad", "fn_grad", fn_grad},
      {"iris_mlp", "iris_mlp", iris_mlp},
      {"logreg", "logreg", logreg},
      {"regression_f64", "regression64", regression_f64},
      {"xor", "xor", xor_model},
  };
  return twins;
}

}  // namespace gradc::embed::twins
