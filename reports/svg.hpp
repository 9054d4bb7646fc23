// A small SVG writer and the two chart kinds lctx draws: line charts (log axes) and heatmaps.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace lctx::reports {

class Svg {
 public:
  Svg(int width, int height);
  void rect(double x, double y, double w, double h, const std::string& fill, const std::string& extra = "");
  void line(double x1, double y1, double x2, double y2, const std::string& stroke, double width = 1,
            const std::string& extra = "");
  void polyline(const std::vector<std::pair<double, double>>& pts, const std::string& stroke, double width = 2);
  void circle(double x, double y, double r, const std::string& fill);
  // anchor: start | middle | end; rotate: degrees around (x, y)
  void text(double x, double y, const std::string& s, int size = 12, const std::string& anchor = "start",
            const std::string& extra = "", double rotate = 0);
  void raw(const std::string& s) { body_ += s; }
  std::string str() const;

 private:
  int w_, h_;
  std::string body_;
};

std::string num(double v);                 // compact deterministic coordinate text ("12.5", "3")
std::string palette(size_t i);             // distinct line colours
std::string ryg(double frac);              // red (0) - yellow (0.5) - green (1), "#rrggbb"

struct Series {
  std::string name;
  std::vector<std::pair<double, std::optional<double>>> points;  // x, y (nullopt = gap)
};

struct LineChart {
  std::string title, x_label, y_label;
  bool log2_x = true;                     // x ticks at the data's x values, labelled by x_tick_label
  bool log_y = false;                     // log10 y axis (throughput, memory)
  std::optional<double> y_min, y_max;     // fixed range (accuracy: 0..100)
  std::optional<double> hline;            // dashed reference line (threshold)
  std::string hline_label;
  std::vector<Series> series;
};
// x tick labels use format_length for lengths.
std::string render_line_chart(const LineChart& c);

struct Heatmap {
  std::string title, x_label, y_label;
  std::vector<std::string> x_ticks, y_ticks;          // columns, rows (top to bottom)
  std::vector<std::vector<std::optional<double>>> v;  // [row][col] in 0..100, nullopt = not evaluated
};
std::string render_heatmap(const Heatmap& h);

}  // namespace lctx::reports
