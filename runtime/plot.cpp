// The training-curve SVG (see plot.h): axes with "nice" ticks (1, 2 or 5 times
// a power of ten), one path per series, a legend beside each chart.
//
// Layout, in SVG units: the title on top; then each chart is a plot area
// kPlotW wide and at least kMinPlotH high (taller when its legend needs the
// room), tick labels and the axis names around it, and the legend to its
// right. Coordinates are printed with one decimal, so output is deterministic.
#include "runtime/plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string_view>

#include "runtime/output_file.h"
#include "runtime/tensor_io.h"

namespace gradc {
namespace {

constexpr double kWidth = 860, kLeft = 80, kPlotW = 560, kMinPlotH = 260, kLegendX = 660;
constexpr double kTitleH = 50, kBelowPlot = 50, kChartGap = 30, kLegendRow = 20;
constexpr size_t kMarkersUpTo = 60;  // dots on every point up to this many epochs
constexpr double kBigValue = 1e300;  // plotted values are clamped to +-this, so spans stay finite

// Tableau 10: distinct, readable on white, and kind to the common forms of
// colour blindness. After ten series the colours repeat with dashes.
constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr const char* kDashes[] = {"", "6 3", "2 3", "8 3 2 3"};

// `s` as XML character data or attribute text: markup characters escaped,
// tab/newline/CR as character references, bytes that are not UTF-8 and code
// points XML forbids (other controls, U+FFFE, U+FFFF) as U+FFFD. At most
// `max_chars` code points, then "…".
std::string xml_text(std::string_view s, size_t max_chars = SIZE_MAX) {
  std::string out;
  size_t chars = 0;
  for (size_t i = 0; i < s.size();) {
    if (chars++ == max_chars) {
      out += "\u2026";
      break;
    }
    auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned c = b(i);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
    bool ok = len > 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (b(i + k) & 0xc0) == 0x80;
      cp = (cp << 6) | (b(i + k) & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    static constexpr uint32_t kMinCp[] = {0, 0, 0x80, 0x800, 0x10000};
    ok = ok && cp >= kMinCp[len] && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
    bool xml_char = ok && (cp >= 0x20 || cp == 0x9 || cp == 0xa || cp == 0xd) && cp != 0xfffe && cp != 0xffff;
    if (!xml_char) {
      out += "\uFFFD";
      i += ok ? len : 1;
      continue;
    }
    switch (cp) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      case '\t': out += "&#9;"; break;
      case '\n': out += "&#10;"; break;
      case '\r': out += "&#13;"; break;
      default: out.append(s.substr(i, len));
    }
    i += len;
  }
  return out;
}

struct Tick {
  double at;  // in axis units: the value, or its log10 on a log axis
  std::string label;
};

// A value axis: [lo, hi] in data units, or in log10 units when `log`.
struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  std::vector<Tick> ticks;
  // 0 at lo, 1 at hi, for a value in axis units and for a data value.
  double frac_at(double at) const { return (at - lo) / (hi - lo); }
  double frac(double v) const { return frac_at(log ? std::log10(v) : v); }
};

// 1, 2 or 5 times a power of ten, near `raw`.
double nice_step(double raw) {
  double base = std::pow(10.0, std::floor(std::log10(raw)));
  double m = raw / base;
  return (m < 1.5 ? 1 : m < 3 ? 2 : m < 7 ? 5 : 10) * base;
}

// Ticks every nice step over [lo, hi] (lo < hi), widening the range to whole
// steps. Labels show as many decimals as the step needs; very large or small
// values are written in e-notation.
Axis linear_axis(double lo, double hi) {
  Axis a;
  double step = nice_step((hi - lo) / 5);
  // A span too small for doubles (a subnormal step) or against the values
  // (more steps than int64 counts) becomes +-10% around the middle, or +-1.
  double mid = lo / 2 + hi / 2;
  if (!std::isnormal(step) || std::fabs(mid / step) > 1e15) {
    double pad = std::max(1.0, std::fabs(mid) * 0.1);
    lo = mid - pad, hi = mid + pad, step = nice_step(2 * pad / 5);
  }
  // The 1e-9 keeps 0.9 / 0.1 = 9.000000000000002 from adding a tick at 1.0.
  auto first = static_cast<int64_t>(std::floor(lo / step + 1e-9)), last = static_cast<int64_t>(std::ceil(hi / step - 1e-9));
  a.lo = static_cast<double>(first) * step;
  a.hi = static_cast<double>(last) * step;
  int step_exp = static_cast<int>(std::floor(std::log10(step) + 1e-9));
  double biggest = std::max(std::fabs(a.lo), std::fabs(a.hi));
  bool sci = biggest >= 1e6 || step < 1e-4;
  int sig = std::clamp(static_cast<int>(std::floor(std::log10(biggest))) - step_exp, 0, 15);
  for (int64_t i = first; i <= last && a.ticks.size() < 50; ++i) {
    double v = static_cast<double>(i) * step;
    if (std::fabs(v) < step * 1e-6) v = 0;
    std::string label = v == 0 ? "0" : sci ? fmt::format("{:.{}e}", v, sig) : fmt::format("{:.{}f}", v, std::max(0, -step_exp));
    a.ticks.push_back({v, label});
  }
  return a;
}

// A log axis around [lo, hi] (both > 0). Over at most three decades the ticks
// are 1, 2 and 5 times each power of ten and the range ends at the ticks just
// around the data; over more, the range is whole decades, ticked every k-th.
Axis log_axis(double lo, double hi) {
  Axis a;
  a.log = true;
  a.lo = std::floor(std::log10(lo));
  a.hi = std::max(std::ceil(std::log10(hi)), a.lo + 1);
  auto decades = static_cast<int>(a.hi - a.lo);
  int every = std::max(1, (decades + 5) / 6);
  auto label = [](int mult, int e) {
    if (e >= -4 && e <= 5) return fmt::format("{:.{}f}", mult * std::pow(10.0, e), std::max(0, -e));
    return fmt::format("{}e{}", mult, e);
  };
  for (int e = static_cast<int>(a.lo); e <= static_cast<int>(a.hi); e += every) {
    for (int mult : {1, 2, 5}) {
      if (mult > 1 && (decades > 3 || e == static_cast<int>(a.hi))) break;
      a.ticks.push_back({e + std::log10(mult), label(mult, e)});
    }
  }
  if (decades <= 3) {  // the range ends at the 1, 2 or 5 ticks around the data
    double lo_at = std::log10(lo) + 1e-9, hi_at = std::log10(hi) - 1e-9;
    size_t first = 0, last = a.ticks.size() - 1;
    while (first + 1 < a.ticks.size() && a.ticks[first + 1].at <= lo_at) ++first;
    while (last > first + 1 && a.ticks[last - 1].at >= hi_at) --last;
    a.ticks = std::vector<Tick>(a.ticks.begin() + static_cast<ptrdiff_t>(first), a.ticks.begin() + static_cast<ptrdiff_t>(last) + 1);
    a.lo = a.ticks.front().at;
    a.hi = a.ticks.back().at;
  }
  return a;
}

// The value axis for `series`. Log scale when every value is positive and
// the largest is more than 100 times the smallest (more than two decades):
// losses usually fall fast and then slowly, and on a linear axis the slow,
// interesting part would be a flat line at the bottom. A constant series
// gets a range of +-10% around its value (+-1 around 0).
Axis value_axis(const std::vector<PlotSeries>& series) {
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& s : series)
    for (double v : s.values)
      if (std::isfinite(v)) {
        lo = std::min(lo, std::clamp(v, -kBigValue, kBigValue));
        hi = std::max(hi, std::clamp(v, -kBigValue, kBigValue));
      }
  if (lo > hi) return linear_axis(0, 1);  // nothing to plot
  if (lo > 0 && hi / lo > 100) return log_axis(lo, hi);
  double mid = lo / 2 + hi / 2;
  if (hi - lo <= std::fabs(mid) * 1e-9) {
    double pad = mid == 0 ? 1 : std::fabs(mid) * 0.1;
    lo = mid - pad;
    hi = mid + pad;
  }
  return linear_axis(lo, hi);
}

// The epoch axis: 1 to n, ticks at whole epochs every nice step.
Axis epoch_axis(size_t n) {
  Axis a;
  if (n <= 1) {
    a.lo = 0.5, a.hi = 1.5;
    a.ticks.push_back({1, "1"});
    return a;
  }
  a.lo = 1, a.hi = static_cast<double>(n);
  auto step = static_cast<size_t>(std::max(1.0, nice_step(static_cast<double>(n - 1) / 8)));
  for (size_t e = step == 1 ? 1 : step; e <= n; e += step) a.ticks.push_back({static_cast<double>(e), fmt::to_string(e)});
  return a;
}

std::string num(double v) { return fmt::format("{:.1f}", v); }

bool has_values(const PlotSeries& s) { return !s.values.empty(); }

// One chart with its top at `top`; returns its SVG and adds its height to `top`.
std::string chart(double& top, const std::vector<PlotSeries>& series, const Axis& ex, const std::string& y_name) {
  Axis ey = value_axis(series);
  size_t shown = static_cast<size_t>(std::count_if(series.begin(), series.end(), has_values));
  double h = std::max(kMinPlotH, kLegendRow * static_cast<double>(shown) + 10);
  double x0 = kLeft, y0 = top, x1 = kLeft + kPlotW, y1 = top + h;
  auto px = [&](double epoch) { return x0 + ex.frac(epoch) * kPlotW; };
  auto py = [&](double v) { return y1 - ey.frac(std::clamp(v, -kBigValue, kBigValue)) * h; };

  std::string out = fmt::format("<g class=\"chart\" data-axis=\"{}\">\n", y_name);
  for (const Tick& t : ey.ticks) {
    double y = y1 - ey.frac_at(t.at) * h;
    out += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#e6e6e6\"/>\n", num(x0), num(y), num(x1), num(y));
    out += fmt::format("<text class=\"y-tick\" x=\"{}\" y=\"{}\" text-anchor=\"end\" dominant-baseline=\"middle\">{}</text>\n", num(x0 - 6),
                       num(y), t.label);
  }
  for (const Tick& t : ex.ticks) {
    double x = x0 + ex.frac_at(t.at) * kPlotW;
    out += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/>\n", num(x), num(y1), num(x), num(y1 + 5));
    out += fmt::format("<text class=\"x-tick\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", num(x), num(y1 + 18), t.label);
  }
  out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>\n", num(x0), num(y0),
                     num(kPlotW), num(h));
  out += fmt::format("<text class=\"axis-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">epoch</text>\n", num(x0 + kPlotW / 2),
                     num(y1 + 38));
  double ly = (y0 + y1) / 2;
  out += fmt::format("<text class=\"axis-label\" x=\"22\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 22 {})\">{}{}</text>\n",
                     num(ly), num(ly), y_name, ey.log ? " (log scale)" : "");

  bool any_point = false;
  size_t k = 0;
  for (const PlotSeries& s : series) {
    if (s.values.empty()) continue;
    std::string colour = kPalette[k % 10], dash = kDashes[(k / 10) % 4];
    std::string dash_attr = dash.empty() ? "" : fmt::format(" stroke-dasharray=\"{}\"", dash);
    std::string name = xml_text(s.name);
    // The path: a new subpath after every missing value.
    std::string d, dots;
    size_t n = s.values.size(), last = n;
    for (size_t i = 0; i < n; ++i) {
      double v = s.values[i];
      if (!std::isfinite(v)) continue;
      bool joined = i > 0 && std::isfinite(s.values[i - 1]);
      bool alone = !joined && (i + 1 == n || !std::isfinite(s.values[i + 1]));
      auto x = static_cast<double>(i + 1);
      d += fmt::format("{}{} {} ", joined ? "L" : "M", num(px(x)), num(py(v)));
      if (alone || n <= kMarkersUpTo)
        dots += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{}\"><title>{} epoch {}: {:.6g}</title></circle>\n",
                            num(px(x)), num(py(v)), colour, name, i + 1, v);
      last = i;
      any_point = true;
    }
    if (!d.empty()) d.pop_back();
    std::string tip = last == n ? name + ": no values" : fmt::format("{}: {:.6g} at epoch {}", name, s.values[last], last + 1);
    out += fmt::format("<path class=\"series\" data-name=\"{}\" d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{} "
                       "stroke-linejoin=\"round\"><title>{}</title></path>\n",
                       name, d, colour, dash_attr, tip);
    out += dots;
    double y = y0 + 14 + kLegendRow * static_cast<double>(k);
    out += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2\"{}/>\n", num(kLegendX),
                       num(y), num(kLegendX + 22), num(y), colour, dash_attr);
    out += fmt::format("<text class=\"legend\" x=\"{}\" y=\"{}\" dominant-baseline=\"middle\">{}</text>\n", num(kLegendX + 28),
                       num(y), xml_text(s.name, 24));
    ++k;
  }
  if (!any_point)
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#999\">no values</text>\n", num(x0 + kPlotW / 2),
                       num(ly));
  top = y1 + kBelowPlot;
  return out + "</g>\n";
}

}  // namespace

std::string training_plot_svg(const std::string& title, const std::vector<PlotSeries>& losses,
                              const std::vector<PlotSeries>& metrics) {
  size_t epochs = 0;
  for (const auto* group : {&losses, &metrics})
    for (const PlotSeries& s : *group) epochs = std::max(epochs, s.values.size());
  Axis ex = epoch_axis(epochs);
  double top = kTitleH;
  std::string body = chart(top, losses, ex, "loss");
  if (std::any_of(metrics.begin(), metrics.end(), has_values)) {
    top += kChartGap;
    body += chart(top, metrics, ex, "metric");
  }
  std::string t = xml_text(title, 100);
  return fmt::format(
             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
             "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
             "font-family=\"sans-serif\" font-size=\"12\">\n"
             "<title>{2}</title>\n"
             "<rect width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n"
             "<text class=\"title\" x=\"{3}\" y=\"30\" text-anchor=\"middle\" font-size=\"18\" font-weight=\"bold\">{2}</text>\n",
             kWidth, top, t, num(kWidth / 2)) +
         body + "</svg>\n";
}

void write_training_plot(const std::string& path, const std::string& title, const std::vector<PlotSeries>& losses,
                         const std::vector<PlotSeries>& metrics) {
  write_output_file(path, training_plot_svg(title, losses, metrics));
}

}  // namespace gradc
