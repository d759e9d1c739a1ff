"""Screens whose `app` is a VramdeckApp to the type checker, so a misspelt or removed app
attribute is an error before it is a crash (Posting casts the same way)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar, cast

from textual.screen import ModalScreen, Screen

if TYPE_CHECKING:
    from tui.app import VramdeckApp

ResultType = TypeVar("ResultType")


class VramdeckScreen(Screen):
    @property
    def app(self) -> "VramdeckApp":  # type: ignore[override]
        return cast("VramdeckApp", super().app)


class VramdeckModal(ModalScreen[ResultType], Generic[ResultType]):
    @property
    def app(self) -> "VramdeckApp":  # type: ignore[override]
        return cast("VramdeckApp", super().app)
