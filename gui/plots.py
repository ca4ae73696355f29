"""The three views of the estimates, drawn with pyqtgraph; each takes plain arrays and draws, nothing else."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor, QFontMetrics

from emolive.engine.schema import DIMENSIONS, SCALE, printable

pg.setConfigOptions(background="w", foreground="k", antialias=True)  # one light look for every plot

COLOURS = {"activation": "#d62728", "valence": "#1f77b4", "dominance": "#2ca02c"}
TRACE_SPAN_S = 60.0
CLASS_LABEL_CHARS = 24  # a class name from a stream is any string: the bar labels stay one short line
TRAIL = 20  # estimates in the plane's trail: 10 s at the default hop
NEUTRAL = (SCALE[0] + SCALE[1]) / 2
SCALE_LABEL = f"({SCALE[0]:g}–{SCALE[1]:g})"
# Where the plane's corners sit in the circumplex, as a reading aid (Russell 1980).
QUADRANTS = (("angry · afraid", SCALE[0], SCALE[1], (0, 0)), ("excited · happy", SCALE[1], SCALE[1], (1, 0)),
             ("sad · bored", SCALE[0], SCALE[0], (0, 1)), ("calm · content", SCALE[1], SCALE[0], (1, 1)))


def _scale_axis(plot: pg.PlotWidget, side: str) -> None:
    """Every whole point of the rating scale ticked and labelled, 1 to 7 included."""
    plot.getAxis(side).setTicks([[(float(v), f"{v:g}") for v in range(int(SCALE[0]), int(SCALE[1]) + 1)]])


def _neutral_line(plot: pg.PlotItem, angle: float, label: bool = False) -> None:
    """The scale's midpoint, dashed; `label` names it on the line, so a reader need not guess what 4 means."""
    line = pg.InfiniteLine(NEUTRAL, angle=angle, pen=pg.mkPen("#999999", style=pg.QtCore.Qt.PenStyle.DashLine),
                           label=f"neutral ({NEUTRAL:g})" if label else None,
                           labelOpts={"position": 0.98, "color": "#666666", "anchors": [(1, 1), (1, 1)]})
    plot.addItem(line)


class TracesPlot(pg.PlotWidget):
    """Activation, valence and dominance against stream time, scrolling over the last 60 s."""

    def __init__(self) -> None:
        super().__init__(title=f"Activation, valence, dominance (last {TRACE_SPAN_S:g} s; shaded: speech turns)")
        self.setLabel("left", f"rating {SCALE_LABEL}")
        self.setLabel("bottom", "stream time (s)")
        self.setYRange(*SCALE, padding=0.03)
        _scale_axis(self, "left")
        self.setMouseEnabled(x=False, y=False)
        self.showGrid(x=True, y=True, alpha=0.2)
        self.addLegend(offset=(-10, 10))
        _neutral_line(self.getPlotItem(), 0, label=True)
        self.curves = {name: self.plot(name=name, pen=pg.mkPen(COLOURS[name], width=2)) for name in DIMENSIONS}
        # the newest estimate of each dimension as a dot: a line needs two, so a run's first estimate (and a
        # short file's only one) drew nothing
        self.newest = pg.ScatterPlotItem(size=7, pen=pg.mkPen(None))
        self.addItem(self.newest)
        self.turn_marks: list[pg.LinearRegionItem] = []  # one shaded band per speech turn in view
        self.setXRange(0, TRACE_SPAN_S, padding=0)

    def draw(self, rows: np.ndarray, turns: Sequence[tuple[float, float]] = ()) -> None:
        """`rows`: (end time, activation, valence, dominance), oldest first, already cut to the span;
        `turns`: (start, end) of speech turns, shaded behind the traces."""
        for column, curve in enumerate(self.curves.values(), start=1):
            curve.setData(rows[:, 0], rows[:, column])
        self.newest.setData([{"pos": (rows[-1, 0], rows[-1, column]), "brush": pg.mkBrush(COLOURS[name])}
                             for column, name in enumerate(self.curves, start=1)] if len(rows) else [])
        newest = rows[-1, 0] if len(rows) else 0.0
        first = max(0.0, newest - TRACE_SPAN_S)
        self.setXRange(first, max(TRACE_SPAN_S, newest), padding=0)
        self._mark_turns([turn for turn in turns if turn[1] >= first])

    def _mark_turns(self, turns: Sequence[tuple[float, float]]) -> None:
        while len(self.turn_marks) < len(turns):
            mark = pg.LinearRegionItem(movable=False, brush=pg.mkBrush(255, 193, 7, 50), pen=pg.mkPen(None))
            mark.setZValue(-10)
            self.addItem(mark)
            self.turn_marks.append(mark)
        for mark, turn in zip(self.turn_marks, turns):
            mark.setRegion(turn)
            mark.setVisible(True)
        for mark in self.turn_marks[len(turns):]:
            mark.setVisible(False)


class PlanePlot(pg.PlotWidget):
    """Valence (x) against activation (y): the newest estimate as a dot, the ones before as a fading trail."""

    def __init__(self) -> None:
        super().__init__(title="Valence–activation plane (dot: newest, trail: the ones before)")
        self.setLabel("bottom", f"valence {SCALE_LABEL}")
        self.setLabel("left", f"activation {SCALE_LABEL}")
        self.setRange(xRange=SCALE, yRange=SCALE, padding=0.03)
        for side in ("left", "bottom"):
            _scale_axis(self, side)
        self.setMouseEnabled(x=False, y=False)
        self.showGrid(x=True, y=True, alpha=0.2)
        for angle in (0, 90):
            _neutral_line(self.getPlotItem(), angle)
        for text, x, y, anchor in QUADRANTS:
            label = pg.TextItem(text, color="#888888", anchor=anchor)
            label.setPos(x, y)
            self.addItem(label)
        self._brushes = [pg.mkBrush(QColor(31, 119, 180, int(255 * (i + 1) / (TRAIL + 1)))) for i in range(TRAIL)]
        self.trail = pg.ScatterPlotItem(size=8, pen=None)
        self.dot = pg.ScatterPlotItem(size=18, pen=pg.mkPen("k", width=1.5), brush=pg.mkBrush(COLOURS["activation"]))
        self.addItem(self.trail)
        self.addItem(self.dot)

    def draw(self, rows: np.ndarray) -> None:
        """`rows` as for TracesPlot; only the newest TRAIL + 1 are drawn."""
        trail, newest = rows[-TRAIL - 1:-1], rows[-1:]
        self.trail.setData(trail[:, 2], trail[:, 1], brush=self._brushes[TRAIL - len(trail):])
        self.dot.setData(newest[:, 2], newest[:, 1])


class ClassBars(pg.PlotWidget):
    """The newest estimate's class probabilities as horizontal bars, one row per class."""

    def __init__(self) -> None:
        super().__init__(title="Class probabilities")
        self.setLabel("bottom", "probability")
        self.setXRange(0, 1, padding=0.02)
        self.setMouseEnabled(x=False, y=False)
        self.names: tuple[str, ...] = ()
        self.bars = pg.BarGraphItem(x0=[], y=[], height=0.7, width=[], brush="#7f7f7f")
        self.addItem(self.bars)

    def draw(self, classes: Mapping[str, float]) -> None:
        names = tuple(classes)
        if names != self.names:  # a model with other classes: new rows and labels
            self.names = names
            axis = self.getAxis("left")
            axis.setTicks([list(enumerate(printable(n, CLASS_LABEL_CHARS) for n in names))])
            # Sized now, not on a later layout pass, so a grab right after this draw shows every name.
            axis.setWidth(max((QFontMetrics(axis.font()).horizontalAdvance(printable(n, CLASS_LABEL_CHARS))
                               for n in names), default=0) + 20)
            self.setYRange(-0.5, max(len(names), 1) - 0.5, padding=0.02)
        self.bars.setOpts(x0=np.zeros(len(names)), y=np.arange(len(names)), width=np.array(list(classes.values())))
