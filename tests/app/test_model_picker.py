"""The Tuner's model list: the loaded model and the demo model are always in it, and Enter on one
posts ModelList.Chosen, which sets the Tuner's draft."""

from __future__ import annotations

from tests.conftest import until
from tests.fakes import ScriptedEngine
from tui.app import VramdeckApp
from tui.engine.settings import LoadSettings
from tui.models.discovery import Location
from tui.monitor.fake import FakeNvml, FakeSampler
from tui.widgets.model_list import ModelList


def _app(tmp_path, settings):
    empty = tmp_path / "models"
    empty.mkdir()
    return VramdeckApp(ScriptedEngine(), FakeSampler(FakeNvml(no_driver=True)), settings=settings,
                       use_dry_run=False, model_locations=[Location(empty, "folder")])


def _ids(models: ModelList) -> list[str]:
    return [models.get_option_at_index(i).id or "" for i in range(models.option_count)]


async def test_a_new_user_sees_the_demo_model_not_none_found(tmp_path, demo_model):
    """Was: "none found" while the demo model itself was loaded."""
    app = _app(tmp_path, None)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: app.screen.query_one(ModelList).option_count > 0)
        models = app.screen.query_one(ModelList)
        assert _ids(models) == [str(demo_model)]
        assert models.border_subtitle == "1 found"
        models.focus()
        models.highlighted = 0
        await pilot.press("enter")
        await until(pilot, lambda: app.screen.draft is not None)
        assert app.screen.draft.model_path == str(demo_model)


async def test_the_loaded_model_is_listed_wherever_it_lives(tmp_path, tiny_llama):
    app = _app(tmp_path, LoadSettings(model_path=str(tiny_llama)))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: app.screen.query_one(ModelList).option_count > 0)
        assert _ids(app.screen.query_one(ModelList)) == [str(tiny_llama)]


async def test_the_model_line_at_80x24_keeps_the_file_name(tmp_path, demo_model):
    """Issue 30: the Tuner cut the demo's path to '.venv/lib/python3.11/site-…', so a newcomer
    could not find the file for inspect or fit; the start is cut now, never the name."""
    from textual.widgets import Static

    app = _app(tmp_path, LoadSettings(model_path=str(demo_model), n_ctx=1024))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: app.screen.info is not None)
        line = str(app.screen.query_one("#model-path", Static).render())
        assert line.rstrip().endswith(demo_model.name) and len(line.rstrip()) <= 80, line
