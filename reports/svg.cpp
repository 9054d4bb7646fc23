#include "reports/svg.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "reports/common.hpp"
#include "core/lengths.hpp"

namespace lctx::reports {

std::string num(double v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s;
}

std::string palette(size_t i) {
  static const char* c[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                            "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
  return c[i % 10];
}

std::string ryg(double f) {
  f = std::min(1.0, std::max(0.0, f));
  // ColorBrewer RdYlGn end points and middle
  const double a[3] = {215, 48, 39}, m[3] = {254, 224, 139}, b[3] = {26, 152, 80};
  double rgb[3];
  for (int k = 0; k < 3; ++k) rgb[k] = f < 0.5 ? a[k] + (m[k] - a[k]) * (f / 0.5) : m[k] + (b[k] - m[k]) * ((f - 0.5) / 0.5);
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", static_cast<int>(std::lround(rgb[0])),
                static_cast<int>(std::lround(rgb[1])), static_cast<int>(std::lround(rgb[2])));
  return buf;
}

Svg::Svg(int width, int height) : w_(width), h_(height) {}

void Svg::rect(double x, double y, double w, double h, const std::string& fill, const std::string& extra) {
  body_ += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(w) + "\" height=\"" + num(h) +
           "\" fill=\"" + fill + "\"" + (extra.empty() ? "" : " " + extra) + "/>\n";
}

void Svg::line(double x1, double y1, double x2, double y2, const std::string& stroke, double width,
               const std::string& extra) {
  body_ += "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" + num(y2) +
           "\" stroke=\"" + stroke + "\" stroke-width=\"" + num(width) + "\"" + (extra.empty() ? "" : " " + extra) +
           "/>\n";
}

void Svg::polyline(const std::vector<std::pair<double, double>>& pts, const std::string& stroke, double width) {
  std::string p;
  for (auto& [x, y] : pts) p += (p.empty() ? "" : " ") + num(x) + "," + num(y);
  body_ += "<polyline points=\"" + p + "\" fill=\"none\" stroke=\"" + stroke + "\" stroke-width=\"" + num(width) +
           "\" stroke-linejoin=\"round\"/>\n";
}

void Svg::circle(double x, double y, double r, const std::string& fill) {
  body_ += "<circle cx=\"" + num(x) + "\" cy=\"" + num(y) + "\" r=\"" + num(r) + "\" fill=\"" + fill + "\"/>\n";
}

void Svg::text(double x, double y, const std::string& s, int size, const std::string& anchor, const std::string& extra,
               double rotate) {
  body_ += "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" font-size=\"" + std::to_string(size) +
           "\" text-anchor=\"" + anchor + "\"";
  if (rotate != 0) body_ += " transform=\"rotate(" + num(rotate) + " " + num(x) + " " + num(y) + ")\"";
  if (!extra.empty()) body_ += " " + extra;
  body_ += ">" + xml_escape(s) + "</text>\n";
}

std::string Svg::str() const {
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(w_) + "\" height=\"" +
         std::to_string(h_) + "\" viewBox=\"0 0 " + std::to_string(w_) + " " + std::to_string(h_) +
         "\" font-family=\"Helvetica, Arial, sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n" +
         body_ + "</svg>\n";
}

namespace {

std::string short_num(double v) {  // axis labels for log axes: 1.2k, 35, 0.5, 12M
  double a = std::abs(v);
  char buf[32];
  if (a >= 1e6) std::snprintf(buf, sizeof buf, "%gM", std::round(v / 1e5) / 10);
  else if (a >= 1e4) std::snprintf(buf, sizeof buf, "%gk", std::round(v / 1e2) / 10);
  else std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

std::string render_line_chart(const LineChart& c) {
  const int W = 760, plot_w = 520, H = 400, left = 70, top = 48, plot_h = 280;
  Svg s(W, H);
  s.text(left + plot_w / 2.0, 26, c.title, 16, "middle", "font-weight=\"bold\"");
  // data ranges
  std::vector<double> xs;
  double ylo = INFINITY, yhi = -INFINITY;
  for (auto& se : c.series)
    for (auto& [x, y] : se.points) {
      if (std::find(xs.begin(), xs.end(), x) == xs.end()) xs.push_back(x);
      if (y && (!c.log_y || *y > 0)) {
        ylo = std::min(ylo, *y);
        yhi = std::max(yhi, *y);
      }
    }
  std::sort(xs.begin(), xs.end());
  if (c.y_min) ylo = *c.y_min;
  if (c.y_max) yhi = *c.y_max;
  if (!std::isfinite(ylo) || !std::isfinite(yhi)) ylo = 0, yhi = 1;
  double ly0, ly1;  // axis range in (possibly log) units
  if (c.log_y) {
    ly0 = std::floor(std::log10(std::max(ylo, 1e-9)));
    ly1 = std::ceil(std::log10(std::max(yhi, 1e-9)));
    if (ly1 <= ly0) ly1 = ly0 + 1;
  } else {
    ly0 = ylo;
    ly1 = yhi > ylo ? yhi : ylo + 1;
  }
  auto ymap = [&](double y) {
    double u = c.log_y ? std::log10(std::max(y, 1e-12)) : y;
    return top + plot_h - (u - ly0) / (ly1 - ly0) * plot_h;
  };
  double lx0 = xs.empty() ? 0 : std::log2(std::max(xs.front(), 1.0));
  double lx1 = xs.empty() ? 1 : std::log2(std::max(xs.back(), 1.0));
  auto xmap = [&](double x) {
    if (lx1 <= lx0) return left + plot_w / 2.0;
    return left + 20 + (std::log2(std::max(x, 1.0)) - lx0) / (lx1 - lx0) * (plot_w - 40);
  };
  // frame, grid, ticks
  s.rect(left, top, plot_w, plot_h, "#fafafa", "stroke=\"#999999\"");
  std::vector<double> yt;
  if (c.log_y) {
    for (double e = ly0; e <= ly1 + 1e-9; e += 1) yt.push_back(std::pow(10.0, e));
  } else {
    for (int k = 0; k <= 5; ++k) yt.push_back(ly0 + (ly1 - ly0) * k / 5.0);
  }
  for (double y : yt) {
    double py = ymap(y);
    s.line(left, py, left + plot_w, py, "#e0e0e0");
    s.text(left - 6, py + 4, c.log_y ? short_num(y) : num(y), 11, "end");
  }
  for (double x : xs) {
    double px = xmap(x);
    s.line(px, top, px, top + plot_h, "#eeeeee");
    s.line(px, top + plot_h, px, top + plot_h + 5, "#666666");
    s.text(px, top + plot_h + 18, format_length(static_cast<int64_t>(x)), 11, "middle");
  }
  s.text(left + plot_w / 2.0, top + plot_h + 42, c.x_label, 13, "middle");
  s.text(18, top + plot_h / 2.0, c.y_label, 13, "middle", "", -90);
  if (c.hline) {
    double py = ymap(*c.hline);
    s.line(left, py, left + plot_w, py, "#555555", 1, "stroke-dasharray=\"6,4\"");
    s.text(left + plot_w - 4, py - 5, c.hline_label, 10, "end", "fill=\"#555555\"");
  }
  // series
  for (size_t i = 0; i < c.series.size(); ++i) {
    std::string col = palette(i);
    std::vector<std::pair<double, double>> run;
    auto flush = [&] {
      if (run.size() > 1) s.polyline(run, col, 2.2);
      run.clear();
    };
    for (auto& [x, y] : c.series[i].points) {
      if (!y || (c.log_y && *y <= 0)) {
        flush();
        continue;
      }
      run.push_back({xmap(x), ymap(*y)});
      s.circle(xmap(x), ymap(*y), 3.5, col);
    }
    flush();
  }
  // legend
  double lx = left + plot_w + 16, ly = top + 8;
  s.text(lx, ly, "Legend", 12, "start", "font-weight=\"bold\"");
  for (size_t i = 0; i < c.series.size(); ++i) {
    double y = ly + 20 + 20 * static_cast<double>(i);
    s.line(lx, y - 4, lx + 22, y - 4, palette(i), 3);
    std::string name = c.series[i].name;
    if (name.size() > 24) name = name.substr(0, 23) + "~";
    s.text(lx + 28, y, name, 11);
  }
  return s.str();
}

std::string render_heatmap(const Heatmap& h) {
  size_t rows = h.y_ticks.size(), cols = h.x_ticks.size();
  const double cw = cols > 12 ? 44 : 56;
  double ch = rows > 20 ? 16 : 24;
  // tall enough for the rotated y-axis label
  const double min_h = 7.0 * static_cast<double>(h.y_label.size()) + 20;
  if (rows > 0 && ch * static_cast<double>(rows) < min_h) ch = std::min(60.0, min_h / static_cast<double>(rows));
  size_t yw = 0;
  for (auto& t : h.y_ticks) yw = std::max(yw, t.size());
  const double left = 44 + 7.0 * static_cast<double>(yw), top = 48;
  const double plot_w = cw * static_cast<double>(cols), plot_h = std::max(ch * static_cast<double>(rows), min_h);
  const int W = std::max(static_cast<int>(left + plot_w + 110), static_cast<int>(9.0 * h.title.size()) + 40);
  const int H = static_cast<int>(top + plot_h + 64);
  Svg s(W, H);
  s.text(W / 2.0, 26, h.title, 15, "middle", "font-weight=\"bold\"");
  for (size_t r = 0; r < rows; ++r) {
    double y = top + ch * r;
    s.text(left - 6, y + ch / 2 + 4, h.y_ticks[r], 11, "end");
    for (size_t c = 0; c < cols; ++c) {
      double x = left + cw * c;
      auto v = r < h.v.size() && c < h.v[r].size() ? h.v[r][c] : std::nullopt;
      if (v) {
        s.rect(x, y, cw, ch, ryg(*v / 100.0), "stroke=\"#ffffff\"");
        if (ch >= 16) s.text(x + cw / 2, y + ch / 2 + 4, fixed(*v, *v >= 99.95 || *v < 0.05 ? 0 : 1), 10, "middle");
      } else {
        s.rect(x, y, cw, ch, "#eeeeee", "stroke=\"#ffffff\"");
      }
    }
  }
  for (size_t c = 0; c < cols; ++c) s.text(left + cw * c + cw / 2, top + plot_h + 16, h.x_ticks[c], 11, "middle");
  s.text(left + plot_w / 2, top + plot_h + 40, h.x_label, 13, "middle");
  s.text(std::max(16.0, left - 7.0 * static_cast<double>(yw) - 22), top + plot_h / 2, h.y_label, 13, "middle", "", -90);
  // colour bar
  double bx = left + plot_w + 24, bh = std::max(80.0, std::min(plot_h, 200.0));
  for (int k = 0; k < 20; ++k) s.rect(bx, top + bh - (k + 1) * bh / 20, 14, bh / 20 + 0.5, ryg(k / 19.0));
  s.text(bx + 20, top + 8, "100", 10);
  s.text(bx + 20, top + bh / 2 + 4, "50", 10);
  s.text(bx + 20, top + bh, "0", 10);
  s.text(bx, top + bh + 18, "accuracy %", 10);
  return s.str();
}

}  // namespace lctx::reports
