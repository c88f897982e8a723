"""Line charts as standalone SVG, with no dependencies: the benchmark scripts draw their own
plots so that BENCHMARKS.md's figures always come from the run whose numbers it shows.

    from plot import line_chart
    line_chart("docs/bench/rps.svg", "GET /users/me", "connections", "requests/s",
               {"warden": [(1, 7400), (64, 39000)], "floor": [(1, 8000), (64, 45000)]},
               log_x=True, log_y=True)
"""
import math
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 820, 420
LEFT, RIGHT, TOP, BOTTOM = 78, 280, 40, 56
COLOURS = ["#1f77b4", "#7f7f7f", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
DASHES = ["", "6 4", "2 3", "8 3 2 3", "", "6 4", "2 3"]


def _ticks(low, high, log):
    """Round tick values covering [low, high]: powers of ten (and 2, 5 times them) on a log
    axis, 1/2/5 steps on a linear one."""
    if log:
        ticks = []
        for exponent in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
            for m in (1, 2, 5):
                v = m * 10 ** exponent
                if low <= v <= high:
                    ticks.append(v)
        return ticks
    span = high - low or 1
    raw = span / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    start = math.ceil(low / step) * step
    return [start + i * step for i in range(int((high - start) / step) + 1)]


def _label(v):
    if v >= 1_000_000:
        return f"{v / 1_000_000:g}M"
    if v >= 1000:
        return f"{v / 1000:g}k"
    return f"{v:g}"


def line_chart(path, title, x_label, y_label, series, log_x=False, log_y=False):
    """Writes an SVG line chart of `series` (name -> [(x, y), ...]) to `path`."""
    points = [p for values in series.values() for p in values if p[1] is not None]
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    x_low, x_high = min(xs), max(xs)
    if log_y:
        y_low, y_high = 10 ** math.floor(math.log10(min(ys))), 10 ** math.ceil(math.log10(max(ys)))
    else:
        y_low, y_high = 0, max(ys) * 1.08

    def scale(v, low, high, log):
        if log:
            v, low, high = math.log10(v), math.log10(low), math.log10(high)
        return (v - low) / ((high - low) or 1)

    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x):
        return LEFT + scale(x, x_low, x_high, log_x) * plot_w

    def py(y):
        return TOP + plot_h - scale(y, y_low, y_high, log_y) * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
    ]
    for y in _ticks(y_low, y_high, log_y):
        out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{py(y):.1f}" y2="{py(y):.1f}" '
                   'stroke="#e5e5e5"/>')
        out.append(f'<text x="{LEFT - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{_label(y)}</text>')
    x_ticks = sorted(set(xs)) if log_x else _ticks(x_low, x_high, False)
    for x in x_ticks:
        out.append(f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{TOP}" y2="{TOP + plot_h}" '
                   'stroke="#f0f0f0"/>')
        out.append(f'<text x="{px(x):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{_label(x)}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#444"/>')
    out.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 14}" text-anchor="middle">'
               f'{escape(x_label)}{" (log scale)" if log_x else ""}</text>')
    out.append(f'<text transform="translate(18 {TOP + plot_h / 2}) rotate(-90)" text-anchor="middle">'
               f'{escape(y_label)}{" (log scale)" if log_y else ""}</text>')
    for i, (name, values) in enumerate(series.items()):
        colour, dash = COLOURS[i % len(COLOURS)], DASHES[i % len(DASHES)]
        values = sorted(p for p in values if p[1] is not None)
        if not values:
            continue
        d = " ".join(f"{'M' if j == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for j, (x, y) in enumerate(values))
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="2"{dash_attr}/>')
        for x, y in values:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>')
        ly = TOP + 10 + i * 20
        out.append(f'<line x1="{LEFT + plot_w + 12}" x2="{LEFT + plot_w + 36}" y1="{ly}" y2="{ly}" '
                   f'stroke="{colour}" stroke-width="2"{dash_attr}/>')
        out.append(f'<text x="{LEFT + plot_w + 42}" y="{ly + 4}">{escape(name)}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
