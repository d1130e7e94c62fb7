"""The Try dock (beside the Live views): the trained model on any sample, and why it answers so.

Pick a validation sample (browse them, "the ones it gets wrong", most confident first, or one
confusion such as "true 1 → predicted 8"), or make one: draw on the pad for one-channel images,
type the values of a tabular or 2-D input. The answer is drawn at once (class probabilities as
bars, a regression value, a reconstruction, a forecast) beside a Captum attribution of it
(Saliency, Integrated Gradients with its baseline, SmoothGrad, Occlusion, Grad-CAM on a chosen
convolutional node, GradientSHAP) for a chosen target class.

It works on a copy of the weights of the run in this window (:class:`engine.tryout.Tryout`):
after a run, and during one ("Use latest weights"), without disturbing the training thread.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QPointF, QRectF, QSignalBlocker, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFormLayout, QFrame, QGridLayout,
                               QHBoxLayout, QLabel, QPushButton, QScrollArea, QSizePolicy,
                               QSpinBox, QStackedWidget, QTabWidget, QToolButton, QVBoxLayout,
                               QWidget)

from engine.errors import LayerlabError
from widgets.plots.style import series_color

METHOD_NAMES = {"saliency": "Saliency", "ig": "Integrated Gradients", "smoothgrad": "SmoothGrad",
                "occlusion": "Occlusion", "gradcam": "Grad-CAM", "shap": "GradientSHAP"}
BASELINE_NAMES = {"zeros": "zeros", "mean": "mean of the training set", "blurred": "blurred"}
NO_RUN = ("Train the network (Training panel) to try it here: the Try panel runs the weights of "
          "the run in this window, during the run too.")
MAX_FIELDS = 32  # value fields for a tabular input; more are shown, not edited
TRY_HEIGHT = 0.42  # of the window: the bottom docks' height when the Try dock is brought up
EDIT_DELAY_MS = 120  # after a stroke or a typed value: one answer, not one per mouse move
ACCENT, AGAINST, MUTED = "#3b7ddd", "#d9534f", "#8a9099"


# -- small views ----------------------------------------------------------------------------------
class DrawPad(QWidget):
    """A one-channel image to look at and draw on: drag paints, right-drag erases."""

    edited = Signal()

    def __init__(self, height: int, width: int, low: float, high: float,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("tryDrawPad")
        self.rows, self.cols, self.low, self.high = height, width, low, high
        self.values = np.full((height, width), low, dtype=np.float32)
        self.cell = max(4, 168 // max(height, width))
        self.setFixedSize(self.cols * self.cell + 2, self.rows * self.cell + 2)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Drag to draw, right-drag to erase")
        self._erase = False

    def set_image(self, image: np.ndarray) -> None:
        self.values = np.asarray(image, dtype=np.float32).reshape(self.rows, self.cols).copy()
        self.update()

    def clear(self) -> None:
        self.values[:] = self.low
        self.update()
        self.edited.emit()

    def image(self) -> np.ndarray:
        return self.values.copy()

    def cell_center(self, row: int, col: int) -> QPointF:
        """Where cell (row, col) is on the pad (tests draw through it)."""
        return QPointF(1 + (col + 0.5) * self.cell, 1 + (row + 0.5) * self.cell)

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._erase = event.button() == Qt.MouseButton.RightButton
        self._paint_at(event.position())

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.buttons() & (Qt.MouseButton.LeftButton | Qt.MouseButton.RightButton):
            self._paint_at(event.position())

    def _paint_at(self, pos: QPointF) -> None:
        col, row = (pos.x() - 1) / self.cell, (pos.y() - 1) / self.cell
        r0, c0 = int(row), int(col)
        if not (0 <= r0 < self.rows and 0 <= c0 < self.cols):
            return
        span = self.high - self.low
        for dr in (-1, 0, 1):  # a soft brush: the cell itself, a little of its neighbours
            for dc in (-1, 0, 1):
                r, c = r0 + dr, c0 + dc
                if not (0 <= r < self.rows and 0 <= c < self.cols):
                    continue
                weight = 1.0 if dr == dc == 0 else (0.35 if dr == 0 or dc == 0 else 0.15)
                if self._erase:
                    self.values[r, c] = max(self.low, self.values[r, c] - weight * span)
                else:
                    self.values[r, c] = min(self.high, self.values[r, c] + weight * span)
        self.update()
        self.edited.emit()

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        span = (self.high - self.low) or 1.0
        grey = np.clip((self.values - self.low) / span, 0, 1)
        for r in range(self.rows):
            for c in range(self.cols):
                level = int(255 - 255 * grey[r, c])  # ink dark on paper
                p.fillRect(1 + c * self.cell, 1 + r * self.cell, self.cell, self.cell,
                           QColor(level, level, level))
        p.setPen(QPen(QColor(MUTED)))
        p.drawRect(0, 0, self.width() - 1, self.height() - 1)
        p.end()


class Bars(QWidget):
    """One horizontal bar per class: the probability, the predicted class in the accent colour,
    the true class marked."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("tryBars")
        self.names: list[str] = []
        self.values = np.zeros(0)
        self.predicted: int | None = None
        self.truth: int | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_bars(self, names, values, predicted=None, truth=None) -> None:
        self.names, self.values = list(names), np.asarray(values, dtype=np.float64)
        self.predicted, self.truth = predicted, truth
        self.setMinimumHeight(min(18 * len(self.names) + 4, 240))
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(220, min(18 * max(1, len(self.names)) + 4, 240))

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt override
        if not self.names:
            return
        p = QPainter(self)
        fg = self.palette().color(self.foregroundRole())
        n = len(self.names)
        row = min(18.0, (self.height() - 4) / n)
        label_w = min(90, max(p.fontMetrics().horizontalAdvance(s) for s in self.names) + 10)
        bar_w = max(20, self.width() - label_w - 52)
        for i, (name, v) in enumerate(zip(self.names, self.values)):
            y = 2 + i * row
            p.setPen(fg)
            text = ("✓ " if i == self.truth else "") + name
            p.drawText(QRectF(0, y, label_w - 6, row), Qt.AlignmentFlag.AlignRight
                       | Qt.AlignmentFlag.AlignVCenter, text)
            color = QColor(ACCENT if i == self.predicted else MUTED)
            p.fillRect(QRectF(label_w, y + 2, max(1.0, bar_w * float(v)), row - 4), color)
            p.setPen(fg)
            p.drawText(QRectF(label_w + bar_w + 4, y, 48, row), Qt.AlignmentFlag.AlignLeft
                       | Qt.AlignmentFlag.AlignVCenter, f"{float(v):.0%}")
        p.end()


class Picture(QLabel):
    """An RGB (H, W, 3) uint8 array, scaled to fit without smoothing."""

    def __init__(self, name: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName(name)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(120, 90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.array: np.ndarray | None = None

    def set_array(self, rgb: np.ndarray | None) -> None:
        self.array = None if rgb is None else np.ascontiguousarray(rgb, dtype=np.uint8)
        self._rescale()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self.array is None:
            self.clear()
            return
        h, w = self.array.shape[:2]
        image = QImage(self.array.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        size = self.size() - QSize(4, 4)
        self.setPixmap(QPixmap.fromImage(image).scaled(
            size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation))


class Lines(QWidget):
    """A sequence drawn as lines, one per feature (the input, or a forecast after it). An
    editable one lets the first line be redrawn: drag over it to set each step's value."""

    edited = Signal()

    def __init__(self, parent: QWidget | None = None, editable: bool = False):
        super().__init__(parent)
        self.setObjectName("tryLines")
        self.series: list[tuple[np.ndarray, np.ndarray, str]] = []
        self.editable = editable
        self._frame: tuple[float, float, float, float] | None = None  # x0, x1, y0, y1
        self.setMinimumSize(160, 90)
        if editable:
            self.setCursor(Qt.CursorShape.CrossCursor)
            self.setToolTip("Drag over the line to redraw the sequence")

    def set_series(self, series) -> None:
        self.series = [(np.asarray(x, float), np.asarray(y, float).copy(), c)
                       for x, y, c in series]
        self._frame = None
        self.update()

    def _range(self) -> tuple[float, float, float, float]:
        if self._frame is None:  # fixed while the learner drags, so the line follows the mouse
            xs = np.concatenate([s[0] for s in self.series])
            ys = np.concatenate([s[1] for s in self.series])
            x0, x1 = float(xs.min()), float(xs.max()) or 1.0
            y0, y1 = float(ys.min()), float(ys.max())
            pad = max(y1 - y0, 1e-9) * 0.25
            self._frame = (x0, x1, y0 - pad, y1 + pad)
        return self._frame

    def point_at(self, step: int, value: float) -> QPointF:
        """Where (step, value) is drawn (tests drag through it)."""
        x0, x1, y0, y1 = self._range()
        w, h = self.width() - 8, self.height() - 8
        return QPointF(4 + w * (step - x0) / max(x1 - x0, 1e-9),
                       4 + h * (1 - (value - y0) / (y1 - y0)))

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._drag(event.position())

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._drag(event.position())

    def _drag(self, pos: QPointF) -> None:
        if not self.editable or not self.series:
            return
        x0, x1, y0, y1 = self._range()
        w, h = self.width() - 8, self.height() - 8
        xs, ys, _c = self.series[0]
        step = x0 + (pos.x() - 4) / max(w, 1) * (x1 - x0)
        i = int(np.argmin(np.abs(xs - step)))
        ys[i] = y0 + (1 - (pos.y() - 4) / max(h, 1)) * (y1 - y0)
        self.update()
        self.edited.emit()

    def values(self) -> np.ndarray:
        """The first line's values (what an edit changed)."""
        return self.series[0][1].copy() if self.series else np.zeros(0)

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt override
        if not self.series:
            return
        x0, x1, y0, y1 = self._range()
        w, h = self.width() - 8, self.height() - 8
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        for x, y, color in self.series:
            p.setPen(QPen(QColor(color), 1.6))
            pts = [QPointF(4 + w * (a - x0) / max(x1 - x0, 1e-9), 4 + h * (1 - (b - y0) / (y1 - y0)))
                   for a, b in zip(x, y)]
            for a, b in zip(pts, pts[1:]):
                p.drawLine(a, b)
            if len(pts) <= 3:  # a forecast of a step or two: dots, not a line
                p.setBrush(QColor(color))
                for point in pts:
                    p.drawEllipse(point, 3.5, 3.5)
        p.end()


# -- the panel --------------------------------------------------------------------------------------
class TryPanel(QWidget):
    """The widgets; :class:`TryUi` feeds it a :class:`~engine.tryout.Tryout`."""

    refresh_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("tryPanel")
        self.setAutoFillBackground(True)  # opaque, like the other docks' contents
        self.tryout = None
        self.order: list[int] = []  # the sample indices the source walks through
        self.position = 0
        self.current_x = None  # (1, ...) tensor shown now
        self.truth: int | None = None
        self.edited = False
        self.prediction = None
        self.attribution = None
        self.fields: list[QDoubleSpinBox] = []
        self.pad: DrawPad | None = None
        self._mapped = None  # (node, method) the embedding shows
        self._edit_timer = QTimer(self, singleShot=True, interval=EDIT_DELAY_MS)
        self._edit_timer.timeout.connect(self._edited)
        self._build()
        self.set_tryout(None)

    # -- building -------------------------------------------------------------------------------
    def _build(self) -> None:
        self.message = QLabel(NO_RUN)
        self.message.setObjectName("mutedText")
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.weights_label = QLabel()
        self.weights_label.setObjectName("mutedText")
        self.weights_label.setWordWrap(True)
        self.refresh_button = QPushButton("Use latest weights")
        self.refresh_button.setObjectName("tryRefresh")
        self.refresh_button.setToolTip("Copy the weights the run holds now")
        self.refresh_button.clicked.connect(self.refresh_requested)
        self.source_combo = QComboBox()
        self.source_combo.setObjectName("trySource")
        self.source_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.source_combo.activated.connect(self._source_chosen)
        self.prev_button = QToolButton()
        self.prev_button.setObjectName("tryPrevious")
        self.prev_button.setText("◀")
        self.prev_button.setToolTip("The previous sample")
        self.prev_button.clicked.connect(lambda: self.go(self.position - 1))
        self.next_button = QToolButton()
        self.next_button.setObjectName("tryNext")
        self.next_button.setText("▶")
        self.next_button.setToolTip("The next sample")
        self.next_button.clicked.connect(lambda: self.go(self.position + 1))
        self.index_spin = QSpinBox()
        self.index_spin.setObjectName("tryIndex")
        self.index_spin.setKeyboardTracking(False)
        self.index_spin.valueChanged.connect(lambda v: self.go(v - 1))
        self.count_label = QLabel()
        self.sample_label = QLabel()
        self.sample_label.setObjectName("trySampleLabel")
        self.sample_label.setWordWrap(True)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setObjectName("tryClear")
        self.clear_button.setToolTip("An empty pad to draw on")
        self.clear_button.clicked.connect(self._clear_pad)

        self.input_stack = QStackedWidget()
        self.input_picture = Picture("tryInputPicture")
        self.input_lines = Lines(editable=True)
        self.input_lines.edited.connect(self._schedule_edit)
        self.input_holder = QWidget()  # the pad or the value fields
        self.input_holder_layout = QVBoxLayout(self.input_holder)
        self.input_holder_layout.setContentsMargins(0, 0, 0, 0)
        self.input_stack.addWidget(self.input_holder)
        self.input_stack.addWidget(self.input_picture)
        self.input_stack.addWidget(self.input_lines)

        self.answer_label = QLabel()
        self.answer_label.setObjectName("tryAnswer")
        self.answer_label.setWordWrap(True)
        font = self.answer_label.font()
        font.setBold(True)
        self.answer_label.setFont(font)
        self.bars = Bars()
        self.output_picture = Picture("tryOutputPicture")
        self.output_lines = Lines()
        self.output_stack = QStackedWidget()
        for w in (self.bars, self.output_picture, self.output_lines, QWidget()):
            self.output_stack.addWidget(w)

        self.method_combo = QComboBox()
        self.method_combo.setObjectName("tryMethod")
        for key, name in METHOD_NAMES.items():
            self.method_combo.addItem(name, key)
        self.method_combo.setCurrentIndex(1)  # Integrated Gradients
        self.target_combo = QComboBox()
        self.target_combo.setObjectName("tryTarget")
        self.baseline_combo = QComboBox()
        self.baseline_combo.setObjectName("tryBaseline")
        for key, name in BASELINE_NAMES.items():
            self.baseline_combo.addItem(name, key)
        self.node_combo = QComboBox()
        self.node_combo.setObjectName("tryNode")
        for combo in (self.method_combo, self.target_combo, self.baseline_combo, self.node_combo):
            combo.currentIndexChanged.connect(self._explain_again)
        self.method_combo.currentIndexChanged.connect(self._method_fields)
        self.attribution_picture = Picture("tryAttribution")
        self.attribution_note = QLabel()
        self.attribution_note.setObjectName("mutedText")
        self.attribution_note.setWordWrap(True)
        self.attention_picture = Picture("tryAttentionMap")
        self.attention_note = QLabel()
        self.attention_note.setObjectName("mutedText")
        self.attention_note.setWordWrap(True)
        self.attention_maps: dict = {}

        # the layout: source | input | answer | why
        source = QVBoxLayout()
        source.addWidget(_heading("Sample"))
        source.addWidget(self.source_combo)
        nav = QHBoxLayout()
        nav.addWidget(self.prev_button)
        nav.addWidget(self.index_spin)
        nav.addWidget(self.next_button)
        nav.addWidget(self.count_label, 1)
        source.addLayout(nav)
        source.addWidget(self.sample_label)
        source.addStretch(1)
        source.addWidget(self.weights_label)
        source.addWidget(self.refresh_button)

        inputs = QVBoxLayout()
        head = QHBoxLayout()
        head.addWidget(_heading("Input"))
        head.addStretch(1)
        head.addWidget(self.clear_button)
        inputs.addLayout(head)
        inputs.addWidget(self.input_stack, 1)

        answer = QVBoxLayout()
        answer.addWidget(_heading("Answer"))
        answer.addWidget(self.answer_label)
        answer.addWidget(self.output_stack, 1)

        why = QVBoxLayout()
        why.addWidget(_heading("Why (Captum)"))
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Method", self.method_combo)
        form.addRow("Target", self.target_combo)
        self.baseline_row = QLabel("Baseline")
        form.addRow(self.baseline_row, self.baseline_combo)
        self.node_row = QLabel("Layer")
        form.addRow(self.node_row, self.node_combo)
        why.addLayout(form)
        why.addWidget(self.attribution_picture, 1)
        why.addWidget(self.attribution_note)
        why.addWidget(self.attention_picture, 1)
        why.addWidget(self.attention_note)

        self.body = QWidget()
        grid = QGridLayout(self.body)
        grid.setContentsMargins(8, 6, 8, 6)
        grid.setHorizontalSpacing(14)
        for col, (layout, stretch) in enumerate(((source, 0), (inputs, 1), (answer, 1),
                                                 (why, 2))):
            holder = QWidget()
            holder.setLayout(layout)
            if col == 0:
                holder.setFixedWidth(250)
            grid.addWidget(holder, 0, col)
            grid.setColumnStretch(col, stretch)
        self.whole = self._build_whole_set()
        self.tabs = QTabWidget()
        self.tabs.setObjectName("tryTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.body, "One sample")
        self.tabs.addTab(self.whole, "Whole set")
        self.tabs.currentChanged.connect(self._tab_changed)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.message)
        self.stack.addWidget(self.tabs)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.stack)

    def _build_whole_set(self) -> QWidget:
        from widgets.plots.confusion import ConfusionView
        from widgets.plots.embedding import EmbeddingView

        page = QWidget()
        self.confusion = ConfusionView()
        self.confusion.cell_clicked.connect(self.open_cell)
        self.embedding = EmbeddingView()
        self.embedding.point_clicked.connect(self.open_sample)
        self.embed_node = QComboBox()
        self.embed_node.setObjectName("tryEmbedNode")
        self.embed_node.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.embed_method = QComboBox()
        self.embed_method.setObjectName("tryEmbedMethod")
        self.embed_method.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.embed_method.addItem("PCA", "pca")
        self.embed_method.addItem("t-SNE (a few seconds)", "tsne")
        self.map_button = QPushButton("Map")
        self.map_button.setObjectName("tryMap")
        self.map_button.setToolTip("Place every validation sample by this layer's activations")
        self.map_button.clicked.connect(self.map_embedding)
        self.embed_note = QLabel()
        self.embed_note.setObjectName("mutedText")
        self.embed_note.setWordWrap(True)
        self.pairs_label = QLabel()
        self.pairs_label.setObjectName("tryPairs")
        self.pairs_label.setWordWrap(True)
        self.pairs_label.setTextFormat(Qt.TextFormat.PlainText)

        left = QVBoxLayout()
        left.addWidget(_heading("Confusion matrix — click a cell for its samples"))
        left.addWidget(self.confusion, 1)
        left.addWidget(self.pairs_label)
        right = QVBoxLayout()
        controls = QHBoxLayout()
        controls.addWidget(_heading("Embedding of"))
        controls.addWidget(self.embed_node)
        controls.addWidget(self.embed_method)
        controls.addWidget(self.map_button)
        controls.addStretch(1)
        right.addLayout(controls)
        right.addWidget(self.embedding, 1)
        right.addWidget(self.embed_note)
        row = QHBoxLayout(page)
        row.setContentsMargins(8, 6, 8, 6)
        row.setSpacing(14)
        row.addLayout(left, 1)
        row.addLayout(right, 1)
        return page

    def _fill_whole_set(self) -> None:
        t = self.tryout
        self._mapped = None
        with QSignalBlocker(self.embed_node):
            self.embed_node.clear()
            nodes = t.embedding_nodes()
            for node in nodes:
                self.embed_node.addItem(f"{node} ({t.graph.node(node).type})", node)
            if len(nodes) >= 2:  # the layer before the last: what the classifier reads
                self.embed_node.setCurrentIndex(len(nodes) - 2)
        self.embedding.clear()
        self.embed_note.setText("")
        if t.task.name == "classification":
            review = t.review()
            self.confusion.set_class_names(self.tryout.class_names or None)
            self.confusion.show_matrix(review.matrix())
            pairs = review.confused_pairs(5)
            self.pairs_label.setText(
                "Most confused: " + "; ".join(f"{t.class_name(a)} taken for {t.class_name(b)} "
                                              f"×{n}" for a, b, n in pairs)
                if pairs else "No mistakes on the validation set.")
        else:
            self.confusion.clear()
            self.pairs_label.setText("The confusion matrix is for classifiers.")
        if self.tabs.currentWidget() is self.whole and self.embed_method.currentData() == "pca":
            self.map_embedding()  # t-SNE takes seconds: only when Map is pressed

    def _tab_changed(self, _index: int) -> None:
        if self.tabs.currentWidget() is self.whole and self.tryout is not None \
                and self._mapped is None and self.embed_method.currentData() == "pca":
            self.map_embedding()

    def map_embedding(self) -> None:
        t = self.tryout
        node, method = self.embed_node.currentData(), self.embed_method.currentData()
        if t is None or node is None:
            return
        from PySide6.QtWidgets import QApplication

        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            points, index = t.embedding(node, method)
        except (LayerlabError, ValueError, RuntimeError) as exc:
            self.embed_note.setText(str(exc))
            return
        finally:
            QApplication.restoreOverrideCursor()
        labels = t.review().labels[index] if t.task.name == "classification" else None
        name = self.embed_method.currentText().split(" (")[0]
        self.embedding.show_points(points, index, labels, t.class_names or None,
                                   title=f"{name} of {node}, {len(index)} samples")
        self._mapped = (node, method)
        self.embed_note.setText("Click a dot to open that sample.")

    def open_cell(self, true: int, predicted: int) -> None:
        """The samples of one cell of the confusion matrix, in the One sample tab."""
        t = self.tryout
        if t is None:
            return
        n = len(t.review().of_pair(true, predicted))
        if n == 0:
            self.embed_note.setText("")
            return
        key = (true, predicted)
        keys = self.source_keys()
        if key not in keys:
            verdict = "right" if true == predicted else "wrong"
            self.sources.append((f"True {t.class_name(true)} → predicted "
                                 f"{t.class_name(predicted)} ({n}, {verdict})", key))
            self.source_combo.addItem(self.sources[-1][0])
            keys = self.source_keys()
        self.tabs.setCurrentWidget(self.body)
        self.choose_source(keys.index(key))

    def open_sample(self, index: int) -> None:
        """One sample (a dot of the embedding), in the One sample tab."""
        if self.tryout is None:
            return
        self.tabs.setCurrentWidget(self.body)
        with QSignalBlocker(self.source_combo):
            self.source_combo.setCurrentIndex(0)  # all samples, in order: position = index
        self.order = list(range(self.tryout.size))
        self.go(index)

    # -- feeding ----------------------------------------------------------------------------------
    def set_tryout(self, tryout, message: str = NO_RUN, weights_text: str = "",
                   live: bool = False) -> None:
        """Show ``tryout`` (None: the message instead); ``live``: the run goes on."""
        self.tryout = tryout
        self.refresh_button.setVisible(live)
        self.weights_label.setText(weights_text)
        if tryout is None:
            self.message.setText(message)
            self.stack.setCurrentWidget(self.message)
            return
        self.stack.setCurrentWidget(self.tabs)
        self._build_input()
        self._fill_targets()
        self._fill_nodes()
        self._fill_sources()
        self._method_fields()
        self.choose_source(0)
        self._fill_whole_set()

    def _build_input(self) -> None:
        t = self.tryout
        while self.input_holder_layout.count():
            item = self.input_holder_layout.takeAt(0)
            old = item.widget()
            if old is not None:
                old.hide()
                old.setParent(None)
                old.deleteLater()
        self.fields, self.pad = [], None
        shape = t.sample_shape
        self.drawable = t.input_kind == "image" and shape[0] == 1
        self.editable = t.input_kind == "vector" and int(np.prod(shape)) <= MAX_FIELDS
        if self.drawable:
            low, high = t.input_range()
            self.pad = DrawPad(shape[1], shape[2], low, high)
            self.pad.edited.connect(self._schedule_edit)
            self.input_holder_layout.addWidget(self.pad, 0, Qt.AlignmentFlag.AlignCenter)
            self.input_stack.setCurrentWidget(self.input_holder)
        elif self.editable:
            names = list(getattr(t.dataset, "feature_names", None) or [])
            form_widget = QWidget()
            form = QFormLayout(form_widget)
            form.setContentsMargins(0, 0, 0, 0)
            low, high = t.input_range()
            pad = max(1.0, (high - low))
            for i in range(int(np.prod(shape))):
                spin = QDoubleSpinBox()
                spin.setObjectName(f"tryValue{i}")
                spin.setDecimals(3)
                spin.setRange(low - 10 * pad, high + 10 * pad)
                spin.setSingleStep(pad / 20)
                spin.setKeyboardTracking(False)
                spin.valueChanged.connect(self._schedule_edit)
                form.addRow(names[i] if i < len(names) else f"x[{i}]", spin)
                self.fields.append(spin)
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QFrame.Shape.NoFrame)
            scroll.setWidget(form_widget)
            self.input_holder_layout.addWidget(scroll)
            self.input_stack.setCurrentWidget(self.input_holder)
        elif t.input_kind == "sequence":
            self.input_stack.setCurrentWidget(self.input_lines)
        else:
            self.input_stack.setCurrentWidget(self.input_picture)
        self.clear_button.setVisible(self.drawable)

    def _fill_targets(self) -> None:
        t = self.tryout
        with QSignalBlocker(self.target_combo):
            self.target_combo.clear()
            self.target_combo.addItem("the predicted class" if t.task.name == "classification"
                                      else "output 0", None)
            if t.task.name == "classification":
                classes = 2 if t.task.binary else int(t.task.units)
                for k in range(classes):
                    self.target_combo.addItem(t.class_name(k), k)

    def _fill_nodes(self) -> None:
        with QSignalBlocker(self.node_combo):
            self.node_combo.clear()
            for node in self.tryout.conv_nodes():
                self.node_combo.addItem(node, node)
            if self.node_combo.count():
                self.node_combo.setCurrentIndex(self.node_combo.count() - 1)
        has_conv = self.node_combo.count() > 0
        model = self.method_combo.model()
        model.item(list(METHOD_NAMES).index("gradcam")).setEnabled(has_conv)
        if not has_conv and self.method_combo.currentData() == "gradcam":
            self.method_combo.setCurrentIndex(1)

    def _fill_sources(self) -> None:
        t = self.tryout
        split = "validation" if t.split == "val" else "training"
        self.sources: list[tuple[str, object]] = [(f"All {split} samples", "all")]
        if t.task.name == "classification":
            review = t.review()
            wrong = review.wrong()
            self.sources.append((f"Wrong ones ({len(wrong)}), most confident first", "wrong"))
            for true, pred, n in review.confused_pairs(8):
                self.sources.append((f"Confused: true {t.class_name(true)} → predicted "
                                     f"{t.class_name(pred)} ({n})", (true, pred)))
        if self.drawable:
            self.sources.append(("Draw your own", "draw"))
        elif self.editable:
            self.sources.append(("Type the values", "type"))
        with QSignalBlocker(self.source_combo):
            self.source_combo.clear()
            for text, _key in self.sources:
                self.source_combo.addItem(text)

    # -- choosing a sample ----------------------------------------------------------------------
    def source_keys(self) -> list:
        return [key for _text, key in self.sources]

    def choose_source(self, index: int) -> None:
        key = self.sources[index][1]
        with QSignalBlocker(self.source_combo):
            self.source_combo.setCurrentIndex(index)
        t = self.tryout
        if key == "all":
            self.order = list(range(t.size))
        elif key == "wrong":
            self.order = t.review().wrong()
        elif isinstance(key, tuple):
            self.order = t.review().of_pair(*key)
        else:  # draw / type: start from an empty pad, or the first sample's values
            self.order = []
            if key == "draw" and self.pad is not None:
                self.pad.clear()
            self.truth = None
            self._use_edit(label="Your drawing" if key == "draw" else "Your values")
            self._navigation()
            return
        self.go(0)

    def _source_chosen(self, index: int) -> None:
        self.choose_source(index)

    def go(self, position: int) -> None:
        if not self.order:
            self._navigation()
            return
        self.position = max(0, min(position, len(self.order) - 1))
        i = self.order[self.position]
        x, label = self.tryout.sample(i)
        self.current_x, self.truth, self.edited = x, label, False
        self._show_input(x)
        split = "validation" if self.tryout.split == "val" else "training"
        truth = f" · true {self.tryout.class_name(label)}" if label is not None else ""
        self.sample_label.setText(f"{split} sample {i}{truth}")
        self._navigation()
        self._answer()

    def _navigation(self) -> None:
        n = len(self.order)
        for w in (self.prev_button, self.next_button, self.index_spin):
            w.setEnabled(n > 0)
        with QSignalBlocker(self.index_spin):
            self.index_spin.setRange(1 if n else 0, max(n, 0))
            self.index_spin.setValue(self.position + 1 if n else 0)
        self.prev_button.setEnabled(n > 0 and self.position > 0)
        self.next_button.setEnabled(n > 0 and self.position < n - 1)
        self.count_label.setText(f"of {n}" if n else "")

    def _show_input(self, x) -> None:
        sample = x[0].cpu().numpy()
        if self.pad is not None:
            self.pad.set_image(sample[0])
        elif self.fields:
            for spin, v in zip(self.fields, sample.reshape(-1).tolist()):
                with QSignalBlocker(spin):
                    spin.setValue(float(v))
        elif self.tryout.input_kind == "sequence":
            steps = np.arange(sample.shape[0])
            self.input_lines.set_series([(steps, sample[:, f], series_color(f))
                                         for f in range(min(sample.shape[1], 6))])
        else:
            self.input_picture.set_array(_as_rgb(sample))

    # -- edits ----------------------------------------------------------------------------------
    def _schedule_edit(self, *_args) -> None:
        self._edit_timer.start()

    def _clear_pad(self) -> None:
        if self.pad is not None:
            self.pad.clear()

    def _edited(self) -> None:
        label = "Your drawing" if self.pad is not None else "Your values"
        if self.current_x is not None and self.order:
            label = f"{self.sample_label.text().split(' (edited)')[0]} (edited)"
        self._use_edit(label)

    def _use_edit(self, label: str) -> None:
        import torch

        shape = self.tryout.sample_shape
        if self.pad is not None:
            x = torch.from_numpy(self.pad.image()).reshape(1, *shape)
        elif self.fields:
            x = torch.tensor([[s.value() for s in self.fields]], dtype=torch.float32)
            x = x.reshape(1, *shape)
        elif self.tryout.input_kind == "sequence" and self.current_x is not None:
            x = self.current_x.clone()  # the first feature as drawn, the others as they were
            x[0, :, 0] = torch.from_numpy(self.input_lines.values()).float()
        elif self.current_x is not None:
            x = self.current_x
        else:
            x, _ = self.tryout.sample(0)
        self.current_x, self.edited = x.float(), True
        self.sample_label.setText(label)
        self._answer()

    # -- the answer and the attribution ------------------------------------------------------
    def _answer(self) -> None:
        t = self.tryout
        try:
            self.prediction = p = t.predict(self.current_x)
        except (LayerlabError, RuntimeError) as exc:
            self.answer_label.setText(f"The model cannot run on this input: {exc}")
            return
        verdict = ""
        if p.kind == "classes" and self.truth is not None:
            verdict = "✓ " if p.predicted == self.truth else "✗ "
        self.answer_label.setText(verdict + p.text)
        if p.kind == "classes":
            names = [t.class_name(k) for k in range(len(p.probabilities))]
            self.bars.set_bars(names, p.probabilities, p.predicted, self.truth)
            self.output_stack.setCurrentWidget(self.bars)
        elif p.kind == "image":
            self.output_picture.set_array(_as_rgb(p.output))
            self.output_stack.setCurrentWidget(self.output_picture)
        elif p.kind == "sequence":
            x = self.current_x[0].cpu().numpy()
            steps = np.arange(x.shape[0]) if x.ndim >= 1 else np.arange(1)
            history = x[:, 0] if x.ndim == 2 else x.reshape(-1)
            ahead = np.asarray(p.output).reshape(-1)
            future = np.arange(len(history), len(history) + len(ahead))
            self.output_lines.set_series([(steps, history, MUTED), (future, ahead, ACCENT)])
            self.output_stack.setCurrentWidget(self.output_lines)
        else:
            self.output_stack.setCurrentIndex(3)
        self._explain()
        self._attention()

    def _attention(self) -> None:
        """An attention model's weights for this input: each head's map, query steps down,
        key steps across."""
        has = bool(self.tryout.attention_nodes())
        self.attention_picture.setVisible(has)
        self.attention_note.setVisible(has)
        if not has:
            self.attention_maps = {}
            return
        try:
            self.attention_maps = self.tryout.attention(self.current_x)
        except (LayerlabError, RuntimeError) as exc:
            self.attention_maps = {}
            self.attention_picture.set_array(None)
            self.attention_note.setText(f"Attention: {exc}")
            return
        if not self.attention_maps:
            self.attention_picture.set_array(None)
            self.attention_note.setText("Attention: the layers gave no weights for this input.")
            return
        node, maps = next(iter(self.attention_maps.items()))
        self.attention_picture.set_array(_heads_rgb(maps))
        more = f" (and {len(self.attention_maps) - 1} more layers)" \
            if len(self.attention_maps) > 1 else ""
        self.attention_note.setText(
            f"Attention of {node}{more}: {maps.shape[0]} heads side by side; row = the step "
            "that looks, column = the step it looks at, darker = more weight.")

    def choose_layer(self, node: str) -> None:
        """A node selected on the canvas: Grad-CAM's layer when it is a convolutional one."""
        if self.tryout is None:
            return
        index = self.node_combo.findData(node)
        if index >= 0 and index != self.node_combo.currentIndex():
            self.node_combo.setCurrentIndex(index)  # re-explains if Grad-CAM is shown

    def _method_fields(self, *_args) -> None:
        method = self.method_combo.currentData()
        self.baseline_row.setVisible(method == "ig")
        self.baseline_combo.setVisible(method == "ig")
        self.node_row.setVisible(method == "gradcam")
        self.node_combo.setVisible(method == "gradcam")

    def _explain_again(self, *_args) -> None:
        if self.tryout is not None and self.current_x is not None:
            self._explain()

    def _explain(self) -> None:
        from engine.explain import render

        method = self.method_combo.currentData()
        try:
            result = self.tryout.explain(
                self.current_x, method, target=self.target_combo.currentData(),
                node=self.node_combo.currentData() if method == "gradcam" else None,
                baseline=self.baseline_combo.currentData() or "zeros")
        except (LayerlabError, RuntimeError, ValueError) as exc:
            self.attribution = None
            self.attribution_picture.set_array(None)
            self.attribution_note.setText(f"{METHOD_NAMES[method]}: {exc}")
            return
        self.attribution = result
        self.attribution_picture.set_array(render(self.current_x[0].cpu().numpy(),
                                                  result["attribution"], scale=1))
        target = result["target"]
        name = self.tryout.class_name(target) if self.tryout.task.name == "classification" \
            else f"output {target}"
        where = f" on {result['node']}" if result.get("node") else ""
        self.attribution_note.setText(f"{METHOD_NAMES[method]}{where} for {name}: red pushes "
                                      "towards it, blue against it.")


class TryUi(QObject):
    """The Try dock of a :class:`~gui.main_window.MainWindow` and its hook-up to training."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.panel = TryPanel()
        # in a scroll area: the panel's columns must not make the bottom docks taller, or the
        # side docks narrower, while the Try tab is not even in front
        holder = QScrollArea()
        holder.setObjectName("tryScroll")
        holder.setWidgetResizable(True)
        holder.setFrameShape(QFrame.Shape.NoFrame)
        holder.setWidget(self.panel)
        self.dock = window.add_panel("Try", holder, Qt.DockWidgetArea.BottomDockWidgetArea,
                                     "tryDock")
        training = getattr(window, "training", None)
        window.tabifyDockWidget(window.summary_dock, self.dock)
        window.summary_dock.raise_()
        self._wanted = False  # the panel is in sight, or was asked for
        self._stale = True
        self.panel.refresh_requested.connect(self.refresh)
        self.dock.visibilityChanged.connect(self._visibility)
        if training is not None:
            c = training.controller
            c.run_finished.connect(lambda _r: self._run_changed())
            c.run_failed.connect(lambda *_a: self._run_changed())
            c.run_started.connect(lambda _i: self._run_started())
        window.document_changed.connect(lambda _d: self._run_changed())
        window.node_selected.connect(self.panel.choose_layer)

    def trainer(self):
        training = getattr(self.window, "training", None)
        if training is None:
            return None, False
        c = training.controller
        if c.trainer is not None and training.run_document is self.window.document:
            return c.trainer, False
        worker = getattr(c.thread, "worker", None) if c.busy else None
        trainer = getattr(worker, "trainer", None)
        return trainer, trainer is not None

    def _visibility(self, visible: bool) -> None:
        if visible:
            self._wanted = True
            if self._stale:
                self.refresh()

    def _run_started(self) -> None:
        """A new run: let go of the last one's copy (and its trainer) at once."""
        self.panel.set_tryout(None)
        self._run_changed()

    def _run_changed(self) -> None:
        self._stale = True
        if self.dock.isVisible() and not self.dock.visibleRegion().isEmpty():
            self.refresh()

    def show(self) -> None:
        """Bring the Try dock forward (and fill it), tall enough for its pictures."""
        self.dock.show()
        self.dock.raise_()
        if self.dock.height() < TRY_HEIGHT * self.window.height():
            self.window.resizeDocks([self.dock], [int(TRY_HEIGHT * self.window.height())],
                                    Qt.Orientation.Vertical)
        self.refresh()

    def refresh(self) -> None:
        """A new :class:`Tryout` from the run in this window (its latest weights)."""
        from engine.tryout import Tryout

        self._stale = False
        trainer, live = self.trainer()
        if trainer is None:
            self.panel.set_tryout(None)
            return
        try:
            tryout = Tryout(trainer)
            self.panel.set_tryout(tryout, weights_text=self._weights_text(trainer, live),
                                  live=live)
        except (LayerlabError, RuntimeError, ValueError, OSError) as exc:
            self.panel.set_tryout(None, message=f"The model cannot be tried: {exc}")
            return

    @staticmethod
    def _weights_text(trainer, live: bool) -> str:
        epoch = len(getattr(trainer, "history", []) or [])
        return (f"Weights of the running training (epoch {epoch}), copied now." if live else
                f"Weights of the last run in this window ({epoch} epochs).")


def install_try(window) -> TryUi:
    window.try_ui = TryUi(window)
    return window.try_ui


# -- helpers --------------------------------------------------------------------------------------
def _heading(text: str) -> QLabel:
    label = QLabel(text.upper())
    label.setObjectName("sectionTitle")
    return label


def _as_rgb(sample: np.ndarray) -> np.ndarray | None:
    """(C, H, W) or (H, W) values as an RGB uint8 picture (scaled to its own range)."""
    a = np.asarray(sample, dtype=np.float64)
    if a.ndim == 3 and a.shape[0] in (1, 3):
        a = a.transpose(1, 2, 0)
        if a.shape[2] == 1:
            a = np.repeat(a, 3, axis=2)
    elif a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    else:
        flat = a.reshape(1, -1)
        a = np.repeat(flat[..., None], 3, axis=2)
    span = a.max() - a.min()
    a = (a - a.min()) / span if span > 0 else a * 0
    return (a * 255).astype(np.uint8)


def _heads_rgb(maps: np.ndarray) -> np.ndarray:
    """(heads, T, S) attention weights as one RGB picture: the heads side by side, white for
    none, the accent colour for a head's largest weight."""
    accent = np.array([0x3b, 0x7d, 0xdd], dtype=np.float64)
    tiles = []
    for head in np.asarray(maps, dtype=np.float64):
        peak = head.max()
        share = head / peak if peak > 0 else head
        tile = 255 - share[..., None] * (255 - accent)
        tiles.append(tile)
        tiles.append(np.full((head.shape[0], 1, 3), 200.0))  # a grey gap between heads
    return np.concatenate(tiles[:-1], axis=1).astype(np.uint8)
