"""The meters: what this message used and cost, what the session spent, live.

While an answer streams: tokens per second and the tokens received so far;
when the server reports usage: the message's cache hits and misses, output and
reasoning tokens and its cost; always: the session's spend, Pro's share and
what local answers saved against the API. Figures come from the cascade's
``Meter`` events, which sum the calls as they were logged, so the window, the
CLI's meter line and the export agree to the cent.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QWidget

from app.core.events import Meter
from app.core.pricing import Totals, format_money, format_percent


def message_text(m: Totals) -> str:
    approx = "~" if m.estimated else ""
    if m.prompt == 0 and m.completion == 0:
        return "—"
    parts = []
    if not m.local:
        parts.append(f"hit {approx}{m.cache_hit:,}")
        parts.append(f"miss {approx}{m.prompt - m.cache_hit:,}")
    else:
        parts.append(f"in {approx}{m.prompt:,}")
    out = f"out {approx}{m.completion:,}"
    if m.reasoning:
        out += f" (reasoning {m.reasoning:,})"
    parts.append(out)
    return " · ".join(parts)


class MeterBar(QWidget):
    """One row of figures under the context map."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("meters")
        self.speed = QLabel("—")
        self.message = QLabel("—")
        self.cost = QLabel("—")
        self.session = QLabel("—")
        self.pro = QLabel("")
        self.saved = QLabel("")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 0, 12, 6)
        layout.setSpacing(18)
        for title, label, tip in (
            ("Speed", self.speed, "Tokens per second while an answer streams"),
            ("This message", self.message, "Prompt tokens read from cache / sent in full; output"),
            ("Message cost", self.cost, "What this question cost, every call included"),
            ("Session", self.session, "What the session has spent"),
        ):
            head = QLabel(title)
            head.setObjectName("meterTitle")
            label.setObjectName("meterValue")
            label.setToolTip(tip)
            layout.addWidget(head)
            layout.addWidget(label)
        layout.addWidget(self.pro)
        layout.addWidget(self.saved)
        layout.addStretch(1)
        for label in (self.pro, self.saved):
            label.setObjectName("meterValue")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)

    def show_meter(self, meter: Meter) -> None:
        if meter.tokens_per_second is not None:
            self.speed.setText(f"{meter.tokens_per_second:.0f} tok/s")
        elif meter.streaming:
            self.speed.setText("…")
        m = meter.message
        text = message_text(m)
        if meter.streaming and meter.streamed_tokens and m.completion == 0:
            text = f"receiving ~{meter.streamed_tokens:,} tokens"
        self.message.setText(text)
        nothing_logged = m.prompt == 0 and m.completion == 0 and m.spend == 0 and not m.unknown
        if nothing_logged and meter.local_backend is False:
            self.cost.setText("…")  # the API bills on the usage it reports at the end
        elif m.local:
            self.cost.setText("local: $0")
        else:
            self.cost.setText(m.money)
        self.show_session(meter.session)

    def show_session(self, s: Totals) -> None:
        self.session.setText(s.money)
        self.pro.setText(f"Pro {format_percent(s.pro_spend, s.spend)}" if s.spend > 0 else "")
        self.saved.setText(f"saved {format_money(s.saved)} (local)" if s.saved > 0 else "")

    def show_spend(self, spend: Any) -> None:
        """The session's spend as ``app.core.session.Spend`` reads it from the log."""
        money = format_money(spend.total) + (" + unknown" if spend.unknown_calls else "")
        self.session.setText(money)
        share = spend.pro_share
        self.pro.setText(f"Pro {format_percent(share * 100, Decimal(100))}" if share else "")
        self.saved.setText(f"saved {format_money(spend.saved)} (local)" if spend.saved else "")

    def reset_message(self) -> None:
        self.speed.setText("—")
        self.message.setText("—")
        self.cost.setText("—")
