"""The settings dialog's cascade page: who answers, who reviews, escalation, routing rules.

The backends to choose from are the ones the other pages configure (the dialog
passes their names on every change); a choice that names a backend no longer
configured is kept and shown, and the file's validation names it on save.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.config.schema import CascadeSection
from app.ui.common.dialog_parts import Description, FieldLabel, section_rule
from app.ui.settings.settings_form import RuleForm, SettingsForm, describe
from app.ui.settings.settings_pages import AUTOMATIC, Page

ESCALATION_LABELS = {
    "error": "an error",
    "empty": "an empty answer",
    "length": "a cut-off answer",
    "citations": "citations that fail the check",
}


class RuleRow(QWidget):
    removed = Signal(QWidget)

    def __init__(self, rule: RuleForm, names: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        self.tokens = QSpinBox(self)
        self.tokens.setRange(1, 10_000_000)
        self.tokens.setSingleStep(50_000)
        self.tokens.setGroupSeparatorShown(True)
        self.tokens.setValue(rule.over_tokens)
        self.use = QComboBox(self)
        self.use.setMinimumWidth(160)
        self.set_names(names, rule.use)
        remove = QPushButton("Remove", self)
        remove.setFlat(True)
        layout.addWidget(QLabel("Prompts over", self))
        layout.addWidget(self.tokens)
        layout.addWidget(QLabel("tokens go to", self))
        layout.addWidget(self.use)
        layout.addWidget(remove)
        layout.addStretch(1)
        remove.clicked.connect(lambda: self.removed.emit(self))

    def set_names(self, names: list[str], current: str | None = None) -> None:
        current = self.use.currentText() if current is None else current
        self.use.clear()
        self.use.addItems(names if current in names or not current else [*names, current])
        self.use.setCurrentText(current)

    def rule(self) -> RuleForm:
        return RuleForm(self.tokens.value(), self.use.currentText())


class CascadePage(Page):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(
            "Cascade",
            "Who answers, who reviews, and when the review backend is spent.",
            parent,
        )
        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(6)
        self.draft = QComboBox(self)
        self.review = QComboBox(self)
        for row, (label, combo, field) in enumerate(
            (("Answers with", self.draft, "draft"), ("Reviews with", self.review, "review"))
        ):
            grid.addWidget(QLabel(label, self), row * 2, 0)
            grid.addWidget(combo, row * 2, 1)
            grid.addWidget(
                Description(describe(CascadeSection, field, default=True), self),
                row * 2 + 1,
                1,
                1,
                2,
            )
            combo.setMinimumWidth(240)
        grid.setColumnStretch(2, 1)
        self.box.addLayout(grid)
        self.box.addSpacing(10)
        self.box.addWidget(section_rule(self))
        self.box.addSpacing(6)
        self.auto_review = QCheckBox("Review every answer automatically", self)
        self.box.addWidget(self.auto_review)
        self.box.addWidget(
            Description("The review backend checks each draft and corrects it.", self)
        )
        self.box.addSpacing(8)
        self.escalate = QCheckBox("Escalate a failed draft to the review backend", self)
        self.box.addWidget(self.escalate)
        self.box.addWidget(
            Description(describe(CascadeSection, "escalate_on") + " A draft fails on:", self)
        )
        self.failures: dict[str, QCheckBox] = {}
        flow = QHBoxLayout()
        flow.setContentsMargins(24, 0, 0, 0)
        flow.setSpacing(16)
        for key, label in ESCALATION_LABELS.items():
            box = QCheckBox(label, self)
            self.failures[key] = box
            flow.addWidget(box)
        flow.addStretch(1)
        self.box.addLayout(flow)
        self.box.addSpacing(10)
        self.box.addWidget(section_rule(self))
        self.box.addSpacing(6)
        self.box.addWidget(FieldLabel("Routing rules", self))
        self.box.addWidget(Description("Send long prompts to another backend, e.g. to pro.", self))
        self.rules_box = QVBoxLayout()
        self.rules_box.setSpacing(6)
        self.box.addLayout(self.rules_box)
        self.add_rule = QPushButton("Add rule", self)
        self.box.addWidget(self.add_rule, 0, Qt.AlignmentFlag.AlignLeft)
        self.finish()
        self.names: list[str] = []
        self.rows: list[RuleRow] = []
        self.escalate.toggled.connect(self._escalate_toggled)
        self.add_rule.clicked.connect(self._new_rule)

    def load(self, form: SettingsForm) -> None:
        self.set_names(form.backend_names(), form.draft, form.review)
        self.auto_review.setChecked(form.auto_review)
        self.escalate.setChecked(form.escalate)
        for key, box in self.failures.items():
            box.setChecked(key in form.escalate_on)
        self._escalate_toggled(form.escalate)
        for row in list(self.rows):
            self._remove(row)
        for rule in form.rules:
            self._add(rule)

    def store(self, form: SettingsForm) -> None:
        form.draft = self.draft.currentData()
        form.review = self.review.currentData()
        form.auto_review = self.auto_review.isChecked()
        form.escalate = self.escalate.isChecked()
        form.escalate_on = {k for k, box in self.failures.items() if box.isChecked()}
        form.rules = [row.rule() for row in self.rows]

    def set_names(
        self, names: list[str], draft: str | None = None, review: str | None = None
    ) -> None:
        """The backends to choose from (keeps each choice, even one no longer listed)."""
        self.names = names
        for combo, keep in ((self.draft, draft), (self.review, review)):
            current = combo.currentData() if keep is None and combo.count() else keep
            combo.clear()
            combo.addItem(AUTOMATIC, None)
            for name in names if current in names or current is None else [*names, current]:
                combo.addItem(name, name)
            combo.setCurrentIndex(max(0, combo.findData(current)) if current else 0)
        for row in self.rows:
            row.set_names(names)

    def _escalate_toggled(self, on: bool) -> None:
        for box in self.failures.values():
            box.setEnabled(on)

    def _new_rule(self) -> None:
        use = "pro" if "pro" in self.names else (self.names[0] if self.names else "")
        self._add(RuleForm(200_000, use))

    def _add(self, rule: RuleForm) -> None:
        row = RuleRow(rule, self.names, self)
        row.removed.connect(self._remove)
        self.rows.append(row)
        self.rules_box.addWidget(row)

    def _remove(self, row: QWidget) -> None:
        self.rows = [r for r in self.rows if r is not row]
        row.setParent(None)
        row.deleteLater()
