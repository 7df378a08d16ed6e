// Helpers shared by the unit tests: compiling small models through the public
// API, reaching the checked graph through the compiler's internals, and
// matching diagnostics. Header-only so every test file stays self-contained.
#pragma once

#include <catch2/catch.hpp>

#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "compiler/frontend/parser.h"
#include "compiler/frontend/sema.h"
#include "compiler/support/diagnostics.h"
#include "gradc/gradc.h"

namespace gradc::test {

// Compiles `src` as "test.grad" through the public API.
inline Model compile(const std::string& src, const CompileOptions& opts = {}) {
  return Model::compile_source(src, "test.grad", opts);
}

// All diagnostics, rendered, for failure messages.
inline std::string rendered(const Model& m) { return render_all(m.diagnostics()); }

// Compiles `src` and requires it to succeed (the diagnostics are shown otherwise).
inline Model compile_ok(const std::string& src, const CompileOptions& opts = {}) {
  Model m = compile(src, opts);
  INFO("source:\n" << src << "\ndiagnostics:\n" << rendered(m));
  REQUIRE(m.ok());
  return m;
}

// True when some error (not a note) message contains `needle`.
inline bool has_error(const std::vector<Diagnostic>& diags, const std::string& needle) {
  for (const Diagnostic& d : diags)
    if (d.severity == Severity::Error && d.message.find(needle) != std::string::npos) return true;
  return false;
}

// The first error whose message contains `needle`, or nullptr.
inline const Diagnostic* find_error(const std::vector<Diagnostic>& diags, const std::string& needle) {
  for (const Diagnostic& d : diags)
    if (d.severity == Severity::Error && d.message.find(needle) != std::string::npos) return &d;
  return nullptr;
}

// Compiles `src`, requires failure, and requires an error containing `needle`.
inline std::vector<Diagnostic> compile_error(const std::string& src, const std::string& needle,
                                             const CompileOptions& opts = {}) {
  Model m = compile(src, opts);
  INFO("source:\n" << src << "\ndiagnostics:\n" << rendered(m));
  REQUIRE_FALSE(m.ok());
  CHECK(has_error(m.diagnostics(), needle));
  return m.diagnostics();
}

// The type of output `name` as "f32[2, 3]" (sizes only).
inline std::string output_type(const ModelInfo& info, const std::string& name) {
  for (const TensorInfo& t : info.outputs) {
    if (t.name != name) continue;
    std::string s = t.dtype + "[";
    for (size_t i = 0; i < t.shape.size(); ++i) s += (i ? ", " : "") + std::to_string(t.shape[i]);
    return s + "]";
  }
  return "<no output " + name + ">";
}

// A model with the declarations `decls`, then `y = expr` as its only output,
// and a loss that does not involve y (so y may be of any type).
inline std::string expr_model(const std::string& decls, const std::string& expr) {
  return decls + "\ny = " + expr + "\noutput y\nparam loss_w : []\nloss loss_w * loss_w\n";
}

// The type of `expr` given `decls` (compilation must succeed).
inline std::string type_of(const std::string& decls, const std::string& expr, const CompileOptions& opts = {}) {
  Model m = compile_ok(expr_model(decls, expr), opts);
  return output_type(m.info(), "y");
}

// Parses an optimizer string "name(k=v, ...)" into its name and options.
struct OptimizerOptions {
  std::string name;
  std::map<std::string, double> options;
  std::vector<std::string> keys;  // in printed order
};
inline OptimizerOptions parse_optimizer(const std::string& s) {
  OptimizerOptions r;
  size_t open = s.find('(');
  r.name = s.substr(0, open);
  if (open == std::string::npos) return r;
  std::string body = s.substr(open + 1, s.rfind(')') - open - 1);
  std::stringstream ss(body);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t eq = item.find('=');
    if (eq == std::string::npos) continue;
    std::string key = item.substr(0, eq);
    key.erase(0, key.find_first_not_of(' '));
    r.options[key] = std::strtod(item.c_str() + eq + 1, nullptr);
    r.keys.push_back(key);
  }
  return r;
}

// The compiler's internal view of one source file: parse + sema, without the public API.
struct Analyzed {
  SourceManager sm;
  Ast ast;
  std::vector<Diagnostic> diags;
  std::optional<ModelIR> model;
};

inline std::unique_ptr<Analyzed> analyze_source(const std::string& src, const SemaOptions& opts = {"test", {}}) {
  auto a = std::make_unique<Analyzed>();
  uint32_t file = a->sm.add("test.grad", src);
  DiagEngine diags(a->sm);
  try {
    parse(a->sm, file, a->ast, diags);
    a->model = analyze(a->ast, a->sm, diags, opts);
  } catch (const TooManyErrors&) {
    a->model.reset();
  }
  a->diags = diags.take();
  return a;
}

// Parses only (no sema); the AST and the syntax diagnostics.
inline std::unique_ptr<Analyzed> parse_source(const std::string& src) {
  auto a = std::make_unique<Analyzed>();
  uint32_t file = a->sm.add("test.grad", src);
  DiagEngine diags(a->sm);
  try {
    parse(a->sm, file, a->ast, diags);
  } catch (const TooManyErrors&) {
  }
  a->diags = diags.take();
  return a;
}

}  // namespace gradc::test
