// The training curve that `gradc train --plot F.svg` writes (SPEC 3): loss
// per epoch (train and eval) and, below it, the metrics per epoch, as one
// self-contained SVG file that any browser shows.
//
// The picture is a pure function of its inputs (no time, no locale), so the
// same run gives the same bytes. Every series is one `<path class="series"
// data-name="NAME">` (tests and scripts can find it) with a `<title>` tooltip,
// plus dots at the epochs when there are few epochs or a value stands alone.
// Names and the title may hold any bytes: they are written as valid XML text
// (bytes that are not UTF-8 become U+FFFD).
#pragma once

#include <string>
#include <vector>

namespace gradc {

// One curve: `values[i]` belongs to epoch i + 1. A NaN or infinite value is a
// missing point (the line breaks there); an empty series is left out.
struct PlotSeries {
  std::string name;
  std::vector<double> values;
};

// The SVG text: `title` on top, a chart of `losses` ("loss" axis, log scale
// when the values span more than two decades), then a chart of `metrics`
// ("metric" axis) when some metric series is not empty. Both charts share the
// epoch axis, 1 to the longest series.
std::string training_plot_svg(const std::string& title, const std::vector<PlotSeries>& losses,
                              const std::vector<PlotSeries>& metrics);

// training_plot_svg, written to `path` with write_output_file (DataError
// naming the path when it cannot be written).
void write_training_plot(const std::string& path, const std::string& title, const std::vector<PlotSeries>& losses,
                         const std::vector<PlotSeries>& metrics);

}  // namespace gradc
