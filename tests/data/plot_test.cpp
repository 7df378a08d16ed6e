// The training-curve SVG (runtime/plot.h): well-formed XML (our checker, and
// xmllint when installed), one series element and legend entry per non-empty
// series, axis labels, scales and ticks, escaping, and awkward data (one
// epoch, constant series, NaN and infinity, huge values, many epochs).
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <string>

#include "runtime/plot.h"
#include "tests/data/xml_check.h"
#include "tests/runtime/test_util.h"

namespace gradc {
namespace {

using test::xml_problem;

// The text between `open` and `close` after every occurrence of `open`.
std::vector<std::string> between(const std::string& s, const std::string& open, const std::string& close) {
  std::vector<std::string> out;
  for (size_t p = s.find(open); p != std::string::npos; p = s.find(open, p + 1)) {
    size_t b = p + open.size(), e = s.find(close, b);
    REQUIRE(e != std::string::npos);
    out.push_back(s.substr(b, e - b));
  }
  return out;
}

// The contents of every <text class="CLS" ...> element.
std::vector<std::string> texts(const std::string& svg, const std::string& cls) {
  std::vector<std::string> out;
  for (const std::string& rest : between(svg, "<text class=\"" + cls + "\"", "</text>")) out.push_back(rest.substr(rest.find('>') + 1));
  return out;
}

// The data-name of every series element, in order.
std::vector<std::string> series_names(const std::string& svg) { return between(svg, "class=\"series\" data-name=\"", "\""); }

// The d attribute of the series called `name` (as written, escaped).
std::string path_of(const std::string& svg, const std::string& name) {
  auto ds = between(svg, "class=\"series\" data-name=\"" + name + "\" d=\"", "\"");
  REQUIRE(ds.size() == 1);
  return ds[0];
}

struct Point {
  char cmd;
  double x, y;
};

std::vector<Point> points(const std::string& d) {
  std::istringstream in(d);
  std::vector<Point> out;
  Point p{};
  while (in >> p.cmd >> p.x >> p.y) out.push_back(p);
  return out;
}

// The plot area of the chart for `axis` ("loss" or "metric"): x, y, width, height.
std::vector<double> plot_area(const std::string& svg, const std::string& axis) {
  size_t g = svg.find("<g class=\"chart\" data-axis=\"" + axis + "\"");
  REQUIRE(g != std::string::npos);
  size_t r = svg.find("<rect ", g);
  std::vector<double> v;
  for (const char* a : {" x=\"", " y=\"", " width=\"", " height=\""}) {
    size_t p = svg.find(a, r) + std::strlen(a);
    v.push_back(std::stod(svg.substr(p)));
  }
  return v;
}

size_t count(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

// Where "nan" or "inf" stands as a word of its own (any case, between
// non-letters) in s, or npos. (A loop, not std::regex: GCC 12 warns
// -Wmaybe-uninitialized inside <regex>'s automaton in the sanitizer build.)
size_t nan_or_inf(const std::string& s) {
  auto letter = [&](size_t i) { return std::isalpha(static_cast<unsigned char>(s[i])) != 0; };
  for (size_t i = 1; i + 3 < s.size(); ++i) {
    std::string w = s.substr(i, 3);
    for (char& c : w) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if ((w == "nan" || w == "inf") && !letter(i - 1) && !letter(i + 3)) return i;
  }
  return std::string::npos;
}

// Well-formed, and no NaN or infinity printed as a number.
void check_xml(const std::string& svg) {
  CHECK(xml_problem(svg) == "");
  size_t at = nan_or_inf(svg);
  INFO("near: " << (at != std::string::npos ? svg.substr(at < 60 ? 0 : at - 60, 120) : ""));
  CHECK(at == std::string::npos);
}

const std::vector<PlotSeries> kLosses = {{"train loss", {2.3, 1.1, 0.7, 0.5, 0.45}}, {"eval loss", {2.4, 1.3, 0.9, 0.8, 0.82}}};
const std::vector<PlotSeries> kMetrics = {{"train accuracy", {0.5, 0.7, 0.8, 0.85, 0.9}}, {"eval accuracy", {0.45, 0.6, 0.7, 0.75, 0.74}}};

TEST_CASE("the NaN and infinity finder finds them as words of their own only") {
  CHECK(nan_or_inf("<text x=\"NaN\"/>") == 9);
  CHECK(nan_or_inf("d=\"M 0 -inf L\"") == 8);
  CHECK(nan_or_inf("y=\"INF\"") == 3);
  CHECK(nan_or_inf("<info>nano infinity</info>") == std::string::npos);
  CHECK(nan_or_inf("nan") == std::string::npos);  // (a neighbour on each side, as a number in markup has)
}

TEST_CASE("the xml checker accepts well-formed documents and rejects broken ones") {
  for (const char* good : {"<a/>", "<?xml version=\"1.0\"?>\n<a x='1' y=\"&amp;&#60;&#x3C;\">t &lt; u<b/><!-- c --></a>\n",
                           "<a>\xC3\xA9\xE2\x80\xA6</a>"}) {
    INFO(good);
    CHECK(xml_problem(good) == "");
  }
  for (const char* bad : {"", "<a>", "<a></b>", "<a><b></a></b>", "<a x=1/>", "<a x=\"1\" x=\"2\"/>", "<a x=\"<\"/>",
                          "<a>&nbsp;</a>", "<a>&amp</a>", "<a>&#0;</a>", "<a>x < y</a>", "<a/><b/>", "text<a/>",
                          "<a>\x01</a>", "<a>\xff</a>", "<a>\xED\xA0\x80</a>", "<a x=\"1\"y=\"2\"/>", "<a x/>"}) {
    INFO(bad);
    CHECK(xml_problem(bad) != "");
  }
}

TEST_CASE("plot of losses and metrics has a series element and a legend entry per curve and axis labels") {
  std::string svg = training_plot_svg("iris: training", kLosses, kMetrics);
  check_xml(svg);
  CHECK(svg.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
  CHECK(series_names(svg) == std::vector<std::string>{"train loss", "eval loss", "train accuracy", "eval accuracy"});
  CHECK(texts(svg, "legend") == std::vector<std::string>{"train loss", "eval loss", "train accuracy", "eval accuracy"});
  CHECK(texts(svg, "axis-label") == std::vector<std::string>{"epoch", "loss", "epoch", "metric"});
  CHECK(texts(svg, "title") == std::vector<std::string>{"iris: training"});
  CHECK(count(path_of(svg, "train loss"), "L") == 4);
  // Distinct colours within a chart.
  CHECK(svg.find("stroke=\"#1f77b4\"") != std::string::npos);
  CHECK(svg.find("stroke=\"#ff7f0e\"") != std::string::npos);
  // The metrics chart lies below the loss chart.
  CHECK(plot_area(svg, "metric")[1] > plot_area(svg, "loss")[1] + plot_area(svg, "loss")[3]);
}

TEST_CASE("plot without metrics has only the loss chart") {
  for (const auto& metrics : {std::vector<PlotSeries>{}, std::vector<PlotSeries>{{"accuracy", {}}}}) {
    std::string svg = training_plot_svg("t", kLosses, metrics);
    check_xml(svg);
    CHECK(count(svg, "<g class=\"chart\"") == 1);
    CHECK(svg.find("data-axis=\"metric\"") == std::string::npos);
    CHECK(series_names(svg).size() == 2);
    CHECK(texts(svg, "axis-label") == std::vector<std::string>{"epoch", "loss"});
  }
}

TEST_CASE("plot leaves out empty series and keeps an all-NaN series as an empty path") {
  std::string svg = training_plot_svg("t", {{"train loss", {1, 0.5}}, {"eval loss", {}}, {"broken", {NAN, INFINITY}}}, {});
  check_xml(svg);
  CHECK(series_names(svg) == std::vector<std::string>{"train loss", "broken"});
  CHECK(texts(svg, "legend") == std::vector<std::string>{"train loss", "broken"});
  CHECK(path_of(svg, "broken") == "");
  CHECK(svg.find("broken: no values") != std::string::npos);
  std::string none = training_plot_svg("t", {{"train loss", {}}}, {});
  check_xml(none);
  CHECK(series_names(none).empty());
  CHECK(svg.find(">no values</text>") == std::string::npos);
  CHECK(none.find(">no values</text>") != std::string::npos);
}

TEST_CASE("plot escapes names and the title and replaces bytes that are not UTF-8") {
  std::string name = "a<b & \"c\" 'd'>";
  std::string svg = training_plot_svg("<&>\"'", {{name, {1, 2}}, {std::string("x\0y\xff\xc3\xa9\n", 7), {1}}}, {});
  check_xml(svg);
  CHECK(series_names(svg).at(0) == "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
  CHECK(series_names(svg).at(1) == "x\xEF\xBF\xBDy\xEF\xBF\xBD\xC3\xA9&#10;");
  CHECK(texts(svg, "title") == std::vector<std::string>{"&lt;&amp;&gt;&quot;&apos;"});
  // A long name is cut in the legend, on a character boundary, but kept whole in data-name.
  std::string long_name;
  for (int i = 0; i < 30; ++i) long_name += "\xC3\xA9";
  std::string svg2 = training_plot_svg("t", {{long_name, {1, 2}}}, {});
  check_xml(svg2);
  CHECK(series_names(svg2).at(0) == long_name);
  CHECK(texts(svg2, "legend").at(0) == long_name.substr(0, 48) + "\xE2\x80\xA6");
}

TEST_CASE("plot of a single epoch draws a dot") {
  std::string svg = training_plot_svg("t", {{"train loss", {0.7}}}, {{"accuracy", {0.5}}});
  check_xml(svg);
  auto p = points(path_of(svg, "train loss"));
  REQUIRE(p.size() == 1);
  CHECK(p[0].cmd == 'M');
  auto area = plot_area(svg, "loss");
  CHECK(p[0].x == Approx(area[0] + area[2] / 2));  // epoch 1 in the middle
  CHECK(count(svg, "<circle ") == 2);
  CHECK(texts(svg, "x-tick") == std::vector<std::string>{"1", "1"});
}

TEST_CASE("plot of constant series gets a finite range around the value") {
  for (double v : {0.0, 0.25, -3.0, 1e-310, 5e-324, 1e300}) {
    INFO("value " << v);
    std::string svg = training_plot_svg("t", {{"train loss", {v, v, v}}}, {});
    check_xml(svg);
    auto ticks = texts(svg, "y-tick");
    CHECK(ticks.size() >= 3);
    auto p = points(path_of(svg, "train loss"));
    REQUIRE(p.size() == 3);
    auto area = plot_area(svg, "loss");
    CHECK(p[0].y > area[1]);
    CHECK(p[0].y < area[1] + area[3]);
    CHECK(p[0].y == p[2].y);
  }
}

TEST_CASE("plot breaks the line at NaN and infinite values and dots lone points") {
  std::string svg = training_plot_svg("t", {{"train loss", {1, 0.9, NAN, 0.8, 0.7, INFINITY, 0.6, -INFINITY}}}, {});
  check_xml(svg);
  auto p = points(path_of(svg, "train loss"));
  REQUIRE(p.size() == 5);
  std::string cmds;
  for (const Point& q : p) cmds += q.cmd;
  CHECK(cmds == "MLMLM");
  // With many epochs, only the lone point gets a dot.
  std::vector<double> many(200, 0.5);
  many[100] = NAN;
  many[102] = NAN;
  std::string big = training_plot_svg("t", {{"train loss", many}}, {});
  check_xml(big);
  CHECK(count(big, "<circle ") == 1);
  CHECK(count(path_of(big, "train loss"), "M") == 3);
}

TEST_CASE("plot uses a log scale when losses span more than two decades") {
  std::string lin = training_plot_svg("t", {{"train loss", {5, 2, 0.06}}}, {});
  CHECK(texts(lin, "axis-label").at(1) == "loss");
  std::string log = training_plot_svg("t", {{"train loss", {5, 0.5, 0.04}}}, {});
  check_xml(log);
  CHECK(texts(log, "axis-label").at(1) == "loss (log scale)");
  CHECK(texts(log, "y-tick") == std::vector<std::string>{"0.02", "0.05", "0.1", "0.2", "0.5", "1", "2", "5"});
  // Equal ratios are equal distances.
  auto p = points(path_of(log, "train loss"));
  CHECK(p[0].y - p[1].y == Approx((p[1].y - p[2].y) * 1.0 / std::log10(12.5)).epsilon(1e-2));
  std::string wide = training_plot_svg("t", {{"train loss", {1e6, 1, 1e-12}}}, {});
  check_xml(wide);
  CHECK(texts(wide, "y-tick") == std::vector<std::string>{"1e-12", "1e-9", "1e-6", "0.001", "1", "1000", "1e6"});
  // A zero or negative value keeps the scale linear.
  std::string zero = training_plot_svg("t", {{"train loss", {500, 1, 0}}}, {});
  CHECK(texts(zero, "axis-label").at(1) == "loss");
}

TEST_CASE("plot ticks are nice round numbers") {
  std::string svg = training_plot_svg("t", {{"train loss", {0.52, 0.61, 0.7, 0.8, 0.88, 0.5, 0.6, 0.7, 0.8, 0.9}}}, {});
  CHECK(texts(svg, "y-tick") == std::vector<std::string>{"0.5", "0.6", "0.7", "0.8", "0.9"});
  CHECK(texts(svg, "x-tick") == std::vector<std::string>{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"});
  std::string hundred = training_plot_svg("t", {{"train loss", std::vector<double>(100, 1.0)}}, {{"m", {0, 250}}});
  CHECK(texts(hundred, "x-tick") == std::vector<std::string>{"10", "20", "30", "40", "50", "60", "70", "80", "90", "100",
                                                             "10", "20", "30", "40", "50", "60", "70", "80", "90", "100"});
  auto metric_ticks = texts(hundred, "y-tick");
  CHECK(std::vector<std::string>(metric_ticks.end() - 6, metric_ticks.end()) ==
        std::vector<std::string>{"0", "50", "100", "150", "200", "250"});
  std::string small = training_plot_svg("t", {{"train loss", {2e-7, 5e-7}}}, {});
  CHECK(texts(small, "y-tick").front() == "2.0e-07");
}

TEST_CASE("plot coordinates stay inside the plot area and a falling loss goes down") {
  std::string svg = training_plot_svg("t", kLosses, kMetrics);
  for (const char* axis : {"loss", "metric"}) {
    auto area = plot_area(svg, axis);
    const auto& group = std::string(axis) == "loss" ? kLosses : kMetrics;
    for (const PlotSeries& s : group) {
      for (const Point& p : points(path_of(svg, s.name))) {
        CHECK(p.x >= area[0]);
        CHECK(p.x <= area[0] + area[2]);
        CHECK(p.y >= area[1]);
        CHECK(p.y <= area[1] + area[3]);
      }
    }
  }
  auto train = points(path_of(svg, "train loss"));
  REQUIRE(train.size() == 5);
  for (size_t i = 1; i < train.size(); ++i) {
    CHECK(train[i].x > train[i - 1].x);
    CHECK(train[i].y > train[i - 1].y);  // SVG y grows downwards
  }
  auto area = plot_area(svg, "loss");
  CHECK(train.front().x == Approx(area[0]));
  CHECK(train.back().x == Approx(area[0] + area[2]));
}

TEST_CASE("plot with extreme values and many series stays well-formed") {
  std::string svg = training_plot_svg("t", {{"a", {1.7e308, -1.7e308, 5e-324, 0}}, {"b", {-1e-300, 1e-300}}}, {});
  check_xml(svg);
  std::string tiny = training_plot_svg("t", {{"a", {1e-320, 2e-320}}}, {{"b", {5e-324}}});  // subnormal spans
  check_xml(tiny);
  CHECK(texts(tiny, "y-tick").size() >= 3);
  std::vector<PlotSeries> lots;
  for (int i = 0; i < 25; ++i) lots.push_back({fmt::format("s{}", i), {static_cast<double>(i), static_cast<double>(i) + 1}});
  std::string many = training_plot_svg("t", lots, lots);
  check_xml(many);
  CHECK(series_names(many).size() == 50);
  CHECK(texts(many, "legend").size() == 50);
  CHECK(many.find("stroke-dasharray=\"6 3\"") != std::string::npos);  // after ten colours, dashes
  // The chart grows so that 25 legend rows fit.
  CHECK(plot_area(many, "loss")[3] >= 25 * 20);
}

TEST_CASE("plot is deterministic and write_training_plot writes it atomically") {
  std::string a = training_plot_svg("t", kLosses, kMetrics), b = training_plot_svg("t", kLosses, kMetrics);
  CHECK(a == b);
  test::TempDir dir;
  std::string path = dir / "curve.svg";
  test::write_bytes(path, "old");
  write_training_plot(path, "t", kLosses, kMetrics);
  CHECK(test::file_bytes(path) == a);
  CHECK(dir.entries() == std::vector<std::string>{"curve.svg"});
  std::string bad = dir / "no-such-dir/curve.svg";
  CHECK_THAT(test::error_of([&] { write_training_plot(bad, "t", kLosses, {}); }), Catch::StartsWith(bad + ": "));
}

TEST_CASE("xmllint accepts the plot when it is installed") {
  if (std::system("command -v xmllint >/dev/null 2>&1") != 0) {
    WARN("xmllint is not installed; only the built-in checker ran");
    return;
  }
  test::TempDir dir;
  std::string path = dir / "curve.svg";
  write_training_plot(path, "<weird & title>", {{"a<b", {1, NAN, 0.1}}, {std::string("\xff\0", 2), {2}}}, kMetrics);
  CHECK(std::system(("xmllint --noout '" + path + "'").c_str()) == 0);
  test::write_bytes(path, "<svg><g></svg>");  // and it does catch a broken file
  CHECK(std::system(("xmllint --noout '" + path + "' 2>/dev/null").c_str()) != 0);
}

}  // namespace
}  // namespace gradc
