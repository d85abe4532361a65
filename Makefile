# make demo : set up, then fetch the recorded (UQM) and build the synthetic corpus, train, decode, print the WER tables
# make test : set up, then run the test suite
# make lint : ruff check + format check
# make bench: benchmarks into bench/RESULTS.md (after make demo)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox \
	cmake g++ libboost-program-options-dev libboost-system-dev libboost-thread-dev libboost-test-dev \
	zlib1g-dev libbz2-dev liblzma-dev \
	libsndfile1 wordnet-base fortunes fortunes-min jargon-text dict-devil
# the browser test of asr serve's page (make test only: the demo does not need it)
TEST_APT_PACKAGES := chromium
STAMP := $(VENV)/.setup-done

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt setup.py asr/csrc/beam_search.cpp tools/setup_system.sh
	bash tools/setup_system.sh $(APT_PACKAGES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test,export,tts]'
	touch $(STAMP)

demo: setup
	source $(VENV)/bin/activate && bash recipes/synthetic/run.sh $(DEMO_ARGS)

test: setup
	bash tools/setup_system.sh $(TEST_APT_PACKAGES)
	$(VENV)/bin/pytest -q $(PYTEST_ARGS)

bench: setup  # needs the demo's model and LM (make demo)
	$(PY) -m pip install -q -c constraints.txt -e '.[test,export,bench]' && $(PY) -m pip install -q --no-deps 'pyctcdecode==0.5.0'
	$(PY) bench/lstm_layers.py
	$(PY) bench/decoding.py
	$(PY) bench/training.py
	$(PY) bench/transcribe.py
	$(PY) bench/extra_text.py
	$(PY) bench/confidence.py
	$(PY) bench/vad.py
	$(PY) bench/bulk.py
	$(PY) bench/streaming.py
	$(PY) bench/peer_training.py

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) data/synthetic-* data/uqm
