// The message catalog: every user-facing diagnostic text of the compiler, in one place.
//
// Each message is declared once, in messages.def, with a name, its text (lowercase, no
// trailing period, clang style) and the types of its arguments; DiagnosticSemaKinds.td in
// clang is the model. Callers write `diag::err_unknown_name(name, hint)`: the format string
// is checked against the declared types at compile time (fmt::format_string), and an
// argument of the wrong kind (a double where an integer is declared) does not compile.
// The catalog is enumerable (kCatalog) so a unit test can check the style of every text.
//
// What is not here: data-file errors of runtime/ (CSV, safetensors, npy: DataError) and the
// CLI's option and usage errors; they are another channel, about files and flags rather
// than the model, and live with their readers. Internal errors are not messages either:
// they go through GRADC_ASSERT / internal_error (diagnostics.h).
#pragma once

#include <fmt/format.h>

#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace gradc::diag {

// Which call arguments a declared argument type accepts. Integers convert among themselves
// (they print the same), but a float never silently becomes an integer or the other way
// round, and float stays float (it prints shorter than the double of the same value).
template <class T, class A>
constexpr bool accepts() {
  using D = std::remove_cvref_t<A>;
  if constexpr (std::same_as<T, std::string_view>) return std::convertible_to<A, std::string_view>;
  else if constexpr (std::same_as<T, char>) return std::same_as<D, char>;
  else if constexpr (std::integral<T>) return std::integral<D> && !std::same_as<D, bool> && !std::same_as<D, char>;
  else if constexpr (std::floating_point<T>) return std::same_as<D, T>;
  else return std::convertible_to<A, T>;
}
template <class T, class A>
concept Accepts = accepts<T, A>();

// One catalog entry: its name and a compile-time checked format string over Ts.
template <class... Ts>
struct Message {
  std::string_view name;
  fmt::format_string<Ts...> text;

  template <class... As>
    requires(sizeof...(As) == sizeof...(Ts) && (Accepts<Ts, As> && ...))
  std::string operator()(As&&... args) const {
    return render(static_cast<Ts>(std::forward<As>(args))...);
  }

 private:
  std::string render(Ts... vs) const { return fmt::vformat(fmt::string_view(text), fmt::make_format_args(vs...)); }
};

#define GRADC_DIAG(NAME, TEXT, ...) inline constexpr Message<__VA_ARGS__> NAME{#NAME, TEXT};
#include "compiler/support/messages.def"
#undef GRADC_DIAG

// Every entry, for tests and tools.
struct CatalogEntry {
  std::string_view name;
  std::string_view text;
};
inline constexpr CatalogEntry kCatalog[] = {
#define GRADC_DIAG(NAME, TEXT, ...) {#NAME, TEXT},
#include "compiler/support/messages.def"
#undef GRADC_DIAG
};

}  // namespace gradc::diag
