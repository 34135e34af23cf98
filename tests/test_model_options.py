"""Per-model load options: saved from the dialog, applied by the window and the CLI."""

from __future__ import annotations

from lmdesk.config import Settings, app_paths
from lmdesk.core.params import LoadOptions
from lmdesk.ui.model_options import ModelOptionsDialog


def test_overrides_apply_only_to_their_model():
    s = Settings(n_ctx=2048, model_options={"/m/a.gguf": {"n_ctx": 8192, "lora_path": "/m/l.gguf", "bogus": 1}})
    a = s.load_options("/m/a.gguf")
    assert (a.n_ctx, a.lora_path) == (8192, "/m/l.gguf")
    assert s.load_options("/m/b.gguf") == LoadOptions(n_ctx=2048)
    assert s.load_options("/m/a.gguf", n_ctx=512).n_ctx == 512  # --ctx wins


def test_settings_with_wrong_types_fall_back_to_defaults():
    """A hand-edited settings.json must not crash every later use of the settings."""
    import json

    paths = app_paths().ensure()
    good = {"/m/a.gguf": {"n_ctx": 1024}}
    paths.settings_file.write_text(json.dumps({
        "n_ctx": "8k", "n_threads": True, "model_options": [], "extra_model_paths": "/models",
        "default_model": 3, "theme": "dark", "n_gpu_layers": 5,
    }), encoding="utf-8")
    s = Settings.load(paths)
    assert (s.n_ctx, s.n_threads, s.model_options, s.extra_model_paths, s.default_model) == (4096, None, {}, [], None)
    assert (s.theme, s.n_gpu_layers) == ("dark", 5)  # the valid values are kept
    assert s.load_options("/m/a.gguf").n_ctx == 4096
    paths.settings_file.write_text(json.dumps({"model_options": good, "n_threads": None}), encoding="utf-8")
    assert Settings.load(paths).load_options("/m/a.gguf").n_ctx == 1024


def test_dialog_saves_overrides_and_settings_round_trip(qtbot):
    paths = app_paths().ensure()
    settings = Settings(n_ctx=4096)
    dlg = ModelOptionsDialog(settings, "/models/hf-folder", "torch")
    qtbot.addWidget(dlg)
    dlg.n_ctx.setValue(2048)
    dlg.dtype.setCurrentText("float16")
    dlg.lora.setText("/adapters/my-lora")
    dlg.accept()
    assert settings.model_options["/models/hf-folder"] == {
        "n_ctx": 2048, "dtype": "float16", "lora_path": "/adapters/my-lora"}
    settings.save(paths)
    again = Settings.load(paths).load_options("/models/hf-folder")
    assert (again.n_ctx, again.dtype, again.lora_path, again.device) == (2048, "float16", "/adapters/my-lora", None)
    # Setting everything back to the defaults removes the entry.
    dlg2 = ModelOptionsDialog(settings, "/models/hf-folder", "torch")
    qtbot.addWidget(dlg2)
    dlg2.n_ctx.setValue(4096)
    dlg2.dtype.setCurrentText("auto")
    dlg2.lora.clear()
    dlg2.accept()
    assert "/models/hf-folder" not in settings.model_options


def test_window_lists_and_loads_a_torch_folder_and_shows_its_device(qtbot, tmp_path):
    """The picker lists a Hugging Face folder as a torch model; loading it shows device + dtype."""
    from lmdesk.core.storage.store import Store
    from lmdesk.engine.bridge import EngineBridge
    from lmdesk.ui.main_window import MainWindow
    from tests.hf_models import build_tiny_llama

    paths = app_paths().ensure()
    folder = build_tiny_llama(paths.models / "tiny-llama")
    settings = Settings.load(paths)
    bridge = EngineBridge()
    win = MainWindow(bridge, paths, settings, Store(paths.database))
    qtbot.addWidget(win)
    try:
        win.refresh_models()
        qtbot.waitUntil(lambda: win.model_bar.combo.count() >= 2, timeout=30_000)
        labels = [win.model_bar.combo.itemText(i) for i in range(win.model_bar.combo.count())]
        assert any("tiny-llama" in t and "torch" in t for t in labels), labels
        with qtbot.waitSignal(bridge.sig_model_changed, timeout=120_000):
            win.model_bar.sig_load_requested.emit("torch", str(folder))
        assert "torch · cpu float32" in win.model_label.text()
    finally:
        bridge.shutdown()


def test_cancel_button_stops_a_model_load_and_keeps_the_current_model(qtbot):
    """Cancel during a (slow, scripted) load: an info banner, the old model still answers."""
    import threading

    from PySide6.QtCore import Qt

    from lmdesk.backends import load_backend
    from lmdesk.core.errors import ModelLoadError
    from lmdesk.core.storage.store import Store
    from lmdesk.engine.bridge import EngineBridge
    from lmdesk.ui.main_window import MainWindow

    loading = threading.Event()

    def slow_loader(backend, path, options, progress, cancel):
        if path == "slow":  # a big model: progress, until cancelled
            loading.set()
            while not cancel.wait(0.02):
                progress(0.5)
            raise ModelLoadError("loading slow was cancelled")
        return load_backend(backend, path, options, progress, cancel)

    paths = app_paths().ensure()
    bridge = EngineBridge(loader=slow_loader)
    win = MainWindow(bridge, paths, Settings.load(paths), Store(paths.database))
    qtbot.addWidget(win)
    win.show()
    try:
        with qtbot.waitSignal(bridge.sig_model_changed, timeout=30_000):
            win.load_model("fake", "fake")
        win.load_model("fake", "slow")
        qtbot.waitUntil(loading.is_set, timeout=30_000)
        qtbot.waitUntil(win.model_bar.cancel_button.isVisible, timeout=30_000)
        qtbot.mouseClick(win.model_bar.cancel_button, Qt.LeftButton)
        qtbot.waitUntil(lambda: win.banner.isVisible(), timeout=30_000)
        assert win.banner.kind == "info" and "cancelled" in win.banner.label.text()
        assert "still using fake" in win.banner.label.text()
        assert not win.model_bar.cancel_button.isVisible() and win.model_bar.load_button.isEnabled()
        assert bridge.model.path == "fake"
    finally:
        bridge.shutdown()


def test_a_model_opened_from_disk_joins_the_picker_and_is_remembered(qtbot, tmp_path, embedded_model_path):
    from lmdesk.core.storage.store import Store
    from lmdesk.engine.bridge import EngineBridge
    from lmdesk.ui.main_window import MainWindow
    from tests import model_files

    paths = app_paths().ensure()
    copy = str(model_files.place_model_copy(tmp_path / "elsewhere"))
    settings = Settings.load(paths)
    bridge = EngineBridge()
    win = MainWindow(bridge, paths, settings, Store(paths.database))
    qtbot.addWidget(win)
    try:
        win.start("llama", embedded_model_path)
        qtbot.waitUntil(lambda: win.model_bar.combo.count() >= 1 and bridge.model is not None, timeout=60_000)
        with qtbot.waitSignal(bridge.sig_model_changed, timeout=60_000):
            win.model_bar.sig_load_requested.emit("llama", copy)
        qtbot.waitUntil(lambda: any(win.model_bar.combo.itemData(i)[1] == copy
                                    for i in range(win.model_bar.combo.count())), timeout=30_000)
        assert win.model_bar.combo.currentData() == ("llama", copy)
        win.close()  # saves settings
        assert Settings.load(paths).extra_model_paths == [copy]
    finally:
        bridge.shutdown()
